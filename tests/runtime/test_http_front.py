"""The HTTP front: requests reach the Worker exactly as sent, responses come back whole."""

from __future__ import annotations

import httpx

from objects import Response, WorkerEntrypoint
from runtime import build_app, open_runtime


class Echo(WorkerEntrypoint):
    async def fetch(self, request):
        body = await request.text()
        return Response(
            f"{request.method} {request.url} {body}",
            status=201,
            headers={"x-seen": request.headers.get("x-test") or "-", "content-type": "text/plain"},
        )


async def test_a_request_reaches_the_worker_with_its_url_method_body_and_headers() -> None:
    async with open_runtime(bindings={}, entrypoint=Echo) as rt:
        app = build_app(lambda: rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com") as client:
            reply = await client.post("/a%20b/c?x=1&y=%2F", content=b"hello", headers={"x-test": "yes"})
    assert reply.status_code == 201
    assert reply.text == "POST http://example.com/a%20b/c?x=1&y=%2F hello"
    assert reply.headers["x-seen"] == "yes"
    assert reply.headers["content-length"] == str(len(reply.content))


async def test_a_body_over_the_limit_is_refused_before_the_worker_runs() -> None:
    calls = []

    class Counting(WorkerEntrypoint):
        async def fetch(self, request):
            calls.append(request)
            return Response("ran")

    async with open_runtime(bindings={}, entrypoint=Counting) as rt:
        app = build_app(lambda: rt, max_body_bytes=4)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com") as client:
            reply = await client.post("/", content=b"too long")
            health = await client.get("/__dohost/health")
    assert reply.status_code == 413
    assert calls == []
    assert health.json() == {"status": "ok"}
