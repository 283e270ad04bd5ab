"""dohost's ``js`` module: the JavaScript globals Python Workers code imports.

Installed as ``sys.modules["js"]``. Each name is implemented in Python
(``_jsglobals``, ``_web``, ``_forms``, ``_fetch``) with the spelling Pyodide
gives it: constructors are ``X.new(...)``, keyword arguments act as the
options object. Cloudflare's Python examples write ``from js import
WebSocketPair`` and then either ``client, server =
WebSocketPair.new().object_values()`` or plain unpacking; both work.
``Date.now()`` follows the runtime's clock, so alarms scheduled from it run
under pytest-trio's fake clock too.

Any other name raises :class:`~wrangler_compat.platform.NotProvidedError`
(``from js import HTMLRewriter``) saying dohost does not provide it.
"""

from __future__ import annotations

from objects import WebSocketPair

from ._fetch import send as fetch
from objects import Blob, File, FormData
from ._jsglobals import (
    JSON,
    Array,
    ArrayBuffer,
    Date,
    DOMException,
    Error,
    EvalError,
    JsException,
    Math,
    Number,
    Object,
    RangeError,
    ReferenceError,
    SyntaxError,
    TextDecoder,
    TextEncoder,
    TypeError,
    Uint8Array,
    URIError,
    atob,
    btoa,
    console,
    crypto,
    decodeURIComponent,
    encodeURIComponent,
)
from ._jsglobals import JsHeaders as Headers
from ._jsglobals import JsRequest as Request
from ._jsglobals import JsResponse as Response
from ._jsglobals import WebSocketRequestResponsePairJs as WebSocketRequestResponsePair
from ._unsupported import module_getattr
from ._web import URL, URLSearchParams
from ._websocket_client import OutboundWebSocket as WebSocket

__all__ = [
    "JSON",
    "URL",
    "Array",
    "ArrayBuffer",
    "Blob",
    "DOMException",
    "Date",
    "Error",
    "EvalError",
    "File",
    "FormData",
    "Headers",
    "JsException",
    "Math",
    "Number",
    "Object",
    "RangeError",
    "ReferenceError",
    "Request",
    "Response",
    "SyntaxError",
    "TextDecoder",
    "TextEncoder",
    "TypeError",
    "URIError",
    "URLSearchParams",
    "Uint8Array",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "atob",
    "btoa",
    "console",
    "crypto",
    "decodeURIComponent",
    "encodeURIComponent",
    "fetch",
]

#: Names Cloudflare's runtime has that dohost does not, with the reason the error gives.
NOT_PROVIDED = {
    "setTimeout": "use asyncio.sleep or trio.sleep",
    "setInterval": "use a loop with asyncio.sleep",
    "HTMLRewriter": "no HTML rewriting engine",
    "caches": "no Cache API",
    "ReadableStream": "bodies are bytes in dohost",
    "WritableStream": "bodies are bytes in dohost",
    "TransformStream": "bodies are bytes in dohost",
    "AbortController": "requests cannot be aborted",
    "EventSource": "no EventSource",
    "connect": "no TCP sockets (cloudflare:sockets)",
}

__getattr__ = module_getattr("js", NOT_PROVIDED)
