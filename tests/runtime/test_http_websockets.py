"""WebSockets through the real HTTP front (hypercorn on loopback) with a real client library.

Close codes and reasons reach the object as sent (pgjones/hypercorn#127 is
worked around in ``runtime._hypercorn_ws``), an abrupt TCP drop is 1006 with
wasClean false, refused upgrades reach the client whole, and sockets
accepted with ``accept()`` deliver to their listeners — in an object and in
a Worker.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator

import pytest
import trio
import wsproto
import wsproto.events
from wsproto.frame_protocol import CloseReason
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url, wrap_client_stream

from objects import DurableObject, Response, WebSocketPair, WorkerEntrypoint
from runtime import build_app, open_runtime
from runtime._http import serve_http

pytestmark = pytest.mark.slow

WAIT = 10  # bounded waits on loopback; never reached when things work


class Seen:
    """What the objects saw, with an event per arrival (no sleeping)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = trio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> list[Any]:
        with trio.fail_after(WAIT):
            while len(self.items) < count:
                await self._changed.wait()
        return self.items


def make_classes(seen: Seen) -> tuple[type, type]:
    class Room(DurableObject):
        async def fetch(self, request):
            if request.headers.get("x-refuse"):
                return Response("go away", status=int(request.headers["x-refuse"]), headers={"x-why": "refused"})
            client, server = WebSocketPair.new().object_values()
            if request.url.endswith("/plain"):
                server.accept()

                async def on_message(event):
                    server.send(event.data)  # str stays str, bytes stay bytes

                def on_close(event):
                    seen.add(("close", event.code, event.reason, event.wasClean))
                    server.close(event.code if event.code not in (1005, 1006) else 1000, event.reason)

                server.addEventListener("message", on_message)
                server.add_event_listener("close", on_close)
            else:
                self.ctx.acceptWebSocket(server)
            return Response(None, status=101, web_socket=client)

        async def webSocketMessage(self, ws, message):
            ws.send(message)

        async def webSocketClose(self, ws, code, reason, wasClean):
            seen.add(("close", code, reason, wasClean))
            if code not in (1005, 1006):
                ws.close(code, reason)  # Cloudflare's examples echo the close

    class Worker(WorkerEntrypoint):
        async def fetch(self, request):
            if request.url.endswith("/worker"):
                client, server = WebSocketPair.new().object_values()
                server.accept()
                server.addEventListener("message", lambda event: server.send(f"worker: {event.data}"))
                server.addEventListener(
                    "close", lambda event: seen.add(("worker-close", event.code, event.reason, event.wasClean))
                )
                return Response(None, status=101, web_socket=client)
            return await self.env.ROOM.getByName("r").fetch(request)

    return Room, Worker


@asynccontextmanager
async def serving(seen: Seen, **runtime_options: Any) -> AsyncIterator[tuple[str, Any]]:
    room, worker = make_classes(seen)
    async with open_runtime(bindings={"ROOM": room}, entrypoint=worker, **runtime_options) as rt:
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            binds = await nursery.start(
                partial(serve_http, build_app(lambda: rt), host="127.0.0.1", port=0, shutdown_trigger=stop.wait)
            )
            yield binds[0].replace("http://", "ws://"), rt
            stop.set()


async def drop_connection(url: str, *, close_frame: bool = False) -> None:
    """Open a WebSocket by hand, then cut the TCP connection (after an empty Close frame if asked)."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    path = "/" + url.removeprefix("ws://").split("/", 1)[1]
    stream = await trio.open_tcp_stream(host, int(port))
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(wsproto.events.Request(host=host, target=path)))
    with trio.fail_after(WAIT):
        while not any(isinstance(e, wsproto.events.AcceptConnection) for e in ws.events()):
            ws.receive_data(await stream.receive_some())
    if close_frame:
        # wsproto sends an empty Close frame (no status code) for this enum member
        await stream.send_all(ws.send(wsproto.events.CloseConnection(code=CloseReason.NO_STATUS_RCVD)))
        with trio.fail_after(WAIT):
            while not any(isinstance(e, wsproto.events.CloseConnection) for e in ws.events()):
                ws.receive_data(await stream.receive_some())
    await stream.aclose()


@pytest.mark.parametrize("path", ["/hib", "/plain"])
async def test_a_close_frame_without_a_code_arrives_as_1005_clean(path: str) -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        await drop_connection(base + path, close_frame=True)
        assert await seen.wait_for(1) == [("close", 1005, "", True)]


@pytest.mark.parametrize("path", ["/hib", "/plain"])
@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "going"), (4001, "custom reason")])
async def test_a_client_close_code_and_reason_reach_the_object_as_sent(path: str, code: int, reason: str) -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        async with open_websocket_url(base + path) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
            await ws.aclose(code, reason)
            assert ws.closed is not None and ws.closed.code == code  # the close was echoed
        assert await seen.wait_for(1) == [("close", code, reason, True)]


@pytest.mark.parametrize("path", ["/hib", "/plain"])
async def test_an_abrupt_drop_reaches_the_object_as_1006_not_clean(path: str) -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        await drop_connection(base + path)
        assert await seen.wait_for(1) == [("close", 1006, "WebSocket disconnected without sending Close frame.", False)]


async def test_messages_keep_their_type_through_an_accepted_socket() -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        async with open_websocket_url(base + "/plain") as ws:
            await ws.send_message(b"\x00\x01")
            assert await ws.get_message() == b"\x00\x01"
            await ws.send_message("text")
            assert await ws.get_message() == "text"


@pytest.mark.parametrize("status", [400, 403, 426])
async def test_a_refused_upgrade_reaches_the_client_with_its_status_headers_and_body(status: int) -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        host, port = base.removeprefix("ws://").split(":")
        # trio-websocket leaves its socket open after a rejection: own the stream.
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            with pytest.raises(BaseExceptionGroup) as group:
                async with trio.open_nursery() as nursery:
                    headers = [(b"x-refuse", str(status).encode())]
                    await wrap_client_stream(nursery, stream, host, "/hib", extra_headers=headers)
    matched, _ = group.value.split(ConnectionRejected)
    assert matched is not None
    while isinstance(matched, BaseExceptionGroup):
        matched = matched.exceptions[0]
    rejected = matched
    assert isinstance(rejected, ConnectionRejected)
    assert rejected.status_code == status
    assert (b"x-why", b"refused") in rejected.headers
    assert rejected.body == b"go away"


async def test_a_worker_can_accept_a_websocket_itself() -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        async with open_websocket_url(base + "/worker") as ws:
            await ws.send_message("ping")
            assert await ws.get_message() == "worker: ping"
            await ws.aclose(4002, "done")
        assert await seen.wait_for(1) == [("worker-close", 4002, "done", True)]


async def test_an_object_with_an_open_accepted_socket_stays_in_memory(autojump_clock: Any) -> None:
    # In-process client: fake time and real sockets don't mix.
    seen = Seen()
    room, worker = make_classes(seen)
    async with open_runtime(bindings={"ROOM": room}, entrypoint=worker, idle_timeout=10.0) as rt:
        ws = await rt.connect_websocket("ws://example.com/plain")
        await trio.sleep(3600)  # an hour of idleness
        assert [s.state for s in rt.statistics()] == ["idle"]
        await ws.send("still here")
        assert await ws.receive() == "still here"
        await ws.disconnect(1000, "bye")
        assert await seen.wait_for(1) == [("close", 1000, "bye", True)]
        assert (ws.close_code, ws.close_reason) == (1000, "bye")  # the close was answered
        await trio.sleep(60)
        assert [s.state for s in rt.statistics()] == ["evicted"]


async def test_a_closed_connection_refuses_further_messages_on_the_client() -> None:
    seen = Seen()
    async with serving(seen) as (base, _):
        async with open_websocket_url(base + "/hib") as ws:
            await ws.aclose(1000)
            with pytest.raises(ConnectionClosed):
                await ws.send_message("late")


async def test_the_close_code_fix_leaves_other_hypercorn_apps_alone() -> None:
    seen = Seen()

    async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        seen.add((message["type"], message.get("code")))

    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        binds = await nursery.start(partial(serve_http, bare_app, host="127.0.0.1", port=0, shutdown_trigger=stop.wait))
        async with open_websocket_url(binds[0].replace("http://", "ws://") + "/") as ws:
            await ws.aclose(4001, "bye")
        # hypercorn's own report for an unmarked app (pgjones/hypercorn#127).
        assert await seen.wait_for(1) == [("websocket.disconnect", 1006)]
        stop.set()


async def test_evicting_an_object_closes_the_sockets_it_accepted_and_drops_later_events() -> None:
    seen = Seen()
    room, worker = make_classes(seen)
    async with open_runtime(bindings={"ROOM": room}, entrypoint=worker) as rt:
        ws = await rt.connect_websocket("ws://example.com/plain")
        await ws.send("hi")
        assert await ws.receive() == "hi"
        await rt.evict("ROOM", rt.env.ROOM.idFromName("r"))
        with pytest.raises(ConnectionError, match=r"^WebSocket closed by the object: code=1001 reason='Durable Object evicted'$"):
            await ws.receive()
        await ws.send("after")  # the listeners left with the instance: nothing runs, nothing breaks
        assert ws.receive_nowait() is None
        await ws.disconnect(1000)
        assert seen.items == []
        assert [s.state for s in rt.statistics()] == ["evicted"]


async def test_a_listener_send_after_a_write_waits_for_the_commit_and_a_failed_commit_drops_it(call_log: Any) -> None:
    class Writer(DurableObject):
        async def fetch(self, request):
            client, server = WebSocketPair.new().object_values()
            server.accept()

            def on_message(event):
                self.ctx.storage.kv.put("last", event.data)
                server.send(f"stored {event.data}")

            server.addEventListener("message", on_message)
            return Response(None, status=101, web_socket=client)

    class Front(WorkerEntrypoint):
        async def fetch(self, request):
            return await self.env.W.getByName("w").fetch(request)

    async with open_runtime(bindings={"W": Writer}, entrypoint=Front, observer=call_log) as rt:
        ws = await rt.connect_websocket("ws://example.com/")
        await ws.send("one")
        assert await ws.receive() == "stored one"
        assert ("commit", "W") in call_log.calls
        call_log.fail_next_commits = 1
        await ws.send("two")
        with pytest.raises(ConnectionError, match=r"^WebSocket closed by the object: code=1011 "):
            await ws.receive()


async def test_an_auto_response_does_not_answer_an_accepted_socket_and_listeners_run_in_order() -> None:
    from objects import WebSocketRequestResponsePair

    calls: list[str] = []

    class Auto(DurableObject):
        async def fetch(self, request):
            self.ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))
            client, server = WebSocketPair.new().object_values()
            server.accept()

            async def first(event):
                calls.append(f"first {event.data}")
                server.send(f"listener: {event.data}")

            server.addEventListener("message", first)
            server.addEventListener("message", lambda event: calls.append(f"second {event.data}"))
            return Response(None, status=101, web_socket=client)

    class Front(WorkerEntrypoint):
        async def fetch(self, request):
            return await self.env.A.getByName("a").fetch(request)

    async with open_runtime(bindings={"A": Auto}, entrypoint=Front) as rt:
        ws = await rt.connect_websocket("ws://example.com/")
        await ws.send("ping")
        assert await ws.receive() == "listener: ping"
        assert calls == ["first ping", "second ping"]
