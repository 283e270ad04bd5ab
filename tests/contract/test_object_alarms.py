"""Cloudflare's alarm API errors, raised inside a live object."""

from __future__ import annotations

import re

import pytest

from objects import DurableObject
from runtime import open_runtime


class WithHandler(DurableObject):
    async def set(self, when):
        await self.ctx.storage.setAlarm(when)

    async def get(self):
        return await self.ctx.storage.getAlarm()

    async def alarm(self, info):
        pass


class WithoutHandler(DurableObject):
    async def set(self, when):
        await self.ctx.storage.setAlarm(when)


def _exactly(text: str) -> str:
    return rf"^{re.escape(text)}$"


@pytest.mark.parametrize("when", [0, -1, -0.5])
async def test_set_alarm_at_or_before_the_epoch_is_a_type_error(when: float) -> None:
    async with open_runtime(bindings={"A": WithHandler}) as rt:
        stub = rt.env.A.getByName("a")
        with pytest.raises(TypeError, match=_exactly("setAlarm() cannot be called with an alarm time <= 0")):
            await stub.set(when)
        assert await stub.get() is None  # bad input changes nothing


async def test_set_alarm_without_an_alarm_handler_is_refused() -> None:
    async with open_runtime(bindings={"A": WithoutHandler}) as rt:
        message = "Your Durable Object class must have an alarm() handler in order to call setAlarm()"
        with pytest.raises(TypeError, match=_exactly(message)):
            await rt.env.A.getByName("a").set(2_000_000_000_000)


async def test_set_alarm_rejects_values_that_are_not_times() -> None:
    async with open_runtime(bindings={"A": WithHandler}) as rt:
        # CF: workerd 1.20261117.1 (observed)
        message = "Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'."
        with pytest.raises(TypeError, match=_exactly(message)):
            await rt.env.A.getByName("a").set("tomorrow")


async def test_set_alarm_beyond_the_javascript_date_range_is_a_clear_error() -> None:
    from objects import DurableObjectStorage
    from persistence import ObjectDatabase, StorageTypeError

    import tempfile, pathlib

    with tempfile.TemporaryDirectory() as d:
        db = ObjectDatabase(pathlib.Path(d) / "a.sqlite")
        try:
            storage = DurableObjectStorage(db)
            # CF: workerd 1.20261117.1 (observed): nanoseconds must fit an int64
            with pytest.raises(StorageTypeError, match=r"^This API doesn't support dates after 2189\.$"):
                storage.setAlarm(9223372036855)
            storage.setAlarm(9223372036854.5)
            assert db.get_alarm() == 9223372036854  # whole milliseconds, as workerd keeps them
            storage.deleteAlarm()
            assert db.get_alarm() is None
        finally:
            db.close()
