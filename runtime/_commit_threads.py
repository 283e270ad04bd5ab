"""The worker threads fsync'd commits run in: long-lived, owned by the runtime.

Under durability ``"full"`` every commit that wrote runs in a worker thread
(``CommitsMixin._in_thread_owning_file``), so the event loop never waits for
an ``fdatasync``. ``trio.to_thread.run_sync`` cost ~55–60 µs of CPU per call
on this path, ~40 µs of it on the event loop: two extra trips through trio's
scheduler (the capacity limiter's checkpoint, and the result coming back
through ``run_sync_soon``'s entry-queue task before the caller's), the OS
thread named and renamed per call (two ctypes calls, each giving up and
retaking the GIL), a placeholder, a context copy and four thread-locals set
and deleted. A commit here costs a queue put, the job in the thread, and one
``eventfd`` write that trio's epoll turns directly into the waiting task's
wake-up: ~28 µs per hop in all, ~18 µs of it on the loop
(``bench/bench_commit.py``; README "Round 9: the commit path").

Guarantees:

* **Structured.** :func:`open_commit_threads` opens the pool with its own
  nursery; each thread runs inside a task of it, started lazily on demand
  and kept for the runtime's life (at most :data:`MAX_COMMIT_THREADS`; more
  callers wait their turn, first come first served). Leaving the ``async
  with`` tells every thread to stop once its job is done and waits for them.
  ``open_runtime`` opens it around the runtime's own nursery, so every
  activation — and its final commit — has finished before the pool closes.
* :meth:`CommitThreads.run` behaves as ``trio.to_thread.run_sync(fn, *args,
  abandon_on_cancel=False)``: it returns ``fn``'s result or raises its
  exception; ``fn`` runs in a copy of the caller's context; a cancellation
  that arrives while ``fn`` runs does not abandon it — ``run`` returns when
  it is done and the cancellation is delivered at the caller's next
  checkpoint. Only a wait for a free thread (the pool at its limit) is
  cancelled like any checkpoint, before anything ran.
* Each thread is started by ``trio.to_thread.run_sync``, so ``trio.from_thread``
  works inside a job as before (a runtime observer's commit hook may use it;
  its call runs in the thread's task in the pool's nursery).
* After the pool has closed, ``run`` falls back to ``trio.to_thread.run_sync``.

Each thread holds one ``eventfd``: at most :data:`MAX_COMMIT_THREADS`
descriptors, inside the runtime's reserved ones (``_open._RESERVED_FDS``).
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import outcome
import trio

__all__ = ["CommitThreads", "open_commit_threads", "MAX_COMMIT_THREADS"]

log = logging.getLogger("dohost.commits")

#: Threads the pool keeps at most: commits of this many objects wait for their
#: fsyncs at once (trio's default limit for ``to_thread`` is 40, shared).
MAX_COMMIT_THREADS = 32

_HAS_EVENTFD = hasattr(os, "eventfd")
#: What starts each long-lived thread, bound once: a test clock that treats a thread
#: out as "not idle" wraps ``trio.to_thread.run_sync`` and the jobs (``CommitThreads.run``),
#: and a thread merely alive must not count.
_start_thread = trio.to_thread.run_sync


class _Worker:
    """One thread: takes jobs from its queue, signals each result on its eventfd."""

    __slots__ = ("jobs", "fd", "result")

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...]] | None]
        self.jobs = queue.SimpleQueue()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.result: outcome.Outcome[Any] | None = None

    def serve(self) -> None:
        """The thread's whole life: run jobs until told to stop (``None``)."""
        jobs, fd = self.jobs, self.fd
        while True:
            job = jobs.get()
            if job is None:
                return
            context, fn, args = job
            self.result = outcome.capture(context.run, fn, *args)
            del job, context, fn, args  # nothing of the job outlives it in this frame
            os.eventfd_write(fd, 1)

    # KI-protected (here and in CommitThreads.run): a KeyboardInterrupt raised between
    # taking a worker and giving it back would leak it (the pool's exit would wait for
    # its thread for ever) or leave its job unwaited for; trio then delivers it at the
    # wait below, which handles it.
    @trio.lowlevel.enable_ki_protection
    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        self.jobs.put((contextvars.copy_context(), fn, args))
        try:
            await trio.lowlevel.wait_readable(self.fd)
        except (trio.Cancelled, KeyboardInterrupt) as exc:
            # The job runs on (abandon_on_cancel=False): wait for it, shielded, and
            # return its result; the cancel scope stays cancelled, so the caller
            # meets the cancellation at its next checkpoint. trio delivers a
            # KeyboardInterrupt to the main task by aborting this wait too: it is
            # raised once the job is done and its result taken, so the worker is
            # never handed out again with a job (and its wake-up) still pending.
            interrupt = await self._wait_shielded()
            if interrupt is None and isinstance(exc, KeyboardInterrupt):
                interrupt = exc
            if interrupt is not None:
                os.eventfd_read(self.fd)
                self.result = None
                raise interrupt
        os.eventfd_read(self.fd)  # (a closed fd after notify_closing would have raised above)
        result, self.result = self.result, None
        assert result is not None
        return result.unwrap()

    async def _wait_shielded(self) -> KeyboardInterrupt | None:
        interrupt = None
        with trio.CancelScope(shield=True):
            while True:
                try:
                    await trio.lowlevel.wait_readable(self.fd)
                    return interrupt
                except KeyboardInterrupt as exc:  # a shield does not hold off trio's KI delivery
                    interrupt = exc
        return interrupt  # (not reached: the scope is shielded)


class CommitThreads:
    """A pool of long-lived worker threads; see the module docstring."""

    __slots__ = ("_nursery", "_idle", "_workers", "_limit", "_closed", "_free", "_handed", "_limiter")

    def __init__(self, nursery: trio.Nursery, limit: int = MAX_COMMIT_THREADS) -> None:
        self._nursery = nursery
        self._idle: list[_Worker] = []
        #: Every worker whose thread is started and not stopped.
        self._workers: set[_Worker] = set()
        self._limit = limit
        self._closed = False
        self._free = trio.lowlevel.ParkingLot()
        #: A released worker handed straight to the caller it woke: a caller arriving
        #: before that one runs finds no idle worker to take ahead of it.
        self._handed: dict[trio.lowlevel.Task, _Worker] = {}
        # The threads' own tokens: they never take the default limiter's (to_thread's) for good.
        self._limiter = trio.CapacityLimiter(limit)

    @property
    def threads(self) -> int:
        """Threads started and not stopped."""
        return len(self._workers)

    @trio.lowlevel.enable_ki_protection
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in one of the pool's threads (``to_thread.run_sync``'s contract)."""
        idle = self._idle
        worker = idle.pop() if idle else await self._another()
        if worker is None:  # closed
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=False)
        try:
            return await worker.run(fn, args)
        finally:
            self._release(worker)

    async def _another(self) -> _Worker | None:
        while not self._closed:
            if self._idle:
                return self._idle.pop()
            if len(self._workers) < self._limit:
                worker = _Worker()
                self._workers.add(worker)
                # The job queued before the thread exists waits in its queue.
                self._nursery.start_soon(self._serve, worker, name="dohost commit thread")
                return worker
            await self._free.park()
            handed = self._handed.pop(trio.lowlevel.current_task(), None)
            if handed is not None:
                return handed
        return None

    def _release(self, worker: _Worker) -> None:
        if worker.fd < 0:  # its thread ended abnormally (see _serve): never handed out again
            self._free.unpark()
        elif self._closed:
            worker.jobs.put(None)
        else:
            woken = self._free.unpark()
            if woken:
                self._handed[woken[0]] = worker
            else:
                self._idle.append(worker)

    async def _serve(self, worker: _Worker) -> None:
        try:
            # Shielded: to_thread's first checkpoint would otherwise refuse to start the
            # thread while the pool's scope is cancelled, failing a caller that waits on
            # it shielded (an activation's final commit as the runtime is cancelled).
            # Once started, the thread stops only when told to (close, _release).
            with trio.CancelScope(shield=True):
                await _start_thread(worker.serve, thread_name="dohost commit", limiter=self._limiter)
        except Exception:  # the thread could not start, or serve() broke: its caller errs, not the runtime
            log.exception("a commit thread ended abnormally")
        finally:
            self._workers.discard(worker)
            # Normally the thread is gone and no caller holds the worker (it is stopped
            # only while idle, or on its release): nobody waits on the descriptor. If
            # one does (the thread failed), notify_closing wakes it with an error;
            # fd = -1 keeps the worker from being reused with a number the OS may reuse.
            fd, worker.fd = worker.fd, -1
            trio.lowlevel.notify_closing(fd)
            os.close(fd)

    def close(self) -> None:
        """Stop every thread once its current job is done; new calls fall back to ``to_thread``."""
        self._closed = True
        for worker in self._idle:
            worker.jobs.put(None)
        self._idle.clear()
        self._free.unpark_all()


@asynccontextmanager
async def open_commit_threads(limit: int = MAX_COMMIT_THREADS) -> AsyncIterator[CommitThreads | None]:
    """A :class:`CommitThreads` for the body of the ``async with``; ``None`` without ``os.eventfd``."""
    if not _HAS_EVENTFD:  # not Linux: trio.to_thread as before
        yield None
        return
    async with trio.open_nursery() as nursery:
        pool = CommitThreads(nursery, limit)
        try:
            yield pool
        finally:
            pool.close()
