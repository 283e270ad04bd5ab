"""Request bodies stream from the client to the Worker through the real HTTP front.

``request.body`` is a ReadableStream (``getReader().read()`` until done, or
``async for``) for Content-Length and chunked bodies, ``None`` without a
body; the 413 limit holds while the Worker reads; ``statusText`` is kept.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator

import httpx
import pytest
import trio

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import build_app, open_runtime
from runtime._http import serve_http

pytestmark = pytest.mark.slow


class Reader(DurableObject):
    async def fetch(self, request):
        chunks = [bytes(chunk) async for chunk in request.body]
        return Response(json.dumps({"object": b"".join(chunks).decode()}))


def make_worker(first_chunk_read: trio.Event) -> type:
    class Worker(WorkerEntrypoint):
        async def fetch(self, request):
            path = request.url.split("/", 3)[3]
            if path == "none":
                return Response(repr(request.body))
            if path == "reader":
                reader = request.body.getReader()
                parts = []
                while True:
                    result = await reader.read()
                    if result.done:
                        break
                    assert result["done"] is False and result.to_py()["value"] == result.value
                    parts.append(result.value.to_bytes())
                    first_chunk_read.set()
                return Response(b"".join(parts), headers={"x-used": str(request.bodyUsed)})
            if path == "iterate":
                total = b""
                async for chunk in request.body:
                    total += chunk
                    first_chunk_read.set()
                return Response(total)
            if path == "object":
                return await self.env.READER.getByName("r").fetch(request)
            if path == "json":
                try:
                    await request.json()
                except ValueError as exc:
                    return Response(f"{type(exc).__name__}: {exc}", status=400)
            if path == "status-text":
                response = Response("made", status=201, status_text="Made It")
                return Response(response.statusText, status=response.status, status_text=response.status_text)
            return Response("?", status=404)

    return Worker


@asynccontextmanager
async def serving(max_body_bytes: int = 1 << 20) -> AsyncIterator[tuple[httpx.AsyncClient, trio.Event]]:
    first_chunk_read = trio.Event()
    async with open_runtime(bindings={"READER": Reader}, entrypoint=make_worker(first_chunk_read)) as rt:
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            app = build_app(lambda: rt, max_body_bytes=max_body_bytes)
            binds = await nursery.start(partial(serve_http, app, host="127.0.0.1", port=0, shutdown_trigger=stop.wait))
            async with httpx.AsyncClient(base_url=binds[0]) as client:
                yield client, first_chunk_read
            stop.set()


def chunked(*parts: bytes, wait: trio.Event | None = None) -> Any:
    async def body() -> AsyncIterator[bytes]:
        for index, part in enumerate(parts):
            if index == 1 and wait is not None:
                with trio.fail_after(10):
                    await wait.wait()  # the Worker has read the first chunk: nothing was buffered
            yield part

    return body()


async def test_a_get_without_a_body_has_no_body_stream() -> None:
    async with serving() as (client, _):
        reply = await client.get("/none")
    assert reply.text == "None"


async def test_a_content_length_body_is_read_with_a_reader_until_done() -> None:
    async with serving() as (client, _):
        reply = await client.post("/reader", content=b"hello world")
    assert reply.content == b"hello world"
    assert reply.headers["x-used"] == "True"


@pytest.mark.parametrize("path", ["reader", "iterate"])
async def test_a_chunked_body_reaches_the_worker_while_the_client_still_sends(path: str) -> None:
    async with serving() as (client, first_chunk_read):
        reply = await client.post(f"/{path}", content=chunked(b"first,", b"second", wait=first_chunk_read))
    assert reply.status_code == 200
    assert reply.content == b"first,second"


async def test_a_streamed_body_passes_through_a_stub_to_the_object() -> None:
    async with serving() as (client, _):
        reply = await client.post("/object", content=chunked(b"to ", b"the ", b"object"))
    assert reply.json() == {"object": "to the object"}


async def test_a_chunked_body_over_the_limit_is_refused_while_the_worker_reads_it() -> None:
    async with serving(max_body_bytes=8) as (client, _):
        reply = await client.post("/iterate", content=chunked(b"12345", b"67890"))
        ok = await client.post("/iterate", content=chunked(b"1234", b"5678"))
    assert reply.status_code == 413
    assert reply.text == "Request body larger than 8 bytes\n"
    assert (ok.status_code, ok.content) == (200, b"12345678")


async def test_a_non_json_body_raises_the_python_sdk_error() -> None:
    async with serving() as (client, _):
        reply = await client.post("/json", content=b"not json")
    assert reply.status_code == 400
    assert reply.text == "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"


async def test_status_text_is_accepted_and_readable_but_not_sent() -> None:
    async with serving() as (client, _):
        reply = await client.get("/status-text")
    assert (reply.status_code, reply.text) == (201, "Made It")
    assert reply.reason_phrase == ""  # ASGI carries no reason phrase; hypercorn sends none


async def test_a_get_that_carries_a_body_reaches_the_worker_without_one() -> None:
    async with serving() as (client, _):
        reply = await client.request("GET", "/none", content=b"ignored")
    assert (reply.status_code, reply.text) == (200, "None")
