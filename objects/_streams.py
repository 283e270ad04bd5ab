"""``request.body`` / ``response.body``: a ReadableStream as Python Workers code reads it.

On Cloudflare ``request.body`` is a JavaScript ``ReadableStream`` (or
``None`` when there is no body); Python code reads it two ways::

    reader = request.body.getReader()
    while True:
        result = await reader.read()
        if result.done:
            break
        chunk = result.value.to_bytes()     # a Uint8Array proxy there

    async for chunk in request.body: ...

Here a chunk is :class:`Chunk`, a ``bytes`` that also answers the proxy
methods (``to_bytes()``, ``to_py()``, ``to_memoryview()``), and a read
result is :class:`ReadResult`, with ``.done``/``.value`` and, as
``result.to_py()`` gives on Pyodide, ``result["done"]``.

The bytes come from a :class:`BodyFeed`: the HTTP front supplies one that
reads the ASGI request body as the Worker asks for it (so a body is not
buffered before the Worker runs); an in-memory body is a :class:`BytesFeed`.
A feed is addressed by chunk index, so a ``clone()`` is another cursor on
the same feed (a tee): each copy reads every chunk once.

Reading the stream uses the body (``bodyUsed``), as in the Fetch standard;
a locked stream refuses a second reader with workerd's message.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Protocol

from persistence._names import cf_names

from .errors import BodyUsedError, InvalidHttpError

__all__ = ["BodyFeed", "BytesFeed", "Chunk", "ReadResult", "ReadableStream", "ReadableStreamDefaultReader"]

_LOCKED = "This ReadableStream is currently locked to a reader."  # CF: api/streams/internal.c++ getReader


class BodyFeed(Protocol):
    """Where a body's bytes come from; implemented by the HTTP front for request bodies."""

    async def chunk(self, index: int) -> bytes | None:
        """The ``index``-th chunk (never empty), or ``None`` past the end.

        Several readers (a body and its clones) may ask for the same index;
        each gets the same bytes.
        """
        ...


class BytesFeed:
    """A body already in memory: one chunk."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def chunk(self, index: int) -> bytes | None:
        return self.data if index == 0 and self.data else None


class Chunk(bytes):
    """A chunk of a body: ``bytes`` that also answers a Uint8Array proxy's methods."""

    def to_bytes(self) -> bytes:
        return bytes(self)

    def to_py(self) -> bytes:
        return bytes(self)

    def to_memoryview(self) -> memoryview:
        return memoryview(bytes(self))

    @property
    def byteLength(self) -> int:  # noqa: N802 - JavaScript's name
        return len(self)


class ReadResult:
    """What ``await reader.read()`` returns: ``done``, and ``value`` (a :class:`Chunk` or ``None``)."""

    __slots__ = ("done", "value")

    def __init__(self, done: bool, value: Chunk | None) -> None:
        self.done, self.value = done, value

    def __getitem__(self, key: str) -> Any:
        if key == "done":
            return self.done
        if key == "value":
            return self.value
        raise KeyError(key)

    def to_py(self) -> dict[str, Any]:
        return {"done": self.done, "value": self.value}

    def __repr__(self) -> str:
        return f"ReadResult(done={self.done}, value={self.value!r})"


class _Cursor:
    """One reader's position in a feed."""

    __slots__ = ("feed", "index", "done")

    def __init__(self, feed: BodyFeed) -> None:
        self.feed, self.index, self.done = feed, 0, False

    async def next(self) -> Chunk | None:
        if self.done:
            return None
        data = await self.feed.chunk(self.index)
        if data is None:
            self.done = True
            return None
        self.index += 1
        return Chunk(data)


@cf_names("releaseLock")
class ReadableStreamDefaultReader:
    """``stream.getReader()``: ``await read()`` until ``done``."""

    def __init__(self, stream: ReadableStream) -> None:
        self._stream: ReadableStream | None = stream

    async def read(self) -> ReadResult:
        stream = self._stream
        if stream is None:
            raise InvalidHttpError("This ReadableStream reader has been released.")  # CF: api/streams/internal.c++
        value = await stream._cursor.next()
        return ReadResult(value is None, value)

    def release_lock(self) -> None:
        if self._stream is not None:
            self._stream._reader = None
            self._stream = None

    async def cancel(self, reason: Any = None) -> None:
        if self._stream is not None:
            self._stream._cursor.done = True

    releaseLock: Callable[[], None]  # installed by cf_names


@cf_names("getReader")
class ReadableStream:
    """A body as a stream of :class:`Chunk` s; see the module docstring."""

    def __init__(self, feed: BodyFeed, on_read: Callable[[], None]) -> None:
        self._cursor = _Cursor(feed)
        self._on_read = on_read
        self._reader: ReadableStreamDefaultReader | None = None

    @property
    def locked(self) -> bool:
        return self._reader is not None

    def get_reader(self, options: Any = None) -> ReadableStreamDefaultReader:
        if self._reader is not None:
            raise InvalidHttpError(_LOCKED)
        self._on_read()
        self._reader = ReadableStreamDefaultReader(self)
        return self._reader

    getReader: Callable[..., ReadableStreamDefaultReader]  # installed by cf_names

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Chunk]:
        reader = self.get_reader()
        try:
            while True:
                result = await reader.read()
                if result.done or result.value is None:
                    return
                yield result.value
        finally:
            reader.release_lock()

    def _take_feed(self) -> BodyFeed:
        """The rest of this stream, to become another body (``Response(request.body)``)."""
        if self._reader is not None or self._cursor.index or self._cursor.done:
            raise BodyUsedError(BodyUsedError.RESPONSE)
        self._on_read()
        self._cursor.done = True
        return self._cursor.feed

    def __repr__(self) -> str:
        return f"<ReadableStream locked={self.locked}>"
