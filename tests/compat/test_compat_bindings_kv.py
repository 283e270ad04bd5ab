"""Workers KV in a Python Worker written as Cloudflare's docs write it: the plugin, and ``dohost dev`` over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
name = "kv-notes"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[kv_namespaces]]
binding = "NOTES"
id = "06779da6940b431db6e566b4846d64db"
"""

ENTRY = """\
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        key = urlparse(request.url).path.strip("/")
        if request.method == "PUT":
            await self.env.NOTES.put(key, await request.text(), expirationTtl=3600, metadata={"by": "http"})
            return Response("stored", status=201)
        if request.method == "DELETE":
            await self.env.NOTES.delete(key)
            return Response("deleted")
        if key == "":
            listing = await self.env.NOTES.list(prefix="note:")
            return Response.json({"keys": [k.name for k in listing.keys], "complete": listing.list_complete})
        found = await self.env.NOTES.getWithMetadata(key)
        if found.value is None:
            return Response("not found", status=404)
        return Response(found.value, headers={"x-by": found.metadata["by"]})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "kv-notes", {"wrangler.toml": WRANGLER, "src/entry.py": ENTRY})


def test_kv_round_trip_and_per_test_reset_under_the_plugin(pytester: pytest.Pytester, project: Path) -> None:
    result = run_plugin(pytester, project, """
        import trio

        async def test_a_note_round_trips(dohost):
            assert (await dohost.fetch("http://w/note:1", method="PUT", body="hello")).status == 201
            got = await dohost.fetch("http://w/note:1")
            assert await got.text() == "hello" and got.headers.get("x-by") == "http"
            assert (await (await dohost.fetch("http://w/")).json())["keys"] == ["note:1"]
            assert await dohost.env.NOTES.get("note:1") == "hello"

        async def test_the_next_test_starts_empty(dohost):
            assert (await dohost.fetch("http://w/note:1")).status == 404

        async def test_notes_expire_on_fake_time(dohost, autojump_clock):
            await dohost.fetch("http://w/note:2", method="PUT", body="soon gone")
            await trio.sleep(3601)
            assert (await dohost.fetch("http://w/note:2")).status == 404
    """)
    result.assert_outcomes(passed=3)


@pytest.mark.slow
async def test_kv_round_trip_over_http_survives_a_dohost_dev_restart(tmp_path: Path, project: Path) -> None:
    state = tmp_path / "state"
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.put("/note:a", content="first")).status_code == 201
            assert (await client.put("/note:b", content="second")).status_code == 201
            assert (await client.delete("/note:b")).text == "deleted"
            assert (await client.get("/note:a")).text == "first"
        await proc.terminate()
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            got = await client.get("/note:a")
            assert got.text == "first" and got.headers["x-by"] == "http"
            assert (await client.get("/")).json() == {"keys": ["note:a"], "complete": True}
