"""Prometheus metrics for a dohost host, through ``prometheus-client``.

:class:`PrometheusTelemetry` is a :class:`runtime.Telemetry`: the runtime
calls it, it counts into its **own** ``CollectorRegistry`` (never the
library's global one), so two hosts in one process keep separate numbers.
It may outlive several runtimes (``dohost dev`` reloads, ``serve`` deploys):
counters go on across them, gauges describe the runtime attached last.

Labels are the Worker's name and binding names (``namespace``), never an
object ID: the number of series stays bounded however many objects exist.
Gauges (objects in memory, hibernated, open WebSockets) are counted at
scrape time from the runtime, so they cost nothing per event.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime import NullTelemetry, flush_storage_rows, object_gauges

if TYPE_CHECKING:
    from runtime import Runtime

__all__ = ["PrometheusTelemetry", "CONTENT_TYPE", "METRIC_NAMES"]

#: The Prometheus text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Commit and request durations: from a fraction of a millisecond (no fsync) to seconds.
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Every metric this exporter writes, with its labels and meaning (the README's table comes from here).
METRIC_NAMES: dict[str, tuple[str, str, str]] = {
    "dohost_requests_total": ("counter", "worker, status", "Worker requests by response status (500: the Worker raised)"),
    "dohost_request_duration_seconds": ("histogram", "worker", "time in the Worker, WebSocket upgrades included"),
    "dohost_rpc_calls_total": ("counter", "namespace", "RPC method calls to objects through stubs"),
    "dohost_object_events_total": ("counter", "namespace, kind", "calls queued to objects: rpc, fetch, alarm, websocket"),
    "dohost_object_activations_total": ("counter", "namespace", "objects constructed (first use, after eviction or reset)"),
    "dohost_object_evictions_total": ("counter", "namespace", "objects dropped from memory (idle, resident cap, evict())"),
    "dohost_objects_resident": ("gauge", "namespace", "objects in memory now"),
    "dohost_objects_hibernated": ("gauge", "namespace", "objects evicted with hibernatable WebSockets still connected"),
    "dohost_commits_total": ("counter", "namespace", "commits that wrote"),
    "dohost_commit_duration_seconds": ("histogram", "namespace", "commit time, fsync included"),
    "dohost_storage_rows_read_total": ("counter", "namespace", "rows SQL cursors handed out (cursors read to the end)"),
    "dohost_storage_rows_written_total": ("counter", "namespace", "rows written (SQL and KV, as SQLite counts changes)"),
    "dohost_alarm_runs_total": ("counter", "namespace, outcome", "alarm() runs: success or error"),
    "dohost_websockets_open": ("gauge", "namespace", "client WebSockets connected to an object"),
    "dohost_websocket_messages_total": ("counter", "namespace, direction", "WebSocket messages in (from clients) and out"),
    "dohost_errors_total": ("counter", "kind", "failures: worker, object, commit, alarm, reset"),
}


class PrometheusTelemetry:
    """See the module docstring. ``worker`` names the main Worker in ``dohost_requests_total``."""

    def __init__(self, *, worker: str = "worker", registry: CollectorRegistry | None = None) -> None:
        self.worker = worker
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._runtime: Callable[[], Runtime | None] = lambda: None
        self.requests = Counter("dohost_requests", "Worker requests by status", ["worker", "status"], registry=r)
        self.request_duration = Histogram(
            "dohost_request_duration_seconds", "Time in the Worker", ["worker"], buckets=_BUCKETS, registry=r
        )
        self.rpc_calls = Counter("dohost_rpc_calls", "RPC calls to objects", ["namespace"], registry=r)
        self.events = Counter("dohost_object_events", "Calls queued to objects", ["namespace", "kind"], registry=r)
        self.activations = Counter("dohost_object_activations", "Objects constructed", ["namespace"], registry=r)
        self.evictions = Counter("dohost_object_evictions", "Objects evicted", ["namespace"], registry=r)
        self.commits = Counter("dohost_commits", "Commits that wrote", ["namespace"], registry=r)
        self.commit_duration = Histogram(
            "dohost_commit_duration_seconds", "Commit time, fsync included", ["namespace"], buckets=_BUCKETS, registry=r
        )
        self.rows_read = Counter("dohost_storage_rows_read", "Rows read by SQL cursors", ["namespace"], registry=r)
        self.rows_written = Counter("dohost_storage_rows_written", "Rows written", ["namespace"], registry=r)
        self.alarm_runs = Counter("dohost_alarm_runs", "alarm() runs", ["namespace", "outcome"], registry=r)
        self.ws_messages = Counter(
            "dohost_websocket_messages", "WebSocket messages", ["namespace", "direction"], registry=r
        )
        self.errors = Counter("dohost_errors", "Failures by kind", ["kind"], registry=r)
        r.register(_Gauges(self))
        # Labelled children by (metric, labels): ``labels()`` takes a lock and builds a
        # key on every call; the hot path looks its child up in a plain dict instead.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def scrape(self) -> bytes:
        """The metrics in Prometheus' text format, rows read and written brought up to date first."""
        rt = self._runtime()
        if rt is not None:
            flush_storage_rows(rt)
        return generate_latest(self.registry)

    # -- runtime.Telemetry --------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        self._runtime = weakref.ref(runtime)

    def request_started(self, worker: str | None, request: Any) -> Any:
        return time.perf_counter()

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        worker = self.worker
        self._child(self.request_duration, worker).observe(time.perf_counter() - token)
        self._child(self.requests, worker, str(status if status is not None else 500)).inc()
        if error is not None:
            self._child(self.errors, "worker").inc()

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        self._child(self.events, namespace, kind).inc()
        if kind == "rpc":
            self._child(self.rpc_calls, namespace).inc()
        return invoke

    def activated(self, namespace: str, object_id: Any) -> None:
        self._child(self.activations, namespace).inc()

    def evicted(self, namespace: str, object_id: Any) -> None:
        self._child(self.evictions, namespace).inc()

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        return time.perf_counter()

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None:
        self._child(self.commit_duration, namespace).observe(time.perf_counter() - token)
        if error is None:
            self._child(self.commits, namespace).inc()
        else:
            self._child(self.errors, "commit").inc()

    def storage_rows(self, namespace: str, read: int, written: int) -> None:
        if read > 0:
            self._child(self.rows_read, namespace).inc(read)
        if written > 0:
            self._child(self.rows_written, namespace).inc(written)

    def alarm_ran(self, namespace: str, outcome: str) -> None:
        self._child(self.alarm_runs, namespace, outcome).inc()
        if outcome != "success":
            self._child(self.errors, "alarm").inc()

    def websocket_message(self, namespace: str, direction: str) -> None:
        self._child(self.ws_messages, namespace, direction).inc()

    def error(self, kind: str, error: BaseException | None) -> None:
        self._child(self.errors, kind).inc()

    # No tracing here: the null telemetry's do-nothing methods.
    trace_context = NullTelemetry.trace_context
    resume_trace = NullTelemetry.resume_trace


class _Gauges(Collector):
    """Objects resident and hibernated, WebSockets open: counted from the runtime at scrape time."""

    def __init__(self, telemetry: PrometheusTelemetry) -> None:
        self._telemetry = weakref.ref(telemetry)

    def collect(self) -> Iterator[Metric]:
        telemetry = self._telemetry()
        rt = telemetry._runtime() if telemetry is not None else None
        families = (
            ("dohost_objects_resident", "Objects in memory", "resident"),
            ("dohost_objects_hibernated", "Objects hibernated with WebSockets connected", "hibernated"),
            ("dohost_websockets_open", "Client WebSockets connected to an object", "websockets"),
        )
        gauges = object_gauges(rt) if rt is not None else None
        for name, doc, field in families:
            family = GaugeMetricFamily(name, doc, labels=["namespace"])
            if gauges is not None:
                for namespace, value in sorted(getattr(gauges, field).items()):
                    family.add_metric([namespace], value)
            yield family
