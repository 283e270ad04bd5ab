"""Metrics and traces for dohost: exporters that plug into ``runtime``'s Telemetry Protocol.

``runtime`` emits through :class:`runtime.Telemetry` (a no-op by default);
this package holds what listens: Prometheus metrics (``prometheus-client``,
one registry per host), OpenTelemetry traces (a ``TracerProvider`` per host;
OTLP/HTTP export when configured), request ids and object fields for logs,
and the ``/__dohost/metrics`` route.
"""

from __future__ import annotations

from ._fanout import HostTelemetry as HostTelemetry
from ._fanout import build_telemetry as build_telemetry
from ._fanout import otlp_endpoint_from_env as otlp_endpoint_from_env
from ._logcontext import LogContextFilter as LogContextFilter
from ._logcontext import RequestIds as RequestIds
from ._logcontext import current_request_id as current_request_id
from ._otel import TracingTelemetry as TracingTelemetry
from ._prometheus import CONTENT_TYPE as CONTENT_TYPE
from ._prometheus import METRIC_NAMES as METRIC_NAMES
from ._prometheus import PrometheusTelemetry as PrometheusTelemetry
from ._routes import METRICS_PATH as METRICS_PATH
from ._routes import metrics_route as metrics_route

__all__ = [
    "HostTelemetry",
    "build_telemetry",
    "otlp_endpoint_from_env",
    "LogContextFilter",
    "RequestIds",
    "current_request_id",
    "TracingTelemetry",
    "CONTENT_TYPE",
    "METRIC_NAMES",
    "PrometheusTelemetry",
    "METRICS_PATH",
    "metrics_route",
]
