"""The runtime's one idle timer (runtime/_idle.py): each object parks and is evicted on its own schedule."""

from __future__ import annotations

import trio

from objects import DurableObject
from runtime import open_runtime


class Note(DurableObject):
    def write(self, value: str) -> str:
        self.ctx.storage.kv.put("v", value)
        return value

    def read(self) -> str | None:
        return self.ctx.storage.kv.get("v")


def _state(rt, name: str) -> str | None:
    oid = rt.env.N.idFromName(name).toString()
    return next((s.state for s in rt.statistics() if s.id == oid), None)


async def test_objects_gone_idle_at_different_moments_are_each_evicted_after_their_own_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_runtime(bindings={"N": Note}, idle_timeout=5) as rt:
        await rt.env.N.getByName("early").write("e")
        await trio.sleep(3)
        await rt.env.N.getByName("late").write("l")
        await trio.sleep(2.5)  # early: idle 5.5 s; late: idle 2.5 s
        assert _state(rt, "early") == "evicted"
        assert _state(rt, "late") == "idle"
        await trio.sleep(3)
        assert _state(rt, "late") == "evicted"
        assert await rt.env.N.getByName("late").read() == "l"


async def test_an_object_used_again_after_parking_parks_again_a_moment_after_its_new_idle_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_runtime(bindings={"N": Note}, idle_timeout=60) as rt:
        rt.park_after_idle = 1.0  # park after a second idle (the budget's room would allow 30 s)
        stub = rt.env.N.getByName("a")
        await stub.write("1")
        act = rt.live_activation("N", stub.id)
        assert act is not None
        await trio.sleep(2)
        assert act.db.parked  # idle past the moment: parked, waiting for eviction at 60 s
        assert await stub.read() == "1"
        assert not act.db.parked
        await trio.sleep(2)  # parks again now, not only when the 60 s eviction wait ends
        assert act.db.parked
        assert _state(rt, "a") == "idle"


async def test_a_runtime_with_idle_objects_closes_without_waiting_for_their_timers(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    async with open_runtime(bindings={"N": Note}, idle_timeout=3600) as rt:
        for i in range(3):
            await rt.env.N.getByName(f"o{i}").write("x")
    # Fake time moves only when everything waits on a timer: a close that waited
    # for the idle timer would jump the clock past it.
    assert trio.current_time() - start < 3600


async def test_a_runtime_closing_in_the_moment_an_object_parks_does_not_wait_for_its_eviction_timer(
    autojump_clock: trio.abc.Clock,
) -> None:
    start = trio.current_time()
    async with open_runtime(bindings={"N": Note}, idle_timeout=3600) as rt:
        stub = rt.env.N.getByName("a")
        await stub.write("x")
        act = rt.live_activation("N", stub.id)
        assert act is not None
        await trio.sleep(0.01)  # the object waits idle, its park timer not due yet
        # The park timer pops, and the runtime is asked to stop before the object's task
        # runs again: both wake-ups land on the same event.
        act.idle_fired()
    assert trio.current_time() - start < 60  # fake time: the eviction timer (3600 s) was not waited for


async def test_a_call_arriving_in_the_moment_an_object_parks_is_answered_without_waiting_for_the_idle_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_runtime(bindings={"N": Note}, idle_timeout=3600) as rt:
        stub = rt.env.N.getByName("a")
        await stub.write("x")
        act = rt.live_activation("N", stub.id)
        assert act is not None
        await trio.sleep(0.01)  # the object waits idle, its park timer not due yet
        # The park timer pops, and a call arrives before the object's task runs again:
        # it is queued (not delivered in the caller's task), and both wake-ups land on
        # the same event.
        act.idle_fired()
        start = trio.current_time()
        assert await stub.read() == "x"
        assert trio.current_time() - start < 60  # fake time: the eviction timer (3600 s) was not waited for
