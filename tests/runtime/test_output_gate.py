"""The output gate, implicit transactions and group commit, observed through a call log."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from objects import DurableObject
from runtime import CommitTicket, open_runtime
from runtime._events import EventKind, ObjectEvent


class Writer(DurableObject):
    constructed = 0

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.in_memory = 0

    def write_three(self):
        kv = self.ctx.storage.kv
        kv.put("a", 1)
        kv.put("b", 2)
        kv.put("c", 3)
        self.in_memory += 1
        return "written"

    def bump(self):
        self.in_memory += 1
        return self.in_memory

    def read(self, *keys):
        kv = self.ctx.storage.kv
        return [kv.get(k) for k in keys]

    async def write_then_yield(self):
        kv = self.ctx.storage.kv
        kv.put("x", 1)
        kv.put("y", 2)
        self.env.LOG.append("wrote")
        await trio.sleep(0)
        self.env.LOG.append("resumed")

    def write_then_raise(self):
        self.ctx.storage.kv.put("kept", "yes")
        raise ValueError("handler failed after writing")

    async def write_then_call(self, name):
        self.ctx.storage.kv.put("before call", True)
        await self.env.W.getByName(name).note("delivered")

    def note(self, what):
        self.env.LOG.append(what)

    def increment(self):
        kv = self.ctx.storage.kv
        n = (kv.get("n") or 0) + 1
        kv.put("n", n)
        return n


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Writer.constructed = 0


def _rt(call_log, **kw):
    log: list[str] = []
    return open_runtime(bindings={"W": Writer}, vars={"LOG": log}, observer=call_log, **kw), log


async def test_a_response_is_released_only_after_its_writes_commit(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("a")  # activate first, so the log holds only this call's effects
        call_log.calls.clear()
        assert await stub.write_three() == "written"
        call_log.calls.append(("caller received", "W"))
        assert call_log.calls == [("commit", "W"), ("caller received", "W")]


async def test_a_read_only_call_does_not_commit(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("a")
        call_log.calls.clear()
        assert await stub.read("a", "b") == [None, None]
        assert call_log.count("commit") == 0


async def test_writes_with_no_await_between_them_commit_together_at_the_next_yield(call_log) -> None:
    opener, log = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("x")
        call_log.calls.clear()
        await stub.write_then_yield()
        assert call_log.count("commit") == 1
        assert log == ["wrote", "resumed"]
        assert await stub.read("x", "y") == [1, 2]


async def test_an_outgoing_call_leaves_only_after_the_callers_writes_commit(call_log) -> None:
    opener, log = _rt(call_log)
    async with opener as rt:
        await rt.env.W.getByName("callee").read("warm")
        await rt.env.W.getByName("caller").read("warm")
        call_log.calls.clear()

        class Recording(list):
            def append(self, item):
                call_log.calls.append((item, "W"))

        rt.env.LOG = Recording()
        await rt.env.W.getByName("caller").write_then_call("callee")
        assert call_log.calls[:2] == [("commit", "W"), ("delivered", "W")]


async def test_writes_are_atomic_a_failed_commit_drops_all_of_them(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("warm")
        call_log.fail_next_commits = 1
        with pytest.raises(Exception, match="injected commit failure"):
            await stub.write_three()
        assert await stub.read("a", "b", "c") == [None, None, None]


async def test_failed_commit_errors_the_held_response_and_resets_the_object(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        assert await stub.bump() == 1
        assert await stub.bump() == 2
        call_log.fail_next_commits = 1
        with pytest.raises(Exception, match="injected commit failure") as info:
            await stub.write_three()
        assert info.value.durableObjectReset is True
        assert ("commit-failed", "W") in call_log.calls
        assert any(c[0] == "reset" for c in call_log.calls)
        assert Writer.constructed == 1
        assert rt.live_activation("W", stub.id) is None  # dropped from the directory
        assert await stub.bump() == 1  # constructor ran again: in-memory state was dropped
        assert Writer.constructed == 2
        assert await stub.read("a") == [None]


async def test_events_queued_behind_a_failed_commit_fail_too(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("warm")
        call_log.fail_next_commits = 1
        outcomes: list[str] = []

        async def call() -> None:
            try:
                await stub.increment()
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(type(exc).__name__)

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(call)
        assert len(outcomes) == 8 and outcomes.count("ok") < 8
        # Nothing acknowledged is ever lost: the stored count equals the successes.
        assert await stub.read("n") == [outcomes.count("ok") or None]


async def test_a_handler_that_raises_keeps_its_implicit_writes(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("warm")
        call_log.calls.clear()
        with pytest.raises(ValueError, match=r"^handler failed after writing$"):
            await stub.write_then_raise()
        assert await stub.read("kept") == ["yes"]
        assert call_log.count("commit") == 1


async def test_events_queued_for_one_object_share_one_commit(call_log) -> None:
    opener, _ = _rt(call_log)
    async with opener as rt:
        stub = rt.env.W.getByName("hot")
        await stub.read("warm")
        call_log.calls.clear()
        results: list[int] = []

        async def call() -> None:
            results.append(await stub.increment())

        async with trio.open_nursery() as nursery:
            for _ in range(64):
                nursery.start_soon(call)
        assert sorted(results) == list(range(1, 65))
        assert call_log.count("commit") <= 4  # 64 events, a handful of commits
        (stats,) = rt.statistics()
        assert stats.events == 65
        assert stats.commits == call_log.count("commit")  # the name rides with the first commit


async def test_one_commit_per_event_when_group_commit_is_off(call_log) -> None:
    opener, _ = _rt(call_log, group_commit=False)
    async with opener as rt:
        stub = rt.env.W.getByName("hot")
        await stub.read("warm")
        call_log.calls.clear()
        async with trio.open_nursery() as nursery:
            for _ in range(16):
                nursery.start_soon(stub.increment)
        assert call_log.count("commit") == 16


async def test_full_durability_commits_off_the_event_loop(call_log) -> None:
    threads: list[bool] = []

    class ThreadLog(type(call_log)):
        def before_commit(self, key):
            threads.append(threading.current_thread() is threading.main_thread())
            super().before_commit(key)

    observer = ThreadLog()
    async with open_runtime(bindings={"W": Writer}, vars={"LOG": []}, observer=observer, durability="full") as rt:
        stub = rt.env.W.getByName("a")
        await stub.read("warm")
        threads.clear()
        observer.calls.clear()
        async with trio.open_nursery() as nursery:
            for _ in range(16):
                nursery.start_soon(stub.increment)
        assert await stub.read("n") == [16]
        assert threads and not any(threads)
        assert observer.count("commit") < 16


async def test_normal_durability_commits_on_the_event_loop(call_log) -> None:
    threads: list[bool] = []

    class ThreadLog(type(call_log)):
        def before_commit(self, key):
            threads.append(threading.current_thread() is threading.main_thread())

    async with open_runtime(bindings={"W": Writer}, vars={"LOG": []}, observer=ThreadLog()) as rt:
        await rt.env.W.getByName("a").increment()
    assert threads and all(threads)


async def test_no_object_code_runs_while_a_full_commit_is_in_its_thread(call_log) -> None:
    seen: list[str] = []

    class Blocking(type(call_log)):
        def before_commit(self, key):
            if threading.current_thread() is threading.main_thread():
                return  # the activation's own synchronous commits
            seen.append("commit start")
            trio.from_thread.run_sync(lambda: None)  # give the event loop a turn mid-commit
            seen.append("commit end")

    class Probe(Writer):
        def increment(self):
            seen.append("handler")
            return super().increment()

    async with open_runtime(bindings={"W": Probe}, vars={"LOG": []}, observer=Blocking(), durability="full") as rt:
        stub = rt.env.W.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.increment)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(stub.increment)
    assert "commit start" in seen
    for i, entry in enumerate(seen):
        if entry == "commit start":
            assert seen[i + 1] == "commit end"


async def test_a_held_event_keeps_its_place_in_the_queue_until_the_senders_commit() -> None:
    async with open_runtime(bindings={"W": Writer}, vars={"LOG": []}) as rt:
        oid = rt.env.W.idFromName("a")
        await rt.env.W.get(oid).read("warm")
        seen: list[str] = []
        hold = CommitTicket()
        held = ObjectEvent(EventKind.RUN, lambda inst: seen.append("held"), convert=False, hold=hold)
        after = ObjectEvent(EventKind.RUN, lambda inst: seen.append("after"), convert=False)
        rt._deliver("W", oid, held)
        rt._deliver("W", oid, after)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == []  # "after" waits behind the held event: arrival order is kept
        hold.succeed()
        await held.result()
        await after.result()
        assert seen == ["held", "after"]


async def test_a_held_event_fails_with_the_senders_commit_error() -> None:
    async with open_runtime(bindings={"W": Writer}, vars={"LOG": []}) as rt:
        oid = rt.env.W.idFromName("a")
        hold = CommitTicket()
        event = ObjectEvent(EventKind.RUN, lambda inst: "delivered", convert=False, hold=hold)
        rt._deliver("W", oid, event)
        hold.fail(OSError("sender's commit failed"))
        with pytest.raises(OSError, match=r"^sender's commit failed$"):
            await event.result()
        assert await rt.env.W.get(oid).read("x") == [None]  # the receiver is unharmed


class SelfRollback(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY)")

    def write_then_conflict(self):
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO t VALUES ('kept-only-if-committed')")
        try:
            sql.exec("INSERT OR ROLLBACK INTO t VALUES ('kept-only-if-committed')")
        except Exception:
            pass
        return "reply held for a write SQLite already dropped"

    def rows(self):
        return [r["k"] for r in self.ctx.storage.sql.exec("SELECT k FROM t")]


async def test_a_rollback_sqlite_makes_by_itself_breaks_the_output_gate() -> None:
    async with open_runtime(bindings={"S": SelfRollback}) as rt:
        stub = rt.env.S.getByName("a")
        assert await stub.rows() == []  # the table is committed
        with pytest.raises(Exception, match="SQLite rolled back its uncommitted writes"):
            await stub.write_then_conflict()
        assert await stub.rows() == []
