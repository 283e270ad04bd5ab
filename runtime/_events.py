"""Events delivered to an object, and the awaitable records of gate holders.

An :class:`ObjectEvent` is created by the caller, queued on the activation,
run by it, and settled with an outcome plus (when the event wrote) the
:class:`CommitTicket` its result must wait for — the output gate. The caller
awaits :meth:`ObjectEvent.result`, which waits for both.

Awaiting an event is always a cancellation point, and a caller never runs
more than :data:`YIELD_EVERY_SETTLED` awaits of already-settled events in a
row without a trip through the scheduler: an event delivered at once in the
caller's task (``Activation.deliver_now``) is settled before it is awaited,
so a Worker looping over calls to idle objects would otherwise hold the
event loop (no other request, timer or I/O) until its loop ended. Yielding
on every such await costs a trip through the scheduler per call (~14 % of
dohost's own instructions for an HTTP request to a hot object), and the
request's own I/O yields anyway, so the turn is taken once every so many
settled awaits, counted across the whole thread.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Generator

import outcome
import trio

from ._gates import _INLINE_PARK, _RUN_CONTEXT, _TRAP_BY_DICT, _WaitTaskRescheduled, CommitTicket

_checkpoint = trio.lowlevel.checkpoint
_Value = outcome.Value
#: ``ObjectEvent.outcome`` of an event settled with a plain value (``settle_value``): the
#: value sits in ``ObjectEvent._value``. An ``outcome.Value`` is an attrs instance whose
#: construction is a Python ``__init__`` call, once per RPC and per fetch.
_SETTLED_VALUE: Any = object()
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled

# The wait for a commit, inline in ``ObjectEvent.__await__`` (every request that wrote
# parks there once): trio's ``Event.wait()`` is three Python frames (``wait``,
# ``wait_task_rescheduled``, ``_async_yield``) made at the park and resumed at the
# wake-up, plus ``Outcome.unwrap`` (two calls). The inline wait puts the task in the
# ticket's ``parked`` (``_gates.py``: the ticket reschedules it when the commit
# settles; a cancellation takes it out) and yields trio's trap itself.
# The trap is made without attrs' ``__init__`` where ``_gates`` found that possible.
_ABORT_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED
_new = object.__new__

#: Awaits of settled events in a row (across all tasks) before one yields to the scheduler.
YIELD_EVERY_SETTLED = 16
#: Settled awaits since the last such yield. A race between threads (each with its own
#: trio run) at worst delays one yield by a call: the bound is per thread in practice.
_settled_unyielded = 0

__all__ = ["ObjectEvent", "EventKind", "Held", "AlarmInfo", "YIELD_EVERY_SETTLED"]


class EventKind(enum.Enum):
    RPC = "rpc"
    FETCH = "fetch"
    ALARM = "alarm"
    WEBSOCKET = "websocket"
    RUN = "run"  # a test helper running a function inside the object


class ObjectEvent:
    """One event for one object; see the module docstring."""

    __slots__ = ("kind", "invoke", "convert", "_done", "outcome", "ticket", "yielded", "on_success", "hold", "observed",
                 "_value")

    def __init__(
        self,
        kind: EventKind,
        invoke: Callable[[Any], Any],
        *,
        convert: bool = True,
        on_success: Callable[[Any], None] | None = None,
        hold: CommitTicket | None = None,
    ) -> None:
        self.kind = kind
        #: Called with the instance; returns a value or an awaitable.
        self.invoke = invoke
        #: Copy the result and translate errors as RPC does (False for in-process helpers).
        self.convert = convert
        #: Runs inside the object, under its gate, after the handler succeeded.
        self.on_success = on_success
        #: Made only when someone waits before the event is settled: an event
        #: delivered at once (``Activation.deliver_now``) never needs one.
        self._done: trio.Event | None = None
        self.outcome: outcome.Outcome | None = None  # type: ignore[type-arg]
        self.ticket: CommitTicket | None = None
        self.yielded: trio.Event | None = None
        #: The sender's output gate: the event is queued at once (so events sent
        #: in order arrive in order) but not delivered before this commits; if
        #: that commit fails the event fails with its error.
        self.hold = hold
        #: (trio time, rows changed so far, rows read so far) when delivered; the event log's bookkeeping.
        self.observed: tuple[float, int, int] | None = None

    @property
    def done(self) -> trio.Event:
        """Set once the event is settled."""
        if self._done is None:
            self._done = trio.Event()
            if self.outcome is not None:
                self._done.set()
        return self._done

    def settle(self, result: outcome.Outcome, ticket: CommitTicket | None) -> None:  # type: ignore[type-arg]
        if self.outcome is not None:
            return
        self.outcome = result
        self.ticket = ticket
        if self._done is not None:
            self._done.set()
        if self.yielded is not None:
            self.yielded.set()

    def settle_value(self, value: Any, ticket: CommitTicket | None) -> None:
        """``settle(outcome.Value(value), ticket)``, without making the ``outcome.Value``."""
        if self.outcome is not None:
            return
        self._value = value
        self.outcome = _SETTLED_VALUE
        self.ticket = ticket
        if self._done is not None:
            self._done.set()
        if self.yielded is not None:
            self.yielded.set()

    async def result(self) -> Any:
        """The handler's result, released only after its writes committed (see the module docstring)."""
        return await self

    def __await__(self) -> Generator[Any, Any, Any]:
        # A queued event is its own awaitable result, like the promise a JS stub
        # call returns; unlike a coroutine, dropping it unawaited warns about nothing.
        # A generator, not ``self.result().__await__()``: no coroutine and wrapper
        # per await on the path every stub call takes.
        global _settled_unyielded
        ticket = self.ticket
        if self.outcome is None:
            yield from self.done.wait().__await__()
            ticket = self.ticket
            pending = ticket is not None and not ticket._done.is_set()
        else:
            pending = ticket is not None and not ticket._done.is_set()
            if pending:
                pass  # the wait for the commit below is this await's checkpoint
            elif _settled_unyielded >= YIELD_EVERY_SETTLED - 1:
                _settled_unyielded = 0
                yield from _checkpoint().__await__()
            else:
                _settled_unyielded += 1
                yield from _checkpoint_if_cancelled().__await__()
        if ticket is not None:
            # ticket.wait_committed(), inline: one coroutine less for every caller
            # of a call that wrote (each resumes through it after the commit).
            if pending:
                if _INLINE_PARK:
                    # done.wait(), inline (see above): park on the ticket.
                    task = _RUN_CONTEXT.task
                    parked = ticket.parked
                    parked[task] = None

                    def abort(_: Any) -> Any:
                        del parked[task]  # cancelled: the ticket will not reschedule it
                        return _ABORT_SUCCEEDED

                    if _TRAP_BY_DICT:
                        trap = _new(_WaitTaskRescheduled)
                        trap.__dict__["abort_func"] = abort
                    else:
                        trap = _WaitTaskRescheduled(abort)
                    sent = yield trap
                    if type(sent) is not _Value:
                        sent.unwrap()  # a cancellation (an Error) raises here
                else:
                    yield from ticket._done.wait().__await__()
            if ticket.error is not None:
                raise ticket.error
        result = self.outcome
        if result is _SETTLED_VALUE:
            return self._value
        assert result is not None
        if type(result) is _Value:
            # The value as is: unwrap() is two Python calls, and awaiting an event
            # twice gives its value twice (as awaiting a promise twice does in JS).
            return result.value
        return result.unwrap()


class Held:
    """A gate holder (``blockConcurrencyWhile``/``transaction()``), awaitable for its result."""

    __slots__ = ("what", "_done", "_outcome", "observed")

    def __init__(self, what: str) -> None:
        self.what = what
        self._done = trio.Event()
        self._outcome: outcome.Outcome | None = None  # type: ignore[type-arg]
        self.observed = False

    def settle(self, result: outcome.Outcome) -> None:  # type: ignore[type-arg]
        if not self._done.is_set():
            self._outcome = result
            self._done.set()

    def __await__(self) -> Any:
        self.observed = True
        return self._wait().__await__()

    async def _wait(self) -> Any:
        await self._done.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()


class AlarmInfo:
    """``alarm(alarm_info)``: Cloudflare's ``retryCount``/``isRetry`` plus ``scheduledTime``."""

    __slots__ = ("retryCount", "isRetry", "scheduledTime")

    def __init__(self, retry_count: int, scheduled_time: float) -> None:
        self.retryCount = retry_count
        self.isRetry = retry_count > 0
        self.scheduledTime = scheduled_time

    @property
    def retry_count(self) -> int:
        return self.retryCount

    @property
    def is_retry(self) -> bool:
        return self.isRetry

    @property
    def scheduled_time(self) -> float:
        return self.scheduledTime

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __repr__(self) -> str:
        return f"AlarmInfo(retryCount={self.retryCount}, isRetry={self.isRetry}, scheduledTime={self.scheduledTime})"
