"""R2: ``env.<NAME>`` for an ``r2_buckets`` entry.

Each bucket is one SQLite file (``bindings/r2/<digest>.sqlite``): a row per
object with its body as a BLOB and its metadata beside it, written in one
autocommitted statement, so a ``put`` either happened whole or not at all.
Bodies up to SQLite's 1 GB string limit fit; R2's own limit is 5 GiB.

* ``put(key, value, httpMetadata=, customMetadata=, md5=/sha1=/sha256=...,
  onlyIf=)`` -> :class:`R2Object` (``None`` when ``onlyIf`` fails).
* ``get(key, range=, onlyIf=)`` -> :class:`R2ObjectBody` (``text()``,
  ``json()``, ``arrayBuffer()``, ``bytes()``, ``body``), ``None`` if absent,
  an :class:`R2Object` without a body when ``onlyIf`` fails. ``range`` is
  ``{offset, length}``, ``{suffix}`` or headers with ``Range``.
* ``head(key)``, ``delete(key or [keys])``, ``list(prefix=, delimiter=,
  cursor=, startAfter=, limit=, include=)`` -> ``{objects, truncated,
  cursor?, delimitedPrefixes}``; without ``include`` listed objects carry no
  ``httpMetadata``/``customMetadata``, as on R2.
* ``etag`` is the body's MD5 (hex), ``httpEtag`` the same in quotes,
  ``version`` a random id per write, ``uploaded`` a datetime in UTC that
  also answers ``getTime()``.
* Errors are R2's (``put: The specified object name is not valid.
  (10020)``); a refused call writes nothing.

* ``createMultipartUpload``/``resumeMultipartUpload``: see :mod:`._r2_multipart`.

Not provided: storage classes other than Standard, SSE-C keys.
"""

from __future__ import annotations

import base64
import builtins
import datetime as _dt
import hashlib
import json
import uuid
from typing import Any, Mapping

import apsw

from objects import Headers
from persistence import cf_names

from ._common import ByteStream, JsBinding, JsObject, checkpoint, js_string, options, read_body, to_bytes
from ._store import StoreHost
from ._r2_multipart import R2MultipartUpload, create_upload, resume_upload
from .errors import R2Error

__all__ = ["R2Bucket", "R2Object", "R2ObjectBody", "JsDate", "MAX_KEY_SIZE"]

# CF: https://github.com/cloudflare/workers-sdk/blob/main/packages/miniflare/src/workers/r2/constants.ts
MAX_KEY_SIZE = 1024
MAX_LIST_KEYS = 1000
MAX_METADATA_SIZE = 2048
MAX_VALUE_SIZE = 5_368_709_120 - 5_242_880  # 5 GiB - 5 MiB
MAX_DELETE_KEYS = 1000

# R2's v4 error codes. CF: miniflare src/workers/r2/errors.worker.ts
_INVALID_OBJECT_NAME = (10020, "The specified object name is not valid.")
_INVALID_MAX_KEYS = (10022, "MaxKeys params must be positive integer <= 1000.")
_METADATA_TOO_LARGE = (10012, "Your metadata headers exceed the maximum allowed metadata size.")
_ENTITY_TOO_LARGE = (100100, "Your proposed upload exceeds the maximum allowed object size.")
_INVALID_RANGE = (10039, "The requested range is not satisfiable")
_BAD_DIGEST = 10037

_HTTP_FIELDS = {  # httpMetadata field -> header
    "contentType": "content-type",
    "contentLanguage": "content-language",
    "contentDisposition": "content-disposition",
    "contentEncoding": "content-encoding",
    "cacheControl": "cache-control",
    "cacheExpiry": "expires",
}
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS r2_objects("
    " key TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,"
    " uploaded REAL NOT NULL, http_metadata TEXT NOT NULL, custom_metadata TEXT NOT NULL,"
    " checksums TEXT NOT NULL, body BLOB NOT NULL)"
)
_META_COLUMNS = "key, version, size, etag, uploaded, http_metadata, custom_metadata, checksums"
#: An R2Object's fields, as a JS R2Object has them.
_FIELDS = ("key", "version", "size", "etag", "httpEtag", "uploaded", "httpMetadata", "customMetadata", "checksums",
           "storageClass", "range")


def _fail(action: str, error: tuple[int, str]) -> R2Error:
    code, message = error
    return R2Error(f"{action}: {message} ({code})", code)  # CF: workerd src/workerd/api/r2-rpc.c++


class JsDate(_dt.datetime):
    """A UTC datetime that also answers the JS ``Date`` methods code calls on ``uploaded``."""

    def getTime(self) -> float:
        return self.timestamp() * 1000.0

    def toISOString(self) -> str:
        return self.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.microsecond // 1000:03d}Z"

    get_time = getTime
    to_iso_string = toISOString


def _date(ms: float) -> JsDate:
    d = _dt.datetime.fromtimestamp(ms / 1000.0, tz=_dt.timezone.utc)
    return JsDate(d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, tzinfo=_dt.timezone.utc)


@cf_names("httpEtag", "httpMetadata", "customMetadata", "storageClass", "writeHttpMetadata")
class R2Object:
    """An object's metadata, as ``head``, ``put`` and ``list`` return it."""

    def __init__(self, row: tuple[Any, ...], *, include_metadata: bool = True, range_: Any = None) -> None:
        key, version, size, etag, uploaded, http, custom, checksums = row[:8]
        self.key: str = key
        self.version: str = version
        self.size: int = size
        self.etag: str = etag
        self.uploaded = _date(uploaded)
        self._http = JsObject(json.loads(http)) if include_metadata else JsObject()
        self._custom = JsObject(json.loads(custom)) if include_metadata else JsObject()
        sums = json.loads(checksums)
        self.checksums = JsObject({k: bytes.fromhex(v) for k, v in sums.items()})
        self.range = range_
        self._storage_class = "Standard"

    @property
    def httpEtag(self) -> str:
        return f'"{self.etag}"'

    @property
    def httpMetadata(self) -> JsObject:
        return self._http

    @property
    def customMetadata(self) -> JsObject:
        return self._custom

    @property
    def storageClass(self) -> str:
        return self._storage_class

    def writeHttpMetadata(self, headers: Any) -> None:
        """Set this object's HTTP metadata as headers (``Content-Type``...) on ``headers``."""
        for field, header in _HTTP_FIELDS.items():
            value = self._http.get(field)
            if value is not None:
                headers.set(header, str(value))

    def __getitem__(self, name: str) -> Any:
        """``obj["key"]``: the fields read as a converted JS object's would."""
        if name.startswith("_") or name in ("writeHttpMetadata", "write_http_metadata"):
            raise KeyError(name)
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> JsObject:
        """The fields as a dict that also answers attribute access.

        Pyodide's ``to_py()`` leaves an ``R2Object`` (a class instance) a proxy,
        so JsProxy-era code reads fields as attributes after it (django-cf's R2
        storage: ``run_sync(bucket.head(key)).to_py().uploaded``); code that
        indexes the result gets a dict.
        """
        return JsObject({name: getattr(self, name) for name in _FIELDS})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} size={self.size} etag={self.etag}>"


@cf_names("arrayBuffer", "bodyUsed")
class R2ObjectBody(R2Object):
    """``get``'s result: an :class:`R2Object` with its body (read once)."""

    def __init__(self, row: tuple[Any, ...], data: bytes, range_: Any) -> None:
        super().__init__(row, range_=range_)
        self._stream = ByteStream(data)

    @property
    def body(self) -> ByteStream:
        return self._stream

    @property
    def bodyUsed(self) -> bool:
        return self._stream._used

    async def arrayBuffer(self) -> memoryview:
        # CF: workers-py rpc.py python_from_rpc — Pyodide's to_py() of an ArrayBuffer
        return memoryview(self._stream._take())

    async def bytes(self) -> builtins.bytes:
        return self._stream._take()

    async def text(self) -> str:
        return self._stream._take().decode("utf-8", errors="replace")

    async def json(self) -> Any:
        return json.loads(self._stream._take(), object_hook=JsObject)

    async def blob(self) -> builtins.bytes:
        return self._stream._take()


def _check_key(action: str, raw: Any) -> str:
    key = js_string(raw, f"R2 {action}")
    if len(key.encode()) > MAX_KEY_SIZE:
        raise _fail(action, _INVALID_OBJECT_NAME)
    return key


def _http_metadata(value: Any) -> dict[str, Any]:
    """``httpMetadata`` as a dict of R2's field names (from a dict or from headers)."""
    if value is None:
        return {}
    if isinstance(value, Headers) or (hasattr(value, "get") and not isinstance(value, Mapping)):
        out = {}
        for field, header in _HTTP_FIELDS.items():
            got = value.get(header)
            if got is not None:
                out[field] = got
        return out
    value = options(value, None, where="R2 put: httpMetadata")
    unknown = sorted(set(value) - set(_HTTP_FIELDS))
    if unknown:
        raise TypeError(f"R2 put: httpMetadata: unknown field(s) {', '.join(unknown)}; expected {', '.join(_HTTP_FIELDS)}")
    out = {}
    for k, v in value.items():
        if v is None:
            continue
        out[k] = v.isoformat() if isinstance(v, _dt.datetime) else str(v)
    return out


def _metadata_size(custom: Mapping[str, str]) -> int:
    # Two bytes per character once any character is outside Latin-1, as R2 counts.
    def size(s: str) -> int:
        return len(s) * 2 if any(ord(c) >= 256 for c in s) else len(s)
    return sum(size(k) + size(v) for k, v in custom.items())


def _conditions_hold(cond: Any, etag: str | None, uploaded_ms: float | None) -> bool:
    """R2's ``onlyIf`` (RFC 7232 semantics), from a dict or from request headers."""
    if cond is None:
        return True
    if isinstance(cond, Headers) or (hasattr(cond, "get") and not isinstance(cond, Mapping)):
        cond = {
            "etagMatches": cond.get("if-match"),
            "etagDoesNotMatch": cond.get("if-none-match"),
            "uploadedAfter": _http_date(cond.get("if-modified-since")),
            "uploadedBefore": _http_date(cond.get("if-unmodified-since")),
        }
    cond = options(cond, None, where="R2 onlyIf")
    match, none_match = _etags(cond.get("etagMatches")), _etags(cond.get("etagDoesNotMatch"))
    after, before = _ms(cond.get("uploadedAfter")), _ms(cond.get("uploadedBefore"))
    if etag is None:
        return match is None and after is None
    assert uploaded_ms is not None
    if_match = match is None or "*" in match or etag in match
    if_none = none_match is None or not ("*" in none_match or etag in none_match)
    modified = after is None or after < uploaded_ms or (none_match is not None and if_none)
    unmodified = before is None or uploaded_ms < before or (match is not None and if_match)
    return if_match and if_none and modified and unmodified


def _etags(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(v).strip().removeprefix("W/").strip('"') for v in items]


def _ms(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.timestamp() * 1000.0
    get_time = getattr(value, "getTime", None)
    return float(get_time()) if callable(get_time) else float(value)


def _http_date(text: str | None) -> _dt.datetime | None:
    if not text:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


@cf_names("createMultipartUpload", "resumeMultipartUpload")
class R2Bucket(JsBinding):
    """``env.<NAME>`` for an R2 bucket; see the module docstring."""

    js_name = "R2Bucket"

    def __init__(self, binding: str, bucket: str, host: StoreHost) -> None:
        self._binding = binding
        self._bucket = bucket
        self._host = host

    def __repr__(self) -> str:
        return f"<R2Bucket {self._binding} bucket={self._bucket!r}>"

    def _conn(self) -> apsw.Connection:
        return self._host.connection("r2", self._bucket, _SCHEMA)

    def _meta(self, key: str) -> tuple[Any, ...] | None:
        row = self._conn().execute(f"SELECT {_META_COLUMNS} FROM r2_objects WHERE key = ?", (key,)).fetchone()
        return None if row is None else tuple(row)

    async def head(self, key: Any) -> R2Object | None:
        await checkpoint()
        key = _check_key("head", key)
        row = self._meta(key)
        return None if row is None else R2Object(row)

    async def get(self, key: Any, options_: Any = None, **kwargs: Any) -> R2Object | None:
        await checkpoint()
        key = _check_key("get", key)
        opts = options(options_, kwargs, where="R2 get")
        if opts.get("range") is None and opts.get("onlyIf") is None:  # the common case: one query
            whole = self._conn().execute(
                f"SELECT {_META_COLUMNS}, body FROM r2_objects WHERE key = ?", (key,)
            ).fetchone()
            return None if whole is None else R2ObjectBody(tuple(whole[:8]), bytes(whole[8]), None)
        row = self._meta(key)
        if row is None:
            return None
        if not _conditions_hold(opts.get("onlyIf"), row[3], row[4]):
            return R2Object(row)
        size = row[2]
        offset, length = self._range(opts.get("range"), size)
        found = self._conn().execute(
            "SELECT substr(body, ?, ?) FROM r2_objects WHERE key = ?", (offset + 1, length, key)
        ).fetchone()
        data = found[0] if found is not None else None
        rng = JsObject(offset=offset, length=length) if opts.get("range") is not None else None
        return R2ObjectBody(row, bytes(data) if data is not None else b"", rng)

    @staticmethod
    def _range(value: Any, size: int) -> tuple[int, int]:
        if value is None:
            return 0, size
        if isinstance(value, Headers) or (hasattr(value, "get") and not isinstance(value, Mapping)):
            header = value.get("range")
            return _parse_range_header(header, size) if header else (0, size)
        r = options(value, None, where="R2 get: range")
        # CF: miniflare src/workers/r2/validator.worker.ts (range)
        suffix = r.get("suffix")
        offset, length = r.get("offset"), r.get("length")
        if suffix is not None:
            if suffix <= 0:
                raise _fail("get", _INVALID_RANGE)
            suffix = min(int(suffix), size)
            offset, length = size - suffix, suffix
        offset = 0 if offset is None else int(offset)
        length = size - offset if length is None else int(length)
        if offset < 0 or offset > size or length <= 0:
            raise _fail("get", _INVALID_RANGE)
        return offset, min(length, size - offset)

    async def put(self, key: Any, value: Any, options_: Any = None, **kwargs: Any) -> R2Object | None:
        await checkpoint()
        key = _check_key("put", key)
        opts = options(options_, kwargs, where="R2 put")
        data = b"" if value is None else await read_body(value, "R2 put")
        if len(data) > MAX_VALUE_SIZE:
            raise _fail("put", _ENTITY_TOO_LARGE)
        custom = _custom_metadata("put", opts.get("customMetadata"))
        http = _http_metadata(opts.get("httpMetadata"))
        md5 = hashlib.md5(data).hexdigest()
        checksums = {"md5": md5}
        for algo, name in (("sha1", "SHA-1"), ("sha256", "SHA-256"), ("sha384", "SHA-384"), ("sha512", "SHA-512"),
                           ("md5", "MD5")):
            given = opts.get(algo)
            if given is None:
                continue
            given_hex = given if isinstance(given, str) else bytes(to_bytes(given, f"R2 put: {algo}")).hex()
            actual = hashlib.new(algo, data).hexdigest()
            if given_hex.lower() != actual:
                raise R2Error(
                    f"put: The {name} checksum you specified did not match what we received.\n"
                    f"You provided a {name} checksum with value: {given_hex}\nActual {name} was: {actual}"
                    f" ({_BAD_DIGEST})", _BAD_DIGEST,
                )
            checksums[algo] = actual
        conn = self._conn()
        with conn:  # the condition check and the write are one transaction
            current = self._meta(key)
            if opts.get("onlyIf") is not None and not _conditions_hold(
                opts["onlyIf"], current[3] if current else None, current[4] if current else None
            ):
                return None
            row = _insert_object(self, conn, key, data, md5, json.dumps(http), json.dumps(custom), checksums)
        return R2Object(row)

    async def delete(self, keys: Any) -> None:
        await checkpoint()
        many = keys if isinstance(keys, (list, tuple)) else [keys]
        if len(many) > MAX_DELETE_KEYS:
            raise R2Error(f"delete: Too many keys; the limit is {MAX_DELETE_KEYS}. (10029)", 10029)
        checked = [_check_key("delete", k) for k in many]
        conn = self._conn()
        with conn:
            conn.executemany("DELETE FROM r2_objects WHERE key = ?", [(k,) for k in checked])

    async def list(self, options_: Any = None, **kwargs: Any) -> JsObject:
        await checkpoint()
        opts = options(options_, kwargs, where="R2 list")
        limit = opts.get("limit")
        if limit is None:
            limit = MAX_LIST_KEYS
        elif not (1 <= int(limit) <= MAX_LIST_KEYS):
            raise _fail("list", _INVALID_MAX_KEYS)
        limit = int(limit)
        prefix = js_string(opts.get("prefix") or "", "R2 list: prefix")
        delimiter = opts.get("delimiter") or None
        after = js_string(opts.get("startAfter") or "", "R2 list: startAfter")
        cursor = opts.get("cursor")
        if cursor:
            try:
                after = max(after, base64.urlsafe_b64decode(str(cursor).encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise R2Error(f"list: Invalid cursor {cursor!r} (10029)", 10029) from None
        include = set(opts.get("include") or ())
        for item in include:
            if item not in ("httpMetadata", "customMetadata"):
                raise TypeError(f"R2 list: include: expected 'httpMetadata' or 'customMetadata', got {item!r}")
        objects: builtins.list[R2Object] = []
        prefixes: builtins.list[str] = []
        last = after
        truncated = False
        rows = self._conn().execute(
            f"SELECT {_META_COLUMNS} FROM r2_objects WHERE key > ? AND substr(key, 1, ?) = ? ORDER BY key",
            (after, len(prefix), prefix),
        )
        for row in rows:
            key = row[0]
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    group = key[: cut + len(delimiter)]
                    if prefixes and prefixes[-1] == group:
                        continue
                    if len(objects) + len(prefixes) >= limit:
                        truncated = True
                        break
                    prefixes.append(group)
                    last = group + "\U0010ffff"  # a next page starts after every key of the group
                    continue
            if len(objects) + len(prefixes) >= limit:
                truncated = True
                break
            obj = R2Object(tuple(row), include_metadata=True)
            if "httpMetadata" not in include:
                obj._http = JsObject()
            if "customMetadata" not in include:
                obj._custom = JsObject()
            objects.append(obj)
            last = key
        rows.close()
        result = JsObject(objects=objects, truncated=truncated, delimitedPrefixes=prefixes)
        if truncated:
            result["cursor"] = base64.urlsafe_b64encode(last.encode()).decode()
        return result

    async def createMultipartUpload(self, key: Any, options_: Any = None, **kwargs: Any) -> R2MultipartUpload:
        return await create_upload(self, key, options_, kwargs)

    def resumeMultipartUpload(self, key: Any, upload_id: Any) -> R2MultipartUpload:
        return resume_upload(self, key, upload_id)


def _custom_metadata(action: str, raw: Any) -> dict[str, str]:
    """``customMetadata`` as a dict of strings, within R2's size limit."""
    custom = {str(k): str(v) for k, v in options(raw, None, where=f"R2 {action}: customMetadata").items()} \
        if raw is not None else {}
    if _metadata_size(custom) > MAX_METADATA_SIZE:
        raise _fail(action, _METADATA_TOO_LARGE)
    return custom


def _insert_object(
    bucket: R2Bucket, conn: apsw.Connection, key: str, data: bytes, etag: str, http_json: str, custom_json: str,
    checksums: Mapping[str, str],
) -> tuple[Any, ...]:
    """Write an object (inside the caller's transaction); its metadata row."""
    row = (key, uuid.uuid4().hex, len(data), etag, bucket._host.clock.now_ms(), http_json, custom_json,
           json.dumps(dict(checksums)))
    conn.execute(
        "INSERT OR REPLACE INTO r2_objects(key, version, size, etag, uploaded, http_metadata,"
        " custom_metadata, checksums, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*row, data),
    )
    return row


def _parse_range_header(header: str, size: int) -> tuple[int, int]:
    """A single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; anything else means the whole body."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return 0, size
    start, _, end = spec.strip().partition("-")
    try:
        if not start:
            n = min(int(end), size)
            return size - n, n
        a = int(start)
        b = min(int(end), size - 1) if end else size - 1
    except ValueError:
        return 0, size
    if a > b or a >= size:
        raise _fail("get", _INVALID_RANGE)
    return a, b - a + 1
