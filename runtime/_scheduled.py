"""Cron Triggers: the Worker's ``scheduled`` handler, run once or on a schedule.

:func:`run_scheduled` delivers one scheduled event to the main Worker, as
Cloudflare does for a Cron Trigger:

* A ``WorkerEntrypoint`` class gets a fresh instance and its ``scheduled``
  method (``on_scheduled`` too) is called with ``(controller, env, ctx)``,
  dropping what it does not declare (``scheduled(self, controller)`` in the
  current SDK, ``scheduled(self, controller, env, ctx)`` in older examples).
  A function entrypoint's module may define ``on_scheduled(controller, env,
  ctx)`` (the SDK's older function style). No handler: ``TypeError`` with
  workerd's words.
* ``controller`` is a :class:`ScheduledController`: ``scheduledTime``
  (epoch ms on the runtime's clock), ``cron``, ``noRetry()``, each with a
  snake_case twin.
* ``ctx.waitUntil`` work belongs to the runtime's nursery; the event is over
  when the handler and that work are (Cloudflare keeps a scheduled event
  alive for its ``waitUntil`` promises). An exception is the event's
  outcome ``"exception"``, logged, never raised into the scheduler.

:func:`serve_crons` fires each cron at its next time on the runtime's clock
(epoch ms = :meth:`Runtime.now_ms`, which follows trio's clock, so
``autojump_clock`` makes an hourly cron instant). Cron expressions are UTC and
parsed by croniter. Cloudflare does not retry a failed scheduled event (a
``noRetry()`` call changes nothing here either); the next time fires as usual.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Literal

import msgspec
import trio
from croniter import croniter

from objects import ExecutionContext, find_handler, relaxed_call

from ._activation import _env
from ._asyncio import get_loop, owner_var, run_as_task

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["ScheduledController", "ScheduledResult", "run_scheduled", "serve_crons", "next_cron_ms"]

log = logging.getLogger("dohost.scheduled")


class ScheduledController:
    """What ``scheduled(controller)`` receives (Cloudflare's ``ScheduledController``)."""

    type = "scheduled"

    def __init__(self, cron: str, scheduled_time_ms: float) -> None:
        self.cron = cron
        # CF: ScheduledController.scheduledTime is whole epoch milliseconds.
        self.scheduledTime = self.scheduled_time = float(int(scheduled_time_ms))
        self.retry = True

    def noRetry(self) -> None:
        """Ask not to retry this event; Cron Triggers are not retried anyway."""
        self.retry = False

    no_retry = noRetry

    def __repr__(self) -> str:
        return f"ScheduledController(cron={self.cron!r}, scheduledTime={self.scheduledTime!r})"


class ScheduledResult(msgspec.Struct, frozen=True, kw_only=True):
    """How one scheduled event ended (workerd's outcome names)."""

    outcome: Literal["ok", "exception"]
    no_retry: bool
    cron: str
    scheduled_time: float
    error: str | None = None


def _handler(rt: Runtime, ctx: ExecutionContext) -> Any:
    ep = rt.entrypoint
    if ep is None:
        return None
    if inspect.isclass(ep):
        factory: Any = ep  # a WorkerEntrypoint subclass: any constructor signature goes
        return find_handler(factory(ctx, rt.env), "scheduled")
    module = sys.modules.get(getattr(ep, "__module__", "") or "")
    fn = getattr(module, "on_scheduled", None) if module is not None else None
    return fn if callable(fn) else None


async def run_scheduled(
    rt: Runtime, cron: str = "", scheduled_time: float | None = None, *, raise_errors: bool = False
) -> ScheduledResult:
    """Run the main Worker's ``scheduled`` handler once; see the module docstring.

    ``raise_errors`` (tests): the handler's exception is raised here, after its
    ``waitUntil`` work is over, instead of becoming the outcome.
    """
    when = rt.now_ms() if scheduled_time is None else scheduled_time
    controller = ScheduledController(cron, when)
    pending = 0
    done = trio.Event()
    done.set()

    def wait_until(awaitable: Any) -> None:
        nonlocal pending, done

        async def tracked() -> None:
            nonlocal pending
            try:
                await awaitable
            finally:
                pending -= 1
                if not pending:
                    done.set()

        if not pending:
            done = trio.Event()
        pending += 1
        rt._worker_wait_until(tracked())

    token, owner_token = _env.set(rt.env), owner_var.set(rt._worker_tasks)
    error: str | None = None
    failure: Exception | None = None
    try:
        ctx = ExecutionContext(wait_until=wait_until)
        handler = _handler(rt, ctx)
        if handler is None:
            raise TypeError("Handler does not export a scheduled() function.")  # CF: workerd
        result = relaxed_call(handler, controller, rt.env, ctx)
        if inspect.isawaitable(result):
            await run_as_task(_coroutine(result), get_loop(), rt._worker_tasks, None, None, lambda: None)
    except Exception as exc:
        if not raise_errors:
            log.exception("scheduled(%r): the Worker raised", cron)
        error, failure = f"{type(exc).__name__}: {exc}", exc
    finally:
        owner_var.reset(owner_token)
        _env.reset(token)
    await done.wait()
    if raise_errors and failure is not None:
        raise failure
    return ScheduledResult(outcome="ok" if error is None else "exception", no_retry=not controller.retry,
                           cron=cron, scheduled_time=controller.scheduledTime, error=error)


async def _coroutine(awaitable: Any) -> Any:
    return await awaitable


def next_cron_ms(cron: str, after_ms: float) -> float:
    """The first time strictly after ``after_ms`` (epoch ms) that ``cron`` fires, in UTC."""
    start = _dt.datetime.fromtimestamp(after_ms / 1000.0, tz=_dt.timezone.utc)
    return float(croniter(cron, start).get_next(float)) * 1000.0


async def serve_crons(
    rt: Runtime,
    crons: Sequence[str],
    *,
    when: Callable[[], bool] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Fire each of ``crons`` at its times until cancelled; one event per time, in order.

    ``when``, if given, is asked at each due time: a time it answers False for is
    skipped (another process or node fires it).
    """
    async with trio.open_nursery() as nursery:
        for cron in crons:
            nursery.start_soon(_fire_forever, rt, cron, when)
        task_status.started()


async def _fire_forever(rt: Runtime, cron: str, when: Callable[[], bool] | None = None) -> None:
    due = next_cron_ms(cron, rt.now_ms())
    while True:
        await trio.sleep_until(rt.trio_time_for(due))
        if when is not None and not when():
            due = next_cron_ms(cron, max(due, rt.now_ms()))
            continue
        result = await run_scheduled(rt, cron, due)
        log.info("scheduled %r at %d: %s", cron, int(due), result.outcome)
        # A run longer than the interval skips the times it overlapped, as a
        # cron daemon would; times are never queued up.
        due = next_cron_ms(cron, max(due, rt.now_ms()))
