"""A request body read from ASGI as the Worker asks for it (``objects.BodyFeed``).

The HTTP front hands the Worker a ``Request`` whose body is this feed, so a
large upload is not buffered before the Worker runs and ``request.body``
streams what the client sends, for ``Content-Length`` and chunked bodies
alike. Guarantees:

* Chunks are read from ASGI ``receive`` one at a time, under a lock, and
  kept, so a body and its clones (``stub.fetch(request)`` clones it) each
  read every chunk, in order, whichever task reads first.
* More than ``limit`` bytes (a chunked body with no ``Content-Length``, or
  one that lies) raises :class:`RequestBodyTooLarge` in the reader and sets
  :attr:`too_large`; the front then answers 413 whatever the Worker returned.
  A declared ``Content-Length`` over the limit is refused before the Worker
  runs (the front checks it).
* The client going away mid-body raises :class:`ClientDisconnected` in the reader.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import trio

__all__ = ["AsgiBodyFeed", "RequestBodyTooLarge", "ClientDisconnected", "open_request_body"]


class RequestBodyTooLarge(Exception):
    """The client sent more than the front accepts."""


class ClientDisconnected(ConnectionError):
    """The client went away before sending its whole body."""


class AsgiBodyFeed:
    """See the module docstring."""

    def __init__(self, receive: Callable[[], Awaitable[dict[str, Any]]], limit: int, first: bytes, more: bool) -> None:
        self._receive = receive
        self._limit = limit
        self._chunks: list[bytes] = [first] if first else []
        self._size = len(first)
        self._more = more
        self._lock = trio.Lock()
        self.too_large = False
        self._disconnected = False

    async def chunk(self, index: int) -> bytes | None:
        async with self._lock:
            while index >= len(self._chunks) and self._more:
                await self._pull()
            if index < len(self._chunks):
                return self._chunks[index]
            if self.too_large:
                raise RequestBodyTooLarge(f"Request body larger than {self._limit} bytes")
            if self._disconnected:
                raise ClientDisconnected("the client disconnected before sending its whole request body")
            return None

    async def _pull(self) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self._more, self._disconnected = False, True
            raise ClientDisconnected("the client disconnected before sending its whole request body")
        data = message.get("body", b"")
        self._more = bool(message.get("more_body", False))
        self._size += len(data)
        if self._size > self._limit:
            self.too_large, self._more = True, False
            raise RequestBodyTooLarge(f"Request body larger than {self._limit} bytes")
        if data:
            self._chunks.append(data)


async def open_request_body(
    receive: Callable[[], Awaitable[dict[str, Any]]], limit: int
) -> AsgiBodyFeed | None | str:
    """The request's body feed, ``None`` when there is no body, or ``"disconnect"``/``"too large"``.

    Reads the first ASGI message only: a request with no body (a GET) gets
    ``None``, as ``request.body`` is in JavaScript.
    """
    first, more = b"", True
    while more and not first:
        message = await receive()
        if message["type"] == "http.disconnect":
            return "disconnect"
        first = message.get("body", b"")
        more = bool(message.get("more_body", False))
    if len(first) > limit:
        return "too large"
    if not first and not more:
        return None
    return AsgiBodyFeed(receive, limit, first, more)
