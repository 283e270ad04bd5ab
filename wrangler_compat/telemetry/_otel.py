"""OpenTelemetry traces for a dohost host: one span per Worker request, stub call, object event and commit.

:class:`TracingTelemetry` is a :class:`runtime.Telemetry` over a
``TracerProvider`` it is given (never the global one, so two hosts in one
process trace apart). The span tree of one request::

    GET /path                       SERVER   the Worker request (continues an incoming W3C ``traceparent``)
      COUNTER.increment             CLIENT   the stub call, from the caller
        COUNTER rpc increment       SERVER   the call running inside the object
          OTHER.get ...                      calls it makes, nested the same way
        COUNTER commit              INTERNAL the commit holding its writes (fsync included)

Context travels in-process: the caller's context is captured when a call is
queued (``event_sent`` runs in the sender's task) and re-attached while the
object runs the call, synchronous or ``async``; so object-to-object RPC and
``stub.fetch`` stay in one trace. Across processes and nodes it travels as
W3C trace context: a ``stub.fetch`` request carries the caller's
``traceparent`` header (:meth:`TracingTelemetry.trace_context`), a forwarded
call carries it too, and the owner resumes it while queueing the call
(:meth:`TracingTelemetry.resume_trace`), so the owner's spans join the
caller's trace. A commit is the child of the last event that ran in that object
before it (group commit batches several events; the others are not linked).
The stub call span ends when the object has finished the call.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

    from runtime import Runtime

__all__ = ["TracingTelemetry"]

_PROPAGATOR = TraceContextTextMapPropagator()
_EMPTY = Context()


class TracingTelemetry:
    """See the module docstring."""

    def __init__(self, tracer_provider: TracerProvider, *, worker: str = "worker") -> None:
        self.worker = worker
        self.provider = tracer_provider
        self._tracer = tracer_provider.get_tracer("dohost")
        #: The context of the last event each object ran: its next commit's parent.
        self._last: dict[tuple[str, str], Context] = {}

    # -- runtime.Telemetry --------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        self._last.clear()

    def request_started(self, worker: str | None, request: Any) -> Any:
        headers = getattr(request, "headers", None)
        carrier = {"traceparent": headers.get("traceparent"), "tracestate": headers.get("tracestate")} if headers else {}
        parent = _PROPAGATOR.extract({k: v for k, v in carrier.items() if v}, context=_EMPTY)
        method = getattr(request, "method", "GET")
        url = getattr(request, "url", "")
        span = self._tracer.start_span(
            f"{method} {urlsplit(url).path or '/'}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.full": url, "dohost.worker": worker or self.worker},
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        span, attached = token
        try:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            if error is not None:
                _record(span, error)
            span.end()
        finally:
            otel_context.detach(attached)

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        hex_id = object_id.toString()
        attributes = {
            "dohost.namespace": namespace,
            "dohost.object.id": hex_id,
            "dohost.object.name": object_id.name or "",
            "dohost.event.kind": kind,
            "rpc.method": name,
        }
        parent = otel_context.get_current()
        client: Span | None = None
        if kind in ("rpc", "fetch"):  # a stub call: the caller's side of it
            client = self._tracer.start_span(f"{namespace}.{name}", context=parent, kind=SpanKind.CLIENT, attributes=attributes)
            parent = trace.set_span_in_context(client, parent)
        tracer, last, key = self._tracer, self._last, (namespace, hex_id)

        def traced(instance: Any = None) -> Any:
            span = tracer.start_span(f"{namespace} {kind} {name}", context=parent, kind=SpanKind.SERVER, attributes=attributes)
            ctx = trace.set_span_in_context(span, parent)
            last[key] = ctx
            attached = otel_context.attach(ctx)
            try:
                result = invoke(instance)
            except BaseException as exc:
                _finish(span, client, exc)
                raise
            finally:
                otel_context.detach(attached)
            if inspect.isawaitable(result):
                return _in_span(result, ctx, span, client)
            _finish(span, client, None)
            return result

        return traced

    def activated(self, namespace: str, object_id: Any) -> None:
        pass

    def evicted(self, namespace: str, object_id: Any) -> None:
        self._last.pop((namespace, object_id.toString()), None)

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        parent = self._last.pop((namespace, object_id.toString()), _EMPTY)
        return self._tracer.start_span(
            f"{namespace} commit",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={"dohost.namespace": namespace, "dohost.object.id": object_id.toString()},
        )

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None:
        if error is not None:
            _record(token, error)
        token.end()

    def storage_rows(self, namespace: str, read: int, written: int) -> None:
        pass

    def alarm_ran(self, namespace: str, outcome: str) -> None:
        pass

    def websocket_message(self, namespace: str, direction: str) -> None:
        pass

    def error(self, kind: str, error: BaseException | None) -> None:
        pass

    def trace_context(self) -> str | None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)  # nothing when no span is current
        return carrier.get("traceparent")

    def resume_trace(self, traceparent: str) -> Callable[[], None]:
        attached = otel_context.attach(_PROPAGATOR.extract({"traceparent": traceparent}, context=_EMPTY))
        return lambda: otel_context.detach(attached)


async def _in_span(awaitable: Awaitable[Any], ctx: Context, span: Span, client: Span | None) -> Any:
    """Await an ``async`` handler with its span current (it runs in a task of its own)."""
    attached = otel_context.attach(ctx)
    try:
        value = await awaitable
    except BaseException as exc:
        _finish(span, client, exc)
        raise
    finally:
        otel_context.detach(attached)
    _finish(span, client, None)
    return value


def _finish(span: Span, client: Span | None, error: BaseException | None) -> None:
    if error is not None:
        _record(span, error)
        if client is not None:
            client.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
    if client is not None:
        client.end()


def _record(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
