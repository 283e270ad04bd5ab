"""Log lines carry the request id, and the binding, id and name of the object that logged them."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import build_app, open_runtime
from wrangler_compat.cli._logging import configured_logging, log_request
from wrangler_compat.telemetry import build_telemetry

note = logging.getLogger("dohost.test-notes")


class Desk(DurableObject):
    async def fetch(self, request: Any) -> Any:
        note.info("inside the object")
        return Response("ok")


class Worker(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        return await self.env.DESK.getByName("front").fetch(request)


async def test_json_lines_name_the_request_and_the_object() -> None:
    out = io.StringIO()
    telemetry = build_telemetry(metrics=False)
    with configured_logging("json", stream=out):
        async with open_runtime(bindings={"DESK": Desk}, entrypoint=Worker, telemetry=telemetry) as rt:
            app = build_app(lambda: rt, on_request=log_request)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk.test") as client:
                await client.get("/one")
                await client.get("/two", headers={"cf-ray": "8f1e2d3c4b5a6978-LHR"})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    inside = [line for line in lines if line["message"] == "inside the object"]
    requests = [line for line in lines if line.get("event") == "request"]
    desk_id = rt.env.DESK.idFromName("front").toString()
    assert [(l["binding"], l["object_id"], l["object_name"]) for l in inside] == [("DESK", desk_id, "front")] * 2
    assert [l["request_id"] for l in inside] == [l["request_id"] for l in requests]
    first, second = (l["request_id"] for l in requests)
    assert first != second and second == "8f1e2d3c4b5a6978-LHR"
    assert "object_id" not in requests[0]  # the front's line is not inside an object


def test_the_readme_lists_every_metric_with_its_type_and_labels() -> None:
    from pathlib import Path

    from wrangler_compat.telemetry import METRIC_NAMES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, (kind, labels, what) in METRIC_NAMES.items():
        assert f"| `{name}` | {kind} | {labels} | {what} |" in readme, name
