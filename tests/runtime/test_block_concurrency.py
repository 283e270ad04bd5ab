"""blockConcurrencyWhile, waitUntil and abort: what each does to the object's lifetime."""

from __future__ import annotations

import re

import pytest
import trio
import trio.testing

from objects import AbortError, DurableObject, ObjectResetError
from runtime import open_runtime


class Life(DurableObject):
    constructed = 0

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.memory: list[str] = []

    def remember(self, item):
        self.memory.append(item)
        return list(self.memory)

    async def bcw_value(self):
        async def cb():
            await trio.sleep(1)
            return {"answer": 42}

        return await self.ctx.blockConcurrencyWhile(cb)

    def bcw_sync_callback(self):
        # A callback returning a plain value (no coroutine) is accepted too.
        return self.ctx.blockConcurrencyWhile(lambda: "plain")

    async def bcw_raises(self):
        async def cb():
            raise ValueError("warm-up failed")

        await self.ctx.blockConcurrencyWhile(cb)

    async def bcw_hangs(self):
        async def cb():
            await trio.sleep(3600)

        await self.ctx.blockConcurrencyWhile(cb)

    async def nest(self, depth):
        reached = []

        async def level(n):
            reached.append(n)
            if n < depth:
                await self.ctx.blockConcurrencyWhile(lambda: level(n + 1))

        await self.ctx.blockConcurrencyWhile(lambda: level(1))
        return len(reached)

    def background(self, seconds):
        async def work():
            await trio.sleep(seconds)
            self.ctx.storage.kv.put("background", "done")

        self.ctx.waitUntil(work())

    def read(self, key):
        return self.ctx.storage.kv.get(key)

    def write_then_abort(self, reason):
        self.ctx.storage.kv.put("doomed", True)
        try:
            self.ctx.abort(reason)
        except Exception:  # user code cannot swallow an abort
            self.memory.append("swallowed")
        self.memory.append("continued after abort")

    def abort_type(self):
        try:
            self.ctx.abort()
        except BaseException as exc:
            self.env.SEEN.append(exc)
            raise


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Life.constructed = 0


async def test_block_concurrency_while_returns_the_callbacks_value(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        assert await stub.bcw_value() == {"answer": 42}
        assert await stub.bcw_sync_callback() == "plain"


async def test_an_exception_in_block_concurrency_while_resets_the_object(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        assert await stub.remember("x") == ["x"]
        with pytest.raises(ValueError, match=r"^warm-up failed$") as info:
            await stub.bcw_raises()
        assert info.value.durableObjectReset is True
        assert await stub.remember("y") == ["y"]  # in-memory state is gone
        assert Life.constructed == 2


async def test_block_concurrency_while_times_out_after_30_seconds_and_resets(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        await stub.remember("x")
        start = trio.current_time()
        with pytest.raises(Exception) as info:
            await stub.bcw_hangs()
        assert trio.current_time() - start == pytest.approx(30.0)
        err = info.value
        assert err.overloaded is True and err.durableObjectReset is True
        assert await stub.remember("y") == ["y"]
        assert Life.constructed == 2


async def test_events_queued_during_a_timed_out_block_concurrency_while_fail(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        errors: list[BaseException] = []

        async def queued() -> None:
            try:
                await stub.remember("queued")
            except Exception as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _ignore(stub.bcw_hangs()))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(queued)
        assert len(errors) == 1 and errors[0].durableObjectReset is True


async def _ignore(awaitable) -> None:
    try:
        await awaitable
    except Exception:
        pass


async def test_nesting_block_concurrency_while_64_deep_works_and_65_is_rejected() -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        assert await stub.nest(64) == 64
        message = "blockConcurrencyWhile()/transaction() nested more than 64 deep"
        with pytest.raises(RuntimeError, match=rf"^{re.escape(message)}$"):
            await stub.nest(65)


async def test_block_concurrency_while_in_the_constructor_without_await_runs_before_any_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Warm(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.state = "cold"

            async def load():
                await trio.sleep(10)
                self.state = "warm"

            ctx.blockConcurrencyWhile(load)  # no await: a constructor cannot await

        def get_state(self):
            return self.state

    async with open_runtime(bindings={"W": Warm}) as rt:
        stub = rt.env.W.getByName("a")
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(lambda: _expect(stub.get_state(), "warm"))


async def _expect(awaitable, value) -> None:
    assert await awaitable == value


async def test_wait_until_keeps_the_object_alive_until_done(autojump_clock: trio.abc.Clock, call_log) -> None:
    async with open_runtime(bindings={"L": Life}, observer=call_log, idle_timeout=10) as rt:
        stub = rt.env.L.getByName("a")
        await stub.background(60)
        await trio.sleep(50)
        assert rt.live_activation("L", stub.id) is not None
        assert call_log.count("evict") == 0
        await trio.sleep(15)  # work finished at 60 s; idle from then on
        assert rt.live_activation("L", stub.id) is not None
        await trio.sleep(10)
        assert call_log.count("evict") == 1
        assert rt.live_activation("L", stub.id) is None
        assert await stub.read("background") == "done"


async def test_abort_drops_uncommitted_writes_and_the_caller_gets_the_reason() -> None:
    async with open_runtime(bindings={"L": Life}) as rt:
        stub = rt.env.L.getByName("a")
        await stub.remember("before")
        with pytest.raises(ObjectResetError, match=r"^going away$") as info:
            await stub.write_then_abort("going away")
        assert info.value.durableObjectReset is True
        assert await stub.read("doomed") is None
        assert await stub.remember("after") == ["after"]  # swallowed/continued never ran
        assert Life.constructed == 2


async def test_abort_raises_a_base_exception_inside_the_object() -> None:
    seen: list[BaseException] = []
    async with open_runtime(bindings={"L": Life}, vars={"SEEN": seen}) as rt:
        with pytest.raises(ObjectResetError):
            await rt.env.L.getByName("a").abort_type()
    (exc,) = seen
    assert isinstance(exc, AbortError) and not isinstance(exc, Exception)


class AbortsEverywhere(DurableObject):
    constructed = 0

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        if ctx.storage.kv.get("abort in constructor"):
            ctx.storage.kv.delete("abort in constructor")
            ctx.abort("constructor abort")

    async def in_transaction(self):
        async def body(txn):
            await txn.put("k", "uncommitted")
            self.ctx.abort("transaction abort")

        await self.ctx.storage.transaction(body)

    def in_wait_until(self):
        async def work():
            await trio.sleep(1)
            self.ctx.storage.kv.put("k", "uncommitted")
            self.ctx.abort("background abort")

        self.ctx.waitUntil(work())

    def arm_constructor_abort(self):
        self.ctx.storage.kv.put("abort in constructor", True)

    def get(self):
        return self.ctx.storage.kv.get("k")


async def test_abort_inside_transaction_resets_the_object_and_drops_the_transaction() -> None:
    async with open_runtime(bindings={"A": AbortsEverywhere}) as rt:
        stub = rt.env.A.getByName("a")
        with pytest.raises(ObjectResetError, match=r"^transaction abort$"):
            await stub.in_transaction()
        assert await stub.get() is None


async def test_abort_inside_wait_until_work_resets_the_object(autojump_clock: trio.abc.Clock) -> None:
    AbortsEverywhere.constructed = 0
    async with open_runtime(bindings={"A": AbortsEverywhere}) as rt:
        stub = rt.env.A.getByName("a")
        await stub.in_wait_until()
        await trio.sleep(2)
        assert await stub.get() is None
        assert AbortsEverywhere.constructed == 2


async def test_abort_in_the_constructor_fails_the_waiting_calls_and_the_next_call_retries(data_dir) -> None:
    async with open_runtime(bindings={"A": AbortsEverywhere}, data_dir=data_dir) as rt:
        stub = rt.env.A.getByName("a")
        await stub.arm_constructor_abort()
        await rt.evict("A", stub.id)
        with pytest.raises(ObjectResetError, match=r"^constructor abort$"):
            await stub.get()
        # abort() dropped the constructor's uncommitted delete, so it aborts again.
        with pytest.raises(ObjectResetError, match=r"^constructor abort$"):
            await stub.get()
