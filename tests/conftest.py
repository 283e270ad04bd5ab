"""Fixtures shared by every suite: keep this file small.

``call_log`` is a fake :class:`runtime.RuntimeObserver` that records what the
host did, in order, so a test can assert the sequence of external effects
(workerd's ``pollAndExpectCalls``): ``("commit", binding)``,
``("activate", binding)``, ``("evict", binding)``, ``("reset", binding,
message)``. Tests append their own entries to ``call_log.calls`` to interleave
what the caller saw. ``fail_next_commits`` makes the next N commits fail.

``autojump_clock`` overrides pytest-trio's: fake time does not jump while a
worker thread (``trio.to_thread``, a runtime's commit threads) is out, so
thread work never counts as fake idle time (see :class:`_StillWhileThreadsRun`).

Hypothesis runs without its per-example deadline (200 ms) and its "too slow"
health check (1 s of input generation under that deadline): both judge real
time, and a starved 2-core machine fails correct tests with them ("Unreliable
test timings", DeadlineExceeded). Modules that set their own ``deadline=None``
already did this for themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, settings
from trio.testing import MockClock

settings.register_profile("dohost", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dohost")


class CallLog:
    """A RuntimeObserver that records calls; see the module docstring."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_next_commits = 0

    def before_commit(self, key: tuple[str, str]) -> None:
        if self.fail_next_commits:
            self.fail_next_commits -= 1
            self.calls.append(("commit-failed", key[0]))
            raise OSError("injected commit failure")
        self.calls.append(("commit", key[0]))

    def on_activate(self, key: tuple[str, str]) -> None:
        self.calls.append(("activate", key[0]))

    def on_evict(self, key: tuple[str, str]) -> None:
        self.calls.append(("evict", key[0]))

    def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
        self.calls.append(("reset", key[0], str(error)))

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


#: Real seconds the clock may stay idle with a worker thread out before it jumps
#: anyway: never reached by a commit or fsync, but a thread that (wrongly) waits
#: for fake time to pass ends a test in a minute instead of hanging it.
THREAD_HOP_PATIENCE_S = 60.0


class _StillWhileThreadsRun:
    """Wraps thread hops so ``clock`` does not autojump while a thread is out.

    trio's autojump jumps as soon as every task is blocked, and a task waiting on
    a worker thread (a "full" commit, its fsync, a checkpoint) counts as blocked:
    fake time would then pass by the length of the thread's work, which is real
    time on a slow machine, and fire idle timers (park, eviction, alarms) "early"
    between two calls. The threshold goes up when the first thread leaves and
    back to 0 when the last one reports back, both on the event loop, before the
    run loop next decides whether to jump, so the rule holds without races.
    Wraps ``trio.to_thread.run_sync`` and the runtime's commit threads' ``run``
    (their long-lived threads start with to_thread's original: they are not "out").
    """

    def __init__(self, clock: MockClock) -> None:
        self.clock = clock
        self.out = 0

    def wrap(self, run_sync: Any) -> Any:
        async def run(*args: Any, **kwargs: Any) -> Any:
            if trio.lowlevel.current_clock() is not self.clock:
                return await run_sync(*args, **kwargs)
            self.out += 1
            self.clock.autojump_threshold = THREAD_HOP_PATIENCE_S
            try:
                return await run_sync(*args, **kwargs)
            finally:
                self.out -= 1
                if not self.out:
                    self.clock.autojump_threshold = 0

        return run


@pytest.fixture
def autojump_clock(monkeypatch: pytest.MonkeyPatch) -> MockClock:
    """pytest-trio's ``autojump_clock``, except that fake time stands still while a worker thread runs.

    So a test sees the same fake instants on a slow machine as on a fast one:
    time passes only while every task waits on trio (a sleep, a timer, another
    task), never while one waits on a thread's real work.
    """
    from runtime._commit_threads import CommitThreads

    clock = MockClock(autojump_threshold=0)
    still = _StillWhileThreadsRun(clock)
    monkeypatch.setattr(trio.to_thread, "run_sync", still.wrap(trio.to_thread.run_sync))
    monkeypatch.setattr(CommitThreads, "run", still.wrap(CommitThreads.run))
    return clock
