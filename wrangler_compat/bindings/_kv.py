"""Workers KV: ``env.<NAME>`` for a ``kv_namespaces`` entry.

Stored in one SQLite file per namespace id (``bindings/kv/<digest>.sqlite``):
a row per key with its value, expiration (seconds since the epoch) and
JSON metadata. Every write is one autocommitted statement, so an
acknowledged ``put`` is on disk with the runtime's durability.

Semantics are KV's as workerd and miniflare implement them:

* ``get(key, type?)`` with type ``"text"`` (default), ``"json"``,
  ``"arrayBuffer"`` (a memoryview, as the SDK gives it) or ``"stream"``, as a string or as
  ``{"type": ...}``; a list of keys gets a dict of values.
  ``getWithMetadata`` returns ``{value, metadata, cacheStatus}``.
* ``put(key, value, expiration=, expirationTtl=, metadata=)``; expiry runs
  on the runtime's clock, so a test under ``autojump_clock`` sees a key
  expire after ``trio.sleep(ttl)``. Expired keys read as absent.
* ``list(prefix=, limit=, cursor=)`` in UTF-8 byte order, at most 1000
  keys per page: ``{keys: [{name, expiration?, metadata?}], list_complete,
  cursor?, cacheStatus}``.
* Limits and messages are Cloudflare's (``KV PUT failed: 413 Value length
  of ... exceeds limit of 26214400.``); a refused call writes nothing.

Not emulated: eventual consistency across locations (there is one
location), ``cacheTtl`` (validated, then ignored).
"""

from __future__ import annotations

import base64
import builtins
import json
import math
from typing import Any

import apsw

from persistence import cf_names

from ._common import ByteStream, JsBinding, JsObject, checkpoint, js_string, options, read_body
from ._store import StoreHost
from .errors import KvError

__all__ = ["KVNamespace", "MAX_KEY_SIZE", "MAX_VALUE_SIZE", "MAX_METADATA_SIZE", "MIN_EXPIRATION_TTL", "MAX_LIST_KEYS"]

# CF: https://github.com/cloudflare/workers-sdk/blob/main/packages/miniflare/src/workers/kv/constants.ts
MAX_KEY_SIZE = 512
MAX_VALUE_SIZE = 25 * 1024 * 1024
MAX_METADATA_SIZE = 1024
MIN_EXPIRATION_TTL = 60
MIN_CACHE_TTL = 60
MAX_LIST_KEYS = 1000
MAX_BULK_GET_KEYS = 100

_TYPES = ("text", "json", "arrayBuffer", "stream")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv_entries("
    " key TEXT PRIMARY KEY, value BLOB NOT NULL, expiration INTEGER, metadata TEXT)"
)


def _fail(op: str, status: int, message: str) -> KvError:
    # workerd prefixes the KV service's error with the operation and status.
    return KvError(f"KV {op} failed: {status} {message}")  # CF: workerd src/workerd/api/kv.c++


def _check_key(op: str, raw: Any) -> str:
    key = js_string(raw, f"KV {op}")
    if key == "":
        raise _fail(op, 400, "Key names must not be empty")  # CF: miniflare kv/validator.worker.ts
    if key in (".", ".."):
        raise _fail(op, 400, f'Illegal key name "{key}". Please use a different name.')
    _check_length(op, key)
    return key


def _check_length(op: str, key: str) -> None:
    n = len(key.encode())
    if n > MAX_KEY_SIZE:
        raise _fail(op, 414, f"UTF-8 encoded length of {n} exceeds key length limit of {MAX_KEY_SIZE}.")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@cf_names("getWithMetadata")
class KVNamespace(JsBinding):
    """``env.<NAME>`` for a KV namespace; see the module docstring."""

    js_name = "KvNamespace"

    #: Seconds between sweeps of expired keys (reads skip them anyway; this only frees space).
    PURGE_EVERY_S = 60

    def __init__(self, binding: str, namespace_id: str, host: StoreHost) -> None:
        self._binding = binding
        self._id = namespace_id
        self._host = host
        self._next_purge = 0

    def __repr__(self) -> str:
        return f"<KVNamespace {self._binding} id={self._id!r}>"

    def _conn(self) -> apsw.Connection:
        return self._host.connection("kv", self._id, _SCHEMA)

    def _now_s(self) -> int:
        return math.floor(self._host.clock.now_ms() / 1000)

    # ------------------------------------------------------------------ reads
    async def get(self, key: Any, type_or_options: Any = None, **kwargs: Any) -> Any:
        await checkpoint()
        kind, opts = self._get_options(type_or_options, kwargs)
        if isinstance(key, (list, tuple)):
            return self._bulk(list(key), kind, opts, with_metadata=False)
        row = self._read("GET", key, opts)
        return None if row is None else self._decode(row[0], kind)

    async def get_with_metadata(self, key: Any, type_or_options: Any = None, **kwargs: Any) -> Any:
        await checkpoint()
        kind, opts = self._get_options(type_or_options, kwargs)
        if isinstance(key, (list, tuple)):
            return self._bulk(list(key), kind, opts, with_metadata=True)
        row = self._read("GET", key, opts)
        if row is None:
            return JsObject(value=None, metadata=None, cacheStatus=None)
        metadata = _json_value(row[1]) if row[1] is not None else None
        return JsObject(value=self._decode(row[0], kind), metadata=metadata, cacheStatus=None)

    def _get_options(self, first: Any, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        opts = {"type": first} if isinstance(first, str) else options(first, kwargs, where="KV get")
        if isinstance(first, str) and kwargs:
            opts.update(kwargs)
        kind = opts.get("type") or "text"
        if kind not in _TYPES:
            # CF: workerd src/workerd/api/kv.c++ (KvNamespace::get)
            raise TypeError('Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".')
        cache_ttl = opts.get("cacheTtl")
        if cache_ttl is not None:
            n = _number(cache_ttl)
            if n is None or math.isnan(n) or n < MIN_CACHE_TTL:
                raise _fail("GET", 400, f"Invalid cache_ttl of {cache_ttl}. Cache TTL must be at least {MIN_CACHE_TTL}.")
        return kind, opts

    def _read(self, op: str, key: Any, opts: dict[str, Any]) -> tuple[bytes, str | None] | None:
        key = _check_key(op, key)
        row = self._conn().execute(
            "SELECT value, metadata FROM kv_entries WHERE key = ? AND (expiration IS NULL OR expiration > ?)",
            (key, self._now_s()),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _bulk(self, keys: builtins.list[Any], kind: str, opts: dict[str, Any], *, with_metadata: bool) -> JsObject:
        if kind not in ("text", "json"):
            raise _fail("GET_BULK", 400, f'"{kind}" is not a valid type. Use "json" or "text"')
        if len(keys) > MAX_BULK_GET_KEYS:
            raise _fail("GET_BULK", 400, f"You can request a maximum of {MAX_BULK_GET_KEYS} keys")
        if not keys:
            raise _fail("GET_BULK", 400, "You must request a minimum of 1 key")
        out = JsObject()
        for key in keys:
            row = self._read("GET_BULK", key, opts)
            value = None if row is None else self._decode(row[0], kind, bulk=True)
            if with_metadata and value is not None:
                assert row is not None
                value = JsObject(value=value, metadata=_json_value(row[1]) if row[1] is not None else None)
            out[js_string(key, "KV get")] = value
        return out

    @staticmethod
    def _decode(raw: bytes, kind: str, bulk: bool = False) -> Any:
        if kind == "arrayBuffer":
            # CF: workers-py rpc.py python_from_rpc — Pyodide's to_py() of an ArrayBuffer
            return memoryview(bytes(raw))
        if kind == "stream":
            return ByteStream(bytes(raw))
        text = bytes(raw).decode("utf-8", errors="replace")
        if kind == "json":
            try:
                return _json_value(text)
            except ValueError:
                if bulk:
                    raise _fail("GET_BULK", 400, "At least one of the requested keys corresponds to a non-json value")
                # JSON.parse's own error, as workerd lets it through
                raise SyntaxError(f"Unexpected token in JSON: {text[:40]!r}") from None
        return text

    # ----------------------------------------------------------------- writes
    async def put(self, key: Any, value: Any, options_: Any = None, **kwargs: Any) -> None:
        await checkpoint()
        opts = options(options_, kwargs, where="KV put")
        key = _check_key("PUT", key)
        now = self._now_s()
        expiration = self._expiration(opts, now)
        metadata: str | None = None
        if opts.get("metadata") is not None:
            metadata = json.dumps(_plain_json(opts["metadata"]), separators=(",", ":"), ensure_ascii=False)
            size = len(metadata.encode())
            if size > MAX_METADATA_SIZE:
                raise _fail("PUT", 413, f"Metadata length of {size} exceeds limit of {MAX_METADATA_SIZE}.")
        data = b"" if value is None else await read_body(value, "KV put")
        if len(data) > MAX_VALUE_SIZE:
            raise _fail("PUT", 413, f"Value length of {len(data)} exceeds limit of {MAX_VALUE_SIZE}.")
        conn = self._conn()
        with conn:
            conn.execute(
                "INSERT INTO kv_entries(key, value, expiration, metadata) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value, expiration = excluded.expiration,"
                " metadata = excluded.metadata",
                (key, data, expiration, metadata),
            )
            if now >= self._next_purge:
                self._next_purge = now + self.PURGE_EVERY_S
                conn.execute("DELETE FROM kv_entries WHERE expiration IS NOT NULL AND expiration <= ?", (now,))

    @staticmethod
    def _expiration(opts: dict[str, Any], now: int) -> int | None:
        ttl, at = opts.get("expirationTtl"), opts.get("expiration")
        # CF: miniflare kv/validator.worker.ts (validatePutOptions)
        if ttl is not None:
            n = _number(ttl)
            if n is None or math.isnan(n) or int(n) <= 0:
                raise _fail("PUT", 400, f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0.")
            if int(n) < MIN_EXPIRATION_TTL:
                raise _fail("PUT", 400, f"Invalid expiration_ttl of {ttl}. Expiration TTL must be at least"
                            f" {MIN_EXPIRATION_TTL}.")
            return now + int(n)
        if at is not None:
            n = _number(at)
            if n is None or math.isnan(n) or int(n) <= now:
                raise _fail("PUT", 400, f"Invalid expiration of {at}. Please specify integer greater than the"
                            " current number of seconds since the UNIX epoch.")
            if int(n) < now + MIN_EXPIRATION_TTL:
                raise _fail("PUT", 400, f"Invalid expiration of {at}. Expiration times must be at least"
                            f" {MIN_EXPIRATION_TTL} seconds in the future.")
            return int(n)
        return None

    async def delete(self, key: Any) -> None:
        await checkpoint()
        key = _check_key("DELETE", key)
        self._conn().execute("DELETE FROM kv_entries WHERE key = ?", (key,))

    # ------------------------------------------------------------------ list
    async def list(self, options_: Any = None, **kwargs: Any) -> JsObject:
        await checkpoint()
        opts = options(options_, kwargs, where="KV list")
        limit_raw = opts.get("limit")
        limit = MAX_LIST_KEYS
        if limit_raw is not None:
            n = _number(limit_raw)
            if n is None or math.isnan(n) or n < 1:
                raise _fail("LIST", 400, f"Invalid key_count_limit of {limit_raw}. Please specify an integer"
                            " greater than 0.")
            if n > MAX_LIST_KEYS:
                raise _fail("LIST", 400, f"Invalid key_count_limit of {limit_raw}. Please specify an integer"
                            f" less than {MAX_LIST_KEYS}.")
            limit = int(n)
        prefix = opts.get("prefix")
        prefix = "" if prefix is None else js_string(prefix, "KV list: prefix")
        _check_length("LIST", prefix)
        after = ""
        cursor = opts.get("cursor")
        if cursor:
            try:
                after = base64.urlsafe_b64decode(str(cursor).encode()).decode()
            except (ValueError, UnicodeDecodeError):
                raise _fail("LIST", 400, f"Invalid cursor {cursor!r}") from None
        rows = self._conn().execute(
            "SELECT key, expiration, metadata FROM kv_entries"
            " WHERE key > ? AND substr(key, 1, ?) = ? AND (expiration IS NULL OR expiration > ?)"
            " ORDER BY key LIMIT ?",
            (after, len(prefix), prefix, self._now_s(), limit + 1),
        ).fetchall()
        keys = []
        for name, expiration, metadata in rows[:limit]:
            entry = JsObject(name=name)
            if expiration is not None:
                entry["expiration"] = expiration
            if metadata is not None:
                entry["metadata"] = _json_value(str(metadata))
            keys.append(entry)
        if len(rows) > limit:
            last = keys[-1]["name"]
            token = base64.urlsafe_b64encode(last.encode()).decode()
            return JsObject(keys=keys, list_complete=False, cursor=token, cacheStatus=None)
        return JsObject(keys=keys, list_complete=True, cacheStatus=None)


def _json_value(text: str) -> Any:
    return json.loads(text, object_hook=JsObject)


def _plain_json(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    if callable(to_py) and not isinstance(value, (dict, list)):
        return to_py()
    return value
