"""Eviction: idle objects are dropped and their files closed; the resident cap; statistics()."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from objects import DurableObject
from persistence import ObjectDatabase
from runtime import DEFAULT_IDLE_TIMEOUT, open_runtime


class Kept(DurableObject):
    constructed = 0

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.memory = 0

    def bump(self):
        self.memory += 1
        kv = self.ctx.storage.kv
        kv.put("n", (kv.get("n") or 0) + 1)
        return [self.memory, kv.get("n")]

    async def hold(self, seconds):
        async def cb():
            await trio.sleep(seconds)

        await self.ctx.blockConcurrencyWhile(cb)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Kept.constructed = 0


def _state(rt, name: str) -> str | None:
    oid = rt.env.K.idFromName(name).toString()
    return next((s.state for s in rt.statistics() if s.id == oid), None)


async def test_default_idle_timeout_is_ten_seconds(autojump_clock: trio.abc.Clock) -> None:
    assert DEFAULT_IDLE_TIMEOUT == 10.0
    async with open_runtime(bindings={"K": Kept}) as rt:
        await rt.env.K.getByName("a").bump()
        await trio.sleep(9.5)
        assert _state(rt, "a") == "idle"
        await trio.sleep(1)
        assert _state(rt, "a") == "evicted"


async def test_an_idle_object_is_dropped_and_its_file_closed(autojump_clock: trio.abc.Clock, call_log, data_dir) -> None:
    async with open_runtime(bindings={"K": Kept}, data_dir=data_dir, idle_timeout=5, observer=call_log) as rt:
        stub = rt.env.K.getByName("a")
        await stub.bump()
        act = rt.live_activation("K", stub.id)
        assert act is not None and not act.db.closed
        await trio.sleep(6)
        assert rt.live_activation("K", stub.id) is None
        assert act.db.closed
        assert call_log.count("evict") == 1
        # The lock is released: another host could open the file now.
        path = act.db.path
        ObjectDatabase(path).close()


async def test_activity_postpones_eviction(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"K": Kept}, idle_timeout=5) as rt:
        stub = rt.env.K.getByName("a")
        for _ in range(5):
            await stub.bump()
            await trio.sleep(4)
        assert _state(rt, "a") == "idle"
        assert Kept.constructed == 1


async def test_the_next_event_after_eviction_reruns_the_constructor_against_the_same_storage(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_runtime(bindings={"K": Kept}, idle_timeout=5) as rt:
        stub = rt.env.K.getByName("a")
        assert await stub.bump() == [1, 1]
        assert await stub.bump() == [2, 2]
        await trio.sleep(6)
        assert await stub.bump() == [1, 3]  # memory starts over, storage does not
        assert Kept.constructed == 2


async def test_an_object_inside_block_concurrency_while_is_not_evicted(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"K": Kept}, idle_timeout=5) as rt:
        stub = rt.env.K.getByName("a")
        await stub.hold(25)  # five idle timeouts long, under the 30 s limit
        assert Kept.constructed == 1
        await stub.bump()
        assert Kept.constructed == 1


async def test_max_resident_evicts_the_least_recently_used_idle_objects(call_log) -> None:
    async with open_runtime(bindings={"K": Kept}, max_resident=3, observer=call_log) as rt:
        ns = rt.env.K
        for name in ("a", "b", "c"):
            await ns.getByName(name).bump()
        await ns.getByName("a").bump()  # "b" is now the least recently used
        await ns.getByName("d").bump()
        await trio.testing.wait_all_tasks_blocked()
        assert _state(rt, "b") == "evicted"
        assert {n: _state(rt, n) for n in "acd"} == {"a": "idle", "c": "idle", "d": "idle"}
        assert call_log.count("evict") == 1


async def test_statistics_reports_state_queue_depth_events_and_commits(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"K": Kept}) as rt:
        stub = rt.env.K.getByName("a")
        await stub.bump()
        (stats,) = rt.statistics()
        assert (stats.binding, stats.id, stats.name) == ("K", stub.id.toString(), "a")
        assert (stats.state, stats.queue_depth, stats.events) == ("idle", 0, 1)
        assert stats.commits >= 1
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.hold, 5)
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                nursery.start_soon(stub.bump)
            await trio.testing.wait_all_tasks_blocked()
            (busy,) = rt.statistics()
            assert (busy.state, busy.queue_depth) == ("active", 3)
        (after,) = rt.statistics()
        assert (after.state, after.queue_depth, after.events) == ("idle", 0, 5)
        assert after.commits == stats.commits + 1  # three queued bumps, one commit


async def test_an_object_idle_for_a_moment_gives_back_sqlite_page_cache(autojump_clock) -> None:
    import apsw

    from objects import DurableObject
    from runtime import open_runtime

    class Reader(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v TEXT)")

        def fill_and_read(self) -> int:
            sql = self.ctx.storage.sql
            for i in range(200):
                sql.exec("INSERT OR REPLACE INTO t VALUES (?, ?)", i, "x" * 500)
            return len(sql.exec("SELECT v FROM t").toArray())

    async with open_runtime(bindings={"R": Reader}, idle_timeout=60) as rt:
        rt.park_after_idle = 1.0  # park after a second idle (the budget's room would allow 30 s)
        for i in range(10):
            assert await rt.env.R.getByName(f"r{i}").fill_and_read() == 200
        busy = apsw.memory_used()
        await trio.sleep(2)  # idle past the trim point, well before eviction
        assert {s.state for s in rt.statistics()} == {"idle"}
        assert apsw.memory_used() < busy - 10 * 64 * 1024
