"""dohost's ``workers`` module: what Cloudflare's Python Workers import.

Installed as ``sys.modules["workers"]`` (and :mod:`wrangler_compat.js` as
``sys.modules["js"]``) by :func:`install_modules` before any user module is
imported — as the platform provides it under Pyodide — so it wins even where
Cloudflare's Pyodide-only SDK is installed for type hints.

``env`` is a proxy to the environment of the runtime serving the current
request; ``fetch`` makes an outgoing HTTP request (through httpx) and, like
every output of an object, waits for the object's pending writes to commit.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Awaitable, Mapping

from objects import (
    DurableObject,
    DurableObjectId,
    DurableObjectNamespace,
    DurableObjectState,
    DurableObjectStub,
    ExecutionContext,
    Headers,
    Request,
    Response,
    WebSocketHandle,
    WebSocketPair,
    WebSocketRequestResponsePair,
    WorkerEntrypoint,
    body_bytes,
)
from runtime import current_activation, current_env

__all__ = [
    "DurableObject",
    "DurableObjectId",
    "DurableObjectNamespace",
    "DurableObjectState",
    "DurableObjectStub",
    "ExecutionContext",
    "FetchResponse",
    "Headers",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "WorkerEntrypoint",
    "env",
    "fetch",
    "wait_until",
    "waitUntil",
    "install_modules",
]

#: Python Workers name the response of an outgoing ``fetch`` ``FetchResponse``.
FetchResponse = Response
WebSocket = WebSocketHandle


class _EnvProxy:
    """``from workers import env``: the current runtime's env, looked up per access."""

    def _target(self) -> Any:
        env = current_env()
        if env is None:
            raise RuntimeError("workers.env is only available while dohost is serving a request")
        return env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __getitem__(self, name: str) -> Any:
        return self._target()[name]

    def __repr__(self) -> str:
        env = current_env()
        return f"<workers.env {env!r}>"


env = _EnvProxy()


def wait_until(awaitable: Awaitable[Any]) -> None:
    """Keep the current object (or request) alive until ``awaitable`` finishes."""
    act = current_activation()
    if act is None:
        raise RuntimeError("wait_until() outside a Durable Object: use ctx.waitUntil in a Worker")
    act.wait_until(awaitable)


waitUntil = wait_until


async def fetch(
    url_or_request: Any,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> Response:
    """An outgoing HTTP request; inside an object it waits for the output gate first."""
    act = current_activation()
    if act is not None:
        await act.wait_output()
    if isinstance(url_or_request, Request):
        url = url_or_request.url
        method = method or str(url_or_request.method)
        headers = headers if headers is not None else dict(url_or_request.headers.items())
        body = body if body is not None else await body_bytes(url_or_request)  # body is a stream now
    else:
        url = str(url_or_request)
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - httpx is a dependency
        raise RuntimeError("workers.fetch needs httpx") from exc
    async with httpx.AsyncClient() as client:
        reply = await client.request(method or "GET", url, headers=headers, content=body)
    return Response(reply.content, status=reply.status_code, headers=list(reply.headers.multi_items()))


def install_modules() -> None:
    """Put dohost's ``workers`` and ``js`` modules into ``sys.modules`` (idempotent)."""
    from . import js

    sys.modules["workers"] = sys.modules[__name__]
    sys.modules["js"] = js
    # Python Workers' SDK also exposes submodules some examples import from.
    if "pyodide" not in sys.modules:
        pyodide = types.ModuleType("pyodide")
        ffi = types.ModuleType("pyodide.ffi")
        ffi.to_js = lambda value, **_: value  # type: ignore[attr-defined]
        ffi.create_proxy = lambda value, **_: value  # type: ignore[attr-defined]
        pyodide.ffi = ffi  # type: ignore[attr-defined]
        sys.modules["pyodide"] = pyodide
        sys.modules["pyodide.ffi"] = ffi
