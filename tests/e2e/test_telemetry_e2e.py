"""Metrics and traces of a running ``dohost``: the metrics route and its token, OTLP export to a collector."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from _e2e_support import EXAMPLES, SERVE_COMMAND, run_dohost
from runtime import serve_http

pytestmark = pytest.mark.slow

TOKEN = "metrics-secret"


async def test_serve_keeps_metrics_behind_its_token_and_logs_request_ids(tmp_path: Path) -> None:
    env = {"DOHOST_DATA_DIR": str(tmp_path / "data"), "DOHOST_LISTEN": "127.0.0.1:0", "DOHOST_TOKEN": TOKEN}
    async with run_dohost([*SERVE_COMMAND, "--config", str(EXAMPLES / "counter")], env=env) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert [(await client.get("/a")).text for _ in range(2)] == ["1", "2"]
            assert (await client.get("/__dohost/metrics")).status_code == 401
            wrong = await client.get("/__dohost/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            scraped = await client.get("/__dohost/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200
        assert 'dohost_requests_total{status="200",worker="counter"} 2.0' in scraped.text
        assert 'dohost_rpc_calls_total{namespace="COUNTER"} 2.0' in scraped.text
        assert 'dohost_objects_resident{namespace="COUNTER"} 1.0' in scraped.text
        # serve commits with fsync, in a worker thread: still counted and timed.
        assert 'dohost_commits_total{namespace="COUNTER"} 2.0' in scraped.text
        assert 'dohost_commit_duration_seconds_count{namespace="COUNTER"} 2.0' in scraped.text
        assert await proc.terminate() == 0
    lines = [json.loads(line) for line in proc.lines if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request" and line["path"] == "/a"]
    assert len({line["request_id"] for line in requests}) == 2
    (activated,) = [line for line in lines if line.get("event") == "activated"]
    assert activated["object_name"] == "a" and activated["binding"] == "COUNTER"


async def test_dev_exports_one_trace_per_request_over_otlp_and_serves_metrics_openly(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def collect(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    collector = Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])])
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        binds = await nursery.start(partial(serve_http, collector, host="127.0.0.1", port=0, shutdown_trigger=stop.wait))
        argv = ["dohost", "dev", "--config", str(EXAMPLES / "counter"), "--port", "0",
                "--persist-to", str(tmp_path / "state")]
        async with run_dohost(argv, env={"OTEL_EXPORTER_OTLP_ENDPOINT": binds[0]}) as proc:
            async with httpx.AsyncClient(base_url=proc.url) as client:
                assert (await client.get("/a", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})).text == "1"
                metrics = await client.get("/__dohost/metrics")
            assert metrics.status_code == 200 and "dohost_commits_total" in metrics.text
            assert await proc.terminate() == 0  # shutting down flushes the batched spans
        stop.set()
    spans = []
    for body in received:
        export = ExportTraceServiceRequest.FromString(body)
        spans += [s for rs in export.resource_spans for ss in rs.scope_spans for s in ss.spans]
    names = {s.name for s in spans}
    assert {"GET /a", "COUNTER.increment", "COUNTER rpc increment", "COUNTER commit"} <= names
    assert {s.trace_id.hex() for s in spans} == {"ab" * 16}  # the incoming traceparent's trace
