"""The HTTP front: a starlette app on hypercorn's trio worker, in front of a Runtime.

Every request goes to the Worker entrypoint (or the default router), as
``objects.Request``; the ``objects.Response`` comes back out. That path is
plain ASGI (no framework objects per request); starlette serves WebSockets,
the health check and the routes mounted under ``/__dohost/``. WebSocket
upgrades go through the Worker too: a 101 reply with a ``web_socket``
connects the client to the object's server end, held by the host so it
survives eviction.

* A request body streams from the client to the Worker as it reads
  ``request.body`` (``_request_body.py``); a declared ``Content-Length`` over
  ``max_body_bytes`` is refused with 413 before user code runs, a body that
  outgrows it while being read gets 413 whatever the Worker answered.
* A WebSocket upgrade the Worker answers with anything but a 101 gets that
  response (status, headers, body) through ASGI's ``websocket.http.response``.
* A client's close code and reason reach the object as sent
  (``_hypercorn_ws.py`` works around pgjones/hypercorn#127 for this app only).
* An exception from user code becomes a 500 (logged with its traceback);
  the server keeps serving.
* ``/__dohost/health`` answers 200 without touching user code (Docker's
  healthcheck), and extra routes (the deploy API) can be mounted in front.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Awaitable, Callable, Sequence, cast

import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from objects import Request, Response, body_bytes, front_request, wire_headers

from ._hypercorn_ws import install as _install_close_codes
from ._hypercorn_ws import mark_app
from ._request_body import AsgiBodyFeed, open_request_body
from ._websockets import ABNORMAL_CLOSURE, ABNORMAL_REASON, HostedSocket

__all__ = ["build_app", "serve_http", "tune_gc_for_serving", "SERVING_GC_THRESHOLD", "DEFAULT_MAX_BODY_BYTES", "ASGIApp"]

#: An ASGI application: ``await app(scope, receive, send)``.
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

log = logging.getLogger("dohost.http")

#: Cloudflare's smallest plan accepts 100 MB request bodies.
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # CF: https://developers.cloudflare.com/workers/platform/limits/
#: The largest WebSocket message a client may send (hypercorn's default is 16 MiB).
WEBSOCKET_MAX_MESSAGE_BYTES = 32 << 20  # CF: api/web-socket.c++ WEBSOCKET_MAX_MESSAGE_SIZE
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
_METHOD_SET = frozenset(_METHODS)
#: The request headers the Worker front reads itself.
_FRONT_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding"})


class _TooLarge(Exception):
    pass


# What user code may raise without taking the server down: a stray sys.exit()
# in a handler is a 500, not the end of the process (trio.Cancelled and
# KeyboardInterrupt still propagate).
_USER_ERRORS = (Exception, SystemExit)


async def _read_body(request: StarletteRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _StarlettePeer:
    """``WebSocketPeer`` over a starlette WebSocket."""

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws

    async def send_text(self, data: str) -> None:
        await self._ws.send_text(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, reason=reason)


def build_app(
    get_runtime: Callable[[], Any],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    extra_routes: Sequence[BaseRoute] = (),
    on_request: Callable[[str, str, int, float], None] | None = None,
    request_cf: Callable[[], Any] | None = None,
) -> ASGIApp:
    """The ASGI app. ``get_runtime`` returns the current runtime (it changes on reload).

    ``request_cf`` makes each client request's ``request.cf`` (``dohost dev``
    gives wrangler dev's local placeholder); without it, ``request.cf`` is None.
    """

    def cf() -> Any:
        return request_cf() if request_cf is not None else None

    async def http_endpoint(request: StarletteRequest) -> StarletteResponse:
        started = time.perf_counter()
        status = 500
        try:
            try:
                body = await _read_body(request, max_body_bytes)
            except _TooLarge:
                status = 413
                return PlainTextResponse(f"Request body larger than {max_body_bytes} bytes\n", status_code=413)
            req = Request(
                str(request.url),
                method=request.method,
                headers=list(request.headers.items()),
                body=body if body else None,
                cf=cf(),
            )
            try:
                resp = await get_runtime().fetch_worker(req)
            except _USER_ERRORS:
                log.exception("%s %s: the Worker raised", request.method, request.url.path)
                return PlainTextResponse("Internal Server Error\n", status_code=500)
            if resp is None or not hasattr(resp, "status"):
                log.error("%s %s: the Worker returned %r, not a Response", request.method, request.url.path, resp)
                return PlainTextResponse("Internal Server Error\n", status_code=500)
            status = resp.status
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
            out = StarletteResponse(content=await body_bytes(resp) or b"", status_code=resp.status)
            out.raw_headers = [h for h in out.raw_headers if h[0] == b"content-length"] + [
                h for h in headers if h[0] != b"content-length"
            ]
            return out
        finally:
            if on_request is not None:
                on_request(request.method, request.url.path, status, time.perf_counter() - started)

    async def ws_endpoint(websocket: WebSocket) -> None:
        url = str(websocket.url).replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        req = Request(url, headers=list(websocket.headers.items()), cf=cf())
        try:
            result = await get_runtime().open_websocket(req, _StarlettePeer(websocket))
        except _USER_ERRORS:
            log.exception("WebSocket %s: the Worker raised", websocket.url.path)
            await _refuse_upgrade(websocket, None)
            return
        if not isinstance(result, HostedSocket):
            # Any other answer is the client's HTTP response, as on Cloudflare.
            await _refuse_upgrade(websocket, result)
            return
        await _run_websocket(websocket, result, get_runtime().start_socket)

    async def health(request: StarletteRequest) -> StarletteResponse:
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [Route("/__dohost/health", health, methods=["GET"]), *extra_routes]
    routes += [
        Route("/{path:path}", http_endpoint, methods=_METHODS),
        WebSocketRoute("/{path:path}", ws_endpoint),
    ]
    framework = Starlette(routes=routes)

    # Requests for the Worker skip the framework: routing and its Request and
    # Response objects cost ~70 µs a request for nothing dohost needs. The
    # health check, the deploy API, WebSockets and lifespan go through starlette.
    front = _worker_front(get_runtime, max_body_bytes, request_cf, framework)
    if on_request is None:
        app = cast(ASGIApp, front)  # what it returns, ASGI ignores
    else:
        report = on_request

        async def reported(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if not _for_worker(scope):
                # Not a Worker request: the framework's http_endpoint reports
                # its own, and its other routes are not reported, even failing.
                await framework(scope, receive, send)
                return
            started = time.perf_counter()
            status: int | None = 500
            try:
                status = await front(scope, receive, send)
            finally:
                report(scope["method"], scope["path"], status or 500, time.perf_counter() - started)

        app = reported
    mark_app(app)
    return app


async def _run_websocket(websocket: WebSocket, hosted: HostedSocket, start_socket: Callable[[HostedSocket], None]) -> None:
    """Accept ``websocket`` and pass its frames to ``hosted`` until either side closes."""
    code, reason, clean = ABNORMAL_CLOSURE, ABNORMAL_REASON, False
    try:
        await websocket.accept()
        start_socket(hosted)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                # With _hypercorn_ws installed a client's Close frame arrives
                # with its code and reason; 1006 means no Close frame came.
                code = message.get("code", 1005)
                if code != ABNORMAL_CLOSURE:
                    reason, clean = message.get("reason") or "", True
                break
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await hosted.on_message(data)
    finally:
        with trio.CancelScope(shield=True):
            await hosted.on_close(code, reason, clean)


async def _refuse_upgrade(websocket: WebSocket, response: Any) -> None:
    """Answer an upgrade with the Worker's non-101 response (ASGI's websocket.http.response)."""
    if response is None or not hasattr(response, "status") or response.status == 101:
        if response is not None:
            log.error("WebSocket %s: the Worker returned %r, not a Response", websocket.url.path, response)
        out: StarletteResponse = PlainTextResponse("Internal Server Error\n", status_code=500)
    else:
        content = await body_bytes(response) or b""
        out = StarletteResponse(content=content, status_code=response.status)
        out.raw_headers = [(b"content-length", str(len(content)).encode())] + [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items() if k != "content-length"
        ]
    try:
        await websocket.send_denial_response(out)
    except RuntimeError:  # a server without the extension: close before accepting (a 403)
        await websocket.close(code=1008)


async def _send_plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def _send_too_large(send: Any, max_body_bytes: int) -> None:
    await _send_plain(send, 413, f"Request body larger than {max_body_bytes} bytes\n")


def _for_worker(scope: dict[str, Any]) -> bool:
    """Whether ``scope`` is an HTTP request the Worker gets on plain ASGI (not through the framework)."""
    return scope["type"] == "http" and scope["method"] in _METHOD_SET and not scope["path"].startswith("/__dohost/")


def _worker_front(
    get_runtime: Callable[[], Any],
    max_body_bytes: int,
    cf: Callable[[], Any] | None,
    framework: ASGIApp,
) -> Callable[[dict[str, Any], Any, Any], Awaitable[int | None]]:
    """The ASGI app: HTTP requests for the Worker on plain ASGI, anything else to ``framework``.

    The app returns the status it sent for a Worker request (499: the client
    left first), ``None`` for what went to the framework. One coroutine frame
    per request: every trip through the scheduler resumes each frame.
    """

    async def front(scope: dict[str, Any], receive: Any, send: Any) -> int | None:
        # _for_worker, inline (a Python call less per request)
        if scope["type"] != "http":
            await framework(scope, receive, send)
            return None
        method = scope["method"]
        path = scope["path"]
        if method not in _METHOD_SET or path.startswith("/__dohost/"):
            await framework(scope, receive, send)
            return None
        raw_headers = scope["headers"]
        host_bytes = declared = None
        chunked = False
        for k, v in raw_headers:
            if k in _FRONT_HEADERS:  # one set lookup for each header the front ignores
                if k == b"host":
                    host_bytes = v
                elif k == b"content-length":
                    declared = v
                else:
                    chunked = True
        body: AsgiBodyFeed | None = None
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            await _send_too_large(send, max_body_bytes)
            return 413
        if method != "GET" and method != "HEAD" and (
            declared is not None or chunked or scope.get("http_version") not in ("1.1", "1.0")
        ):
            # A GET or HEAD body cannot reach a Request (the Fetch standard refuses
            # one), so it is ignored rather than turned into a 500; an HTTP/1
            # request with neither header has none. Not calling receive() when
            # there is no body saves a trip through the scheduler per request.
            feed = await open_request_body(receive, max_body_bytes)
            if feed == "disconnect":
                return 499  # the client went away before sending its body
            if feed == "too large":
                await _send_too_large(send, max_body_bytes)
                return 413
            if isinstance(feed, AsgiBodyFeed):
                body = feed
        # The URL as the client sent it (raw_path keeps its escapes).
        if host_bytes is not None:
            host = host_bytes.decode("latin-1")
        else:
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        raw = scope.get("raw_path")
        url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{raw.decode('latin-1') if raw else path}"
        query = scope.get("query_string")
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        # The server validated the request line and headers: no Request() re-checks.
        req = front_request(url, method, raw_headers, body, cf() if cf is not None else None)
        try:
            resp = await get_runtime().fetch_worker(req)
        except _USER_ERRORS:
            if body is not None and body.too_large:
                await _send_too_large(send, max_body_bytes)
                return 413
            log.exception("%s %s: the Worker raised", method, path)
            await _send_plain(send, 500, "Internal Server Error\n")
            return 500
        if type(resp) is not Response:
            if body is not None and body.too_large:
                # The body outgrew the limit while the Worker read it: the client
                # gets 413 whatever the Worker made of the error.
                await _send_too_large(send, max_body_bytes)
                return 413
            if resp is None or not hasattr(resp, "status"):
                log.error("%s %s: the Worker returned %r, not a Response", method, path, resp)
                await _send_plain(send, 500, "Internal Server Error\n")
                return 500
        elif body is not None and body.too_large:
            await _send_too_large(send, max_body_bytes)
            return 413
        status: int = resp.status
        content = (resp._body if resp._feed is None else await body_bytes(resp)) or b""
        await send({"type": "http.response.start", "status": status, "headers": wire_headers(resp, len(content))})
        await send({"type": "http.response.body", "body": content})
        return status

    return front


#: The first-generation threshold of the cyclic GC in a serving process (CPython's default: 700).
SERVING_GC_THRESHOLD = 10_000


def tune_gc_for_serving() -> None:
    """Set the cyclic GC's thresholds for a long-running server process (``dohost serve``/``dev``).

    A request allocates a few dozen container objects that reference counting
    frees; at CPython's default threshold (700 net allocations) a young
    collection still runs every ~25 requests, and each one promotes whatever
    is in flight at that moment, so full collections follow — and a full
    collection walks every resident object (~150,000 Python objects with
    1,000 objects resident: ~100 ms). Measured under ``wrk`` over 1,000
    objects, that was ~45 µs of CPU per request; with a threshold of 10,000
    net allocations, under 3 µs. Cyclic garbage still gets collected, later.
    Process-wide, so only the serving entry points call it, never a library import.
    """
    gc.set_threshold(SERVING_GC_THRESHOLD, *gc.get_threshold()[1:])


async def serve_http(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    shutdown_trigger: Callable[[], Any] | None = None,
    binds: Sequence[str] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn's trio worker until ``shutdown_trigger`` returns.

    ``binds`` (hypercorn's syntax, e.g. ``fd://3`` for a socket a parent
    process bound) replaces ``host``/``port``.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    _install_close_codes()  # client close codes reach the app (pgjones/hypercorn#127)
    config = Config()
    config.bind = list(binds) if binds else [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("dohost.hypercorn")
    config.graceful_timeout = 5.0
    config.websocket_max_message_size = WEBSOCKET_MAX_MESSAGE_BYTES
    kwargs: dict[str, Any] = {}
    if shutdown_trigger is not None:
        kwargs["shutdown_trigger"] = shutdown_trigger
    await serve(app, config, task_status=task_status, **kwargs)
