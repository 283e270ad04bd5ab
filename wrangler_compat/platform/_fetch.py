"""Outbound ``fetch`` shared by ``workers.fetch``, ``js.fetch`` and ``pyodide.http.pyfetch``.

Accepts what the Python SDK's ``fetch`` accepts (``workers/types.py``
``FetchKwargs``/``Body`` in cloudflare/workers-py): a URL string, a
``workers.Request`` or ``js.URL``; ``method`` (a ``str`` or
``http.HTTPMethod``), ``headers`` (dict, pairs or ``Headers``), ``body``
(``str``, ``bytes``-like, ``FormData``, ``Blob``/``File``,
``URLSearchParams``, a list — sent as JavaScript's ``String(array)``, as
Pyodide's conversion makes it — or ``None``; a dict is refused, where
JavaScript would send ``[object Object]``) and ``redirect`` (``"follow"``,
``"manual"`` or ``"error"``). Other ``RequestInit`` keys (``cf``,
``signal``...) are accepted and ignored: they steer Cloudflare's edge.

Bodies without an explicit ``content-type`` get the one JavaScript's
``fetch`` would set. Inside an object the request leaves only after the
object's earlier writes are committed (the output gate). The request goes
out through httpx.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from objects import Blob, FormData, Headers, Request, Response, encode_form, redirect_mode
from runtime import current_activation

from ._web import URL, URLSearchParams

__all__ = ["encode_fetch_body", "send"]

_TEXT = "text/plain;charset=UTF-8"
_FORM_URLENCODED = "application/x-www-form-urlencoded;charset=UTF-8"
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def encode_fetch_body(body: Any, headers: Headers) -> bytes | None:
    """The bytes ``body`` sends, setting ``content-type`` as JavaScript would when absent."""
    if body is None:
        return None
    content_type: str | None
    if isinstance(body, str):
        data, content_type = body.encode(), _TEXT
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data, content_type = bytes(body), None
    elif isinstance(body, FormData):
        data, content_type = encode_form(body)
    elif isinstance(body, Blob):
        data, content_type = body._data, body.type or None
    elif isinstance(body, URLSearchParams):
        data, content_type = body.toString().encode(), _FORM_URLENCODED
    elif isinstance(body, (list, tuple)):
        # Pyodide hands a list over as a JS Array, which fetch turns into a string
        # the way String(array) does: items joined by "," (Cloudflare's Alarms API
        # example sends ``body=list(vals.values())``).
        data, content_type = _js_string(body).encode(), _TEXT
    else:
        hint = " (serialise it first: body=json.dumps(data))" if isinstance(body, dict) else ""
        raise TypeError(
            f"fetch: body: expected str, bytes, FormData, Blob, URLSearchParams, list or None, "
            f"got {type(body).__name__}{hint}"
        )
    if content_type is not None and not headers.has("content-type"):
        headers.set("content-type", content_type)
    return data


def _js_string(value: Any) -> str:
    """``String(value)`` for what Pyodide turns a Python value into (Array.prototype.toString)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join(_js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _method(method: Any) -> str:
    value = getattr(method, "value", method)
    if not isinstance(value, str):
        raise TypeError(f"fetch: method: expected str, got {type(method).__name__}")
    return value.upper() if value.upper() in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS") else value


async def send(
    resource: Any,
    init: Mapping[str, Any] | None = None,
    /,
    *,
    method: Any = None,
    headers: Any = None,
    body: Any = None,
    redirect: str | None = None,
    **_ignored: Any,
) -> Response:
    """Make the request; the result is a ``workers.Response`` with its body read."""
    if init is not None:  # js.fetch(url, {"method": ...}) spelling
        if not isinstance(init, Mapping):
            raise TypeError(f"fetch: init: expected a dict of options, got {type(init).__name__}")
        method = init.get("method", method)
        headers = init.get("headers", headers)
        body = init.get("body", body)
        redirect = init.get("redirect", redirect)
    if isinstance(resource, Request):
        url = resource.url
        method = resource.method if method is None else method
        merged = resource.headers.copy() if headers is None else Headers(headers)
        if body is not None:
            payload = encode_fetch_body(body, merged)
        else:  # fetch(request) sends, and so uses, the request's own body
            payload = None if resource.body is None else await resource.bytes()
    elif isinstance(resource, (str, URL)):
        url = str(resource)
        merged = Headers(headers)
        payload = encode_fetch_body(body, merged)
    else:
        raise TypeError(f"fetch: resource: expected a URL str, URL or Request, got {type(resource).__name__}")
    if redirect is not None:
        mode = redirect_mode(redirect)
    else:
        mode = resource.redirect if isinstance(resource, Request) else "follow"
    verb = _method(method or "GET")
    if payload is not None and verb in ("GET", "HEAD"):
        raise TypeError("Request with a GET or HEAD method cannot have a body.")  # CF: api/http.c++ Request::constructor
    act = current_activation()
    if act is not None:
        await act.wait_output()  # output gate: earlier writes commit before the request leaves
    import httpx

    try:
        async with httpx.AsyncClient(follow_redirects=mode == "follow") as client:
            reply = await client.request(verb, url, headers=merged.items(), content=payload)
    except httpx.TransportError as exc:
        # An OSError, as Pyodide's pyfetch raises one (AbortError) for a failed fetch.
        raise ConnectionError(f"fetch failed: {verb} {url}: {exc}") from exc
    status = reply.status_code
    content = reply.content if status not in (101, 204, 205, 304) else None
    # httpx hands back the decoded body: framing and encoding headers no longer describe it.
    kept = [(k, v) for k, v in reply.headers.multi_items() if k.lower() not in _FRAMING]
    response = Response(content, status=status, status_text=reply.reason_phrase, headers=kept)
    response.url = str(reply.url)
    if reply.history:  # httpx followed at least one redirect: JS's response.redirected
        response._redirected = True
    return response


def json_body(data: Any) -> str:
    """``json.dumps`` as ``JSON.stringify`` spells it (no spaces)."""
    return json.dumps(data, separators=(",", ":"))
