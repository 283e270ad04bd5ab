"""One :class:`runtime.Telemetry` that forwards to several (metrics, traces, log fields).

:class:`HostTelemetry` is what ``dohost dev``/``serve`` and the pytest
plugin hand to ``open_runtime``: each call goes to every part in order;
tokens are kept per part; ``event_sent`` lets each part wrap the call in
turn. ``worker`` names the main Worker for every part that labels with it.
:func:`build_telemetry` makes the usual set: Prometheus metrics, request ids
for logs, and OpenTelemetry traces when an OTLP endpoint (or a
``TracerProvider``, e.g. a test's with an in-memory exporter) is given.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from runtime import Telemetry

from ._logcontext import RequestIds
from ._otel import TracingTelemetry
from ._prometheus import PrometheusTelemetry

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from runtime import Runtime

__all__ = ["HostTelemetry", "build_telemetry", "otlp_endpoint_from_env"]


class HostTelemetry:
    """See the module docstring; ``metrics`` and ``tracing`` are the parts of those kinds, if any."""

    def __init__(self, parts: Sequence[Telemetry], *, worker: str = "worker") -> None:
        self.parts = tuple(parts)
        self.metrics = next((p for p in parts if isinstance(p, PrometheusTelemetry)), None)
        self.tracing = next((p for p in parts if isinstance(p, TracingTelemetry)), None)
        self._worker = worker
        self.worker = worker

    @property
    def worker(self) -> str:
        return self._worker

    @worker.setter
    def worker(self, name: str) -> None:
        self._worker = name
        for part in self.parts:
            if hasattr(part, "worker"):
                part.worker = name

    def shutdown(self) -> None:
        """Flush and stop the trace exporter (at server exit)."""
        if self.tracing is not None:
            shutdown = getattr(self.tracing.provider, "shutdown", None)
            if shutdown is not None:
                shutdown()

    # -- runtime.Telemetry --------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        for part in self.parts:
            part.attach(runtime)

    def request_started(self, worker: str | None, request: Any) -> Any:
        return [part.request_started(worker, request) for part in self.parts]

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        # Last started, first finished: a part that attached a context detaches in order.
        for part, part_token in reversed(list(zip(self.parts, token))):
            part.request_finished(part_token, status, error)

    def trace_context(self) -> str | None:
        for part in self.parts:
            trace = part.trace_context()
            if trace is not None:
                return trace
        return None

    def resume_trace(self, traceparent: str) -> Callable[[], None]:
        undo = [part.resume_trace(traceparent) for part in self.parts]

        def undo_all() -> None:
            for step in reversed(undo):
                step()

        return undo_all

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        for part in self.parts:
            invoke = part.event_sent(namespace, object_id, kind, name, invoke)
        return invoke

    def activated(self, namespace: str, object_id: Any) -> None:
        for part in self.parts:
            part.activated(namespace, object_id)

    def evicted(self, namespace: str, object_id: Any) -> None:
        for part in self.parts:
            part.evicted(namespace, object_id)

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        return [part.commit_started(namespace, object_id) for part in self.parts]

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None:
        for part, part_token in zip(self.parts, token):
            part.commit_finished(part_token, namespace, error)

    def storage_rows(self, namespace: str, read: int, written: int) -> None:
        for part in self.parts:
            part.storage_rows(namespace, read, written)

    def alarm_ran(self, namespace: str, outcome: str) -> None:
        for part in self.parts:
            part.alarm_ran(namespace, outcome)

    def websocket_message(self, namespace: str, direction: str) -> None:
        for part in self.parts:
            part.websocket_message(namespace, direction)

    def error(self, kind: str, error: BaseException | None) -> None:
        for part in self.parts:
            part.error(kind, error)


def otlp_endpoint_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP/HTTP endpoint the standard variables name (traces-specific first), or ``None``."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def build_telemetry(
    *,
    worker: str = "worker",
    metrics: bool = True,
    otlp_endpoint: str | None = None,
    tracer_provider: TracerProvider | None = None,
) -> HostTelemetry:
    """Metrics (own registry), request ids, and traces when ``otlp_endpoint`` or ``tracer_provider`` is given.

    ``otlp_endpoint`` is a base URL as in ``OTEL_EXPORTER_OTLP_ENDPOINT``
    (``/v1/traces`` is appended unless present); spans are sent in batches
    over OTLP/HTTP by ``opentelemetry-exporter-otlp-proto-http`` (the
    ``otlp`` extra).
    """
    parts: list[Telemetry] = []
    if metrics:
        parts.append(PrometheusTelemetry(worker=worker))
    parts.append(RequestIds())
    if otlp_endpoint is not None and tracer_provider is None:
        tracer_provider = _otlp_provider(otlp_endpoint, worker)
    if tracer_provider is not None:
        parts.append(TracingTelemetry(tracer_provider, worker=worker))
    return HostTelemetry(parts, worker=worker)


def _otlp_provider(endpoint: str, worker: str) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        from ..errors import WranglerCompatError

        raise WranglerCompatError(
            "tracing over OTLP needs opentelemetry-exporter-otlp-proto-http: pip install 'dohost[otlp]'"
        ) from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": worker}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider
