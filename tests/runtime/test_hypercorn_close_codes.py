"""``runtime._hypercorn_ws``: a client's Close frame reaches the app with its code, however soon it comes."""

from __future__ import annotations

from typing import Any

from hypercorn.config import Config
from hypercorn.protocol.events import Data, Request, Response, StreamClosed
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection

from runtime._hypercorn_ws import CloseCodeWSStream, mark_app


class _App:
    """Stands for the ASGI app hypercorn wraps; marked like dohost's."""


class _TaskGroup:
    def __init__(self, received: list[dict[str, Any]]) -> None:
        self.received = received

    async def spawn_app(self, app: Any, config: Any, scope: Any, send: Any) -> Any:
        async def put(message: dict[str, Any]) -> None:
            self.received.append(message)

        return put


async def test_a_close_frame_the_client_sends_right_behind_the_101_keeps_its_code() -> None:
    app = _App()
    mark_app(app)
    received: list[dict[str, Any]] = []
    client = Connection(ConnectionType.CLIENT)
    stream: CloseCodeWSStream

    async def send(event: Any) -> None:
        if isinstance(event, Response):
            # The 101 is on its way: the client answers with its Close before the
            # server's accept has returned (the reading task takes it meanwhile).
            await stream.handle(Data(stream_id=1, data=client.send(CloseConnection(code=4001, reason="bye"))))
        elif isinstance(event, StreamClosed):
            await stream.handle(event)

    stream = CloseCodeWSStream(app, Config(), None, _TaskGroup(received), False, None, None, send, 1)  # type: ignore[arg-type]
    headers = [(b"host", b"x"), (b"connection", b"upgrade"), (b"upgrade", b"websocket"),
               (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"sec-websocket-version", b"13")]
    await stream.handle(Request(stream_id=1, headers=headers, http_version="1.1", method="GET", raw_path=b"/",
                                state={}))  # type: ignore[arg-type]
    await stream.app_send({"type": "websocket.accept"})  # type: ignore[typeddict-item]
    assert received[-1] == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}
