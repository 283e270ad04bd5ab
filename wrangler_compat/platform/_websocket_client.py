"""``js.WebSocket``: an outbound WebSocket client with JavaScript's event API, on trio-websocket.

Cloudflare's Python examples (python-workers-examples ``14-websocket-stream-consumer``)
open one from a Durable Object::

    ws = js.WebSocket.new(url)
    ws.addEventListener("open", create_proxy(self._on_open))
    ws.addEventListener("message", create_proxy(self._on_message))
    ws.addEventListener("close", create_proxy(self._on_close))

How it is hosted: the connection runs as the object's ``waitUntil`` work,
so it belongs to the activation (a reset or the runtime's end cancels it;
the object is not evicted while it is open) and the input gate applies to
the handlers as to any event: a handler's synchronous code runs alone, and
waiting for the next message lets other events in. ``send`` queues the
message; it leaves after the object's earlier writes commit (the output
gate). Handlers may be plain functions or coroutine functions (awaited in
order). An exception in a handler is logged, as JavaScript reports an
uncaught error in a listener, and the socket stays open; ``ctx.abort()`` in
a handler resets the object, as it does anywhere.

Outside a Durable Object there is no owner for the connection, so
``WebSocket.new`` raises :class:`NotProvidedError` there.
"""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any, Callable

import trio

from runtime import current_activation

from ._aborts import unwrap_abort
from ._unsupported import NotProvidedError

__all__ = ["OutboundWebSocket", "WebSocketEvent"]

_log = logging.getLogger("dohost.websocket")

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
_EVENTS = ("open", "message", "error", "close")


class WebSocketEvent:
    """What a listener receives: ``type`` and, by kind, ``data``, ``code``/``reason``/``wasClean``, ``message``."""

    def __init__(self, type: str, **fields: Any) -> None:
        self.type = type
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<WebSocketEvent {self.__dict__!r}>"


class OutboundWebSocket:
    """A client WebSocket (``js.WebSocket.new(url, protocols)``)."""

    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    def __init__(self, url: str, protocols: Any = None) -> None:
        act = current_activation()
        if act is None:
            raise NotProvidedError("js", "WebSocket", "outbound WebSockets are provided inside a Durable Object only")
        if not url.startswith(("ws://", "wss://", "http://", "https://")):
            raise SyntaxError(f"Failed to construct 'WebSocket': The URL '{url}' is invalid.")
        self.url = "ws" + url[4:] if url.startswith("http") else url
        self.protocols = [protocols] if isinstance(protocols, str) else list(protocols or [])
        self.readyState = CONNECTING
        self.protocol = ""
        self.binaryType = "arraybuffer"
        self._listeners: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in _EVENTS}
        self._act = act
        self._outbox_send, self._outbox = trio.open_memory_channel[tuple[str, Any]](math.inf)
        act.wait_until(self._run())

    @classmethod
    def new(cls, url: str, protocols: Any = None) -> OutboundWebSocket:
        return cls(str(url), protocols)

    # -- JavaScript's API ---------------------------------------------------
    def addEventListener(self, kind: str, listener: Callable[..., Any], options: Any = None) -> None:
        if kind in self._listeners and listener not in self._listeners[kind]:
            self._listeners[kind].append(listener)

    def removeEventListener(self, kind: str, listener: Callable[..., Any], options: Any = None) -> None:
        if listener in self._listeners.get(kind, []):
            self._listeners[kind].remove(listener)

    def send(self, data: Any) -> None:
        if self.readyState == CONNECTING:
            raise RuntimeError("Failed to execute 'send' on 'WebSocket': Still in CONNECTING state.")  # CF: WHATWG InvalidStateError
        if self.readyState != OPEN:
            return  # JavaScript drops sends after close() without an error
        if hasattr(data, "to_bytes"):
            data = data.to_bytes()
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, (str, bytes)):
            data = str(data)
        self._outbox_send.send_nowait(("send", data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if code != 1000 and not 3000 <= code <= 4999:
            raise ValueError(f"The close code must be either 1000, or between 3000 and 4999. {code} is neither.")  # CF: WHATWG InvalidAccessError
        if self.readyState in (CLOSING, CLOSED):
            return
        self.readyState = CLOSING
        self._outbox_send.send_nowait(("close", (code, reason)))

    # -- the connection, as the object's waitUntil work ---------------------
    async def _emit(self, kind: str, event: WebSocketEvent) -> None:
        handlers = list(self._listeners[kind])
        attribute = getattr(self, "on" + kind, None)
        if attribute is not None:
            handlers.append(attribute)
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("%s listener of WebSocket %s failed", kind, self.url)

    async def _pump(self, conn: Any) -> None:
        from trio_websocket import ConnectionClosed

        async for action, payload in self._outbox:
            await self._act.wait_output()  # output gate: earlier writes commit first
            try:
                if action == "send":
                    await conn.send_message(payload)
                else:
                    await conn.aclose(*payload)
                    return
            except ConnectionClosed:
                return

    async def _run(self) -> None:
        try:
            await self._session()
        except BaseExceptionGroup as group:
            unwrap_abort(group)  # ctx.abort() in a listener: the object is already reset

    async def _session(self) -> None:
        from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

        code, reason = 1006, ""
        try:
            async with open_websocket_url(self.url, subprotocols=self.protocols or None) as conn:
                self.readyState = OPEN
                self.protocol = conn.subprotocol or ""
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, conn)
                    await self._emit("open", WebSocketEvent("open"))
                    while True:
                        try:
                            data = await conn.get_message()
                        except ConnectionClosed as closed:
                            code = closed.reason.code if closed.reason is not None else 1006
                            reason = (closed.reason.reason if closed.reason is not None else "") or ""
                            break
                        await self._emit("message", WebSocketEvent("message", data=data))
                    nursery.cancel_scope.cancel()
                # After a close the server starts, trio-websocket waits for the server to
                # close TCP (RFC 6455 7.1.1) and, if its context ends first, leaves the
                # socket to the garbage collector; close it here.
                stream = getattr(conn, "_stream", None)
                if stream is not None:
                    with trio.CancelScope(shield=True):
                        await stream.aclose()
        except (OSError, HandshakeError, trio.BrokenResourceError) as exc:
            self.readyState = CLOSED
            await self._emit("error", WebSocketEvent("error", message=str(exc), error=exc))
            await self._emit("close", WebSocketEvent("close", code=1006, reason="", wasClean=False))
            return
        self.readyState = CLOSED
        await self._emit("close", WebSocketEvent("close", code=code, reason=reason, wasClean=code != 1006))
