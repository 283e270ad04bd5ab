"""Input and output gates (workerd's ``io-gate.h``), for trio.

Guarantees:

* **Input gate.** While an object runs synchronous code, nothing else of that
  object runs — trio is cooperative, so this holds by construction. What the
  gate adds is *who may resume* after an ``await``: while a holder
  (constructor, ``blockConcurrencyWhile``, ``transaction()``) owns the gate,
  or a commit is using the connection from a worker thread, no event is
  delivered and no other event's continuation runs. Holders stack (a nested
  ``blockConcurrencyWhile`` owns the gate until it finishes, then its parent
  does again).
* **Yield points.** :func:`gated` drives an object's coroutine step by step
  inside the *same* trio task, so it sees every point where the object's code
  yields to the scheduler — Cloudflare's commit points — and holds the
  continuation at the gate before handing control back to user code.
* **Output gate.** A :class:`CommitTicket` stands for one implicit
  transaction. Anything leaving the object after a write (a response, an RPC
  result, an outgoing call, a WebSocket send) waits on the ticket; a failed
  commit fails the ticket and every message held by it.

Only trio (and outcome, trio's own) is imported here: the gates are a leaf.

A ticket's waiters are woken by :meth:`CommitTicket.succeed`/``fail`` in two
ways: tasks in ``ticket._done.wait()`` through the ``trio.Event``, and tasks
parked by ``ObjectEvent.__await__`` (every call that wrote parks there once)
in ``ticket.parked``, rescheduled directly with one shared ``Value(None)``:
trio's ``reschedule()`` wrapper and a new ``outcome.Value`` per task are two
Python calls per request, and those waiters never unwrap the value
(``_events.py``). Both use trio internals, checked once at import; without
them every waiter takes ``Event.wait()``.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Coroutine, Generator

import outcome
import trio

_RUN_CONTEXT: Any
_WaitTaskRescheduled: Any
try:  # trio internals for the inline park (see the module docstring); checked once
    from trio._core._run import GLOBAL_RUN_CONTEXT
    from trio._core._traps import WaitTaskRescheduled

    _RUN_CONTEXT, _WaitTaskRescheduled, _INLINE_PARK = GLOBAL_RUN_CONTEXT, WaitTaskRescheduled, True
except ImportError:  # pragma: no cover - trio moved its internals
    _RUN_CONTEXT = _WaitTaskRescheduled = None
    _INLINE_PARK = False


#: Whether ``ObjectEvent.__await__`` may make its trap as ``object.__new__`` plus the
#: ``__dict__`` entry (attrs' ``__init__`` is a Python call): the attrs class keeps its
#: one field in the instance dict (``slots=False``). Checked once, on a probe (any callable).
_TRAP_BY_DICT = False
if _INLINE_PARK:
    try:
        _probe, _abort = object.__new__(_WaitTaskRescheduled), trio.lowlevel.current_root_task
        _probe.__dict__["abort_func"] = _abort
        _TRAP_BY_DICT = _probe == _WaitTaskRescheduled(_abort) and _probe.abort_func is _abort
        del _probe, _abort
    except (AttributeError, TypeError):  # pragma: no cover - trio's trap gained slots
        pass
#: What a task parked in ``ticket.parked`` is rescheduled with: shared, never unwrapped.
_WOKEN: Any = outcome.Value(None)

__all__ = ["InputGate", "CommitTicket", "gated", "MAX_GATE_DEPTH"]

# CF: workerd limits nested blockConcurrencyWhile() calls (actor-state.c++)
MAX_GATE_DEPTH = 64


class InputGate:
    """Who may run an object's code now; see the module docstring."""

    __slots__ = ("_owners", "committing", "_lot")

    def __init__(self) -> None:
        self._owners: list[object] = []
        #: True while a commit runs in a worker thread on this object's connection.
        self.committing = False
        self._lot = trio.lowlevel.ParkingLot()

    @property
    def depth(self) -> int:
        return len(self._owners)

    @property
    def held(self) -> bool:
        return bool(self._owners) or self.committing

    def may_run(self, token: object) -> bool:
        """May code belonging to ``token`` (an event, a holder, or ``None``) run now?"""
        if self.committing:
            return False
        owners = self._owners
        return not owners or owners[-1] is token

    async def wait_open(self, token: object) -> None:
        """Wait until :meth:`may_run` is true for ``token``."""
        while not self.may_run(token):
            await self._lot.park()

    def acquire(self, token: object) -> None:
        if len(self._owners) >= MAX_GATE_DEPTH:
            raise RuntimeError(
                f"blockConcurrencyWhile()/transaction() nested more than {MAX_GATE_DEPTH} deep"
            )
        self._owners.append(token)

    def release(self, token: object) -> None:
        # Holders normally finish innermost-first; a cancelled outer holder may not.
        try:
            self._owners.remove(token)
        except ValueError:
            pass
        self._lot.unpark_all()

    def set_committing(self, value: bool) -> None:
        self.committing = value
        if not value:
            self._lot.unpark_all()

    def clear(self) -> None:
        """Drop every holder (the object is being reset)."""
        self._owners.clear()
        self.committing = False
        self._lot.unpark_all()


class CommitTicket:
    """One implicit transaction's outcome, awaited by the messages it holds back."""

    __slots__ = ("_done", "error", "parked")

    def __init__(self) -> None:
        self._done = trio.Event()
        self.error: BaseException | None = None
        #: Tasks parked by ``ObjectEvent.__await__`` (keys, in arrival order; see the
        #: module docstring). A parked task that is cancelled takes itself out.
        self.parked: dict[Any, None] = {}

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    def succeed(self) -> None:
        self._done.set()
        if self.parked:
            _wake(self.parked)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()
        if self.parked:
            _wake(self.parked)

    async def wait_settled(self) -> None:
        """Wait until the commit succeeded or failed; never raises the commit's error."""
        if not self._done.is_set():
            await self._done.wait()

    async def wait_committed(self) -> None:
        """Return once committed; raise the commit's error if it failed."""
        if not self._done.is_set():
            await self._done.wait()
        if self.error is not None:
            raise self.error


@trio.lowlevel.enable_ki_protection  # as Event.set: a KeyboardInterrupt must not strand a parked task
def _wake(parked: dict[Any, None]) -> None:
    """Reschedule the tasks parked on a ticket (``Event.set()``'s loop, without its per-task calls)."""
    reschedule = _RUN_CONTEXT.runner.reschedule
    for task in parked:
        reschedule(task, _WOKEN)
    parked.clear()


@types.coroutine
def gated(
    coro: Coroutine[Any, Any, Any],
    gate: InputGate,
    token: object,
    on_yield: Callable[[], None],
) -> Generator[Any, Any, Any]:
    """Run ``coro`` in the current task, seeing each yield and gating each resume.

    Trio's traps are forwarded unchanged, so ``coro`` behaves exactly as if
    awaited directly (cancellation included); between a trap completing and
    ``coro`` resuming, the continuation waits at ``gate`` for ``token``'s turn.
    """
    send: Any = None
    exc: BaseException | None = None
    # The task may start while a commit holds the connection in its worker thread
    # (or another holder owns the gate): the first step is gated like every resume.
    if not gate.may_run(token):
        try:
            yield from gate.wait_open(token).__await__()
        except BaseException as error:
            exc = error
    while True:
        try:
            trap = coro.throw(exc) if exc is not None else coro.send(send)
        except StopIteration as stop:
            return stop.value
        on_yield()
        try:
            send = yield trap
            exc = None
        except BaseException as error:  # delivered into the object's code below
            send, exc = None, error
        if exc is None and not gate.may_run(token):
            try:
                yield from gate.wait_open(token).__await__()
            except BaseException as error:
                send, exc = None, error
