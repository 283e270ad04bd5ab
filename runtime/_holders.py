"""Gate holders and the rest of the ``ActivationHost`` protocol for an activation.

``HoldersMixin`` is part of :class:`~runtime._activation.Activation`:
``blockConcurrencyWhile`` and ``transaction()`` take the input gate and run
their callback in a task of the activation's nursery (so they start even when
not awaited, as a JS promise does), ``waitUntil`` keeps the object alive,
``abort`` resets it. Failures reset the object as Cloudflare does.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import outcome
import trio

from objects import AbortError, ObjectResetError, OverloadedError, RemoteError
from persistence import ObjectDatabase

from ._events import Held
from ._asyncio import TaskOwner, get_loop, run_as_task
from ._gates import InputGate

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["HoldersMixin", "BCW_TIMEOUT", "BCW_TIMEOUT_MESSAGE"]

log = logging.getLogger("dohost.activation")

# CF: workerd's blockConcurrencyWhile() timeout (30 s) and its message (actor-state.c++)
BCW_TIMEOUT = 30.0
BCW_TIMEOUT_MESSAGE = (
    "A call to blockConcurrencyWhile() in a Durable Object waited for too long. "
    "The call was canceled and the Durable Object was reset."
)


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _noop() -> None:
    pass


class HoldersMixin:
    """The ``ActivationHost`` protocol; see the module docstring."""

    # Provided by Activation.
    db: ObjectDatabase | None
    runtime: Runtime
    gate: InputGate
    key: tuple[str, str]
    instance: Any
    _busy: int
    _nursery: trio.Nursery | None
    aio: TaskOwner | None
    _wake: trio.Event
    _commit_wanted: trio.Event
    _constructing: bool
    _alarm_running: bool
    _alarm_written: bool
    _reset_error: BaseException | None

    if TYPE_CHECKING:  # provided by Activation

        def _reset(self, error: BaseException) -> None: ...

        def _to_caller(self, exc: BaseException) -> RemoteError: ...

        def wait_output(self) -> Awaitable[None]: ...

    def block_concurrency_while(self, fn: Callable[[], Awaitable[Any]]) -> Held:
        held = Held("blockConcurrencyWhile")
        self.gate.acquire(held)
        self._start_held(self._run_bcw, held, fn)
        return held

    def run_transaction(self, fn: Callable[[Any], Awaitable[Any]], txn: Any) -> Held:
        held = Held("transaction")
        self.gate.acquire(held)
        self._start_held(self._run_txn, held, fn, txn)
        return held

    def _start_held(self, runner: Callable[..., Awaitable[None]], held: Held, *args: Any) -> None:
        self._busy += 1
        assert self._nursery is not None
        self._nursery.start_soon(runner, held, *args)

    async def _run_held_body(self, held: Held, awaitable: Any) -> Any:
        if inspect.isawaitable(awaitable):
            coro = awaitable if inspect.iscoroutine(awaitable) else _as_coroutine(awaitable)
            return await run_as_task(coro, get_loop(), self.aio, self.gate, held, _noop)
        return awaitable

    async def _run_bcw(self, held: Held, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            with trio.fail_after(BCW_TIMEOUT):
                value = await self._run_held_body(held, fn())
        except trio.TooSlowError:
            err = OverloadedError(BCW_TIMEOUT_MESSAGE)
            err.overloaded = True
            err.durableObjectReset = True
            held.settle(outcome.Error(err))
            self._reset(err)
        except trio.Cancelled:
            held.settle(outcome.Error(self._reset_error or ObjectResetError("The Durable Object was reset.")))
            raise
        except AbortError as exc:
            held.settle(outcome.Error(exc.to_caller_error()))
            self._reset(exc.to_caller_error())
        except Exception as exc:
            held.settle(outcome.Error(exc))
            reset_error = self._to_caller(exc)
            reset_error.durableObjectReset = True
            self._reset(reset_error)
        else:
            held.settle(outcome.Value(value))
        finally:
            self.gate.release(held)
            self._busy -= 1
            self._wake.set()

    async def _run_txn(self, held: Held, fn: Callable[[Any], Awaitable[Any]], txn: Any) -> None:
        db = self.db
        assert db is not None
        try:
            depth = db.savepoint()
            txn.savepoint_opened(depth)
            try:
                value = await self._run_held_body(held, fn(txn))
            except BaseException:
                if not db.closed and db._sp_depth > depth:
                    db.rollback_to(depth)
                txn.state = "rolled_back"
                raise
            if txn.state == "rolled_back":
                if db._sp_depth > depth:  # rollback() usually rolled it back already
                    db.rollback_to(depth)
            else:
                db.release(depth)
                txn.state = "committed"
        except trio.Cancelled:
            held.settle(outcome.Error(self._reset_error or ObjectResetError("The Durable Object was reset.")))
            raise
        except BaseException as exc:
            held.settle(outcome.Error(exc))
            # abort() inside the callback has already reset the object; the
            # AbortError unwinds the awaiting handler through ``held``, and must
            # not escape into the activation's nursery (it would end the runtime).
            if not isinstance(exc, (Exception, AbortError)):
                raise
        else:
            held.settle(outcome.Value(value))
        finally:
            self.gate.release(held)
            self._busy -= 1
            self._wake.set()
            if db.in_transaction:
                self._commit_wanted.set()

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        self._busy += 1
        assert self._nursery is not None
        self._nursery.start_soon(self._run_wait_until, awaitable)

    async def _run_wait_until(self, awaitable: Awaitable[Any]) -> None:
        token = object()
        try:
            coro = awaitable if inspect.iscoroutine(awaitable) else _as_coroutine(awaitable)
            await run_as_task(coro, get_loop(), self.aio, self.gate, token, _noop)
        except AbortError:
            pass  # abort() in background work: the object is already reset
        except Exception:
            log.exception("waitUntil() task of %s failed", self.key)
        finally:
            self._busy -= 1
            self._wake.set()

    def abort(self, reason: str | None) -> None:
        err = AbortError(reason)
        self._reset(err.to_caller_error())
        raise err

    def wait_committed(self) -> Awaitable[None]:
        return self.wait_output()

    def now_ms(self) -> float:
        return self.runtime.now_ms()

    def constructing(self) -> bool:
        return self._constructing

    def alarm_running(self) -> bool:
        return self._alarm_running and not self._alarm_written

    def alarm_written(self) -> None:
        self._alarm_written = True
