"""The runtime's commit threads (``runtime._commit_threads``): ``to_thread.run_sync``'s contract, structured."""

from __future__ import annotations

import contextvars
import os
import threading
from typing import Any

import pytest
import trio
import trio.testing

from objects import DurableObject
from runtime import open_runtime
from runtime._commit_threads import open_commit_threads

probe: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="unset")


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_a_job_returns_its_result_from_another_thread_in_the_callers_context() -> None:
    probe.set("caller's")
    async with open_commit_threads() as pool:
        assert pool is not None
        seen = await pool.run(lambda a, b: (threading.current_thread() is threading.main_thread(), probe.get(), a + b), 2, 3)
    assert seen == (False, "caller's", 5)


async def test_a_job_that_raises_raises_in_the_caller_and_the_thread_serves_on() -> None:
    def fail() -> None:
        raise ValueError("job failed")

    async with open_commit_threads() as pool:
        assert pool is not None
        with pytest.raises(ValueError, match="^job failed$"):
            await pool.run(fail)
        assert await pool.run(lambda: "next") == "next"
        assert pool.threads == 1


async def test_a_cancelled_caller_waits_for_its_job_and_meets_the_cancellation_at_its_next_checkpoint() -> None:
    release = threading.Event()
    done: list[str] = []

    def job() -> str:
        release.wait()
        done.append("job")
        return "result"

    async with open_commit_threads() as pool:
        assert pool is not None
        got: list[str] = []
        scope = trio.CancelScope()

        async def call() -> None:
            with scope:
                got.append(await pool.run(job))  # returns even though cancelled meanwhile
                got.append("returned")
                await trio.lowlevel.checkpoint()
                got.append("not reached")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            try:
                assert done == [] and got == []  # still waiting on its job: not abandoned
            finally:
                release.set()
        assert scope.cancelled_caught
        assert done == ["job"] and got == ["result", "returned"]


async def test_leaving_the_pool_stops_every_thread_and_closes_its_descriptor() -> None:
    names: list[str] = []
    fds: list[int] = []
    async with open_commit_threads() as pool:
        assert pool is not None
        release = threading.Event()

        def job() -> None:
            names.append(threading.current_thread().name)
            release.wait()

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(pool.run, job)
            await trio.testing.wait_all_tasks_blocked()
            fds = [w.fd for w in pool._workers]
            release.set()
        assert pool.threads == 3
    assert pool.threads == 0
    assert not any(t.name == "dohost commit" for t in threading.enumerate())
    assert names == ["dohost commit"] * 3
    assert len(fds) == 3 and not any(_fd_open(fd) for fd in fds)


async def test_callers_past_the_limit_wait_for_a_free_thread() -> None:
    started: list[int] = []
    took = [trio.Event() for _ in range(3)]
    gates = [threading.Event() for _ in range(3)]

    def job(i: int) -> int:
        started.append(i)
        trio.from_thread.run_sync(took[i].set)  # the pool's threads are trio's: from_thread works
        gates[i].wait()
        return i

    async with open_commit_threads(limit=2) as pool:
        assert pool is not None
        async with trio.open_nursery() as nursery:
            try:
                for i in range(3):
                    nursery.start_soon(pool.run, job, i)
                    await trio.testing.wait_all_tasks_blocked()
                # A task waiting on its thread is "blocked" before the thread has taken the job.
                with trio.fail_after(30):
                    await took[0].wait()
                    await took[1].wait()
                await trio.testing.wait_all_tasks_blocked()
                assert sorted(started) == [0, 1] and pool.threads == 2  # the third waits for a thread
                gates[0].set()
                gates[2].set()
                with trio.fail_after(30):
                    await took[2].wait()
            finally:
                for gate in gates:  # a failed check must not leave the jobs (and the test) hanging
                    gate.set()
        assert pool.threads == 2


async def test_a_call_after_the_pool_closed_still_runs_in_a_thread() -> None:
    async with open_commit_threads() as pool:
        assert pool is not None
    assert await pool.run(lambda: threading.current_thread() is threading.main_thread()) is False


async def test_trio_from_thread_works_inside_a_job() -> None:
    async with open_commit_threads() as pool:
        assert pool is not None
        on_loop = await pool.run(
            lambda: trio.from_thread.run_sync(lambda: threading.current_thread() is threading.main_thread())
        )
    assert on_loop is True


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.constructed = True

    def increment(self) -> int:
        kv = self.ctx.storage.kv
        n = (kv.get("n") or 0) + 1
        kv.put("n", n)
        return n  # type: ignore[no-any-return]

    def thread_count(self) -> int:
        return len([t for t in threading.enumerate() if t.name == "dohost commit"])


async def test_a_full_commit_runs_in_the_runtimes_commit_thread_and_the_threads_end_with_the_runtime(call_log, tmp_path) -> None:
    threads: list[str] = []

    class ThreadNames(type(call_log)):  # type: ignore[misc]
        def before_commit(self, key: tuple[str, str]) -> None:
            threads.append(threading.current_thread().name)
            super().before_commit(key)

    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full", observer=ThreadNames()) as rt:
        stub = rt.env.C.getByName("a")
        assert [await stub.increment() for _ in range(3)] == [1, 2, 3]
        assert rt.commit_threads is not None and rt.commit_threads.threads == 1
    assert threads and set(threads) == {"dohost commit"}
    assert not any(t.name == "dohost commit" for t in threading.enumerate())


async def test_a_full_commit_that_fails_in_the_commit_thread_errors_the_reply_resets_the_object_and_the_next_commit_works(call_log, tmp_path) -> None:
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full", observer=call_log) as rt:
        stub = rt.env.C.getByName("a")
        assert await stub.increment() == 1
        call_log.fail_next_commits = 1
        with pytest.raises(Exception, match="injected commit failure") as info:
            await stub.increment()
        assert info.value.durableObjectReset is True
        assert any(c[0] == "reset" for c in call_log.calls)
        assert await stub.increment() == 2  # the failed write is gone; the pool serves on
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full") as rt:
        assert await rt.env.C.getByName("a").increment() == 3


async def test_a_thread_that_cannot_start_fails_its_callers_job_and_the_next_call_gets_a_new_thread(monkeypatch) -> None:
    import runtime._commit_threads as pool_module

    original = pool_module._start_thread
    calls: list[int] = []

    async def start(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("can't start new thread")
        return await original(*args, **kwargs)

    monkeypatch.setattr(pool_module, "_start_thread", start)
    async with open_commit_threads() as pool:
        assert pool is not None
        with pytest.raises(trio.ClosedResourceError):
            await pool.run(lambda: "never run")
        assert pool.threads == 0
        assert await pool.run(lambda: "ran") == "ran"
        assert pool.threads == 1
