"""Review of the runtime's commit threads (``runtime._commit_threads``): edge cases of its contract."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
import trio
import trio.testing

from objects import DurableObject
from runtime import open_runtime
from runtime._commit_threads import open_commit_threads


async def test_a_shielded_caller_gets_a_new_thread_while_the_pools_scope_is_cancelled() -> None:
    # An activation's final commit runs shielded so that it reaches the disk while the
    # runtime is cancelled; the thread it needs may not exist yet.
    with trio.CancelScope() as outer:
        async with open_commit_threads() as pool:
            assert pool is not None
            outer.cancel()
            with trio.CancelScope(shield=True):
                assert await pool.run(lambda: "stored") == "stored"


async def test_a_keyboard_interrupt_while_a_job_runs_waits_for_it_and_its_result_never_reaches_the_next_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # trio delivers a KeyboardInterrupt to the main task by aborting its wait, as a
    # cancellation would: here the first wait on the thread's eventfd is interrupted so.
    release = threading.Event()
    real_wait = trio.lowlevel.wait_readable
    waits = 0

    async def wait_readable(fd: Any) -> None:
        nonlocal waits
        waits += 1
        if waits == 1:
            await trio.lowlevel.checkpoint()
            raise KeyboardInterrupt
        release.set()  # the first job finishes only once somebody waits again
        await real_wait(fd)

    monkeypatch.setattr(trio.lowlevel, "wait_readable", wait_readable)

    def first() -> str:
        release.wait()
        return "first's"

    async with open_commit_threads(limit=1) as pool:
        assert pool is not None
        try:
            with pytest.raises(KeyboardInterrupt):
                await pool.run(first)
            assert release.is_set()  # the interrupted caller waited for its job to finish
            assert await pool.run(lambda: "second's") == "second's"
        finally:
            release.set()


async def test_callers_waiting_for_a_thread_are_served_first_come_first_served() -> None:
    release = threading.Event()
    order: list[str] = []

    async with open_commit_threads(limit=1) as pool:
        assert pool is not None

        async def busy() -> None:
            await pool.run(release.wait)  # holds the only thread
            for _ in range(3):  # then comes back at once, each time after the waiter
                await pool.run(lambda: None)
                order.append("busy")

        async def waiter() -> None:
            await pool.run(lambda: None)
            order.append("waiter")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert order == ["waiter", "busy", "busy", "busy"]


class Counter(DurableObject):
    def increment(self) -> int:
        kv = self.ctx.storage.kv
        n = (kv.get("n") or 0) + 1
        kv.put("n", n)
        return n  # type: ignore[no-any-return]


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


async def test_a_runtime_opened_and_closed_many_times_leaves_no_commit_thread_or_descriptor_behind(tmp_path: Any) -> None:
    async def use() -> None:
        async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full") as rt:
            stubs = [rt.env.C.getByName(str(i)) for i in range(3)]
            async with trio.open_nursery() as nursery:  # several commits at once: several threads
                for stub in stubs:
                    nursery.start_soon(stub.increment)
            assert rt.commit_threads is not None and rt.commit_threads.threads >= 1

    await use()  # first use: whatever the process keeps for good (modules, trio's thread cache)
    before = _open_fds()
    for _ in range(5):
        await use()
    assert _open_fds() <= before
    assert not any(t.name == "dohost commit" for t in threading.enumerate())


async def test_without_os_eventfd_full_commits_run_through_trio_to_thread_and_are_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import runtime._commit_threads as pool_module

    monkeypatch.setattr(pool_module, "_HAS_EVENTFD", False)
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full") as rt:
        assert rt.commit_threads is None
        assert [await rt.env.C.getByName("a").increment() for _ in range(2)] == [1, 2]
    monkeypatch.setattr(pool_module, "_HAS_EVENTFD", True)
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path, durability="full") as rt:
        assert await rt.env.C.getByName("a").increment() == 3


async def test_a_keyboard_interrupt_never_lands_between_taking_a_thread_queuing_its_job_and_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Raised there (Ctrl-C while that code runs), it would leak the thread (never
    # released: the pool's exit waits for it for ever) or leave its job unwaited for;
    # KI-protected, trio delivers it only at the wait, which handles it (see above).
    import runtime._commit_threads as pool_module

    seen: list[tuple[str, bool]] = []
    real_wait = trio.lowlevel.wait_readable

    async def wait_readable(fd: Any) -> None:
        seen.append(("wait", trio.lowlevel.currently_ki_protected()))
        await real_wait(fd)

    monkeypatch.setattr(trio.lowlevel, "wait_readable", wait_readable)
    real_run = pool_module._Worker.run

    async def worker_run(self: Any, fn: Any, args: Any) -> Any:
        seen.append(("taken", trio.lowlevel.currently_ki_protected()))
        return await real_run(self, fn, args)

    async with open_commit_threads() as pool:
        assert pool is not None
        assert await pool.run(lambda: 1) == 1
        monkeypatch.setattr(pool_module._Worker, "run", worker_run)
        assert await pool.run(lambda: 2) == 2
    assert seen == [("wait", True), ("taken", True), ("wait", True)]
