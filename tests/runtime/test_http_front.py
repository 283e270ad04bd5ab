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


class Headers(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(
            f"{request.headers.get('x-many')}|{request.body is None}|{request.method}",
            headers=[("x-b", "2"), ("set-cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")],
        )


async def test_repeated_request_headers_reach_the_worker_joined_and_response_headers_leave_sorted_with_each_cookie_apart() -> None:
    async with open_runtime(bindings={}, entrypoint=Headers) as rt:
        app = build_app(lambda: rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com") as client:
            reply = await client.get("/", headers=[("X-Many", "one"), ("x-many", "two")])
    assert reply.text == "one, two|True|GET"
    names = [k for k, _ in reply.headers.raw]
    assert names == [b"content-length", b"content-type", b"set-cookie", b"set-cookie", b"x-a", b"x-b"]
    assert reply.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_a_request_with_neither_content_length_nor_chunked_body_reaches_the_worker_without_a_body() -> None:
    async with open_runtime(bindings={}, entrypoint=Headers) as rt:
        app = build_app(lambda: rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com") as client:
            reply = await client.delete("/")
            posted = await client.post("/", content=b"x")
    assert reply.text == "None|True|DELETE"
    assert posted.text == "None|False|POST"


async def test_a_worker_class_whose_fetch_handler_is_replaced_between_requests_gets_the_new_one() -> None:
    class Swapped(WorkerEntrypoint):
        async def fetch(self, request):
            return Response("first")

    async def second(self):  # takes no request: called without one, as workerd does
        return Response("second")

    async with open_runtime(bindings={}, entrypoint=Swapped) as rt:
        app = build_app(lambda: rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://example.com") as client:
            first = (await client.get("/")).text
            Swapped.fetch = second  # type: ignore[method-assign]
            again = (await client.get("/")).text
    assert (first, again) == ("first", "second")


async def test_a_failing_request_the_framework_serves_is_not_reported_as_a_worker_request() -> None:
    from starlette.routing import Route

    async def boom(request: object) -> None:
        raise RuntimeError("the deploy API broke")

    reports: list[tuple[str, str, int]] = []
    async with open_runtime(bindings={}, entrypoint=Echo) as rt:
        app = build_app(
            lambda: rt,
            extra_routes=[Route("/__dohost/boom", boom)],
            on_request=lambda method, path, status, seconds: reports.append((method, path, status)),
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
            failed = await client.get("/__dohost/boom")
            served = await client.get("/x")
    assert failed.status_code == 500
    assert served.status_code == 201
    assert reports == [("GET", "/x", 201)]  # as for the framework's routes that succeed: not reported
