"""``workers.asgi`` (also importable as top-level ``asgi``): run an ASGI app (FastAPI, Starlette, ...).

The call shape is the SDK's (cloudflare/workers-py ``workers/asgi.py``)::

    from workers import WorkerEntrypoint
    import asgi
    from app import app  # a FastAPI app

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await asgi.fetch(app, request, self.env)

As in the SDK, each request runs one lifespan startup before and one
shutdown after (apps without lifespan support are served anyway); the
scope carries ``scope["env"]`` (``asgi.env`` is the FastAPI dependency
that reads it) and a shallow copy of the lifespan ``state``. The app runs
on trio in the serving task (FastAPI and Starlette run on anyio, which
supports trio); the whole response body is collected before the
``Response`` is returned. WebSocket apps (``asgi.websocket``) are not
provided.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

import trio

from objects import Request, Response

from .._aborts import unwrap_abort
from .._unsupported import NotProvidedError

__all__ = ["fetch", "request_to_scope"]

_log = logging.getLogger("asgi")
ASGI = {"spec_version": "2.0", "version": "3.0"}
_NULL_BODY_STATUSES = frozenset({101, 103, 204, 205, 304})

_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]


def request_to_scope(req: Request, env: Any, ws: bool = False, state: dict[str, Any] | None = None) -> dict[str, Any]:
    url = urlsplit(req.url)
    scope: dict[str, Any] = {
        "asgi": ASGI,
        "headers": [(k.lower().encode(), v.encode()) for k, v in req.headers.items()],
        "http_version": "1.1",
        "method": str(getattr(req.method, "value", req.method)),
        "scheme": url.scheme,
        "path": unquote(url.path or "/"),
        "raw_path": (url.path or "/").encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "type": "websocket" if ws else "http",
        "server": (url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80)),
        "client": ("127.0.0.1", 0),
        "env": env,
    }
    if state is not None:
        scope["state"] = dict(state)  # ASGI: a shallow copy of the lifespan state per request
    return scope


class _Lifespan:
    """One lifespan startup/shutdown cycle around a request, tolerating apps without lifespan."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.supported = False
        self._to_app_send, self._to_app = trio.open_memory_channel[dict[str, Any]](2)
        self._started = trio.Event()
        self._stopped = trio.Event()
        self._error: str | None = None

    async def run(self) -> None:
        async def send(message: dict[str, Any]) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                self.supported = True
                self._started.set()
            elif kind == "lifespan.startup.failed":
                self._error = message.get("message", "ASGI lifespan startup failed")
                self._started.set()
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self._stopped.set()
            else:
                raise RuntimeError(f"Unexpected lifespan event {kind}")  # CF: workers-py workers/asgi.py

        try:
            await self.app({"type": "lifespan", "asgi": ASGI, "state": self.state}, self._to_app.receive, send)
        except Exception:
            if self._started.is_set() and self.supported:
                _log.exception("Exception in ASGI lifespan application")
        finally:
            self._started.set()
            self._stopped.set()

    async def startup(self) -> None:
        await self._to_app_send.send({"type": "lifespan.startup"})
        await self._started.wait()
        if self._error is not None:
            raise RuntimeError(self._error)

    async def shutdown(self) -> None:
        if self.supported:
            await self._to_app_send.send({"type": "lifespan.shutdown"})
        await self._stopped.wait() if self.supported else None


async def process_request(app: Any, req: Request, env: Any, state: dict[str, Any] | None = None) -> Response:
    """Call the ASGI ``app`` with one HTTP request and collect its response."""
    body = await req.bytes()
    sent_request = False
    finished = trio.Event()
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    try:
        await app(request_to_scope(req, env, state=state), receive, send)
    except Exception:
        if "status" not in start or not finished.is_set():
            raise
        # The response went out before the app raised (Starlette's error
        # middleware answers 500, then re-raises): it stands; log the error.
        _log.exception("Exception in ASGI application after response started")  # CF: workers-py workers/asgi.py
    finally:
        finished.set()
    if "status" not in start:
        raise RuntimeError("The application did not generate a response")  # CF: workers-py workers/asgi.py
    status = int(start["status"])
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    content = None if status in _NULL_BODY_STATUSES else b"".join(chunks)
    return Response(content, status=status, headers=headers)


async def fetch(app: Any, req: Request, env: Any, ctx: Any = None) -> Response:
    """Serve ``req`` with the ASGI ``app`` inside one lifespan cycle."""
    _log.debug("ASGI request: %s %s", req.method, req.url)
    lifespan = _Lifespan(app)
    outcome: Response | Exception
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lifespan.run)
            await lifespan.startup()
            try:
                outcome = await process_request(app, req, env, lifespan.state if lifespan.supported else None)
            except Exception as exc:
                _log.exception("ASGI request failed")
                outcome = exc  # raised below, outside the nursery, so not wrapped in an ExceptionGroup
            finally:
                with trio.CancelScope(shield=True):
                    await lifespan.shutdown()
    except BaseExceptionGroup as group:
        unwrap_abort(group)  # ctx.abort() inside the app: the object is already reset
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def __getattr__(name: str) -> Any:
    if name == "env":
        # The SDK's FastAPI dependency: ``async def handler(env=asgi.env)``.
        from fastapi import Depends
        from fastapi import Request as FastAPIRequest

        async def env(request: Any) -> Any:
            return request.scope["env"]

        # This module's annotations are strings; FastAPI needs the class itself.
        env.__annotations__ = {"request": FastAPIRequest, "return": Any}
        return Depends(env)
    if name.startswith("_"):
        raise AttributeError(f"module 'asgi' has no attribute {name!r}")
    reasons = {"websocket": "WebSocket ASGI apps are not served; use a Durable Object's WebSocket API"}
    raise NotProvidedError("asgi", name, reasons.get(name, ""))
