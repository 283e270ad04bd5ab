"""JavaScript globals Python Workers code reaches through ``js``, implemented in Python.

Constructors are spelled ``X.new(...)`` as Pyodide spells them; keyword
arguments become the trailing options object (``Response.new(body,
status=201)``), as Pyodide passes them. Values that JS would hand back as
objects or arrays come back as :class:`objects.JsObject`/:class:`objects.JsArray`
(plain dicts/lists that also answer ``to_py()``). Errors are Python
exceptions under :class:`JsException`, so ``except JsException`` catches
them as it catches a JS error in Pyodide.
"""

from __future__ import annotations

import base64
import builtins
import json
import logging
import math
import random as _random
import secrets
import time
import traceback
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

from objects import ArrayBuffer, Headers, JsArray, JsObject, Request, Response, Uint8Array, WebSocketRequestResponsePair, js_value, py_value
from runtime import current_activation

__all__ = [
    "ArrayBuffer", "Array", "DOMException", "Date", "Error", "EvalError", "JsException", "JSON", "JsHeaders", "JsRequest",
    "JsResponse", "Math", "Number", "Object", "RangeError", "ReferenceError", "SyntaxError", "TextDecoder",
    "TextEncoder", "TypeError", "URIError", "Uint8Array", "WebSocketRequestResponsePairJs", "atob", "btoa",
    "console", "crypto", "decodeURIComponent", "encodeURIComponent",
]  # fmt: skip

_log = logging.getLogger("dohost.console")
_MAX_SAFE = 2**53 - 1


def _options(init: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(init or {})
    merged.update(kw)
    return merged


# -- errors -----------------------------------------------------------------


class JsException(Exception):
    """A JavaScript error raised into Python (``pyodide.ffi.JsException``)."""

    js_name = "Error"

    #: JS's ``Error.stackTraceLimit`` (code sets it before reading ``.stack``); frames kept in ``stack``.
    stackTraceLimit: float = 10

    def __init__(self, message: str = "", *args: Any) -> None:
        super().__init__(message, *args)
        self.message = str(message)
        # JS records the stack where the error is created (``Error.new().stack``)
        limit = type(self).stackTraceLimit
        frames = traceback.extract_stack(limit=int(min(limit, 1000)) + 1)[:-1] if limit > 0 else []
        self._frames = [
            f"    at {f.name} ({f.filename}:{f.lineno})" for f in reversed(frames) if f.filename != __file__
        ]

    @property
    def stack(self) -> str:
        """JS's ``error.stack``: ``"Name: message"`` and the frames where it was created."""
        return "\n".join([self.toString(), *self._frames])

    @classmethod
    def new(cls, message: str = "", options: Any = None) -> JsException:
        return cls(message)

    @property
    def name(self) -> str:
        return self.js_name

    def toString(self) -> str:
        return f"{self.js_name}: {self.message}" if self.message else self.js_name

    def __str__(self) -> str:
        return self.toString()


class Error(JsException):
    js_name = "Error"


class TypeError(Error, builtins.TypeError):  # noqa: A001 - JS's name
    js_name = "TypeError"


class RangeError(Error, builtins.ValueError):
    js_name = "RangeError"


class SyntaxError(Error, builtins.ValueError):  # noqa: A001 - JS's name
    js_name = "SyntaxError"


class ReferenceError(Error):
    js_name = "ReferenceError"


class EvalError(Error):
    js_name = "EvalError"


class URIError(Error, builtins.ValueError):
    js_name = "URIError"


# -- Response / Request / Headers ------------------------------------------


class JsHeaders(Headers):
    """``js.Headers``: dohost's ``Headers`` plus JS's iteration methods."""

    __slots__ = ()

    @classmethod
    def new(cls, init: Any = None) -> JsHeaders:
        return cls(init)

    def entries(self) -> JsArray:
        return JsArray(JsArray(kv) for kv in self.items())

    def forEach(self, callback: Any) -> None:
        for name, value in self.items():
            callback(value, name, self)


class JsResponse:
    """``js.Response``: ``Response.new(body, status=, statusText=, headers=, webSocket=)``."""

    @staticmethod
    def new(body: Any = None, init: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        from ._fetch import encode_fetch_body

        opts = _options(init, kw)
        headers = Headers(opts.get("headers"))
        data = body if body is None or isinstance(body, (str, bytes)) else encode_fetch_body(body, headers)
        return Response(
            data,
            status=opts.get("status"),
            status_text=opts.get("statusText", opts.get("status_text", "")),
            headers=headers,
            web_socket=opts.get("webSocket", opts.get("web_socket")),
        )

    @staticmethod
    def json(data: Any, init: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        opts = _options(init, kw)
        return Response.from_json(
            py_value(data), opts.get("status", 200), opts.get("statusText", ""), opts.get("headers")
        )

    @staticmethod
    def redirect(url: Any, status: int = 302) -> Response:
        return Response.redirect(str(url), status)


class JsRequest:
    """``js.Request``: ``Request.new(url, method=, headers=, body=, redirect=)``."""

    @staticmethod
    def new(input: Any, init: Mapping[str, Any] | None = None, **kw: Any) -> Request:
        from ._fetch import encode_fetch_body

        opts = _options(init, kw)
        headers = Headers(opts["headers"]) if opts.get("headers") is not None else None
        body = opts.get("body")
        if body is not None and not isinstance(body, (str, bytes)):
            headers = headers if headers is not None else Headers()
            body = encode_fetch_body(body, headers)
        method = opts.get("method")
        return Request(input if isinstance(input, Request) else str(input), method=method, headers=headers, body=body,
                       redirect=opts.get("redirect"))


class WebSocketRequestResponsePairJs:
    """``js.WebSocketRequestResponsePair.new(request, response)``."""

    @staticmethod
    def new(request: str, response: str) -> WebSocketRequestResponsePair:
        return WebSocketRequestResponsePair(request, response)


# -- Object / JSON / Array --------------------------------------------------


class Object:
    """``Object.fromEntries`` (Pyodide's ``to_js`` dict converter), ``keys``/``values``/``entries``, ``assign``."""

    @staticmethod
    def new() -> JsObject:
        return JsObject()

    @staticmethod
    def fromEntries(pairs: Any) -> JsObject:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        return JsObject((k, v) for k, v in items)

    @staticmethod
    def keys(obj: Mapping[str, Any]) -> JsArray:
        return JsArray(obj.keys())

    @staticmethod
    def values(obj: Mapping[str, Any]) -> JsArray:
        return JsArray(obj.values())

    @staticmethod
    def entries(obj: Mapping[str, Any]) -> JsArray:
        return JsArray(JsArray(kv) for kv in obj.items())

    @staticmethod
    def assign(target: dict[str, Any], *sources: Mapping[str, Any]) -> dict[str, Any]:
        for source in sources:
            target.update(source)
        return target


class JSON:
    """``JSON.stringify``/``JSON.parse`` (compact separators, as JavaScript writes)."""

    @staticmethod
    def stringify(value: Any, replacer: Any = None, space: Any = None) -> str:
        indent = space if isinstance(space, (int, str)) and space else None
        separators = (",", ": ") if indent is not None else (",", ":")
        return json.dumps(py_value(value), indent=indent, separators=separators, default=_json_default)

    @staticmethod
    def parse(text: str | bytes) -> Any:
        try:
            return js_value(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SyntaxError(f"Unexpected token in JSON at position {exc.pos}") from None


def _json_default(value: Any) -> Any:
    to_json = getattr(value, "toJSON", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"Do not know how to serialize a {type(value).__name__}")


class Array:
    """``Array.isArray``, ``Array.of``, ``Array.new(...)``, ``Array["from"]`` (also ``from_``)."""

    @staticmethod
    def new(*items: Any) -> JsArray:
        if len(items) == 1 and isinstance(items[0], int):
            return JsArray([None] * items[0])
        return JsArray(items)

    @staticmethod
    def isArray(value: Any) -> bool:
        return isinstance(value, list)

    @staticmethod
    def of(*items: Any) -> JsArray:
        return JsArray(items)

    @staticmethod
    def from_(iterable: Iterable[Any], map_fn: Any = None) -> JsArray:
        return JsArray(iterable if map_fn is None else (map_fn(v, i) for i, v in enumerate(iterable)))


setattr(Array, "from", Array.from_)


class TextEncoder:
    encoding = "utf-8"

    @classmethod
    def new(cls) -> TextEncoder:
        return cls()

    def encode(self, text: str = "") -> Uint8Array:
        return Uint8Array(text.encode())


class TextDecoder:
    def __init__(self, label: str = "utf-8", options: Any = None, **kw: Any) -> None:
        self.encoding = label
        self.fatal = bool((options or {}).get("fatal", kw.get("fatal", False)))

    @classmethod
    def new(cls, label: str = "utf-8", options: Any = None, **kw: Any) -> TextDecoder:
        return cls(label, options, **kw)

    def decode(self, data: Any = b"", options: Any = None) -> str:
        raw = data.to_bytes() if hasattr(data, "to_bytes") else bytes(data)
        try:
            return raw.decode(self.encoding, errors="strict" if self.fatal else "replace")
        except UnicodeDecodeError as exc:
            raise TypeError(f"The encoded data was not valid for encoding {self.encoding}") from exc


# -- time, numbers, randomness ---------------------------------------------


def _now_ms() -> float:
    act = current_activation()
    if act is not None:
        return float(int(act.runtime.now_ms()))
    return float(int(time.time() * 1000))


class Date:
    """``Date.now()`` follows the serving runtime's clock (fake under pytest-trio); ``Date.new(ms | iso)``."""

    def __init__(self, ms: float) -> None:
        self._ms = float(ms)

    @classmethod
    def new(cls, value: Any = None) -> Date:
        if value is None:
            return cls(_now_ms())
        if isinstance(value, (int, float)):
            return cls(value)
        if isinstance(value, datetime):
            return cls(value.timestamp() * 1000)
        return cls(Date.parse(str(value)))

    @staticmethod
    def now() -> float:
        return _now_ms()

    @staticmethod
    def parse(text: str) -> float:
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return math.nan
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp() * 1000

    def getTime(self) -> float:
        return self._ms

    valueOf = getTime

    def toISOString(self) -> str:
        stamp = datetime.fromtimestamp(self._ms / 1000, tz=timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(self._ms % 1000):03d}Z"

    toJSON = toISOString
    toString = toISOString

    def to_py(self) -> datetime:
        return datetime.fromtimestamp(self._ms / 1000, tz=timezone.utc)

    def __repr__(self) -> str:
        return f"Date({self.toISOString()})"


class Math:
    """JavaScript's ``Math`` (``round`` rounds halves up, as JS does)."""

    PI = math.pi
    E = math.e
    LN2 = math.log(2)
    LN10 = math.log(10)
    SQRT2 = math.sqrt(2)

    random = staticmethod(_random.random)
    abs = staticmethod(builtins.abs)
    sqrt = staticmethod(math.sqrt)
    pow = staticmethod(math.pow)
    log = staticmethod(math.log)
    log2 = staticmethod(math.log2)
    log10 = staticmethod(math.log10)
    exp = staticmethod(math.exp)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    tan = staticmethod(math.tan)
    atan2 = staticmethod(math.atan2)
    hypot = staticmethod(math.hypot)

    @staticmethod
    def floor(x: float) -> int:
        return math.floor(x)

    @staticmethod
    def ceil(x: float) -> int:
        return math.ceil(x)

    @staticmethod
    def trunc(x: float) -> int:
        return math.trunc(x)

    @staticmethod
    def round(x: float) -> int:
        return math.floor(x + 0.5)

    @staticmethod
    def sign(x: float) -> int:
        return (x > 0) - (x < 0)

    @staticmethod
    def max(*xs: float) -> float:
        return builtins.max(xs) if xs else -math.inf

    @staticmethod
    def min(*xs: float) -> float:
        return builtins.min(xs) if xs else math.inf


class Number:
    MAX_SAFE_INTEGER = _MAX_SAFE
    MIN_SAFE_INTEGER = -_MAX_SAFE
    EPSILON = 2.0**-52
    NaN = math.nan
    POSITIVE_INFINITY = math.inf
    NEGATIVE_INFINITY = -math.inf

    @staticmethod
    def isInteger(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and float(x).is_integer()

    @staticmethod
    def isSafeInteger(x: Any) -> bool:
        return Number.isInteger(x) and builtins.abs(x) <= _MAX_SAFE

    @staticmethod
    def isFinite(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    @staticmethod
    def isNaN(x: Any) -> bool:
        return isinstance(x, float) and math.isnan(x)

    @staticmethod
    def parseFloat(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return math.nan

    @staticmethod
    def parseInt(text: str, radix: int = 10) -> float:
        try:
            return int(str(text).strip(), radix)
        except ValueError:
            return math.nan


class _Crypto:
    """``crypto.randomUUID()`` and ``crypto.getRandomValues(array)`` from the OS's CSPRNG."""

    @staticmethod
    def randomUUID() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def getRandomValues(array: Any) -> Any:
        if len(array) > 0x10000:
            raise DOMException(
                f"getRandomValues() only accepts buffers of size <= 64K but provided {len(array)} bytes.",  # CF: api/crypto/crypto.c++ getRandomValues
                "QuotaExceededError",
            )
        array[:] = secrets.token_bytes(len(array)) if isinstance(array, bytearray) else [
            secrets.randbits(8) for _ in range(len(array))
        ]
        return array

    @property
    def subtle(self) -> Any:
        from ._unsupported import NotProvidedError

        raise NotProvidedError("js", "crypto.subtle", "use Python's hashlib/hmac or the cryptography package")


crypto = _Crypto()


class console:  # noqa: N801 - JS's name
    """``console.log`` and friends, to the ``dohost.console`` logger."""

    @staticmethod
    def log(*args: Any) -> None:
        _log.info(" ".join(map(str, args)))

    info = log
    debug = log

    @staticmethod
    def warn(*args: Any) -> None:
        _log.warning(" ".join(map(str, args)))

    @staticmethod
    def error(*args: Any) -> None:
        _log.error(" ".join(map(str, args)))


class DOMException(Error):
    """A DOMException (``InvalidCharacterError``, ``QuotaExceededError``...), named by ``name``."""

    def __init__(self, message: str = "", name: str = "Error") -> None:
        super().__init__(message)
        self.js_name = name


def btoa(text: str) -> str:
    try:
        return base64.b64encode(text.encode("latin-1")).decode("ascii")
    except UnicodeEncodeError:
        raise DOMException(
            "btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.",  # CF: api/global-scope.c++ btoa
            "InvalidCharacterError",
        ) from None


def atob(text: str) -> str:
    compact = "".join(text.split())  # whitespace is allowed anywhere
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True).decode("latin-1")
    except ValueError:
        raise DOMException(
            # CF: api/global-scope.c++ atob
            "atob() called with invalid base64-encoded data. (Only whitespace, '+', '/', alphanumeric "
            "ASCII, and up to two terminal '=' signs when the input data length is divisible by 4 are "
            "allowed.)",
            "InvalidCharacterError",
        ) from None


def encodeURIComponent(text: Any) -> str:
    return quote(str(text), safe="-_.!~*'()")


def decodeURIComponent(text: str) -> str:
    return unquote(text, errors="strict")
