"""A WebSocket Worker written as Cloudflare's Python docs write one, under ``dohost dev`` and the pytest plugin.

The project (written into a temporary folder) has a hibernating object
(``ctx.acceptWebSocket``, ``webSocketClose`` echoing the close as
Cloudflare's examples do), an object using ``server.accept()`` with event
listeners, and a Worker that refuses a bad upgrade with 426 / 403. A real
client library (trio-websocket) checks, over real sockets, that close codes
and reasons arrive as sent, that an abrupt drop is 1006 with ``wasClean``
false, that refused upgrades reach the client, and that a refused close
code raises Cloudflare's error.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest
import trio
import wsproto
import wsproto.events
from trio_websocket import ConnectionRejected, open_websocket_url, wrap_client_stream

from _e2e_support import run_dohost  # noqa: E402

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]

WRANGLER = """\
{
  "name": "websocket-hibernation-server",
  "main": "src/entry.py",
  "compatibility_date": "2026-11-01",
  "compatibility_flags": ["python_workers"],
  "durable_objects": {
    "bindings": [
      {"name": "WEBSOCKET_HIBERNATION_SERVER", "class_name": "WebSocketHibernationServer"},
      {"name": "WEBSOCKET_SERVER", "class_name": "WebSocketServer"}
    ]
  },
  "migrations": [{"tag": "v1", "new_sqlite_classes": ["WebSocketHibernationServer", "WebSocketServer"]}]
}
"""

ENTRY = '''\
from urllib.parse import urlparse

from js import WebSocketPair
from workers import DurableObject, Response, WorkerEntrypoint


class WebSocketHibernationServer(DurableObject):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        if message == "close with 1006":
            try:
                ws.close(1006, "not allowed")
            except Exception as e:
                ws.send(f"{type(e).__name__}: {e}")
            return
        ws.send(f"[Durable Object] message: {message}, connections: {len(self.ctx.getWebSockets())}")

    async def webSocketClose(self, ws, code, reason, wasClean):
        closes = await self.ctx.storage.get("closes") or []
        closes.append([code, reason, wasClean])
        await self.ctx.storage.put("closes", closes)
        print(f"hibernatable close {code} {reason!r} {wasClean}", flush=True)
        if code != 1006:
            ws.close(code, reason)

    async def closes(self):
        return await self.ctx.storage.get("closes") or []


class WebSocketServer(DurableObject):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        server.accept()

        def on_message(event):
            server.send(f"[Durable Object] message: {event.data}")

        async def on_close(event):
            await self.ctx.storage.put("last_close", [event.code, event.reason, event.wasClean])
            print(f"accepted close {event.code} {event.reason!r} {event.wasClean}", flush=True)

        server.addEventListener("message", on_message)
        server.addEventListener("close", on_close)
        return Response(None, status=101, web_socket=client)

    async def last_close(self):
        return await self.ctx.storage.get("last_close")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path in ("/websocket", "/accepted"):
            upgrade_header = request.headers.get("Upgrade")
            if not upgrade_header or upgrade_header != "websocket":
                return Response("Durable Object expected Upgrade: websocket", status=426)
            ns = self.env.WEBSOCKET_HIBERNATION_SERVER if path == "/websocket" else self.env.WEBSOCKET_SERVER
            return await ns.getByName("foo").fetch(request)
        if path == "/echo":
            client, server = WebSocketPair.new().object_values()
            server.accept()
            server.addEventListener("message", lambda event: server.send(f"[Worker] {event.data}"))
            server.addEventListener("close", lambda event: print(f"worker close {event.code} {event.reason!r}", flush=True))
            return Response(None, status=101, web_socket=client)
        if path == "/private":
            return Response("This room is private", status=403, headers={"x-room": "private"})
        if path == "/closes":
            stub = self.env.WEBSOCKET_HIBERNATION_SERVER.getByName("foo")
            return Response.json(await stub.closes())
        return Response("Not found", status=404)
'''


def write_project(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "wrangler.jsonc").write_text(WRANGLER)
    (folder / "src" / "entry.py").write_text(ENTRY)
    return folder


async def refused(url: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> ConnectionRejected:
    host, port = url.removeprefix("ws://").split(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:  # trio-websocket leaks it on rejection
        with pytest.raises(BaseExceptionGroup) as group:
            async with trio.open_nursery() as nursery:
                await wrap_client_stream(nursery, stream, host, path, extra_headers=headers)
    matched, _ = group.value.split(ConnectionRejected)
    while isinstance(matched, BaseExceptionGroup):
        matched = matched.exceptions[0]
    assert isinstance(matched, ConnectionRejected)
    return matched


async def drop(url: str, path: str) -> None:
    """A client that vanishes after the handshake, without a Close frame."""
    host, port = url.removeprefix("ws://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(wsproto.events.Request(host=host, target=path)))
    with trio.fail_after(10):
        while not any(isinstance(e, wsproto.events.AcceptConnection) for e in ws.events()):
            ws.receive_data(await stream.receive_some())
    await stream.aclose()


async def test_close_codes_refusals_and_listeners_under_dohost_dev(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    argv = ["dohost", "dev", "--config", str(project), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        base = proc.url.replace("http://", "ws://")

        # Hibernatable: codes and reasons as sent, echoed back by webSocketClose.
        for code, reason in [(1000, ""), (1001, "tab closed"), (4001, "custom reason")]:
            mark = proc.mark()
            async with open_websocket_url(f"{base}/websocket") as ws:
                await ws.send_message("hello")
                assert (await ws.get_message()).startswith("[Durable Object] message: hello")
                await ws.aclose(code, reason)
                assert ws.closed is not None and (ws.closed.code, ws.closed.reason or "") == (code, reason)
            await proc.wait_for(rf"hibernatable close {code} {reason!r} True", after=mark)
        mark = proc.mark()
        await drop(base, "/websocket")
        await proc.wait_for(r"hibernatable close 1006 'WebSocket disconnected without sending Close frame\.' False", after=mark)

        # A close code Cloudflare refuses raises its error and changes nothing.
        async with open_websocket_url(f"{base}/websocket") as ws:
            await ws.send_message("close with 1006")
            assert await ws.get_message() == "WebSocketUsageError: Invalid WebSocket close code: 1006."
            await ws.send_message("still open")
            assert (await ws.get_message()).startswith("[Durable Object] message: still open")

        # accept() with event listeners.
        for code, reason in [(1000, ""), (4001, "custom reason")]:
            mark = proc.mark()
            async with open_websocket_url(f"{base}/accepted") as ws:
                await ws.send_message(b"bytes stay bytes")
                assert await ws.get_message() == "[Durable Object] message: b'bytes stay bytes'"
                await ws.aclose(code, reason)
            await proc.wait_for(rf"accepted close {code} {reason!r} True", after=mark)
        mark = proc.mark()
        await drop(base, "/accepted")
        await proc.wait_for(r"accepted close 1006 'WebSocket disconnected without sending Close frame\.' False", after=mark)

        # A Worker's own socket (no object).
        mark = proc.mark()
        async with open_websocket_url(f"{base}/echo") as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "[Worker] hi"
            await ws.aclose(4003, "worker done")
        await proc.wait_for(r"worker close 4003 'worker done'", after=mark)

        # Refused upgrades reach the client whole.
        private = await refused(base, "/private")
        assert (private.status_code, private.body) == (403, b"This room is private")
        assert (b"x-room", b"private") in private.headers
        async with httpx.AsyncClient() as http:
            plain = await http.get(f"{proc.url}/websocket")
            closes = await http.get(f"{proc.url}/closes")
        assert (plain.status_code, plain.text) == (426, "Durable Object expected Upgrade: websocket")
        assert closes.json()[:3] == [[1000, "", True], [1001, "tab closed", True], [4001, "custom reason", True]]


def test_close_codes_reach_the_objects_under_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    write_project(pytester.path / "project")
    (pytester.path / "pytest.ini").write_text(
        "[pytest]\ntrio_mode = true\naddopts = -p no:cacheprovider\nfilterwarnings = error\n"
        "dohost_config = project\n"
    )
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import pytest

            async def test_a_hibernatable_close_arrives_as_sent(dohost):
                ws = await dohost.connect_websocket("ws://example.com/websocket")
                await ws.send("hi")
                assert (await ws.receive()).startswith("[Durable Object] message: hi")
                await ws.close(4001, "custom reason")
                stub = dohost.env.WEBSOCKET_HIBERNATION_SERVER.getByName("foo")
                assert await stub.closes() == [[4001, "custom reason", True]]

            async def test_an_accepted_socket_delivers_to_its_listeners(dohost):
                ws = await dohost.connect_websocket("ws://example.com/accepted")
                await ws.send("hi")
                assert await ws.receive() == "[Durable Object] message: hi"
                await ws.close(1001, "bye")
                stub = dohost.env.WEBSOCKET_SERVER.getByName("foo")
                assert await stub.last_close() == [1001, "bye", True]

            async def test_a_refused_upgrade_is_a_connection_error(dohost):
                with pytest.raises(ConnectionError, match="status 403"):
                    await dohost.connect_websocket("ws://example.com/private")
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)


def test_the_project_is_valid_json() -> None:
    assert json.loads(WRANGLER)["durable_objects"]["bindings"][1]["class_name"] == "WebSocketServer"
