"""Static assets: files served ahead of the Worker, and ``env.ASSETS.fetch(request)``.

Built from the wrangler file's ``assets`` table and routed as Cloudflare
routes them:

* Requests go to the assets first (``run_worker_first = false``): a GET or
  HEAD whose path matches a file under ``directory`` (after
  ``html_handling``) is answered from it; anything else goes to the Worker.
  ``run_worker_first = true`` sends everything to the Worker; a list of
  patterns (``"/api/*"``, ``"!/api/docs/*"``) sends the matching paths.
* ``html_handling``: ``auto-trailing-slash`` (default: ``/about`` serves
  ``about.html``, ``/blog/`` serves ``blog/index.html``, the other spellings
  redirect with 307), ``force-trailing-slash``, ``drop-trailing-slash``,
  ``none`` (exact paths only).
* ``not_found_handling``: ``none`` (404), ``404-page`` (the nearest
  ``404.html`` up the path, status 404), ``single-page-application``
  (``/index.html``, status 200; with a Worker only for navigation requests,
  ``Sec-Fetch-Mode: navigate``, the others reach the Worker).
* Responses carry ``Content-Type`` (stdlib :mod:`mimetypes`), an ``ETag``,
  and answer ``If-None-Match`` with 304.

The layer is an entrypoint wrapper (:func:`assets_entrypoint`), not an HTTP
middleware, so ``dohost dev``, ``dohost serve``, ``rt.fetch`` and the pytest
plugin's ``dohost.fetch`` all route the same way. Files are read from disk
on each request, so edits show up without a reload.
"""

from __future__ import annotations

import hashlib
import inspect
import mimetypes
import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from objects import Headers, Request, Response, make_request

from ._common import options

__all__ = ["AssetServer", "AssetsBinding", "assets_entrypoint"]

_REDIRECT = 307  # CF: https://developers.cloudflare.com/workers/static-assets/routing/advanced/html-handling/
_CACHE_CONTROL = "public, max-age=0, must-revalidate"


class AssetServer:
    """Answers requests from one assets folder with the configured handling."""

    def __init__(self, directory: Path, *, html_handling: str, not_found_handling: str) -> None:
        self.directory = directory.resolve()
        self.html_handling = html_handling
        self.not_found_handling = not_found_handling

    # -------------------------------------------------------------- lookup
    def _file(self, path: str) -> Path | None:
        """The file for URL path ``path``, if it exists inside the folder."""
        candidate = (self.directory / path.lstrip("/")).resolve()
        if candidate != self.directory and self.directory not in candidate.parents:
            return None  # ../ out of the folder
        return candidate if candidate.is_file() else None

    def resolve(self, path: str) -> tuple[str, Path | str] | None:
        """``("serve", file)``, ``("redirect", path)`` or None (no asset) for a decoded URL path."""
        h = self.html_handling
        exact = self._file(path)
        if h == "none":
            return ("serve", exact) if exact is not None else None
        if path.endswith("/"):
            index = self._file(path + "index.html")
            html = self._file(path[:-1] + ".html") if path != "/" else None
            if h == "drop-trailing-slash" and path != "/":
                return ("redirect", path[:-1]) if (index or html) else None
            if index is not None:
                return ("serve", index)
            if html is not None:
                return ("serve", html) if h == "force-trailing-slash" else ("redirect", path[:-1])
            return None
        if path.endswith("/index.html") or path.endswith("/index"):
            target = path.rsplit("/", 1)[0] + "/"
            if self._file(target + "index.html") is not None:
                if h == "drop-trailing-slash" and target != "/":
                    return ("redirect", target[:-1])
                return ("redirect", target)
        if path.endswith(".html") and exact is not None:
            bare = path[: -len(".html")]
            return ("redirect", bare + "/" if h == "force-trailing-slash" else bare)
        if exact is not None:
            return ("serve", exact)
        html = self._file(path + ".html")
        index = self._file(path + "/index.html")
        if h == "force-trailing-slash":
            return ("redirect", path + "/") if (html or index) else None
        if html is not None:
            return ("serve", html)
        if index is not None:
            return ("redirect", path + "/") if h == "auto-trailing-slash" else ("serve", index)
        return None

    # ----------------------------------------------------------- responses
    def match(self, request: Any) -> Response | None:
        """The asset response for ``request``, or None when no file matches."""
        url = urlsplit(request.url)
        found = self.resolve(unquote(url.path) or "/")
        if found is None:
            return None
        kind, where = found
        if kind == "redirect":
            location = str(where) + (f"?{url.query}" if url.query else "")
            return Response(None, status=_REDIRECT, headers={"location": location})
        assert isinstance(where, Path)
        return self._serve(request, where, 200)

    def not_found(self, request: Any, *, navigation_only: bool = False) -> Response | None:
        """What ``not_found_handling`` answers; None when it leaves the request to the Worker."""
        handling = self.not_found_handling
        if handling == "single-page-application":
            if navigation_only and request.headers.get("sec-fetch-mode") != "navigate":
                return None
            index = self._file("/index.html")
            if index is not None:
                return self._serve(request, index, 200)
        elif handling == "404-page" and not navigation_only:
            path = unquote(urlsplit(request.url).path) or "/"
            folder = path if path.endswith("/") else path.rsplit("/", 1)[0] + "/"
            while True:
                page = self._file(folder + "404.html")
                if page is not None:
                    return self._serve(request, page, 404)
                if folder == "/":
                    break
                folder = folder[:-1].rsplit("/", 1)[0] + "/"
        if navigation_only:
            return None
        return Response(None, status=404)

    def _serve(self, request: Any, file: Path, status: int) -> Response:
        data = file.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        headers = Headers({"content-type": content_type, "etag": etag, "cache-control": _CACHE_CONTROL})
        if status == 200 and etag in [t.strip() for t in (request.headers.get("if-none-match") or "").split(",")]:
            return Response(None, status=304, headers=headers)
        if request.method == "HEAD":
            headers.set("content-length", str(len(data)))
            return Response(None, status=status, headers=headers)
        return Response(data, status=status, headers=headers)

    async def fetch(self, request: Any) -> Response:
        """``env.ASSETS.fetch``: the asset, else what ``not_found_handling`` says."""
        if request.method not in ("GET", "HEAD"):
            return Response(None, status=405, headers={"allow": "GET, HEAD"})
        found = self.match(request)
        if found is not None:
            return found
        answer = self.not_found(request)
        assert answer is not None
        return answer


class AssetsBinding:
    """``env.ASSETS`` (the ``assets.binding`` name): ``await env.ASSETS.fetch(request_or_url)``."""

    def __init__(self, binding: str, server: AssetServer) -> None:
        self._binding = binding
        self._server = server

    def __repr__(self) -> str:
        return f"<AssetsBinding {self._binding} {str(self._server.directory)!r}>"

    async def fetch(self, url_or_request: Any, init: Any = None, **kwargs: Any) -> Response:
        opts = options(init, kwargs, where=f"env.{self._binding}.fetch")
        if isinstance(url_or_request, str) and url_or_request.startswith("/"):
            url_or_request = "http://assets.local" + url_or_request  # a path alone: any origin will do
        request = make_request(url_or_request, method=opts.get("method"), headers=opts.get("headers"))
        return await self._server.fetch(request)


def _worker_first(setting: bool | tuple[str, ...]) -> Callable[[str], bool]:
    if isinstance(setting, bool):
        return lambda _path: setting
    include = [_glob(p) for p in setting if not p.startswith("!")]
    exclude = [_glob(p[1:]) for p in setting if p.startswith("!")]
    # CF: https://developers.cloudflare.com/workers/static-assets/binding/#run_worker_first (negations win)
    return lambda path: any(r.match(path) for r in include) and not any(r.match(path) for r in exclude)


def _glob(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
    if pattern.endswith("/*"):
        regex = regex[: -len("/.*")] + "(/.*)?"  # "/api/*" also matches "/api"
    return re.compile(f"^{regex}$")


def assets_entrypoint(server: AssetServer, run_worker_first: bool | tuple[str, ...], worker: Any) -> Any:
    """An ``on_fetch(request, env, ctx)`` that serves assets as routed, else calls ``worker``."""
    worker_first = _worker_first(run_worker_first)
    is_class = inspect.isclass(worker)
    arity = 0 if worker is None or is_class else max(1, min(len(inspect.signature(worker).parameters), 3))

    async def on_fetch(request: Request, env: Any, ctx: Any) -> Any:
        path = unquote(urlsplit(request.url).path) or "/"
        if worker is None:
            return await server.fetch(request)
        if request.method in ("GET", "HEAD") and not worker_first(path):
            found = server.match(request)
            if found is None:
                found = server.not_found(request, navigation_only=True)
            if found is not None:
                return found
        if is_class:
            result = worker(ctx, env).fetch(request)
        else:
            result = worker(*(request, env, ctx)[:arity])
        if inspect.isawaitable(result):
            result = await result
        return result

    on_fetch.__dohost_worker__ = worker  # type: ignore[attr-defined]
    return on_fetch
