"""R2 in a Python Worker written as Cloudflare's docs write it: the plugin, and ``dohost dev`` over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
name = "r2-files"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[r2_buckets]]
binding = "MY_BUCKET"
bucket_name = "my-bucket"
"""

ENTRY = """\
from urllib.parse import urlparse

from workers import Headers, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        key = urlparse(request.url).path[1:]
        if request.method == "PUT":
            await self.env.MY_BUCKET.put(
                key, await request.bytes(), httpMetadata={"contentType": request.headers.get("content-type")}
            )
            return Response(f"Put {key} successfully!")
        if request.method == "DELETE":
            await self.env.MY_BUCKET.delete(key)
            return Response("Deleted!")
        if key == "":
            listing = await self.env.MY_BUCKET.list(delimiter="/")
            return Response.json({
                "objects": [o.key for o in listing.objects],
                "prefixes": listing.delimitedPrefixes,
            })
        obj = await self.env.MY_BUCKET.get(key, range=_range(request))
        if obj is None:
            return Response("Object Not Found", status=404)
        headers = Headers()
        obj.writeHttpMetadata(headers)
        headers.set("etag", obj.httpEtag)
        return Response(obj.body, headers=headers)


def _range(request):
    value = request.headers.get("range")
    if not value:
        return None
    start, _, end = value.removeprefix("bytes=").partition("-")
    return {"offset": int(start), "length": int(end) - int(start) + 1}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "r2-files", {"wrangler.toml": WRANGLER, "src/entry.py": ENTRY})


def test_r2_round_trip_and_per_test_reset_under_the_plugin(pytester: pytest.Pytester, project: Path) -> None:
    result = run_plugin(pytester, project, """
        async def test_an_object_round_trips(dohost):
            put = await dohost.fetch("http://w/docs/a.txt", method="PUT", body=b"hello r2",
                                     headers={"content-type": "text/plain"})
            assert await put.text() == "Put docs/a.txt successfully!"
            got = await dohost.fetch("http://w/docs/a.txt")
            assert await got.text() == "hello r2" and got.headers.get("content-type") == "text/plain"
            part = await dohost.fetch("http://w/docs/a.txt", headers={"range": "bytes=6-7"})
            assert await part.text() == "r2"
            assert (await dohost.env.MY_BUCKET.head("docs/a.txt")).size == 8

        async def test_the_next_test_starts_with_an_empty_bucket(dohost):
            assert (await dohost.fetch("http://w/docs/a.txt")).status == 404
            assert (await dohost.env.MY_BUCKET.list()).objects == []
    """)
    result.assert_outcomes(passed=2)


@pytest.mark.slow
async def test_r2_round_trip_over_http_survives_a_dohost_dev_restart(tmp_path: Path, project: Path) -> None:
    state = tmp_path / "state"
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            png = bytes(range(256)) * 4
            put = await client.put("/img/logo.png", content=png, headers={"content-type": "image/png"})
            assert put.text == "Put img/logo.png successfully!"
            assert (await client.put("/readme.txt", content=b"read me")).status_code == 200
        await proc.terminate()
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            got = await client.get("/img/logo.png")
            assert got.content == png and got.headers["content-type"] == "image/png"
            assert got.headers["etag"].startswith('"')
            assert (await client.get("/")).json() == {"objects": ["readme.txt"], "prefixes": ["img/"]}
            assert (await client.get("/missing")).status_code == 404
