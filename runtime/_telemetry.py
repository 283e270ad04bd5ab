"""What the engine tells a metrics or tracing exporter: the :class:`Telemetry` Protocol.

The runtime never imports an exporter. ``open_runtime(telemetry=...)`` takes
any object with these methods (``wrangler_compat.telemetry`` has the
Prometheus and OpenTelemetry ones); without one it uses :data:`NULL_TELEMETRY`,
whose methods do nothing and return at once, so a host that nobody observes
pays one no-op call per event and creates nothing.

Where each call happens (the guarantees an exporter can rely on):

* ``request_started``/``request_finished``: around every call of the Worker
  entrypoint (``rt.fetch``, the HTTP front, WebSocket upgrades), in the task
  that runs it; ``status`` is the Response's (``None`` when the Worker raised).
* ``event_sent``: when a call to an object is queued (RPC, ``stub.fetch``,
  ``alarm()``, WebSocket handlers), in the *sender's* task, so an exporter can
  capture the sender's trace context; it returns the function the object will
  run (the one given, or a wrapper that runs it).
* ``activated``/``evicted``: an object's constructor succeeded / it was
  evicted (idle timeout, the resident cap, ``rt.evict``).
* ``commit_started``/``commit_finished``: around a commit that wrote,
  fsync included; called in the thread that commits (a worker thread with
  durability ``"full"``). ``error`` is set when the commit failed.
* ``storage_rows``: rows read by SQL cursors and rows written (SQLite's
  change count, KV writes included) since the last report, after each commit,
  when the object leaves memory, and when :func:`flush_storage_rows` asks.
* ``alarm_ran``: an ``alarm()`` handler ran, ``outcome`` ``"success"`` or ``"error"``.
* ``websocket_message``: a message to (``"in"``) or from (``"out"``) an object's WebSocket.
* ``error``: something failed: ``"object"``, a handler raised (the caller
  gets the error); ``"reset"``, an object was reset.
* ``trace_context``: asked in the sender's task when a ``stub.fetch`` is
  made (its request then carries that W3C ``traceparent`` header) and when a
  call is forwarded to another process or node (the call carries it);
  ``None`` when nothing traces. ``resume_trace``: on the owner, around
  queueing a forwarded call, so its spans join the caller's trace.

Gauges (objects in memory, hibernated, open WebSockets) are read when asked,
by :func:`object_gauges`, not pushed: counting them costs nothing per event.
Object IDs are passed for spans and logs; they must never become metric labels.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import msgspec

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Telemetry", "NullTelemetry", "NULL_TELEMETRY", "ObjectGauges", "object_gauges", "flush_storage_rows", "run_request"]


class Telemetry(Protocol):
    """See the module docstring."""

    def attach(self, runtime: Runtime) -> None:
        """The runtime was built (a host may build several in turn: reloads, deploys)."""

    def request_started(self, worker: str | None, request: Any) -> Any:
        """A Worker request begins; returns a token for :meth:`request_finished`."""

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None: ...

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        """A call to an object was queued; returns what the object runs (``invoke`` or a wrapper)."""

    def activated(self, namespace: str, object_id: Any) -> None: ...

    def evicted(self, namespace: str, object_id: Any) -> None: ...

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        """A commit that wrote begins; returns a token for :meth:`commit_finished`."""

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None: ...

    def storage_rows(self, namespace: str, read: int, written: int) -> None: ...

    def alarm_ran(self, namespace: str, outcome: str) -> None: ...

    def websocket_message(self, namespace: str, direction: str) -> None: ...

    def error(self, kind: str, error: BaseException | None) -> None: ...

    def trace_context(self) -> str | None:
        """The current context's W3C ``traceparent``, for a call leaving this task; ``None``: not tracing."""

    def resume_trace(self, traceparent: str) -> Callable[[], None]:
        """Make ``traceparent`` (a call from another process or node) current; returns how to undo it."""


class NullTelemetry:
    """The default: every method does nothing (and ``event_sent`` wraps nothing)."""

    __slots__ = ()

    def attach(self, runtime: Runtime) -> None:
        pass

    def request_started(self, worker: str | None, request: Any) -> Any:
        return None

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        pass

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        return invoke

    def activated(self, namespace: str, object_id: Any) -> None:
        pass

    def evicted(self, namespace: str, object_id: Any) -> None:
        pass

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        return None

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None:
        pass

    def storage_rows(self, namespace: str, read: int, written: int) -> None:
        pass

    def alarm_ran(self, namespace: str, outcome: str) -> None:
        pass

    def websocket_message(self, namespace: str, direction: str) -> None:
        pass

    def error(self, kind: str, error: BaseException | None) -> None:
        pass

    def trace_context(self) -> str | None:
        return None

    def resume_trace(self, traceparent: str) -> Callable[[], None]:
        return _nothing


def _nothing() -> None:
    pass


#: Shared: it has no state.
NULL_TELEMETRY = NullTelemetry()


async def run_request(
    telemetry: Telemetry, worker: str | None, request: Any, handler: Callable[[Any], Awaitable[Any]]
) -> Any:
    """``await handler(request)`` between ``request_started`` and ``request_finished``."""
    token = telemetry.request_started(worker, request)
    try:
        response = await handler(request)
    except BaseException as exc:
        telemetry.request_finished(token, None, exc)
        raise
    telemetry.request_finished(token, getattr(response, "status", None), None)
    return response


class ObjectGauges(msgspec.Struct, frozen=True, kw_only=True):
    """Per binding name: objects in memory, hibernated (evicted with WebSockets connected), open WebSockets."""

    resident: dict[str, int]
    hibernated: dict[str, int]
    websockets: dict[str, int]


def object_gauges(runtime: Runtime) -> ObjectGauges:
    """Count what ``runtime`` holds right now (a scrape; linear in live objects and sockets)."""
    if runtime._closing:
        return ObjectGauges(resident={}, hibernated={}, websockets={})
    resident: Counter[str] = Counter(key[0] for key in runtime._live)
    hibernated: Counter[str] = Counter(
        key[0] for key, book in runtime._books.items() if key not in runtime._live and len(book)
    )
    websockets: Counter[str] = Counter()
    for hosted in runtime._sockets:
        if hosted.gone or hosted.closed:
            continue
        namespace = hosted.namespace
        if namespace is not None:
            websockets[namespace] += 1
    return ObjectGauges(resident=dict(resident), hibernated=dict(hibernated), websockets=dict(websockets))


def flush_storage_rows(runtime: Runtime) -> None:
    """Report the rows live objects read and wrote since their last report (before a scrape)."""
    for act in list(runtime._live.values()):
        if not act.gate.committing:  # a worker thread owns the connection while it commits
            act.report_storage_rows()
