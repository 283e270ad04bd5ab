"""OpenTelemetry traces: one request followed across two objects, with an in-memory exporter."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import open_runtime
from wrangler_compat.telemetry import build_telemetry


class Ledger(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS entries(n INTEGER)")

    def record(self, n: int) -> int:
        self.ctx.storage.sql.exec("INSERT INTO entries VALUES (?)", n)
        return int(self.ctx.storage.sql.exec("SELECT count(*) AS c FROM entries").one()["c"])

    def fail(self) -> None:
        raise ValueError("no such entry")


class Front(DurableObject):
    async def fetch(self, request: Any) -> Any:
        self.ctx.storage.kv.put("seen", True)
        count = await self.env.LEDGER.getByName("books").record(7)
        return Response(f"recorded {count}")


class Worker(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        if request.url.endswith("/fail"):
            try:
                await self.env.LEDGER.getByName("books").fail()
            except Exception:
                return Response("failed", status=500)
        return await self.env.FRONT.getByName("desk").fetch(request)


def traced() -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return build_telemetry(worker="shop", metrics=False, tracer_provider=provider), exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, (name, [s.name for s in spans])
    return matches[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_request_is_one_trace_across_two_objects_with_spans_nested_in_call_order() -> None:
    telemetry, exporter = traced()
    async with open_runtime(bindings={"FRONT": Front, "LEDGER": Ledger}, entrypoint=Worker, telemetry=telemetry) as rt:
        response = await rt.fetch("http://shop.test/checkout")
        assert await response.text() == "recorded 1"
    spans = exporter.get_finished_spans()

    request = by_name(spans, "GET /checkout")
    front_call = by_name(spans, "FRONT.fetch")
    front_event = by_name(spans, "FRONT fetch fetch")
    ledger_call = by_name(spans, "LEDGER.record")
    ledger_event = by_name(spans, "LEDGER rpc record")
    ledger_commit = by_name(spans, "LEDGER commit")
    front_commit = by_name(spans, "FRONT commit")

    assert {s.context.trace_id for s in spans} == {request.context.trace_id}  # one trace
    assert request.parent is None and request.kind is SpanKind.SERVER
    assert parent_of(front_call) == request.context.span_id and front_call.kind is SpanKind.CLIENT
    assert parent_of(front_event) == front_call.context.span_id and front_event.kind is SpanKind.SERVER
    assert parent_of(ledger_call) == front_event.context.span_id
    assert parent_of(ledger_event) == ledger_call.context.span_id
    assert parent_of(ledger_commit) == ledger_event.context.span_id
    assert parent_of(front_commit) == front_event.context.span_id
    # Each child starts after its parent did; the request ends last.
    chain = [request, front_call, front_event, ledger_call, ledger_event, ledger_commit]
    assert [s.start_time for s in chain] == sorted(s.start_time for s in chain)
    assert request.end_time == max(s.end_time for s in spans)
    assert ledger_event.attributes["dohost.object.name"] == "books"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["dohost.worker"] == "shop"


async def test_an_incoming_traceparent_is_continued() -> None:
    telemetry, exporter = traced()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with open_runtime(bindings={"FRONT": Front, "LEDGER": Ledger}, entrypoint=Worker, telemetry=telemetry) as rt:
        await rt.fetch("http://shop.test/checkout", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    spans = exporter.get_finished_spans()
    request = by_name(spans, "GET /checkout")
    assert format(request.context.trace_id, "032x") == trace_id
    assert format(parent_of(request) or 0, "016x") == parent_id
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}


async def test_an_error_in_an_object_marks_its_span_and_the_stub_call() -> None:
    telemetry, exporter = traced()
    async with open_runtime(bindings={"FRONT": Front, "LEDGER": Ledger}, entrypoint=Worker, telemetry=telemetry) as rt:
        assert (await rt.fetch("http://shop.test/fail")).status == 500
    spans = exporter.get_finished_spans()
    event = by_name(spans, "LEDGER rpc fail")
    assert event.status.status_code is StatusCode.ERROR
    assert event.events[0].attributes["exception.type"] == "ValueError"
    assert by_name(spans, "LEDGER.fail").status.status_code is StatusCode.ERROR
    assert by_name(spans, "GET /fail").status.status_code is StatusCode.ERROR
