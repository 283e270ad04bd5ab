"""Cloudflare's messages for resets: blockConcurrencyWhile timeouts and abort()."""

from __future__ import annotations

import re

import pytest
import trio

from objects import DurableObject, ObjectResetError, OverloadedError
from runtime import open_runtime


class Resettable(DurableObject):
    async def hang(self):
        async def forever():
            await trio.sleep(3600)

        await self.ctx.blockConcurrencyWhile(forever)

    def abort_plain(self):
        self.ctx.abort()

    def abort_with(self, reason):
        self.ctx.abort(reason)


def _exactly(text: str) -> str:
    return rf"^{re.escape(text)}$"


async def test_block_concurrency_while_timeout_uses_cloudflares_message(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"R": Resettable}) as rt:
        message = (
            "A call to blockConcurrencyWhile() in a Durable Object waited for too long. "
            "The call was canceled and the Durable Object was reset."
        )
        with pytest.raises(OverloadedError, match=_exactly(message)) as info:
            await rt.env.R.getByName("a").hang()
        assert info.value.overloaded is True and info.value.durableObjectReset is True


async def test_abort_without_reason_uses_cloudflares_message() -> None:
    async with open_runtime(bindings={"R": Resettable}) as rt:
        with pytest.raises(ObjectResetError, match=_exactly("Application called abort() to reset Durable Object.")):
            await rt.env.R.getByName("a").abort_plain()


async def test_abort_with_reason_hands_the_reason_to_the_caller() -> None:
    async with open_runtime(bindings={"R": Resettable}) as rt:
        with pytest.raises(ObjectResetError, match=_exactly("maintenance")) as info:
            await rt.env.R.getByName("a").abort_with("maintenance")
        assert info.value.durable_object_reset is True
