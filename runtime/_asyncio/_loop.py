"""An asyncio event loop whose clock and scheduler are trio's.

One :class:`TrioEventLoop` exists per trio run (a ``RunVar``), because
asyncio's "running loop" is per thread and a trio run owns its thread: code
of every runtime in the run sees the same loop, as every request of an
isolate sees Pyodide's one loop on Cloudflare. It is set as the thread's
running loop when made, so ``asyncio.get_running_loop()`` and
``get_event_loop()`` work in synchronous object code too (constructors,
sync RPC methods), as they do under Pyodide, where the loop always runs.

* ``time()`` is ``trio.current_time()``: under ``autojump_clock`` a timer
  of an hour fires at once, like ``trio.sleep``.
* ``call_soon``/``call_later``/``call_at`` queue :class:`asyncio.Handle` s
  that one small trio *system* task (the loop's only task; it lives and dies
  with the trio run and never runs user coroutines) runs in order, each in
  its own context; an exception is reported through
  :meth:`call_exception_handler` (logged), never into trio.
* A timer registered from object or Worker code belongs to the current
  :class:`~runtime._asyncio._owner.TaskOwner`: it keeps an object from being
  idle, and is cancelled when the owner closes (reset, eviction, shutdown).
* ``run_forever``/``stop``/``close`` do nothing and ``run_until_complete``
  schedules its argument and returns a future, as in Pyodide's WebLoop.
* ``create_task`` makes a :class:`~runtime._asyncio._task.Task`, run by the
  owner's nursery (see that module).
* There are no sockets, subprocesses, signals or threads, as in Pyodide on
  Cloudflare: those methods raise ``NotImplementedError`` naming the
  alternative. ``run_in_executor`` (so ``asyncio.to_thread``) calls the
  function at once and returns a settled future, as Pyodide's loop does —
  object code never runs in another thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import logging
import math
from typing import Any, Callable

import trio

from ._owner import TaskOwner, current_owner

__all__ = ["TrioEventLoop", "get_loop", "loop_if_any"]

log = logging.getLogger("dohost.asyncio")

_current_task: Any = asyncio.current_task

_LOOP: trio.lowlevel.RunVar[TrioEventLoop | None] = trio.lowlevel.RunVar("dohost_asyncio_loop", default=None)

#: Ready callbacks run per round before the runner yields to trio.
_ROUND = 1000
#: Cancelled timers tolerated in the heap before it is rebuilt.
_COMPACT_AT = 100


def get_loop() -> TrioEventLoop:
    """The asyncio loop of the current trio run, made (and its runner started) on first use."""
    loop = _LOOP.get()
    if loop is None:
        loop = TrioEventLoop()  # type: ignore[abstract]  # the I/O methods are installed from a table below
        _LOOP.set(loop)
        trio.lowlevel.spawn_system_task(loop._serve, name="dohost asyncio loop")
    return loop


def loop_if_any() -> TrioEventLoop | None:
    try:
        return _LOOP.get()
    except RuntimeError:  # not inside trio.run
        return None


def _no_io(name: str) -> Callable[..., Any]:
    def refuse(self: TrioEventLoop, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"asyncio loop.{name}() is not provided by dohost (nor by Python Workers on Cloudflare): "
            "there are no raw sockets, subprocesses, signals or threads; use fetch() and bindings"
        )

    refuse.__name__ = name
    return refuse


class _OwnedTimer(asyncio.TimerHandle):
    """A timer that its owner counts as pending work until it runs or is cancelled."""

    __slots__ = ("_owner",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._owner: TaskOwner | None = None

    def _disown(self) -> None:
        owner = self._owner
        if owner is not None:
            self._owner = None
            owner.untrack(self)

    def _run(self) -> None:
        self._disown()
        super()._run()


class TrioEventLoop(asyncio.AbstractEventLoop):
    """See the module docstring."""

    def __init__(self) -> None:
        self._ready: collections.deque[Any] = collections.deque()
        #: A heap of _OwnedTimer (typeshed does not know TimerHandle's ``_when``).
        self._timers: list[Any] = []
        #: Cancelled timers still in the heap (``wait_for`` cancels its timer on success).
        self._cancelled_timers = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self._debug = False
        self._exception_handler: Callable[[Any, dict[str, Any]], Any] | None = None
        self._task_factory: Any = None
        self._previous_loop: Any = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)

    # ------------------------------------------------------------ the runner
    async def _serve(self) -> None:
        ready, timers = self._ready, self._timers
        try:
            while True:
                now = trio.current_time()
                while timers and timers[0]._when <= now:
                    handle = heapq.heappop(timers)
                    handle._scheduled = False
                    if handle._cancelled:
                        self._cancelled_timers -= 1
                    else:
                        ready.append(handle)
                for _ in range(min(len(ready), _ROUND)):
                    handle = ready.popleft()
                    if not handle._cancelled:
                        handle._run()
                if ready:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    continue
                if self._heap_mostly_dead():
                    # As asyncio's own loop does: most of the heap is dead, rebuild it.
                    for handle in timers:
                        if handle._cancelled:
                            handle._scheduled = False
                    timers[:] = [h for h in timers if not h._cancelled]
                    heapq.heapify(timers)
                    self._cancelled_timers = 0
                while timers and timers[0]._cancelled:
                    heapq.heappop(timers)._scheduled = False
                    self._cancelled_timers -= 1
                deadline = timers[0]._when if timers else math.inf
                with trio.move_on_at(deadline):
                    await self._lot.park()
        finally:
            self._closed = True
            for handle in ready:
                handle.cancel()
            for handle in timers:
                handle.cancel()
            ready.clear()
            timers.clear()
            if asyncio.events._get_running_loop() is self:
                asyncio.events._set_running_loop(self._previous_loop)

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark_all()

    # ------------------------------------------------------------ scheduling
    def time(self) -> float:
        return trio.current_time()

    def call_soon(  # type: ignore[override]  # typeshed spells the callback with a TypeVarTuple
        self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        self._wake()
        return handle

    call_soon_threadsafe = call_soon  # type: ignore[assignment]  # one thread: there is no other thread to be safe from

    def call_later(  # type: ignore[override]
        self, delay: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(trio.current_time() + delay, callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self, when: float, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        self._check_closed()
        # The running task uses asyncio timers (sleep, wait_for, timeout): from
        # now on cancel() must be able to interrupt its trio waits (Task._cancellable).
        task = _current_task(self)
        if task is not None and hasattr(task, "_cancellable"):
            task._cancellable = True
        handle = _OwnedTimer(when, callback, args, self, context)
        owner = current_owner()
        if owner is not None:
            handle._owner = owner
            owner.track(handle)
        first = not self._timers or when < self._timers[0]._when
        handle._scheduled = True  # type: ignore[attr-defined]
        heapq.heappush(self._timers, handle)
        if first:
            self._wake()
        return handle

    def _heap_mostly_dead(self) -> bool:
        """More than half of the timer heap (and over ``_COMPACT_AT`` timers) is cancelled: time to rebuild it."""
        return self._cancelled_timers > _COMPACT_AT and self._cancelled_timers * 2 > len(self._timers)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Left in the heap (popped when due or when it reaches the top): what
        # matters is that its owner stops counting it as pending work.
        if handle._scheduled:  # type: ignore[attr-defined]
            self._cancelled_timers += 1
            if self._heap_mostly_dead():
                # _serve rebuilds the heap when it next runs; wake it for that. Nothing
                # else may: from 3.12 ``wait_for`` (asyncio.timeout) schedules only its
                # timer, so a loop of quick waits left every cancelled timer in the heap
                # until its deadline (an hour for timeout=3600).
                self._wake()
        if isinstance(handle, _OwnedTimer):
            handle._disown()

    # ---------------------------------------------------------- futures/tasks
    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None,
        eager_start: bool | None = None,
    ) -> Any:
        # eager_start (typeshed's signature from 3.13; asyncio's own loop takes it from 3.14)
        # is accepted, and the task starts at the loop's next turn either way, as with False.
        self._check_closed()
        if self._task_factory is not None:
            return self._task_factory(self, coro)
        from ._task import start_task

        return start_task(self, coro, name=name, context=context)

    def set_task_factory(self, factory: Any) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        # As Pyodide's loop does: no threads, so the function runs now.
        fut = self.create_future()
        try:
            fut.set_result(func(*args))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        return fut

    def set_default_executor(self, executor: Any) -> None:
        pass

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        pass

    async def shutdown_asyncgens(self) -> None:
        pass

    # ------------------------------------------------------------- lifecycle
    def is_running(self) -> bool:
        return not self._closed

    def is_closed(self) -> bool:
        return self._closed

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    # As Pyodide's WebLoop: the loop lives as long as the host, so these change
    # nothing, and run_until_complete cannot block: it schedules and returns a future.
    def run_forever(self) -> None:
        pass

    def run_until_complete(self, future: Any) -> Any:
        return asyncio.ensure_future(future, loop=self)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    # ------------------------------------------------------------ exceptions
    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled

    def set_exception_handler(self, handler: Callable[[Any, dict[str, Any]], Any] | None) -> None:
        self._exception_handler = handler

    def get_exception_handler(self) -> Callable[[Any, dict[str, Any]], Any] | None:
        return self._exception_handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        message = context.get("message") or "Unhandled exception in the asyncio loop"
        exc = context.get("exception")
        details = {k: v for k, v in context.items() if k not in ("message", "exception")}
        log.error("%s %s", message, details or "", exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        handler = self._exception_handler
        if handler is None:
            self.default_exception_handler(context)
            return
        try:
            handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            log.exception("the asyncio exception handler failed")


for _name in (
    "add_reader", "remove_reader", "add_writer", "remove_writer", "add_signal_handler", "remove_signal_handler",
    "connect_accepted_socket", "connect_read_pipe", "connect_write_pipe", "create_connection",
    "create_datagram_endpoint", "create_server", "create_unix_connection", "create_unix_server", "sendfile",
    "getaddrinfo", "getnameinfo", "sock_accept", "sock_connect", "sock_recv", "sock_recv_into", "sock_recvfrom",
    "sock_recvfrom_into", "sock_sendall", "sock_sendfile", "sock_sendto", "start_tls", "subprocess_exec",
    "subprocess_shell",
):
    setattr(TrioEventLoop, _name, _no_io(_name))
