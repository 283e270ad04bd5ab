"""An event for an idle object runs at once in the sender's task (``Activation.deliver_now``), as the loop would run it."""

from __future__ import annotations

import trio

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import current_activation, current_env, open_runtime
from runtime._events import YIELD_EVERY_SETTLED


class Probe(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.log: list[str] = []

    def where(self) -> list[object]:
        act = current_activation()
        return [act is not None and act.object_id == self.ctx.id, current_env() is self.env]

    def note(self, what: str) -> list[str]:
        self.log.append(what)
        return list(self.log)

    async def slow(self) -> list[str]:
        self.log.append("slow: first step")
        await trio.sleep(1)
        self.log.append("slow: after the wait")
        return list(self.log)

    def calls_itself(self) -> list[str]:
        self.log.append("outer")
        # A stub call back into this object from its own synchronous code is
        # queued: it cannot run inside the code that sent it.
        self._pending = self.env.P.get(self.ctx.id).note("inner")
        self.log.append("outer done")
        return list(self.log)

    async def finish_pending(self) -> list[str]:
        return await self._pending

    def write(self, value: str) -> str:
        self.ctx.storage.kv.put("v", value)
        return value

    def read(self) -> str | None:
        return self.ctx.storage.kv.get("v")


class Worker(WorkerEntrypoint):
    async def fetch(self, request):
        stub = self.env.P.getByName("w")
        return Response(repr(await stub.where()))


async def test_a_call_from_a_worker_to_an_idle_object_runs_inside_that_object_with_its_env() -> None:
    async with open_runtime(bindings={"P": Probe}, entrypoint=Worker) as rt:
        for _ in range(3):  # the first call creates the object; later ones find it idle
            response = await rt.fetch("http://example.com/")
            assert await response.text() == "[True, True]"


async def test_an_async_handler_runs_its_first_step_before_the_next_call_to_the_same_object(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_runtime(bindings={"P": Probe}) as rt:
        for i in range(20):  # trio may run a batch in either order: try it often
            stub = rt.env.P.getByName(f"a{i}")
            await stub.note("warm")  # the object is live and idle
            first = stub.slow()
            second = stub.note("second")
            await first
            await second
            assert await stub.note("end") == ["warm", "slow: first step", "second", "slow: after the wait", "end"]


async def test_a_stub_call_an_object_sends_to_itself_runs_after_the_code_that_sent_it() -> None:
    async with open_runtime(bindings={"P": Probe}) as rt:
        stub = rt.env.P.getByName("self")
        await stub.note("warm")
        assert await stub.calls_itself() == ["warm", "outer", "outer done"]
        assert await stub.finish_pending() == ["warm", "outer", "outer done", "inner"]


async def test_writes_of_calls_to_a_parked_object_are_stored_and_it_parks_again(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"P": Probe}, idle_timeout=60) as rt:
        rt.park_after_idle = 1.0  # park after a second idle (the budget's room would allow 30 s)
        stub = rt.env.P.getByName("parked")
        await stub.write("1")
        act = rt.live_activation("P", stub.id)
        assert act is not None
        await trio.sleep(2)
        assert act.db.parked
        assert await stub.write("2") == "2"  # reopens the file from the sender's task
        await trio.sleep(2)
        assert act.db.parked
        await rt.evict("P", stub.id)
        assert await stub.read() == "2"


async def test_a_loop_of_calls_to_an_idle_object_lets_other_tasks_run_every_few_calls() -> None:
    # Each call runs at once in the caller's task and is settled before it is
    # awaited; the await still lets the scheduler run others now and then.
    async with open_runtime(bindings={"P": Probe}) as rt:
        stub = rt.env.P.getByName("loop")
        await stub.note("warm")
        turns = 0

        async def other() -> None:
            nonlocal turns
            while True:
                turns += 1
                await trio.lowlevel.checkpoint()

        seen: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            for _ in range(10 * YIELD_EVERY_SETTLED):
                await stub.where()
                seen.append(turns)
            nursery.cancel_scope.cancel()
        # trio runs a batch of ready tasks in either order: the other task may run
        # just before one of the caller's turns and just after the next one.
        window = 2 * YIELD_EVERY_SETTLED
        assert all(seen[i + window] > seen[i] for i in range(len(seen) - window)), seen


async def test_awaiting_a_settled_call_in_a_cancelled_scope_raises_cancelled() -> None:
    async with open_runtime(bindings={"P": Probe}) as rt:
        stub = rt.env.P.getByName("cancel")
        await stub.note("warm")
        for _ in range(2 * YIELD_EVERY_SETTLED):  # whether or not this await is the one that yields
            with trio.CancelScope() as scope:
                scope.cancel()
                await stub.note("ran")
                raise AssertionError("the await did not raise Cancelled")
            assert scope.cancelled_caught
        # The calls themselves ran: the caller was cancelled, not the object.
        assert (await stub.note("end"))[-1] == "end"
        assert len(await stub.note("count")) == 2 * YIELD_EVERY_SETTLED + 3


async def test_an_event_awaited_twice_gives_its_value_both_times() -> None:
    # As a promise awaited twice does in JavaScript.
    async with open_runtime(bindings={"P": Probe}) as rt:
        stub = rt.env.P.getByName("twice")
        await stub.note("warm")
        event = rt.send_method("P", stub.id, "note", ("again",), {})
        assert await event == ["warm", "again"]
        assert await event == ["warm", "again"]
