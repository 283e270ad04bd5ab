"""``request.body`` / ``response.body`` as ReadableStreams, without a host."""

from __future__ import annotations

import json

import pytest

from objects import BodyUsedError, Chunk, InvalidHttpError, ReadableStream, Request, Response


class SlowFeed:
    """A feed in three chunks that counts how often each chunk was asked for."""

    def __init__(self) -> None:
        self.parts = [b"ab", b"cd", b"ef"]
        self.asked: list[int] = []

    async def chunk(self, index: int) -> bytes | None:
        self.asked.append(index)
        return self.parts[index] if index < len(self.parts) else None


def streamed_request(feed: SlowFeed) -> Request:
    return Request("https://example.com/", method="POST", body=ReadableStream(feed, lambda: None))


def test_a_message_without_a_body_has_none() -> None:
    assert Request("https://example.com/").body is None
    assert Response(None).body is None
    assert Response(b"", 204).body is None


async def test_a_reader_reads_chunks_until_done_and_uses_the_body() -> None:
    response = Response("hello")
    stream = response.body
    assert stream is not None and stream is response.body  # one stream per body, as in JS
    reader = stream.getReader()
    first = await reader.read()
    assert (first.done, first.value, first["value"].to_bytes()) == (False, b"hello", b"hello")
    assert isinstance(first.value, Chunk) and first.to_py() == {"done": False, "value": b"hello"}
    last = await reader.read()
    assert (last.done, last.value) == (True, None)
    assert response.bodyUsed
    with pytest.raises(BodyUsedError, match=r"^Response body is already used$"):
        await response.text()


async def test_a_locked_stream_refuses_a_second_reader() -> None:
    stream = Response("x").body
    assert stream is not None
    stream.getReader()
    with pytest.raises(InvalidHttpError, match=r"^This ReadableStream is currently locked to a reader\.$"):
        stream.get_reader()


async def test_a_released_reader_refuses_to_read() -> None:
    stream = Response("x").body
    assert stream is not None
    reader = stream.getReader()
    reader.releaseLock()
    assert not stream.locked
    with pytest.raises(InvalidHttpError, match=r"^This ReadableStream reader has been released\.$"):
        await reader.read()


async def test_a_streamed_body_and_its_clone_each_read_every_chunk_once_from_the_feed() -> None:
    feed = SlowFeed()
    request = streamed_request(feed)
    twin = request.clone()
    assert [bytes(c) async for c in request.body] == [b"ab", b"cd", b"ef"]  # type: ignore[union-attr]
    assert await twin.text() == "abcdef"
    assert feed.asked == [0, 1, 2, 3, 0, 1, 2, 3]  # the host's feed keeps chunks; asking twice is cheap


async def test_a_stream_can_become_another_body() -> None:
    request = streamed_request(SlowFeed())
    echoed = Response(request.body, headers={"content-type": "text/plain"})
    assert request.bodyUsed
    assert await echoed.text() == "abcdef"


async def test_request_json_on_a_body_that_is_not_json_raises_json_decode_error() -> None:
    request = Request("https://example.com/", method="POST", body="{oops")
    with pytest.raises(json.JSONDecodeError, match=r"^Expecting property name enclosed in double quotes"):
        await request.json()
