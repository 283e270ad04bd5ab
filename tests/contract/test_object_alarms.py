"""Cloudflare's alarm API errors, raised inside a live object."""

from __future__ import annotations

import math

import re

import pytest
import trio

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

    async def get(self):
        return await self.ctx.storage.getAlarm()


def _exactly(text: str) -> str:
    return rf"^{re.escape(text)}$"


@pytest.mark.parametrize("when", [0, -1, -0.5])
async def test_set_alarm_at_or_before_the_epoch_is_a_type_error(when: float) -> None:
    async with open_runtime(bindings={"A": WithHandler}) as rt:
        stub = rt.env.A.getByName("a")
        with pytest.raises(TypeError, match=_exactly("setAlarm() cannot be called with an alarm time <= 0")):
            await stub.set(when)
        assert await stub.get() is None  # bad input changes nothing


async def test_set_alarm_without_an_alarm_handler_is_accepted_and_fails_when_it_fires(
    autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    # CF: src/pyodide/python-entrypoint-helper.ts — workerd wraps a Python object
    # in a Proxy that answers every property (alarm included) with a function, so
    # setAlarm() passes workerd's handler check; the missing method fails when the
    # alarm fires ("Method alarm does not exist") and is retried, then dropped.
    # The SDK's own test_alarm_set_get_delete relies on the set being accepted.
    async with open_runtime(bindings={"A": WithoutHandler}, alarm_jitter=lambda: 0.0) as rt:
        stub = rt.env.A.getByName("a")
        due = math.floor(rt.now_ms()) + 1000  # setAlarm keeps whole milliseconds
        await stub.set(due)
        assert await stub.get() == due
        with caplog.at_level("WARNING", logger="dohost.alarms"):
            await trio.sleep(3600)
        failures = [r.getMessage() for r in caplog.records if "failed (retry" in r.getMessage()]
        assert len(failures) == 7 and all("Method alarm does not exist" in m for m in failures)
        assert await stub.get() is None


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
