"""A client's WebSocket close code and reason, delivered to the app as sent.

hypercorn (0.18) answers a client's Close frame and then reports the
connection to the ASGI app as ``websocket.disconnect`` with code 1006, the
code for a connection lost *without* a Close frame: the client's code and
reason are dropped (pgjones/hypercorn#127, open). Cloudflare hands the
client's code and reason to ``webSocketClose(ws, code, reason, wasClean)``
with ``wasClean`` true, so dohost needs them.

:class:`CloseCodeWSStream` is hypercorn's ``WSStream`` with one change: when
the client sends a Close frame, the disconnect event carries that frame's
``code`` and ``reason`` (ASGI's ``websocket.disconnect`` has both keys). A
connection that drops without a Close frame still arrives as 1006.

Scope: :func:`install` points hypercorn's HTTP/1.1, HTTP/2 and HTTP/3
protocols at the subclass (hypercorn has no setting for its stream class),
but the subclass changes nothing unless the served ASGI app is marked with
:func:`mark_app` — other hypercorn apps in the same process keep hypercorn's
behaviour exactly. Remove this module once hypercorn reports the code itself.
"""

from __future__ import annotations

import importlib
from typing import Any

from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import WSStream
from wsproto.events import CloseConnection

__all__ = ["CloseCodeWSStream", "install", "mark_app"]

_MARK = "_dohost_reports_close_codes"


def mark_app(app: Any) -> None:
    """Mark an ASGI app so its WebSocket disconnects carry the client's close code."""
    setattr(app, _MARK, True)


def _is_marked(wrapper: Any) -> bool:
    # hypercorn wraps the app it serves in an ASGIWrapper (``.app``).
    return bool(getattr(wrapper, _MARK, False) or getattr(getattr(wrapper, "app", None), _MARK, False))


class CloseCodeWSStream(WSStream):
    """hypercorn's ``WSStream`` reporting a client's Close frame as sent (marked apps only)."""

    _client_close: tuple[int, str] | None = None

    async def handle(self, event: Any) -> None:
        if (
            isinstance(event, StreamClosed)
            and self._client_close is not None
            and not self.closed
            and self.app_put is not None
        ):
            # The client closed cleanly: report its code and reason, not hypercorn's 1006.
            self.closed = True
            code, reason = self._client_close
            await self.app_put({"type": "websocket.disconnect", "code": code, "reason": reason})
            return
        await super().handle(event)

    # The wsproto connection, seen through a _CloseRecorder (marked apps): it
    # notes the client's Close frame as hypercorn's event loop meets it;
    # hypercorn itself answers it (echoing the code) and closes the stream. It
    # is wrapped as hypercorn's ``_accept`` assigns it, before that sends the
    # 101: a client may send its Close right behind the 101, and the reading
    # task may take it while ``_accept`` is still awaiting its own writes
    # (wrapping after ``_accept`` returned missed such a Close: 1006).
    @property
    def connection(self) -> Any:
        return self.__dict__.get("_dohost_connection")

    @connection.setter
    def connection(self, value: Any) -> None:
        if value is not None and not isinstance(value, _CloseRecorder) and _is_marked(self.app):
            value = _CloseRecorder(value, self)
        self.__dict__["_dohost_connection"] = value


class _CloseRecorder:
    """A wsproto ``Connection`` seen through: its events, with Close frames noted on the stream."""

    def __init__(self, connection: Any, stream: CloseCodeWSStream) -> None:
        self._connection = connection
        self._stream = stream

    def events(self) -> Any:
        for event in self._connection.events():
            if isinstance(event, CloseConnection) and self._stream._client_close is None:
                self._stream._client_close = (int(event.code), event.reason or "")
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def install() -> None:
    """Make hypercorn build :class:`CloseCodeWSStream` for WebSockets (idempotent)."""
    for name in ("hypercorn.protocol.h11", "hypercorn.protocol.h2", "hypercorn.protocol.h3"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # h3 needs aioquic, an optional extra
            continue
        if getattr(module, "WSStream", None) is WSStream:
            setattr(module, "WSStream", CloseCodeWSStream)
