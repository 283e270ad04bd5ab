"""Static assets in front of a Python Worker, as Cloudflare routes them: the plugin, and ``dohost dev`` over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
name = "site"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[assets]
directory = "./public"
binding = "ASSETS"
not_found_handling = "404-page"
run_worker_first = ["/api/*"]
"""

ENTRY = """\
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path.startswith("/api/"):
            return Response.json({"api": path})
        if path == "/home":
            return await self.env.ASSETS.fetch("http://assets/")
        return await self.env.ASSETS.fetch(request)
"""

FILES = {
    "wrangler.toml": WRANGLER,
    "src/entry.py": ENTRY,
    "public/index.html": "<h1>Home</h1>",
    "public/about.html": "<h1>About</h1>",
    "public/404.html": "<h1>Not here</h1>",
    "public/css/site.css": "h1 { color: red }",
    "public/api/shadowed.json": "{}",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "site", FILES)


def test_assets_are_served_ahead_of_the_worker_under_the_plugin(pytester: pytest.Pytester, project: Path) -> None:
    result = run_plugin(pytester, project, """
        async def test_routing(dohost):
            home = await dohost.fetch("http://site/")
            assert home.status == 200 and await home.text() == "<h1>Home</h1>"
            assert home.headers.get("content-type") == "text/html; charset=utf-8"
            assert await (await dohost.fetch("http://site/about")).text() == "<h1>About</h1>"
            redirect = await dohost.fetch("http://site/about.html")
            assert redirect.status == 307 and redirect.headers.get("location") == "/about"
            assert await (await dohost.fetch("http://site/api/shadowed.json")).json() == {"api": "/api/shadowed.json"}
            missing = await dohost.fetch("http://site/nope")
            assert missing.status == 404 and await missing.text() == "<h1>Not here</h1>"
            assert await (await dohost.fetch("http://site/home")).text() == "<h1>Home</h1>"
    """)
    result.assert_outcomes(passed=1)


@pytest.mark.slow
async def test_assets_over_http_with_dohost_dev(tmp_path: Path, project: Path) -> None:
    async with run_dohost(dev(tmp_path / "state", project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            css = await client.get("/css/site.css")
            assert css.text == "h1 { color: red }" and css.headers["content-type"] == "text/css; charset=utf-8"
            assert (await client.get("/css/site.css", headers={"if-none-match": css.headers["etag"]})).status_code == 304
            assert (await client.get("/about.html")).headers["location"] == "/about"
            assert (await client.get("/api/x")).json() == {"api": "/api/x"}
            missing = await client.get("/deep/nope")
            assert missing.status_code == 404 and missing.text == "<h1>Not here</h1>"
