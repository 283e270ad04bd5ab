"""A client's WebSocket messages are accepted up to Cloudflare's 32 MiB and refused with 1009 above it."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from js import WebSocketPair
from objects import DurableObject, Response, WorkerEntrypoint
from runtime import build_app, open_runtime
from runtime._http import WEBSOCKET_MAX_MESSAGE_BYTES, serve_http

pytestmark = pytest.mark.slow  # a real server on loopback


class Sizes(DurableObject):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        ws.send(str(len(message)))


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await self.env.SIZES.getByName("one").fetch(request)


async def test_a_message_over_hypercorns_16_mib_default_arrives_and_one_over_32_mib_closes_1009() -> None:
    async with open_runtime(bindings={"SIZES": Sizes}, entrypoint=Default) as rt:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(lambda task_status: serve_http(build_app(lambda: rt), port=0, task_status=task_status))
            url = binds[0].replace("http://", "ws://") + "/"
            with trio.fail_after(60):
                async with open_websocket_url(url) as ws:
                    await ws.send_message("a" * (17 * 1024 * 1024))
                    assert await ws.get_message() == str(17 * 1024 * 1024)
                    await ws.send_message("b" * (WEBSOCKET_MAX_MESSAGE_BYTES + 1))
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.get_message()
                    assert closed.value.reason.code == 1009
                    # trio-websocket 0.12 leaves its TCP stream open after a close the server started.
                    await ws._stream.aclose()
            nursery.cancel_scope.cancel()
