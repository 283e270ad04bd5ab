"""Static assets routed as Cloudflare routes them: html_handling, not_found_handling, run_worker_first, ASSETS.fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from objects import Request, Response
from wrangler_compat.bindings import AssetsBinding, AssetServer, assets_entrypoint


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    files = {
        "index.html": "home",
        "about.html": "about",
        "blog/index.html": "blog",
        "blog/404.html": "blog missing",
        "404.html": "missing",
        "style.css": "body{}",
        "app.js": "x()",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def server(site: Path, html: str = "auto-trailing-slash", not_found: str = "none") -> AssetServer:
    return AssetServer(site, html_handling=html, not_found_handling=not_found)


async def answer(srv: AssetServer, path: str, **headers: str) -> tuple[int, str]:
    response = await srv.fetch(Request(f"http://site.test{path}", headers=headers))
    if 300 <= response.status < 400:
        return response.status, response.headers.get("location") or ""
    return response.status, await response.text()


@pytest.mark.parametrize(
    ("html", "path", "expected"),
    [
        ("auto-trailing-slash", "/", (200, "home")),
        ("auto-trailing-slash", "/about", (200, "about")),
        ("auto-trailing-slash", "/about.html", (307, "/about")),
        ("auto-trailing-slash", "/about/", (307, "/about")),
        ("auto-trailing-slash", "/blog/", (200, "blog")),
        ("auto-trailing-slash", "/blog", (307, "/blog/")),
        ("auto-trailing-slash", "/blog/index.html", (307, "/blog/")),
        ("auto-trailing-slash", "/style.css", (200, "body{}")),
        ("force-trailing-slash", "/about", (307, "/about/")),
        ("force-trailing-slash", "/about/", (200, "about")),
        ("force-trailing-slash", "/about.html", (307, "/about/")),
        ("force-trailing-slash", "/blog/", (200, "blog")),
        ("drop-trailing-slash", "/blog", (200, "blog")),
        ("drop-trailing-slash", "/blog/", (307, "/blog")),
        ("drop-trailing-slash", "/about", (200, "about")),
        ("drop-trailing-slash", "/", (200, "home")),
        ("none", "/about.html", (200, "about")),
        ("none", "/about", (404, "")),
    ],
)
async def test_html_handling_serves_or_redirects_as_cloudflare(site: Path, html: str, path: str, expected: Any) -> None:
    assert await answer(server(site, html), path) == expected


async def test_a_redirect_keeps_the_query_string(site: Path) -> None:
    assert await answer(server(site), "/blog?x=1") == (307, "/blog/?x=1")


@pytest.mark.parametrize(
    ("not_found", "path", "expected"),
    [
        ("none", "/nope", (404, "")),
        ("404-page", "/nope", (404, "missing")),
        ("404-page", "/blog/deep/nope", (404, "blog missing")),
        ("single-page-application", "/app/route", (200, "home")),
    ],
)
async def test_not_found_handling(site: Path, not_found: str, path: str, expected: Any) -> None:
    assert await answer(server(site, not_found=not_found), path) == expected


async def test_types_etags_and_conditional_requests(site: Path) -> None:
    srv = server(site)
    css = await srv.fetch(Request("http://site.test/style.css"))
    assert css.headers.get("content-type") == "text/css; charset=utf-8"
    etag = css.headers.get("etag")
    assert etag and etag.startswith('"')
    again = await srv.fetch(Request("http://site.test/style.css", headers={"if-none-match": etag}))
    assert again.status == 304
    head = await srv.fetch(Request("http://site.test/style.css", method="HEAD"))
    assert head.status == 200 and await head.text() == "" and head.headers.get("content-length") == "6"


async def test_a_path_cannot_escape_the_assets_folder(site: Path) -> None:
    (site.parent / "secret.txt").write_text("secret")
    assert (await answer(server(site), "/../secret.txt"))[0] == 404
    assert (await answer(server(site), "/%2e%2e/secret.txt"))[0] == 404


async def test_other_methods_are_refused_by_the_assets_binding(site: Path) -> None:
    response = await server(site).fetch(Request("http://site.test/", method="POST"))
    assert response.status == 405


async def test_the_assets_binding_fetches_by_url_or_request(site: Path) -> None:
    binding = AssetsBinding("ASSETS", server(site))
    assert await (await binding.fetch("http://any.host/about")).text() == "about"
    assert await (await binding.fetch("/style.css")).text() == "body{}"
    assert await (await binding.fetch(Request("https://x/blog/"))).text() == "blog"


async def worker(request: Request, env: Any, ctx: Any) -> Response:
    return Response(f"worker {request.method} {request.url.split('site.test', 1)[1]}")


async def through(entry: Any, path: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    response = await entry(Request(f"http://site.test{path}", method=method, headers=headers), None, None)
    return response.status, await response.text()


async def test_assets_come_first_and_the_worker_gets_the_rest(site: Path) -> None:
    entry = assets_entrypoint(server(site), False, worker)
    assert await through(entry, "/about") == (200, "about")
    assert await through(entry, "/api/x") == (200, "worker GET /api/x")
    assert await through(entry, "/about", method="POST") == (200, "worker POST /about")


async def test_run_worker_first_patterns_send_matching_paths_to_the_worker(site: Path) -> None:
    entry = assets_entrypoint(server(site), ("/blog/*", "!/blog/index.html"), worker)
    assert await through(entry, "/blog/") == (200, "worker GET /blog/")
    assert await through(entry, "/blog") == (200, "worker GET /blog")
    assert await through(entry, "/blog/index.html") == (307, "")
    assert await through(entry, "/about") == (200, "about")
    everything = assets_entrypoint(server(site), True, worker)
    assert await through(everything, "/about") == (200, "worker GET /about")


async def test_a_single_page_app_answers_navigations_and_lets_the_worker_answer_the_rest(site: Path) -> None:
    entry = assets_entrypoint(server(site, not_found="single-page-application"), False, worker)
    assert await through(entry, "/dashboard", **{"sec-fetch-mode": "navigate"}) == (200, "home")
    assert await through(entry, "/api/items") == (200, "worker GET /api/items")


async def test_a_worker_entrypoint_class_is_called_behind_the_assets(site: Path) -> None:
    from objects import WorkerEntrypoint

    class Default(WorkerEntrypoint):
        async def fetch(self, request: Request) -> Response:
            return Response("class worker")

    entry = assets_entrypoint(server(site), False, Default)
    assert await through(entry, "/nope") == (200, "class worker")
