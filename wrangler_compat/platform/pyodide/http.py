"""``pyodide.http``: ``pyfetch`` and its ``FetchResponse`` (Pyodide's ``http/_pyfetch.py`` API).

``pyfetch(url, method=, headers=, body=)`` makes the request through
dohost's outbound fetch (output gate included); ``FetchResponse`` answers
``status``, ``status_text``, ``ok``, ``headers`` (a dict), ``url``,
``redirected``, ``type``, ``body_used``, ``raise_for_status()``,
``clone()`` and the async readers ``text``/``string``/``json``/``bytes``/
``buffer``/``memoryview``/``unpack_archive``. A second read raises
:class:`BodyUsedError` (an ``OSError``), a 4xx/5xx ``raise_for_status`` an
:class:`HttpStatusError`, as in Pyodide.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from objects import Response, js_value
from objects.errors import BodyUsedError, HttpStatusError

from .._fetch import send
from .._jsglobals import Uint8Array
from .._unsupported import module_getattr

__all__ = ["AbortError", "BodyUsedError", "FetchResponse", "HttpStatusError", "pyfetch"]


class AbortError(OSError):
    """A request that was aborted."""


class FetchResponse:
    """A fetched response with Pythonic readers (``pyodide.http.FetchResponse``)."""

    def __init__(self, url: str, js_response: Response, abort_controller: Any = None, abort_signal: Any = None) -> None:
        self._url = url
        self.js_response = js_response
        self.abort_controller = abort_controller
        self.abort_signal = abort_signal

    @property
    def body_used(self) -> bool:
        return self.js_response.body_used

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.js_response.headers.items())

    @property
    def ok(self) -> bool:
        return self.js_response.ok

    @property
    def redirected(self) -> bool:
        return self.js_response.url not in ("", self._url)

    @property
    def status(self) -> int:
        return self.js_response.status

    @property
    def status_text(self) -> str:
        return self.js_response.status_text

    @property
    def type(self) -> str:
        return self.js_response.type  # "default": workerd's responses have no CORS types

    @property
    def url(self) -> str:
        return self.js_response.url or self._url

    def raise_for_status(self) -> None:
        if 400 <= self.status < 600:
            raise HttpStatusError(self.status, self.status_text, self.url)

    def clone(self) -> FetchResponse:
        if self.body_used:
            raise BodyUsedError(BodyUsedError.RESPONSE)
        return FetchResponse(self._url, self.js_response.clone(), self.abort_controller, self.abort_signal)

    async def bytes(self) -> bytes:
        return await self.js_response.bytes()

    async def buffer(self) -> Uint8Array:
        return Uint8Array(await self.bytes())

    async def text(self) -> str:
        return await self.js_response.text()

    async def string(self) -> str:
        return await self.text()

    async def json(self, **kwargs: Any) -> Any:
        return js_value(json.loads(await self.text(), **kwargs))

    async def memoryview(self) -> memoryview:
        return memoryview(await self.bytes())

    async def unpack_archive(self, *, extract_dir: str | None = None, format: str | None = None) -> None:
        data = await self.bytes()
        name = self._url.rsplit("/", 1)[-1] or "archive"
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            shutil.unpack_archive(path, extract_dir, format)

    def abort(self, reason: Any = None) -> None:
        raise ValueError("abort_controller is not set")  # CF: pyodide http/_pyfetch.py FetchResponse.abort

    def __repr__(self) -> str:
        return f"<FetchResponse [{self.status}] {self.url}>"


async def pyfetch(url: str, /, *, signal: Any = None, fetcher: Any = None, **kwargs: Any) -> FetchResponse:
    """Fetch ``url`` (keyword arguments are ``fetch``'s options) and wrap the response."""
    if fetcher is not None:
        response = await fetcher(url, kwargs)
    else:
        try:
            response = await send(url, **kwargs)
        except ConnectionError as exc:
            raise AbortError(str(exc)) from exc  # CF: pyodide http/_pyfetch.py pyfetch
    return FetchResponse(str(url), response)


__getattr__ = module_getattr("pyodide.http", {"open_url": "synchronous requests cannot run on dohost's event loop", "pyxhr": "no XMLHttpRequest"})
