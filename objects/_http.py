"""``Request``, ``Response`` and ``Headers`` shaped like Python Workers', with no web framework.

What user code sees in ``fetch(request)`` and returns from it, and what
``stub.fetch`` hands back. The shapes follow Cloudflare's Python SDK
(``workers/_workers.py``) and the checks follow workerd's ``api/http.c++``:

* ``Response(body=None, status=None, status_text="", headers=None,
  web_socket=None)`` -- the SDK's positional order; ``status`` defaults to
  200; ``body`` is ``str``, ``bytes`` or ``None``. ``Response.json(data, ...)``
  called on the class builds a JSON response; ``await response.json()`` on
  an instance reads one. ``Response.redirect(url, status=302)``.
* ``Request(url, method="GET", headers=None, body=None)``; ``method`` is an
  ``http.HTTPMethod`` (a ``str``), normalised as workerd does.
* A body is read once, like a stream: a second ``text()``/``json()``/
  ``bytes()``/``buffer()``/``arrayBuffer()`` raises :class:`BodyUsedError`;
  ``clone()`` (before reading) gives an independent copy. A ``None`` body
  reads as empty and never counts as used, as in the Fetch standard.
* ``Headers`` is a case-insensitive multi-dict: ``get`` joins repeated values
  with ``", "`` (except ``Set-Cookie``, kept apart as ``getSetCookie()``),
  iteration yields lowercase names in sorted order, as JavaScript's does.
  A request's headers are ``RequestHeaders``: read as the
  ``http.client.HTTPMessage`` the SDK's ``Request.headers`` is (a missing
  one reads as ``None``). A client request's headers (``front_request``)
  stay the server's byte pairs until first read, then behave as any
  request's.

``request.body``/``response.body`` is a ReadableStream (``_streams.py``)
or ``None`` when there is no body, as in JavaScript. A request body from
the HTTP front is streamed: the async readers then wait for the client's
bytes (this package cannot import trio; the front's feed does the waiting).
In-memory bodies never wait; their readers are ``async`` for source
compatibility and are not trio checkpoints. ``Response(..., status_text=)``
is kept and readable as ``statusText``; the HTTP front cannot send it
(ASGI carries no reason phrase).
"""

from __future__ import annotations

import json as _json
from http import HTTPMethod, HTTPStatus
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union
from urllib.parse import urlsplit

from persistence._names import cf_names

from ._forms import Blob, FormData, encode_form, parse_form
from ._jsvalues import js_value
from ._streams import BodyFeed, BytesFeed, ReadableStream
from .errors import BodyUsedError, HttpStatusError, HttpStatusRangeError, InvalidHttpError

__all__ = ["Headers", "RequestHeaders", "Request", "Response", "HeadersInit", "make_request", "redirect_mode", "body_bytes", "front_request", "wire_headers"]

HeadersInit = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Lower-case forms the Fetch standard upper-cases; any other method must be exact.
_NORMALISED_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"})  # CF: api/http.c++ Request::constructor
# _Body defines a method named ``bytes``; annotations inside it use this alias.
_Bytes = bytes
_MemoryView = memoryview
_TEXT_CONTENT_TYPE = "text/plain;charset=UTF-8"  # what JS sets for a string body
_JSON_CONTENT_TYPE = "application/json"  # CF: api/http.c++ Response::json_ (MimeType::JSON)


@cf_names("getSetCookie")
class Headers:
    """Case-insensitive HTTP headers keeping repeated values."""

    __slots__ = ("_values",)

    def __init__(self, init: HeadersInit = None) -> None:
        self._values: dict[str, list[str]] = {}
        if init is None:
            return
        if type(init) is dict:
            # The common literal ({"content-type": ...}): no Mapping ABC check.
            for name, value in init.items():
                self._values.setdefault(_name(name), []).append(_value(value))
            return
        if isinstance(init, Headers):
            self._values = {k: list(v) for k, v in init._values.items()}
            return
        pairs = init.items() if isinstance(init, Mapping) else init
        try:
            for name, value in pairs:
                self.append(name, value)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidHttpError):
                raise
            raise InvalidHttpError(
                f"headers: expected a dict, a list of (name, value) pairs or Headers, got {init!r}"
            ) from exc

    # -- JavaScript's Headers API ---------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(_name(name))
        return ", ".join(values) if values else default

    def set(self, name: str, value: str) -> None:
        self._values[_name(name)] = [_value(value)]

    def append(self, name: str, value: str) -> None:
        self._values.setdefault(_name(name), []).append(_value(value))

    def delete(self, name: str) -> None:
        self._values.pop(_name(name), None)

    def has(self, name: str) -> bool:
        return _name(name) in self._values

    def get_set_cookie(self) -> list[str]:
        return list(self._values.get("set-cookie", ()))

    getSetCookie: Callable[[], list[str]]  # installed by cf_names

    # -- Python mapping protocol (http.client.HTTPMessage-compatible reads) ----

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        values = self._values.get(_name(name))
        return list(values) if values else failobj

    def items(self) -> list[tuple[str, str]]:
        """(name, value) pairs in JavaScript's order: sorted, Set-Cookie one per value."""
        out: list[tuple[str, str]] = []
        for key in sorted(self._values):
            if key == "set-cookie":
                out.extend((key, v) for v in self._values[key])
            else:
                out.append((key, ", ".join(self._values[key])))
        return out

    def keys(self) -> list[str]:
        return sorted(self._values)

    def values(self) -> list[str]:
        return [v for _, v in self.items()]

    def copy(self) -> Headers:
        return Headers(self)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if not self.has(name):
            raise KeyError(name)
        self.delete(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._values == other._values
        if isinstance(other, Mapping):
            return self == Headers(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class RequestHeaders(Headers):
    """A ``Request``'s headers, read as ``http.client.HTTPMessage`` reads them.

    On Cloudflare, ``workers.Request.headers`` is an ``HTTPMessage`` built
    from the JavaScript request's headers, so code written for it expects
    its reads: ``headers[name]`` is ``None`` for a missing header (not a
    ``KeyError``), ``del headers[name]`` of a missing one is no error,
    repeated values read joined with ``", "`` (JavaScript joined them)
    except ``Set-Cookie``, whose values stay apart and whose ``get`` is the
    first, and the rest of ``email.message.Message``'s reads
    (``get_content_type()``, ``get_param()``, ``get_content_charset()``,
    ``as_string()``...) answer as such a message would. The JavaScript
    methods (``has``, ``set``, ``append``, ``getSetCookie``) stay, as
    before. Writes still change this request's headers (on Cloudflare each
    read of ``request.headers`` is a fresh copy, so writes are lost there):
    ``Message`` methods that write (``add_header``, ``replace_header``...)
    write to a copy, as there.
    """

    __slots__ = ()

    # CF: workers-api src/workers/_workers.py Request.headers (an http.client.HTTPMessage)
    def __getitem__(self, name: str) -> str | None:  # type: ignore[override]
        return self.get(name)

    def __delitem__(self, name: str) -> None:
        self.delete(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _name(name)
        values = self._values.get(key)
        if not values:
            return default
        return values[0] if key == "set-cookie" else ", ".join(values)

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        key = _name(name)
        values = self._values.get(key)
        if not values:
            return failobj
        return list(values) if key == "set-cookie" else [", ".join(values)]

    def keys(self) -> list[str]:
        return [key for key, _ in self.items()]

    def values(self) -> list[str]:
        return [value for _, value in self.items()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.items())

    def copy(self) -> RequestHeaders:
        return RequestHeaders(self)

    def message(self) -> Any:
        """These headers as the ``http.client.HTTPMessage`` Cloudflare's ``request.headers`` is (a copy)."""
        import http.client  # a Worker that never asks does not import the email package

        message = http.client.HTTPMessage()
        for key, value in self.items():
            message[key] = value
        return message

    def __str__(self) -> str:
        return str(self.message())

    def __getattr__(self, name: str) -> Any:
        # Only names neither class has reach here: Message's reads, answered by a copy.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.message(), name)


_MIME_WHITESPACE = "\r\n\t "
#: workerd's token characters for MIME types, which (unlike HTTP's) include a backslash.
_MIME_TOKEN = _TOKEN | {"\\"}
#: Characters a MIME parameter value may hold (workerd's quoted-string characters: tab, printable, 0x80-0xFE).
_MIME_QUOTABLE = frozenset("\t" + "".join(map(chr, range(0x20, 0x7F))) + "".join(map(chr, range(0x80, 0xFF))))


def _parse_mime(text: str) -> tuple[str, dict[str, str]] | None:
    """(essence, parameters) of one MIME type, or None if it is not one (workerd's ``MimeType::tryParse``)."""
    text = text.lstrip(_MIME_WHITESPACE)
    kind, slash, rest = text.partition("/")
    if not slash or not kind or not _MIME_TOKEN.issuperset(kind) or not rest:
        return None
    subtype, _, rest = rest.partition(";")
    subtype = subtype.rstrip(_MIME_WHITESPACE)
    if not subtype or not _MIME_TOKEN.issuperset(subtype):
        return None
    params: dict[str, str] = {}
    while rest:
        rest = rest.lstrip(_MIME_WHITESPACE)
        delimiter = next((i for i, c in enumerate(rest) if c in ";="), None)
        if delimiter is None:
            break
        if rest[delimiter] == ";":
            rest = rest[delimiter + 1:]
            continue
        name, rest = rest[:delimiter], rest[delimiter + 1:]
        if not name or not _MIME_TOKEN.issuperset(name):
            _, semi, rest = rest.partition(";")
            if semi:
                continue
            break
        if not rest:
            break
        if rest[0] == '"':
            chars: list[str] = []
            i = 1
            while i < len(rest):
                c = rest[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    i += 1
                    if i == len(rest):
                        chars.append("\\")
                        break
                    c = rest[i]
                chars.append(c)
                i += 1
            value, rest = "".join(chars), rest[i:]
            _, semi, rest = rest.partition(";")
        else:
            raw, semi, rest = rest.partition(";")
            value = raw.rstrip(_MIME_WHITESPACE)
            if not value:
                continue
        if _MIME_QUOTABLE.issuperset(value):
            params.setdefault(name.lower(), value)  # the first of a repeated name holds
        if not semi:
            break
    return f"{kind.lower()}/{subtype.lower()}", params


def _blob_type(content_type: str | None) -> str:
    """A body's ``blob().type``: the MIME type a ``Content-Type`` value gives, serialized, or ``""``.

    CF: workerd api/http.c++ ``Body::blob`` (``blob_standard_mime_type``, the default
    since 2024-06-03) and util/mimetype.c++ ``MimeType::extract``/``toString``: type and
    parameter names lower-cased, values kept, ``;`` without spaces (but ``; boundary=``),
    a value quoted unless it is a token; of comma-separated types the last valid one,
    keeping an earlier ``charset`` of the same type.
    """
    if not content_type:
        return ""
    found: tuple[str, dict[str, str]] | None = None
    parts: list[str] = []
    start = i = 0
    while i < len(content_type):
        c = content_type[i]
        if c == '"' and (i == 0 or content_type[i - 1] != "\\"):
            i += 1
            while i < len(content_type) and (content_type[i] != '"' or content_type[i - 1] == "\\"):
                i += 1
        elif c == "," and (i == 0 or content_type[i - 1] != "\\"):
            parts.append(content_type[start:i])
            start = i + 1
        i += 1
    parts.append(content_type[start:])
    for part in parts:
        parsed = _parse_mime(part)
        if parsed is None or parsed[0] == "*/*":
            continue
        if found is not None and found[0] == parsed[0] and "charset" not in parsed[1] and "charset" in found[1]:
            parsed[1]["charset"] = found[1]["charset"]
        found = parsed
    if found is None:
        return ""
    out = [found[0]]
    for name, value in found[1].items():
        out.append(";")
        if name == "boundary":
            out.append(" ")
        if not value:
            value = '""'
        elif not _MIME_TOKEN.issuperset(value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{name}={value}")
    return "".join(out)


#: The redirect modes workerd takes ("error" is refused at the edge).
_REDIRECT_MODES = ("follow", "manual")
_REDIRECT_MESSAGE = (  # CF: api/http.c++ Request::constructor (initDict.redirect)
    'Invalid redirect value, must be one of "follow" or "manual" ("error" won\'t be implemented since it '
    'does not make sense at the edge; use "manual" and check the response status code).'
)


def redirect_mode(value: object) -> str:
    """A Request's or fetch's ``redirect`` option, checked as workerd checks it."""
    if value not in _REDIRECT_MODES:
        raise InvalidHttpError(_REDIRECT_MESSAGE)
    return str(value)


def _name(name: object) -> str:
    if not isinstance(name, str) or not name or not _TOKEN.issuperset(name):
        raise InvalidHttpError(f"Invalid header name: {name!r}")
    return name.lower()


def _value(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # JavaScript would coerce a number; nothing else
    if not isinstance(value, str):
        raise InvalidHttpError(f"Invalid header value: expected str, got {type(value).__name__}")
    # Fetch normalises by stripping HTTP whitespace; CR, LF and NUL are refused.
    value = value.strip(" \t\r\n")
    if "\r" in value or "\n" in value or "\0" in value:
        raise InvalidHttpError(f"Invalid header value: {value!r}")
    return value


def _encode_body(body: object, headers: Headers, kind: str) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        values = headers._values
        if "content-type" not in values:
            values["content-type"] = [_TEXT_CONTENT_TYPE]
        return body.encode()
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    # The SDK's Response also takes FormData and Blob bodies (workers-py workers/response.py).
    if isinstance(body, FormData):
        data, content_type = encode_form(body)
        headers.set("content-type", content_type)  # the boundary must match the body
        return data
    if isinstance(body, Blob):
        if body.type and not headers.has("content-type"):
            headers.set("content-type", body.type)
        return body._data
    raise InvalidHttpError(f"Unsupported type in {kind}: {type(body).__name__}")  # CF: workers/_workers.py Response.__init__


async def _read_all(message: Any) -> bytes:
    if message._feed is None:
        return message._body or b""
    chunks, index = [], 0
    while (chunk := await message._feed.chunk(index)) is not None:
        chunks.append(chunk)
        index += 1
    return b"".join(chunks)


async def body_bytes(message: Request | Response) -> bytes | None:
    """A message's whole body for the host (the HTTP front), without using it; ``None`` if none."""
    if message._feed is None:
        return message._body
    return await _read_all(message)


@cf_names("bodyUsed", "arrayBuffer", "formData")
class _Body:
    """A body read at most once, shared by Request and Response.

    The bytes are either in memory (``_body``) or come from a feed the host
    supplies (``_feed``, a streamed request body); ``body`` is a
    :class:`ReadableStream` over either, or ``None`` when there is no body.
    """

    __slots__ = ("_body", "_feed", "_stream", "_used", "headers")

    _USED_MESSAGE = BodyUsedError.RESPONSE

    _body: _Bytes | None
    _feed: BodyFeed | None
    _stream: ReadableStream | None
    _used: bool
    headers: Headers

    def _init_body(self, body: object, kind: str) -> None:
        self._stream, self._used = None, False
        if isinstance(body, ReadableStream):
            self._body, self._feed = None, body._take_feed()
        else:
            self._body, self._feed = _encode_body(body, self.headers, kind), None

    @property
    def body(self) -> ReadableStream | None:
        """The body as a ReadableStream (``None`` without a body); reading it uses the body."""
        if self._feed is None and self._body is None:
            return None
        if self._stream is None:
            feed = self._feed if self._feed is not None else BytesFeed(self._body or b"")
            self._stream = ReadableStream(feed, self._mark_used)
        return self._stream

    @property
    def body_used(self) -> bool:
        return self._used

    @property
    def js_object(self) -> Any:
        """The SDK's handle on the JS object beneath (``asgi.fetch(app, request.js_object, env)``): itself."""
        return self

    def _mark_used(self) -> None:
        if self._used:
            raise BodyUsedError(self._USED_MESSAGE)
        self._used = True

    async def _take(self) -> _Bytes:
        if self._used:
            raise BodyUsedError(self._USED_MESSAGE)
        if self._feed is None and self._body is None:
            return b""
        self._used = True
        return await _read_all(self)

    async def bytes(self) -> _Bytes:
        return await self._take()

    async def buffer(self) -> _Bytes:
        """Python Workers' name for the raw body (a JS ArrayBuffer there, bytes here)."""
        return await self._take()

    async def array_buffer(self) -> _Bytes:
        return await self._take()

    async def text(self) -> str:
        # TextDecoder semantics: invalid UTF-8 becomes U+FFFD, never an error.
        return (await self._take()).decode("utf-8", errors="replace")

    async def _read_json(self, **kwargs: Any) -> Any:
        # As the Python SDK: json.loads(await self.text()), so a body that is
        # not JSON raises json.JSONDecodeError (a ValueError) -- and is used.
        return _json.loads(await self.text(), **kwargs)

    async def form_data(self) -> FormData:
        """The body as ``FormData`` (``multipart/form-data`` or urlencoded, by ``content-type``)."""
        return parse_form(await self.bytes(), self.headers.get("content-type"))

    async def blob(self) -> Blob:
        """The body as a ``Blob`` typed by the ``content-type`` header, serialized as JS ``blob()`` does."""
        blob = Blob(await self._take())
        blob._type = _blob_type(self.headers.get("content-type"))
        return blob

    async def _json_value(self, **kwargs: Any) -> Any:
        # Plain dicts/lists that also answer JsProxy's methods (objects/_jsvalues.py).
        return js_value(await self._read_json(**kwargs))

    def _copy(self) -> Any:
        raise NotImplementedError

    def _rpc_copy(self) -> Any:
        """An independent copy for an RPC argument or result; the body must be unread."""
        if self._used:
            raise BodyUsedError(self._USED_MESSAGE)
        return self._copy()

    bodyUsed: bool  # installed by cf_names
    arrayBuffer: Callable[[], Any]  # installed by cf_names
    formData: Callable[[], Any]  # installed by cf_names


class _JsonAccessor:
    """``Response.json(data)`` builds a response; ``await response.json()`` reads one."""

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is not None:
            return obj._json_value
        build = getattr(objtype, "from_json", None)
        if build is None:  # Request.json on the class: only instances have a body
            raise AttributeError("json is read from an instance's body")
        return build


@cf_names("statusText", "webSocket")
class Response(_Body):
    """An HTTP response, as ``workers.Response``."""

    __slots__ = ("status", "status_text", "web_socket", "url", "_redirected")

    json = _JsonAccessor()

    status: int
    status_text: str
    web_socket: Any
    url: str

    def __init__(
        self,
        body: Any = None,
        status: int | None = None,
        status_text: str = "",
        headers: HeadersInit = None,
        web_socket: Any = None,
    ) -> None:
        if type(body) is str and headers is None and status is None and web_socket is None and status_text == "":
            # ``Response("text")``, most Workers' answer: none of the checks below
            # can fail, so it is built directly (~0.4 µs less per request).
            plain = Headers.__new__(Headers)
            plain._values = {"content-type": [_TEXT_CONTENT_TYPE]}
            self.headers = plain
            # One store a field (a tuple assignment of four builds and unpacks a tuple).
            self._body = body.encode()
            self._feed = None
            self._stream = None
            self._used = False
            self.status = 200
            self.status_text = "OK"
            self.web_socket = None
            self.url = ""
            return
        self.headers = Headers(headers)
        self._init_body(body, "Response")
        code = 200 if status is None else int(status)
        if web_socket is None:
            if not 200 <= code <= 599:
                raise HttpStatusRangeError(
                    # CF: api/http.c++ Response::constructor
                    "Responses may only be constructed with status codes in the range 200 to 599, inclusive."
                )
        elif code != 101:
            raise HttpStatusRangeError("Responses with a WebSocket must have status code 101.")  # CF: api/http.c++ Response::constructor
        if status_text != "" and (not isinstance(status_text, str) or any(c < " " for c in status_text)):
            raise InvalidHttpError("Invalid statusText")  # CF: api/http.c++ Response::constructor
        if code in _NULL_BODY_STATUSES and (self._body is not None or self._feed is not None):
            if self._body or self._feed is not None:
                raise InvalidHttpError(
                    # CF: api/http.c++ Response::constructor
                    "Response with null body status (101, 204, 205, or 304) cannot have a body."
                )
            self._body = None  # workerd treats a zero-length body as no body here
        self.status = code
        self.status_text = status_text or _default_status_text(code)
        self.web_socket = web_socket
        self.url = ""

    statusText: str  # installed by cf_names
    webSocket: Any  # installed by cf_names
    _redirected: bool  # set only by fetch, and only when it followed a redirect

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def redirected(self) -> bool:
        """Whether ``fetch`` followed a redirect to get this response (set by the fetch; unset: False)."""
        try:
            return self._redirected
        except AttributeError:  # left unset on every other response: no store per Response()
            return False

    @property
    def type(self) -> str:
        """JavaScript's response type: workerd's responses are all ``"default"``."""
        return "default"

    # -- pyodide.http.FetchResponse's API, which workers.Response inherits on Cloudflare

    def raise_for_status(self) -> None:
        """Raise ``HttpStatusError`` for a 4xx or 5xx status, as ``pyodide.http.FetchResponse`` does."""
        if 400 <= self.status < 600:
            raise HttpStatusError(self.status, self.status_text, self.url)

    async def string(self) -> str:
        return await self.text()

    async def memoryview(self) -> _MemoryView:
        return _MemoryView(await self._take())

    def replace_body(self, body: Any) -> Response:
        """A response with this one's status and headers and another body (JS ``new Response(body, this)``)."""
        return Response(body, self.status, self.status_text, self.headers)

    @classmethod
    def from_json(
        cls,
        data: Any,
        status: int = 200,
        status_text: str = "",
        headers: HeadersInit = None,
    ) -> Response:
        """A response whose body is ``json.dumps(data)``, as the Python SDK writes it."""
        merged = Headers(headers)
        if not merged.has("content-type"):
            merged.set("content-type", _JSON_CONTENT_TYPE)
        return cls(_json.dumps(data), status, status_text, merged)

    @classmethod
    def redirect(cls, url: str, status: int = 302) -> Response:
        if not isinstance(url, str):
            raise InvalidHttpError(f"redirect: url: expected str, got {type(url).__name__}")
        code = int(status)
        if code not in _REDIRECT_STATUSES:
            raise HttpStatusRangeError(
                # CF: api/http.c++ Response::redirect
                f"{code} is not a redirect status code. It must be one of: 301, 302, 303, 307, or 308."
            )
        if any(c in url for c in "\r\n\0"):
            raise InvalidHttpError(f"Redirect URL cannot contain '\\r', '\\n', or '\\0': {url}")  # CF: api/http.c++ Response::redirect
        return cls(None, code, headers={"location": url})

    def clone(self) -> Response:
        if self.web_socket is not None:
            raise InvalidHttpError("Cannot clone a response to a WebSocket handshake.")  # CF: api/http.c++ Response::clone
        if self._used:
            raise BodyUsedError(self._USED_MESSAGE)
        return self._copy()

    def _copy(self) -> Response:
        twin = Response.__new__(Response)
        twin.headers = self.headers.copy()
        # bytes are immutable and a feed is read by index: sharing is copying
        twin._body, twin._feed, twin._stream, twin._used = self._body, self._feed, None, False
        twin.status, twin.status_text = self.status, self.status_text
        twin.web_socket, twin.url = self.web_socket, self.url
        if self.redirected:
            twin._redirected = True
        return twin

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.status_text}]>"


class Request(_Body):
    """An HTTP request, as ``workers.Request``."""

    __slots__ = ("url", "method", "_cf", "_redirect")

    _USED_MESSAGE = BodyUsedError.REQUEST

    url: str
    method: HTTPMethod
    _redirect: str  # set only when not "follow"

    def __init__(
        self,
        input: str | Request,
        method: str | None = None,
        headers: HeadersInit = None,
        body: Any = None,
        *,
        cf: Any = None,
        redirect: str | None = None,
    ) -> None:
        if redirect is not None:
            self._redirect = redirect_mode(redirect)
        if isinstance(input, Request):
            if input._used:
                raise InvalidHttpError("Cannot reconstruct a Request with a used body.")  # CF: api/http.c++ Request::constructor
            if redirect is None and input.redirect != "follow":
                self._redirect = input.redirect
            url, base_method = input.url, input.method
            base_body: Any = input._body if input._feed is None else _FeedBody(input._feed)
            self.headers = RequestHeaders(input.headers if headers is None else headers)
        elif isinstance(input, str):
            url, base_method, base_body = input, HTTPMethod.GET, None
            self.headers = RequestHeaders(headers)
        else:
            raise InvalidHttpError(f"Request: input: expected a URL str or Request, got {type(input).__name__}")
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise InvalidHttpError(f"Request: url: expected an absolute URL, got {url!r}")
        self.url = url
        self.method = base_method if method is None else _method(method)
        # new Request(request) keeps the original's cf, as workerd does; init's cf wins
        self._cf: Any = cf if cf is not None else input._cf if isinstance(input, Request) else None
        if body is None and isinstance(base_body, _FeedBody):
            self._stream, self._used, self._body, self._feed = None, False, None, base_body.feed
        elif body is None:
            self._stream, self._used, self._body, self._feed = None, False, base_body, None
        else:
            self._init_body(body, "Request")
        has_body = self._body is not None or self._feed is not None
        if (method is not None or body is not None) and has_body and self.method in (
            HTTPMethod.GET,
            HTTPMethod.HEAD,
        ):
            raise InvalidHttpError("Request with a GET or HEAD method cannot have a body.")  # CF: api/http.c++ Request::constructor

    json = _JsonAccessor()

    @property
    def cf(self) -> Any:
        """Cloudflare's edge properties (``request.cf``).

        ``None`` for a request code builds itself (workers-py's ``Request.cf``
        returns None when absent); what the HTTP front gives a client's
        request (``dohost dev`` gives wrangler dev's local placeholder).
        """
        return self._cf

    @property
    def redirect(self) -> str:
        """``"follow"`` or ``"manual"``: what ``fetch(request)`` does with a redirect."""
        try:
            return self._redirect
        except AttributeError:  # unset on a client's request and most others: no store each
            return "follow"

    @property
    def keepalive(self) -> bool:
        return False  # CF: api/http.h Request::getKeepalive (workerd keeps no keepalive requests)

    @property
    def integrity(self) -> str:
        return ""  # CF: api/http.h Request::getIntegrity (always empty in workerd)

    def clone(self) -> Request:
        if self._used:
            raise BodyUsedError(self._USED_MESSAGE)
        return self._copy()

    def _copy(self) -> Request:
        twin = Request.__new__(Request)
        twin.headers = RequestHeaders(self.headers)
        twin._body, twin._feed, twin._stream, twin._used = self._body, self._feed, None, False
        twin.url, twin.method, twin._cf = self.url, self.method, self._cf
        if self.redirect != "follow":
            twin._redirect = self.redirect
        return twin

    def __repr__(self) -> str:
        return f"Request(method={str(self.method)!r}, url={self.url!r})"


class _FeedBody:
    """A streamed body handed from one Request to another (``Request(request)``)."""

    __slots__ = ("feed",)

    def __init__(self, feed: BodyFeed) -> None:
        self.feed = feed


def _method(method: object) -> HTTPMethod:
    if isinstance(method, str):
        if method in HTTPMethod.__members__:
            return HTTPMethod[method]
        upper = method.upper()
        if upper in _NORMALISED_METHODS:
            return HTTPMethod[upper]
    raise InvalidHttpError(f"Invalid HTTP method string: {method}")  # CF: api/http.c++ Request::constructor


#: Reason phrases by status code: an enum lookup per response cost ~1 µs.
_PHRASES: dict[int, str] = {status.value: status.phrase for status in HTTPStatus}


def _default_status_text(code: int) -> str:
    return _PHRASES.get(code, "")


_METHODS_BY_NAME: dict[str, HTTPMethod] = dict(HTTPMethod.__members__)


def front_request(url: str, method: str, raw_headers: Sequence[tuple[bytes, bytes]], feed: BodyFeed | None, cf: Any) -> Request:
    """A client's request as the HTTP front received it, without ``Request()``'s checks.

    The server (h11/h2) has already validated the request line and the
    headers: names are lowercase tokens, values have no CR/LF/NUL and no
    surrounding whitespace. So this builds the ``Request`` directly, with
    ``feed`` as its streamed body (``None``: no body), and its headers are
    decoded from ``raw_headers`` only when something reads them (a Worker
    that routes on the URL alone never pays for them). ``method`` must be a
    standard method name.
    """
    headers = _WireHeaders.__new__(_WireHeaders)
    headers._raw = raw_headers
    req = Request.__new__(Request)
    req.headers = headers
    # One store a field (a tuple assignment of four builds and unpacks a tuple).
    req._body = None
    req._feed = feed
    req._stream = None
    req._used = False
    req.url = url
    req.method = _METHODS_BY_NAME[method]
    req._cf = cf
    return req


#: ``Headers``' own storage, which ``_WireHeaders`` fills on first use.
_VALUES_SLOT: Any = Headers.__dict__["_values"]


class _WireHeaders(RequestHeaders):
    """A client request's headers, kept as the server's (name, value) byte pairs until first read."""

    __slots__ = ("_raw",)

    _raw: Sequence[tuple[bytes, bytes]]

    @property
    def _values(self) -> dict[str, list[str]]:
        try:
            return _VALUES_SLOT.__get__(self, _WireHeaders)  # type: ignore[no-any-return]
        except AttributeError:
            values: dict[str, list[str]] = {}
            for k, v in self._raw:
                name = k.decode("latin-1")
                found = values.get(name)
                if found is None:
                    values[name] = [v.decode("latin-1")]
                else:
                    found.append(v.decode("latin-1"))
            _VALUES_SLOT.__set__(self, values)
            return values

    @_values.setter
    def _values(self, values: dict[str, list[str]]) -> None:
        _VALUES_SLOT.__set__(self, values)


def wire_headers(message: Request | Response, content_length: int) -> list[tuple[bytes, bytes]]:
    """``message``'s headers for the wire (latin-1, JavaScript's order), led by ``content-length``."""
    length = _LENGTHS[content_length] if content_length < 1024 else b"%d" % content_length
    values = message.headers._values
    if len(values) == 1:
        # ``Response("text")``'s one header, most responses': the answer without the loop.
        found = values.get("content-type")
        if found is not None and len(found) == 1 and found[0] == _TEXT_CONTENT_TYPE:
            return [(b"content-length", length), _TEXT_CONTENT_TYPE_PAIR]
    out = [(b"content-length", length)]
    for key in sorted(values) if len(values) > 1 else values:
        if key == "content-length":
            continue
        found = values[key]
        if key == "set-cookie":
            name = key.encode("latin-1")
            out.extend((name, v.encode("latin-1")) for v in found)
        elif len(found) == 1:
            pair = _WIRE_PAIRS.get((key, found[0]))
            if pair is None:
                pair = (key.encode("latin-1"), found[0].encode("latin-1"))
                if len(pair[0]) <= 64 and len(pair[1]) <= 64:
                    if len(_WIRE_PAIRS) >= 1024:
                        # Full of one-off values (a request ID echoed back):
                        # start again, so pairs that do repeat get back in.
                        _WIRE_PAIRS.clear()
                    _WIRE_PAIRS[key, found[0]] = pair
            out.append(pair)
        else:
            out.append((key.encode("latin-1"), ", ".join(found).encode("latin-1")))
    return out


_TEXT_CONTENT_TYPE_PAIR = (b"content-type", _TEXT_CONTENT_TYPE.encode("latin-1"))
#: ``content-length`` values of small bodies, encoded once.
_LENGTHS = [b"%d" % n for n in range(1024)]
#: Encoded (name, value) pairs of headers seen before: most responses repeat a few
#: (``content-type: text/plain;charset=UTF-8``). Short names and values only (a
#: Worker may echo what a client sent), at most 1,024, emptied when full.
_WIRE_PAIRS: dict[tuple[str, str], tuple[bytes, bytes]] = {}


def make_request(
    url_or_request: str | Request,
    *,
    method: str | None = None,
    headers: HeadersInit = None,
    body: Any = None,
) -> Request:
    """The request ``fetch(url_or_request, method=, headers=, body=)`` sends.

    A ``Request`` is used as is unless an override is given, in which case a
    new one is built from it with the overrides applied.
    """
    if isinstance(url_or_request, Request):
        if method is None and headers is None and body is None:
            return url_or_request
        return Request(
            url_or_request.url,
            method=method or url_or_request.method,
            headers=headers if headers is not None else url_or_request.headers,
            body=body if body is not None else url_or_request.body,
        )  # an unread stream body becomes the new request's body
    return Request(str(url_or_request), method=method or "GET", headers=headers, body=body)
