"""The request path's shortcuts behave as the general path does for the cases they skip.

The HTTP front tests the scope inline, a handler's asyncio task enters
``asyncio.all_tasks()`` without ``WeakSet.add``, an RPC result of a plain
type skips ``inspect.isawaitable``, a value settles an event without an
``outcome.Value``, and ``TaskOwner.active`` is a field kept up to date.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import build_app, open_runtime
from runtime._asyncio import TaskOwner
from runtime._asyncio import _task as task_module

SEEN: list[Any] = []


class Tasks(WorkerEntrypoint):
    async def fetch(self, request):
        me = asyncio.current_task()
        SEEN.append(me)
        return Response(f"{me is not None}|{me in asyncio.all_tasks()}")


async def test_a_worker_handler_that_never_yields_is_in_all_tasks_while_it_runs_and_gone_after() -> None:
    SEEN.clear()
    refs = task_module._TASK_REFS
    before = len(refs) if refs is not None else 0
    async with open_runtime(bindings={}, entrypoint=Tasks) as rt:
        for _ in range(20):
            assert await (await rt.fetch("http://w/")).text() == "True|True"
        running = asyncio.all_tasks(rt.loop)
        assert all(task.done() and task not in running for task in SEEN)
    if refs is not None:
        assert len(refs) == before  # no entry left behind, dead or alive


class SelfCancelling(WorkerEntrypoint):
    async def fetch(self, request):
        asyncio.current_task().cancel("enough")
        await asyncio.sleep(0)
        return Response("not reached")


async def test_a_worker_handler_cancelling_its_own_task_is_an_ordinary_error_for_its_caller() -> None:
    async with open_runtime(bindings={}, entrypoint=SelfCancelling) as rt:
        with pytest.raises(RuntimeError, match="the asyncio task running this handler was cancelled: enough"):
            await rt.fetch("http://w/")
        app = build_app(lambda: rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
            assert (await client.get("/")).status_code == 500


class _AwaitableText(str):
    """A str that is awaitable: not the exact type the delivery shortcut skips."""

    def __await__(self):
        return asyncio.sleep(0, f"awaited {self}").__await__()


class Results(DurableObject):
    def text(self):
        return "plain"

    def table(self):
        return {"rows": [1, 2]}

    def awaitable_text(self):
        return _AwaitableText("x")


async def test_plain_results_are_returned_and_an_awaitable_subclass_of_str_is_awaited() -> None:
    async with open_runtime(bindings={"R": Results}) as rt:
        stub = rt.env.R.getByName("a")
        assert await stub.text() == "plain"
        assert await stub.table() == {"rows": [1, 2]}
        assert await stub.awaitable_text() == "awaited x"


async def test_an_event_settled_with_a_value_gives_it_to_every_await() -> None:
    async with open_runtime(bindings={"R": Results}) as rt:
        event = rt.send_method("R", rt.env.R.idFromName("a"), "text", (), {})
        assert (await event, await event, await event.result()) == ("plain", "plain", "plain")


class _Timer:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


async def test_an_owner_is_active_exactly_while_it_has_a_task_or_a_timer() -> None:
    async with trio.open_nursery() as nursery:
        woken: list[bool] = []
        owner = TaskOwner("test", nursery, on_idle=lambda: woken.append(True))
        assert not owner.active
        release = trio.Event()
        owner.spawn(release.wait)
        assert owner.active
        timer = _Timer()
        owner.track(timer)
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert owner.active and not woken  # the timer is still pending
        owner.untrack(timer)
        assert not owner.active and woken == [True]
        owner.track(timer)
        assert owner.active
        owner.close()
        assert not owner.active and timer.cancelled


async def test_lifespan_and_methods_the_worker_front_does_not_take_go_to_the_framework() -> None:
    async with open_runtime(bindings={}, entrypoint=Tasks) as rt:
        app = build_app(lambda: rt)
        incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return next(incoming)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as client:
            assert (await client.request("PROPFIND", "/x")).status_code == 405
            assert (await client.get("/__dohost/health")).json() == {"status": "ok"}


def test_a_plain_text_response_leaves_with_the_headers_the_general_path_gives_and_changed_ones_take_that_path() -> None:
    from objects import wire_headers

    plain = Response("hello")
    assert wire_headers(plain, 5) == [(b"content-length", b"5"), (b"content-type", b"text/plain;charset=UTF-8")]
    assert wire_headers(Response("x" * 2000), 2000)[0] == (b"content-length", b"2000")
    html = Response("hello")
    html.headers.set("content-type", "text/html")
    assert wire_headers(html, 5) == [(b"content-length", b"5"), (b"content-type", b"text/html")]
    twice = Response("hello")
    twice.headers.append("content-type", "text/x")
    assert wire_headers(twice, 5) == [(b"content-length", b"5"),
                                      (b"content-type", b"text/plain;charset=UTF-8, text/x")]
    more = Response("hello")
    more.headers.set("a-first", "1")
    assert wire_headers(more, 5) == [(b"content-length", b"5"), (b"a-first", b"1"),
                                     (b"content-type", b"text/plain;charset=UTF-8")]
    built = Response("hello", headers={"content-type": "text/plain;charset=UTF-8"})
    assert wire_headers(built, 5) == wire_headers(plain, 5)


class Url(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(f"{request.method} {request.url} {request.headers.get('x-a')}")


async def test_the_url_comes_from_the_last_host_header_or_else_the_server_address() -> None:
    async with open_runtime(bindings={}, entrypoint=Url) as rt:
        app = build_app(lambda: rt)
        bodies: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])

        def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
            return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                    "scheme": "https", "path": "/a b", "raw_path": b"/a%20b", "query_string": b"q=1",
                    "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000), "server": ("10.0.0.1", 8443)}

        await app(scope([(b"x-a", b"1"), (b"x-a", b"2")]), receive, send)
        await app(scope([(b"host", b"first"), (b"host", b"second:81")]), receive, send)
    assert bodies == [b"GET https://10.0.0.1:8443/a%20b?q=1 1, 2", b"GET https://second:81/a%20b?q=1 None"]


class Counter(DurableObject):
    def increment(self):
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"]

    def read(self):
        return "still here"


async def test_awaiting_a_call_in_a_cancelled_scope_is_cancelled_whether_or_not_it_waits_for_a_commit() -> None:
    async with open_runtime(bindings={"C": Counter}, durability="full") as rt:
        stub = rt.env.C.getByName("a")
        assert await stub.increment() == 1
        results: list[Any] = []
        for call in (stub.increment, stub.read):  # a write waits for its commit; a read is settled at once
            with trio.CancelScope() as scope:
                scope.cancel()
                results.append(await call())
            assert scope.cancelled_caught
        assert results == []
        assert await stub.increment() == 3  # the cancelled caller's write was committed all the same
