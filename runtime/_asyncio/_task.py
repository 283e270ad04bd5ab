"""asyncio tasks whose steps dohost runs in trio tasks, under the input gate.

A :class:`Task` is an :class:`asyncio.Future` (so ``gather``, ``wait``,
``wait_for``, ``shield``, ``TaskGroup`` and ``timeout`` treat it as a
task) whose coroutine is driven by :func:`drive`, inside one trio task:

* The coroutine may await **both** kinds of thing, as object code does:
  trio's traps (another object's call, ``fetch``, the host's own waits)
  are forwarded to trio unchanged; an asyncio future (``asyncio.sleep``,
  a lock, a queue, another task) is waited for in trio until it is done;
  a bare ``yield`` (``asyncio.sleep(0)``) is a trio checkpoint. A real
  ``asyncio.Task`` could not do this: its step refuses anything but futures.
* Every wait is a yield point: the driver reports it (``on_yield`` lets
  the next event in, as awaiting a timer or another object does on
  Cloudflare) and, before the coroutine resumes, waits until the object's
  input gate lets its ``token`` run. Storage calls return settled
  awaitables and never yield, so they never let an event in.
* ``asyncio.current_task()`` is the task while its step runs.
  ``Task.cancel()`` throws ``CancelledError`` into the coroutine at its
  current wait: an asyncio future is cancelled; a trio wait is interrupted
  through a cancel scope around that one trap (a public trio API, unlike
  reaching into the trap itself), so ``wait_for(stub.slow(), 1)`` works.
  A cancel scope costs microseconds, so a handler's own task takes one per
  trio wait only once its code has used asyncio timers or tasks (``sleep``,
  ``wait_for``, ``timeout``, ``create_task``, ``gather``); until then a
  ``cancel()`` of it lands at its next resume. Spawned tasks always have one.
* A task created inside another inherits its owner and gate token, so the
  tasks of a ``gather`` inside ``blockConcurrencyWhile()`` or
  ``transaction()`` run while that holder owns the gate, as continuations
  of a critical section do in workerd.
* When trio cancels the owner (reset, eviction, shutdown) the coroutine
  sees ``trio.Cancelled``; the task ends cancelled and the trio task unwinds.
"""

from __future__ import annotations

import asyncio
import itertools
import types
import weakref
from asyncio import futures as _futures
from typing import Any, Awaitable, Callable, Generator

import trio

from ._loop import TrioEventLoop
from ._owner import TaskOwner, current_owner

__all__ = ["Task", "start_task", "run_as_task"]

# asyncio's bookkeeping of the current and all tasks; typeshed types them for its own Task only.
_enter_task: Any = asyncio.tasks._enter_task
_leave_task: Any = asyncio.tasks._leave_task
_current_task: Any = asyncio.current_task
_register_task: Any = asyncio.tasks._register_task
_unregister_task: Any = asyncio.tasks._unregister_task
_get_loop: Any = getattr(_futures, "_get_loop")
_counter = itertools.count(1)
_checkpoint = trio.lowlevel.checkpoint
_Future = asyncio.Future
_future_init = _Future.__init__
_isfuture = _futures.isfuture



class _Probe:
    """A stand-in task for :func:`_find_task_refs` (a weakly referenceable object)."""


def _find_task_refs() -> set[Any] | None:
    """The set of weak references behind ``asyncio.all_tasks()``, if registering a task adds one there.

    asyncio keeps the tasks it does not create itself in a ``WeakSet``
    (``_all_tasks``; ``_scheduled_tasks`` from 3.12), and ``_register_task``
    adds to it with a callback that removes the entry when the task dies: two
    Python calls (``WeakSet.add``, then its ``_remove``). A handler's own task
    (:func:`run_as_task`) instead puts a plain weak reference into the set and
    takes it out when it ends: ``all_tasks()`` sees it exactly while it runs,
    for no Python call. Checked by doing it once; ``None`` (register as usual)
    where asyncio keeps its tasks otherwise.
    """
    registry = getattr(asyncio.tasks, "_all_tasks", None)
    if registry is None:
        registry = getattr(asyncio.tasks, "_scheduled_tasks", None)
    data = getattr(registry, "data", None)
    if not isinstance(registry, weakref.WeakSet) or not isinstance(data, set):
        return None
    probe = _Probe()
    _register_task(probe)
    try:
        found = probe in registry
    finally:
        _unregister_task(probe)
    return data if found else None


_TASK_REFS = _find_task_refs()
_ref = weakref.ref

try:  # the classes of trio's traps: the driver's fast path (fallback: anything not a future)
    from trio._core._traps import CancelShieldedCheckpoint, PermanentlyDetachCoroutineObject, WaitTaskRescheduled

    _TRAPS: frozenset[type] = frozenset({CancelShieldedCheckpoint, WaitTaskRescheduled, PermanentlyDetachCoroutineObject})
except ImportError:  # pragma: no cover - trio moved its internals
    _TRAPS = frozenset()


class Task(_Future):  # type: ignore[type-arg]
    """See the module docstring."""

    # Slots: a handler's task is made per event, so its construction is on the hot path.
    __slots__ = (
        "_coro", "_owner", "_gate", "_token", "_name", "_must_cancel", "_cancel_message",
        "_num_cancels_requested", "_fut_waiter", "_trio_scope", "_cancellable",
    )

    def __init__(
        self,
        coro: Any,
        loop: TrioEventLoop,
        owner: TaskOwner | None,
        gate: Any,
        token: object,
        name: str | None = None,
    ) -> None:
        _future_init(self, loop=loop)  # (no super() object per task)
        self._coro = coro
        self._owner = owner
        self._gate = gate
        self._token = token
        self._name = name  # numbered when first asked for, as that costs a little
        self._must_cancel = False
        self._cancel_message: Any = None
        self._num_cancels_requested = 0
        self._fut_waiter: Any = None
        self._trio_scope: trio.CancelScope | None = None
        #: Wrap each trio wait in a cancel scope, so cancel() can interrupt it.
        #: A cancel scope costs microseconds: a handler's own task only pays once
        #: its code uses asyncio timers or tasks (see mark_cancellable).
        self._cancellable = False
        # Registered for asyncio.all_tasks() by whoever runs it (start_task, run_as_task).

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled() else "finished" if self.done() else "pending"
        return f"<Task {state} name={self.get_name()!r} coro={self._coro!r}>"

    # The Task API beyond Future's.
    def get_coro(self) -> Any:
        return self._coro

    def get_name(self) -> str:
        if self._name is None:
            self._name = f"Task-{next(_counter)}"
        return self._name

    def set_name(self, value: object) -> None:
        self._name = str(value)

    def get_context(self) -> Any:
        return None

    def get_stack(self, *, limit: int | None = None) -> list[Any]:
        return asyncio.base_tasks._task_get_stack(self, limit)  # type: ignore[attr-defined,no-any-return]

    def print_stack(self, *, limit: int | None = None, file: Any = None) -> None:
        asyncio.base_tasks._task_print_stack(self, limit, file)  # type: ignore[attr-defined]

    def cancelling(self) -> int:
        return self._num_cancels_requested

    def uncancel(self) -> int:
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
        return self._num_cancels_requested

    def cancel(self, msg: Any = None) -> bool:
        # asyncio's rules (Task.cancel): a pending cancellation is thrown into
        # the coroutine at its next step; a future it waits on is cancelled now.
        self._log_traceback = False
        if self.done():
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        if waiter is not None and waiter.cancel(msg=msg):
            return True
        self._must_cancel = True
        self._cancel_message = msg
        scope = self._trio_scope
        if scope is not None:
            scope.cancel()  # interrupts the trio wait the coroutine is in
        return True

    def _settle_cancelled(self, msg: Any) -> None:
        _Future.cancel(self, msg=msg)


def _parent_of(loop: TrioEventLoop) -> Task | None:
    task = _current_task(loop)
    return task if isinstance(task, Task) else None


def start_task(loop: TrioEventLoop, coro: Any, *, name: str | None = None, context: Any = None) -> Task:
    """``loop.create_task``: a task run by the current owner's nursery."""
    if not asyncio.iscoroutine(coro):
        raise TypeError(f"a coroutine was expected, got {coro!r}")
    parent = _parent_of(loop)
    if parent is not None:
        parent._cancellable = True
        owner, gate, token = parent._owner, parent._gate, parent._token
    else:
        owner = current_owner()
        gate, token = (owner.gate if owner is not None else None), None
    if owner is None:
        coro.close()
        raise RuntimeError(
            "asyncio.create_task() outside Worker or Durable Object code: dohost runs asyncio "
            "tasks for the code it hosts (a handler, an RPC method, an alarm, waitUntil work)"
        )
    task = Task(coro, loop, owner, gate, token, name)
    _register_task(task)
    task._cancellable = True
    owner.spawn(_run_spawned, task)
    return task


async def _run_spawned(task: Task) -> None:
    try:
        await drive(task, None)
    except trio.Cancelled:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        pass  # recorded on the task, where whoever awaits it sees it


def run_as_task(
    coro: Any, loop: TrioEventLoop, owner: TaskOwner | None, gate: Any, token: object, on_yield: Callable[[], None] | None
) -> Awaitable[Any]:
    """Run ``coro`` as the asyncio task of the calling trio task (a handler, a holder, Worker code): await the result.

    ``on_yield`` (if not ``None``) is called each time the coroutine yields.
    The awaitable is :func:`drive`'s generator itself, not a coroutine around
    it: a request resumes one frame less at each trip through the scheduler.
    """
    return drive(Task(coro, loop, owner, gate, token), on_yield, True)


@types.coroutine
def _wait_future(fut: Any) -> Generator[Any, Any, None]:
    """Wait in trio until an asyncio future is done (its callbacks come through the loop)."""
    trio_task = trio.lowlevel.current_task()
    waiting = [True]

    def wake(_: Any) -> None:
        if waiting[0]:
            waiting[0] = False
            trio.lowlevel.reschedule(trio_task)

    def abort(_: Any) -> trio.lowlevel.Abort:
        waiting[0] = False
        fut.remove_done_callback(wake)
        return trio.lowlevel.Abort.SUCCEEDED

    fut.add_done_callback(wake)
    yield from trio.lowlevel.wait_task_rescheduled(abort).__await__()


@types.coroutine
def drive(task: Task, on_yield: Callable[[], None] | None, handler: bool = False) -> Generator[Any, Any, Any]:
    """Run ``task``'s coroutine in the current trio task; see the module docstring.

    ``handler``: the task is a handler's own (:func:`run_as_task`): it is in
    ``asyncio.all_tasks()`` while it runs, and the code cancelling its own
    task is an ordinary error for its caller (``RuntimeError``), not a dead
    object (the host's cancellation is ``trio.Cancelled``).
    """
    refs = _TASK_REFS if handler else None
    if handler:
        if refs is None:
            _register_task(task)
        else:
            entry = _ref(task)  # in asyncio.all_tasks() while it runs (see _find_task_refs)
            refs.add(entry)
    coro, loop, gate, token = task._coro, task._loop, task._gate, task._token
    send: Any = None
    exc: BaseException | None = None
    try:
        if gate is not None and not gate.may_run(token):
            try:
                yield from gate.wait_open(token).__await__()
            except BaseException as error:
                exc = error
        while True:
            if task._must_cancel and exc is None:
                task._must_cancel = False
                exc = asyncio.CancelledError(task._cancel_message) if task._cancel_message is not None else asyncio.CancelledError()
            outer = None
            try:
                _enter_task(loop, task)
            except RuntimeError:
                # A step that runs another task's step inline (Worker code calling
                # the Worker through a binding): swap, and swap back after.
                outer = _current_task(loop)
                _leave_task(loop, outer)
                _enter_task(loop, task)
            try:
                trap = coro.throw(exc) if exc is not None else coro.send(send)
            except StopIteration as stop:
                if task._must_cancel:
                    task._must_cancel = False
                    task._settle_cancelled(task._cancel_message)
                else:
                    task.set_result(stop.value)
                return stop.value
            except asyncio.CancelledError as error:
                task._settle_cancelled(error.args[0] if error.args else None)
                raise
            except trio.Cancelled:
                task._settle_cancelled(task._cancel_message)
                raise
            except BaseException as error:
                task.set_exception(error)
                raise
            finally:
                _leave_task(loop, task)
                if outer is not None:
                    _enter_task(loop, outer)
            if on_yield is not None:
                on_yield()
            send = exc = None
            if trap.__class__ in _TRAPS or (trap is not None and not _isfuture(trap)):
                if not task._cancellable:
                    try:
                        send = yield trap
                    except BaseException as error:
                        exc = error
                else:
                    scope = trio.CancelScope()
                    task._trio_scope = scope
                    try:
                        with scope:
                            send = yield trap
                    except BaseException as error:
                        exc = error
                    task._trio_scope = None
            elif trap is None:  # a bare yield: asyncio.sleep(0)
                try:
                    yield from _checkpoint().__await__()
                except BaseException as error:
                    exc = error
            elif trap is task:
                exc = RuntimeError(f"Task cannot await on itself: {task!r}")
            elif _get_loop(trap) is not loop:
                exc = RuntimeError(f"Task {task!r} got Future {trap!r} attached to a different loop")
            else:
                trap._asyncio_future_blocking = False
                task._fut_waiter = trap
                try:
                    yield from _wait_future(trap)
                except BaseException as error:
                    exc = error
                task._fut_waiter = None
            if exc is None and gate is not None and not gate.may_run(token):
                try:
                    yield from gate.wait_open(token).__await__()
                except BaseException as error:
                    exc = error
    except asyncio.CancelledError as cancelled:
        if not handler:
            raise
        raise RuntimeError(
            f"the asyncio task running this handler was cancelled{': ' + str(cancelled) if str(cancelled) else ''}"
        ) from cancelled
    finally:
        if handler:
            task._log_traceback = False  # its caller got the error; nobody else awaits it
            if refs is not None:
                refs.discard(entry)
