"""``/__dohost/metrics``: real counters after real traffic through the HTTP front (hypercorn on loopback)."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import open_websocket_url

from objects import DurableObject, Response, WebSocketPair, WorkerEntrypoint
from runtime import build_app, open_runtime, serve_http
from wrangler_compat.telemetry import METRIC_NAMES, PrometheusTelemetry, build_telemetry, metrics_route

pytestmark = pytest.mark.slow

WAIT = 10  # bounded waits on loopback; never reached when things work


def make_classes(alarm_ran: trio.Event) -> tuple[type, type]:
    class Counter(DurableObject):
        def __init__(self, ctx: Any, env: Any) -> None:
            super().__init__(ctx, env)
            ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

        def increment(self) -> int:
            sql = self.ctx.storage.sql
            sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
            return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])

        async def arm(self) -> None:
            await self.ctx.storage.setAlarm(1)  # long past: due at once

        async def alarm(self) -> None:
            alarm_ran.set()

        async def fetch(self, request: Any) -> Any:
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws: Any, message: Any) -> None:
            ws.send(f"echo {message}")

    class Worker(WorkerEntrypoint):
        async def fetch(self, request: Any) -> Any:
            path = request.url.split("/", 3)[3]
            stub = self.env.COUNTER.getByName("a")
            if path == "inc":
                return Response(str(await stub.increment()))
            if path == "alarm":
                await stub.arm()
                return Response("armed")
            if path == "boom":
                raise ValueError("boom")
            return await stub.fetch(request)

    return Counter, Worker


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_rpc_commits_rows_alarms_and_websocket_messages() -> None:
    alarm_ran = trio.Event()
    counter, worker = make_classes(alarm_ran)
    telemetry = build_telemetry(worker="counter-app")
    assert telemetry.metrics is not None
    async with open_runtime(bindings={"COUNTER": counter}, entrypoint=worker, telemetry=telemetry) as rt:
        app = build_app(lambda: rt, extra_routes=[metrics_route(telemetry.metrics)])
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            binds = await nursery.start(partial(serve_http, app, host="127.0.0.1", port=0, shutdown_trigger=stop.wait))
            base = binds[0]
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/inc")).text == "1"
                assert (await client.get("/inc")).text == "2"
                assert (await client.get("/boom")).status_code == 500
                assert (await client.get("/alarm")).text == "armed"
                with trio.fail_after(WAIT):
                    await alarm_ran.wait()
                    await rt.alarms.wait_idle()
                async with open_websocket_url(base.replace("http://", "ws://") + "/ws") as ws:
                    await ws.send_message("hi")
                    with trio.fail_after(WAIT):
                        assert await ws.get_message() == "echo hi"
                    during = samples((await client.get("/__dohost/metrics")).text)
                    assert await rt.evict("COUNTER", rt.env.COUNTER.idFromName("a"))
                    hibernated = samples((await client.get("/__dohost/metrics")).text)
                reply = await client.get("/__dohost/metrics")
            stop.set()
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(reply.text)

    assert value(after, "dohost_requests_total", worker="counter-app", status="200") == 3
    assert value(after, "dohost_requests_total", worker="counter-app", status="500") == 1
    assert value(after, "dohost_requests_total", worker="counter-app", status="101") == 1
    assert value(after, "dohost_request_duration_seconds_count", worker="counter-app") == 5
    assert value(after, "dohost_errors_total", kind="worker") == 1
    assert value(after, "dohost_rpc_calls_total", namespace="COUNTER") == 3  # increment x2, arm
    # Once at first use, once more when the hibernated socket's close woke it.
    assert value(after, "dohost_object_activations_total", namespace="COUNTER") == 2
    assert value(after, "dohost_object_evictions_total", namespace="COUNTER") == 1
    assert value(after, "dohost_commits_total", namespace="COUNTER") >= 3  # two increments, the alarm's set and delete
    assert value(after, "dohost_commit_duration_seconds_count", namespace="COUNTER") == value(
        after, "dohost_commits_total", namespace="COUNTER"
    )
    assert value(after, "dohost_storage_rows_read_total", namespace="COUNTER") == 2  # one row per SELECT ... one()
    assert value(after, "dohost_storage_rows_written_total", namespace="COUNTER") >= 2
    assert value(after, "dohost_alarm_runs_total", namespace="COUNTER", outcome="success") == 1
    assert value(after, "dohost_websocket_messages_total", namespace="COUNTER", direction="in") == 1
    assert value(after, "dohost_websocket_messages_total", namespace="COUNTER", direction="out") == 1

    assert value(during, "dohost_objects_resident", namespace="COUNTER") == 1
    assert value(during, "dohost_websockets_open", namespace="COUNTER") == 1
    assert value(during, "dohost_objects_hibernated", namespace="COUNTER") == 0
    assert value(hibernated, "dohost_objects_resident", namespace="COUNTER") == 0
    assert value(hibernated, "dohost_objects_hibernated", namespace="COUNTER") == 1
    assert value(hibernated, "dohost_websockets_open", namespace="COUNTER") == 1

    for metric, (kind, _, _) in METRIC_NAMES.items():
        assert f"# TYPE {metric} {kind}\n" in reply.text, metric
    assert not any("id" in dict(labels) for _, labels in after)  # never an object id as a label


async def test_two_hosts_in_one_process_count_apart() -> None:
    alarm_ran = trio.Event()
    counter, worker = make_classes(alarm_ran)
    one, two = PrometheusTelemetry(worker="one"), PrometheusTelemetry(worker="two")
    async with open_runtime(bindings={"COUNTER": counter}, entrypoint=worker, telemetry=one) as rt1:
        async with open_runtime(bindings={"COUNTER": counter}, entrypoint=worker, telemetry=two) as rt2:
            await rt1.fetch("http://x/inc")
            await rt1.fetch("http://x/inc")
            await rt2.fetch("http://x/inc")
    assert one.registry is not two.registry
    assert value(samples(one.scrape().decode()), "dohost_rpc_calls_total", namespace="COUNTER") == 2
    assert value(samples(two.scrape().decode()), "dohost_rpc_calls_total", namespace="COUNTER") == 1
