"""Request bodies and responses as Python Workers code uses them, under ``dohost dev`` and the pytest plugin.

The Worker reads ``request.body`` with ``getReader()`` and with ``async
for`` (Content-Length and chunked uploads over a real socket), sees
``None`` for a GET, reads ``request.headers`` as the ``HTTPMessage`` the
SDK gives (``None`` for a missing header, ``get_content_type()``), answers
a non-JSON ``request.json()`` with the Python SDK's error, and builds a ``Response`` with ``status_text``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from _e2e_support import run_dohost  # noqa: E402

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]

WRANGLER = """\
name = "bodies"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]
"""

ENTRY = '''\
import hashlib
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/reader":
            if request.body is None:
                return Response.json({"body": None})
            reader = request.body.getReader()
            digest, size = hashlib.sha256(), 0
            while True:
                result = await reader.read()
                if result.done:
                    break
                chunk = result.value.to_bytes()
                digest.update(chunk)
                size += len(chunk)
            return Response.json({"size": size, "sha256": digest.hexdigest()})
        if path == "/iterate":
            parts = [bytes(chunk) async for chunk in request.body]
            return Response(b"".join(parts).upper())
        if path == "/json":
            try:
                data = await request.json()
            except ValueError as e:
                return Response(f"Bad JSON: {e}", status=400)
            return Response.json({"got": data})
        if path == "/headers":
            headers = request.headers
            return Response.json({
                "missing": headers["x-missing"],
                "accept": headers["accept"],
                "type": headers.get_content_type(),
                "charset": headers.get_content_charset(),
                "cookies": headers.get_all("set-cookie"),
                "first_cookie": headers.get("set-cookie"),
                "names": [name for name in headers if name.startswith("x-")],
            })
        if path == "/created":
            return Response("made", status=201, status_text="Created It")
        return Response("Not found", status=404)
'''


def write_project(folder: Path) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "wrangler.toml").write_text(WRANGLER)
    (folder / "src" / "entry.py").write_text(ENTRY)
    return folder


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_bodies_stream_to_the_worker_under_dohost_dev(tmp_path: Path) -> None:
    import hashlib

    project = write_project(tmp_path / "project")
    argv = ["dohost", "dev", "--config", str(project), "--port", "0", "--persist-to", str(tmp_path / "state")]
    big = bytes(range(256)) * 4096  # 1 MiB: several ASGI chunks
    async with run_dohost(argv) as proc, httpx.AsyncClient(base_url=proc.url, timeout=20) as http:
        sized = await http.post("/reader", content=big)
        streamed = await http.post("/reader", content=chunks(big[:1000], big[1000:]))
        none = await http.get("/reader")
        upper = await http.put("/iterate", content=chunks(b"chunked ", b"body"))
        good = await http.post("/json", json={"a": [1, 2]})
        bad = await http.post("/json", content=b"{not json")
        created = await http.get("/created")
        headers = await http.post(
            "/headers",
            content=b"x",
            headers=[("Accept", "text/html, application/json"), ("Content-Type", "Text/Plain; charset=latin-1"),
                     ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-B", "2"), ("X-A", "1")],
        )
    expected = {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
    assert sized.json() == expected
    assert streamed.json() == expected
    assert none.json() == {"body": None}
    assert upper.content == b"CHUNKED BODY"
    assert good.json() == {"got": {"a": [1, 2]}}
    assert (bad.status_code, bad.text) == (400, "Bad JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")
    assert (created.status_code, created.text) == (201, "made")
    # request.headers reads as the http.client.HTTPMessage Cloudflare's SDK gives
    assert headers.json() == {
        "missing": None,
        "accept": "text/html, application/json",
        "type": "text/plain",
        "charset": "latin-1",
        "cookies": ["a=1", "b=2"],
        "first_cookie": "a=1",
        "names": ["x-a", "x-b"],
    }


def test_bodies_and_status_text_under_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    write_project(pytester.path / "project")
    (pytester.path / "pytest.ini").write_text(
        "[pytest]\ntrio_mode = true\naddopts = -p no:cacheprovider\nfilterwarnings = error\n"
        "dohost_config = project\n"
    )
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            async def test_a_body_is_read_with_a_reader(dohost):
                response = await dohost.fetch("http://example.com/reader", method="POST", body=b"abc")
                assert (await response.json())["size"] == 3

            async def test_a_get_has_no_body(dohost):
                response = await dohost.fetch("http://example.com/reader")
                assert await response.json() == {"body": None}

            async def test_a_non_json_body_is_refused(dohost):
                response = await dohost.fetch("http://example.com/json", method="POST", body="nope")
                assert response.status == 400
                assert await response.text() == "Bad JSON: Expecting value: line 1 column 1 (char 0)"

            async def test_status_text_is_kept(dohost):
                response = await dohost.fetch("http://example.com/created")
                assert (response.status, response.statusText, response.status_text) == (201, "Created It", "Created It")
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=4)
