"""``workers.wsgi``: run a WSGI app (Flask, Django, ...) as a Worker's or object's ``fetch``.

The call shape is the SDK's (cloudflare/workers-py ``workers/wsgi.py``)::

    from workers import WorkerEntrypoint, wsgi
    from app import app  # a Flask app, or Django's get_wsgi_application()

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await wsgi.fetch(app, request, self.env)

The environ follows PEP 3333 as the SDK builds it: ``PATH_INFO`` decoded and
carried as a latin-1 "native string", ``QUERY_STRING`` still encoded,
repeated headers folded with ``,``, and the Cloudflare extension
``environ["workers.env"]`` giving the bindings. The app runs synchronously
on the serving task, as on Cloudflare (one thread per isolate): storage
calls it makes keep the input gate's guarantees. The body is read in full
before the app starts and the response body is collected before the
``Response`` is returned (dohost bodies are bytes).
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from objects import Request, Response

from .._unsupported import module_getattr

__all__ = ["build_environ", "fetch", "process_request"]

_log = logging.getLogger("wsgi")
_NULL_BODY_STATUSES = frozenset({101, 103, 204, 205, 304})  # CF: workers-py workers/wsgi.py NULL_BODY_STATUSES


def _native(value: str) -> str:
    return value.encode("utf-8").decode("latin-1")


def build_environ(req: Request, env: Any, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ for ``req`` (with ``workers.env``)."""
    url = urlsplit(req.url)
    if not url.scheme:
        raise ValueError(f"Request URL is not absolute: {req.url!r}")  # CF: workers-py workers/wsgi.py build_environ
    port = str(url.port) if url.port else ("443" if url.scheme == "https" else "80")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": str(getattr(req.method, "value", req.method)),
        "SCRIPT_NAME": "",
        "PATH_INFO": _native(unquote(url.path or "/")),
        "QUERY_STRING": url.query,
        "SERVER_NAME": url.hostname or "localhost",
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "workers.env": env,
    }
    for key, value in req.headers.items():
        name = key.upper().replace("-", "_")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
            continue
        http_name = "HTTP_" + name
        environ[http_name] = environ[http_name] + "," + value if http_name in environ else value
    if "CONTENT_LENGTH" not in environ and body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def process_request(app: Callable[..., Iterable[bytes]], req: Request, env: Any, body: bytes) -> Response:
    """Call the WSGI ``app`` once and turn what it returns into a ``Response``."""
    environ = build_environ(req, env, body)
    state: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if state.get("sent"):
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif "status" in state:
            raise AssertionError("start_response() called more than once")
        state["status"], state["headers"] = status, headers
        return write

    def write(chunk: bytes) -> None:
        if "status" not in state:
            raise AssertionError("write() called before start_response()")
        written.append(chunk)

    result = app(environ, start_response)
    try:
        for chunk in result:
            if chunk:
                state["sent"] = True
                written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in state:
        raise RuntimeError("The WSGI application did not call start_response()")  # CF: workers-py workers/wsgi.py
    code_text, _, reason = str(state["status"]).partition(" ")
    code = int(code_text)
    content = None if code in _NULL_BODY_STATUSES else b"".join(written)
    return Response(content, status=code, status_text=reason, headers=list(state["headers"]))


async def fetch(app: Any, req: Request, env: Any, ctx: Any = None) -> Response:
    """Serve ``req`` with the WSGI ``app``; ``ctx`` is accepted for parity with ``asgi.fetch``."""
    _log.debug("WSGI request: %s %s", req.method, req.url)
    body = await req.bytes()
    try:
        return process_request(app, req, env, body)
    except Exception:
        _log.exception("WSGI request failed")
        raise


__getattr__ = module_getattr("workers.wsgi")
