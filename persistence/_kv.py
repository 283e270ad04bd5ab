"""Key-value storage on ``_cf_KV``, shared by ``storage.kv`` and the async API.

The table is workerd's (``key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID``),
created lazily by the first write inside the current transaction, so a
rolled-back first write leaves no table behind. Keys order by SQLite's BINARY
collation on TEXT, i.e. UTF-8 byte order (the same as Python's code-point
order, which is why plain ``str`` comparison is used to clamp ranges).

List options compile exactly as workerd compiles them: ``start`` inclusive,
``end`` exclusive, ``startAfter`` as ``startAfter + "\\0"`` inclusive,
``prefix`` clamping both bounds, ``reverse`` changing the order but never the
bounds, ``limit`` counted from the chosen end.

Validation happens before anything is written, so bad input changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Union

import apsw
import msgspec

from . import _cf
from ._codec import _decoder, _encoder, decode_kv_value, encode_kv_value
from ._webidl import to_boolean, to_dom_string, to_int32
from .errors import SqlError, StorageError, StorageTypeError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

_decode = _decoder.decode
_encode_raw = _encoder.encode
_Cursor = apsw.Cursor
_execute = apsw.Cursor.execute
_I64, _U64 = 2**63, 2**64  # ints msgpack holds as they are (see _codec._check)
__all__ = ["KvStore", "SyncKv", "ListRange", "compile_list_options"]

_GET = "SELECT value FROM _cf_KV WHERE key = ?"
_PUT = "INSERT INTO _cf_KV (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value"
_DEL = "DELETE FROM _cf_KV WHERE key = ?"
_BATCH = 128  # rows fetched per page by the lazy sync list iterator
_MULTI_SP = _cf.PUT_MULTIPLE_SAVEPOINT

_MAX_CODEPOINT = 0x10FFFF


class ListRange:
    """A compiled list request: ``lo`` inclusive, ``hi`` exclusive, order, limit."""

    __slots__ = ("lo", "hi", "reverse", "limit")

    def __init__(self, lo: str | None, hi: str | None, reverse: bool, limit: int | None) -> None:
        self.lo, self.hi, self.reverse, self.limit = lo, hi, reverse, limit

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo >= self.hi


def _prefix_successor(prefix: str) -> str | None:
    """Smallest string greater than every string starting with ``prefix``."""
    chars = list(prefix)
    while chars:
        c = ord(chars[-1])
        if c < _MAX_CODEPOINT:
            nxt = c + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates have no UTF-8 encoding
                nxt = 0xE000
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def _opt_str(name: str, value: Any) -> str | None:
    # None is Pyodide's undefined: the option is absent; anything else converts as a DOMString.
    if value is None or type(value) is str:
        return value
    return to_dom_string(value, f"list(): option {name!r}")


def compile_list_options(options: Mapping[str, Any] | None = None, **kw: Any) -> ListRange:
    """Turn Cloudflare list options (one dict or keywords, camel or snake) into a range.

    Options convert as workerd's Web IDL converts them (CF: workerd 1.20261117.1,
    observed): bounds become strings, ``reverse`` is truthiness, ``limit`` a
    ``long``; unknown options are ignored.
    """
    if options is not None and not isinstance(options, Mapping):
        raise StorageTypeError(_cf.LIST_OPTIONS_TYPE_TEMPLATE.format(cls="DurableObjectStorage"))
    opts: dict[str, Any] = {}
    names = _OPTION_NAMES
    if options:
        for key, value in options.items():
            name = names.get(key)
            if name is not None:
                opts[name] = value
    for key, value in kw.items():
        name = names.get(key)
        if name is not None:
            opts[name] = value
    get = opts.get
    # The usual values (absent, a str, a positive int) are taken as they are; others
    # convert through Web IDL's rules.
    start = get("start")
    if start is not None and type(start) is not str:
        start = _opt_str("start", start)
    start_after = get("startAfter")
    if start_after is not None and type(start_after) is not str:
        start_after = _opt_str("startAfter", start_after)
    end = get("end")
    if end is not None and type(end) is not str:
        end = _opt_str("end", end)
    prefix = get("prefix")
    if prefix is not None and type(prefix) is not str:
        prefix = _opt_str("prefix", prefix)
    reverse = get("reverse")
    if reverse is not None and reverse is not False and reverse is not True:
        reverse = to_boolean(reverse)
    limit = get("limit")
    if start is not None and start_after is not None:
        raise StorageTypeError(_cf.LIST_START_AND_START_AFTER_MESSAGE)  # CF: actor-state.c++
    if limit is not None:
        if type(limit) is not int or not 0 < limit < 2**31:
            limit = to_int32(limit, "list(): option 'limit'")
        if limit <= 0:
            raise StorageTypeError(_cf.LIST_LIMIT_POSITIVE_MESSAGE)  # CF: actor-state.c++
    lo = start if start_after is None else start_after + "\0"
    hi = end
    if prefix:
        if lo is None or lo < prefix:
            lo = prefix
        succ = _prefix_successor(prefix)
        if succ is not None and (hi is None or succ < hi):
            hi = succ
    return ListRange(lo, hi, bool(reverse), limit)


_OPTION_NAMES = {
    "start": "start",
    "startAfter": "startAfter",
    "start_after": "startAfter",
    "end": "end",
    "prefix": "prefix",
    "reverse": "reverse",
    "limit": "limit",
    "allowConcurrency": "allowConcurrency",
    "allow_concurrency": "allowConcurrency",
    "noCache": "noCache",
    "no_cache": "noCache",
}


#: CF: workerd 1.20261117.1 (observed): on both kinds of class a value is bounded
#: only by SQLITE_LIMIT_LENGTH, surfacing as "string or blob too big: SQLITE_TOOBIG"
#: (no 128 KiB limit for new_classes locally).
_VALUE_LIMIT = _cf.SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"]


def check_key(key: Any) -> str:
    """A storage key as workerd's Web IDL makes it (``put(1, v)`` stores ``"1"``).

    CF: workerd 1.20261117.1 (observed) enforces no key-size limit on either kind
    of class locally: a key is bounded only by SQLite (SQLITE_TOOBIG).
    """
    if type(key) is str:
        return key
    return to_dom_string(key, "storage key")


class KvStore:
    """The KV operations both APIs share. Every method is synchronous."""

    __slots__ = ("_db", "_list_gen")

    def __init__(self, db: ObjectDatabase) -> None:
        self._db = db
        self._list_gen = 0

    def _encode(self, value: Any, path: str) -> bytes:
        blob = encode_kv_value(value, path)
        if len(blob) > _VALUE_LIMIT:
            raise SqlError(_cf.SQLITE_TOOBIG_MESSAGE, "SQLITE_TOOBIG")
        return blob

    # -- single key --------------------------------------------------------
    def get(self, key: str) -> Any:
        db = self._db
        if type(key) is not str:
            key = check_key(key)
        if db._closed:
            db._check_open()
        if not db._kv_exists and not db._kv_ready():
            return None
        auth = db._auth
        conn = db._conn
        if db._parked:
            conn = db._unpark()
        if not db._reading and not db._txn_open:
            db.begin_read()  # one read transaction for this read and the ones after it
        auth.internal = True
        try:
            # A cursor made and executed directly (Connection.execute looks its execute
            # up by name); it is used up or dropped before this returns. No
            # prepare_flags: apsw caches the statement anyway, and parsing the keyword
            # costs ~80 ns a call.
            row = _execute(_Cursor(conn), _GET, (key,)).fetchone()
        finally:
            auth.internal = False
        return None if row is None else _decode(row[0])

    def put(self, key: str, value: Any) -> None:
        if type(key) is not str:
            key = check_key(key)
        # encode_kv_value's common cases inline (and _encode's size check).
        t = type(value)
        if t is str or t is bytes or t is bool or (t is int and -_I64 <= value < _U64):
            blob = _encode_raw(value)
        else:
            blob = encode_kv_value(value, "$")
        if len(blob) > _VALUE_LIMIT:
            raise SqlError(_cf.SQLITE_TOOBIG_MESSAGE, "SQLITE_TOOBIG")
        db = self._db
        if not db._kv_exists or not db._txn_open:
            self._put_encoded((key, blob))
            return
        # The table exists and the implicit transaction is open: the write alone.
        auth = db._auth
        auth.internal = True
        try:
            _execute(_Cursor(db._conn), _PUT, (key, blob))
        except apsw.Error as exc:
            raise db._translate(exc) from None
        finally:
            auth.internal = False
        if not db._wrote:
            db._mark_wrote()

    def delete(self, key: str) -> bool:
        key = check_key(key)
        db = self._db
        # CF: workerd 1.20261117.1 (observed): a delete is a write that creates _cf_KV.
        if not db._kv_exists:
            db._ensure_kv_table()
        db._internal_write(_DEL, (key,))
        return db._conn.changes() > 0

    # -- batches (async API) -----------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, Any]:
        # CF: workerd 1.20261117.1 (observed): no 128-key batch limit locally.
        checked = sorted({check_key(k) for k in keys})
        db = self._db
        if not db._kv_ready():
            return {}
        out: dict[str, Any] = {}
        for key in checked:
            for (blob,) in db._internal(_GET, (key,)):
                out[key] = decode_kv_value(blob)
        return out

    def put_many(self, entries: Mapping[str, Any]) -> None:
        encoded = [(check_key(k), self._encode(v, f"$.{k}")) for k, v in entries.items()]
        db = self._db
        if not encoded:
            db._ensure_kv_table()  # CF: workerd 1.20261117.1 (observed): put({}) creates _cf_KV
            return
        if len(encoded) == 1:
            self._put_encoded(encoded[0])
            return
        # CF: sqlite-kv.c++ writes several pairs under _cf_put_multiple_savepoint: all or none.
        if not db._txn_open:
            db._begin()
        db._exec_internal(f"SAVEPOINT {_MULTI_SP}")
        try:
            db._ensure_kv_table()
            for row in encoded:
                db._internal_write(_PUT, row)
        except BaseException:
            db._exec_internal(f"ROLLBACK TO {_MULTI_SP}")
            db._exec_internal(f"RELEASE {_MULTI_SP}")
            db._kv_exists = None
            raise
        db._exec_internal(f"RELEASE {_MULTI_SP}")

    def _put_encoded(self, row: tuple[str, bytes]) -> None:
        db = self._db
        created = False if db._kv_exists else db._ensure_kv_table()
        try:
            db._internal_write(_PUT, row)
        except (SqlError, ValueError):  # too big for SQLite; a key SQLite cannot encode
            if created:  # bad input changes nothing: not even the lazily created table
                db._exec_internal("DROP TABLE IF EXISTS _cf_KV")
                db._kv_exists = False
            raise

    def delete_many(self, keys: list[str]) -> int:
        checked = [check_key(k) for k in keys]
        db = self._db
        if checked:
            db._ensure_kv_table()  # CF: workerd 1.20261117.1 (observed), as delete(); delete([]) does not
        elif not db._kv_ready():
            return 0
        count = 0
        for key in dict.fromkeys(checked):
            db._internal_write(_DEL, (key,))
            count += db._conn.changes()
        return count

    # -- listing -----------------------------------------------------------
    def cancel_list(self) -> None:
        """Invalidate the live sync ``kv.list()`` iterator, if any."""
        self._list_gen += 1

    def _page(self, rng: ListRange, after: str | None, n: int) -> list[tuple[str, bytes]]:
        return list(self._page_rows(rng, after, n))

    def _page_rows(self, rng: ListRange, after: str | None, n: int) -> Iterator[tuple[str, bytes]]:
        lo, hi, params = _bounds(rng, after)
        return self._db._internal(_page_sql(lo is not None, hi is not None, rng.reverse, n), params)

    def list_dict(self, rng: ListRange) -> dict[str, Any]:
        keys, values, _ = self.list_page(rng)
        return dict(zip(keys, values))

    def list_page(self, rng: ListRange) -> tuple[list[str], list[Any], bool]:
        """The keys and decoded values of one ``list()`` call, in order, and whether all are flat.

        SQLite gathers the page into one row (keys as a JSON array, values as
        their msgpack blobs end to end, which with an array header is one msgpack
        array): two C decodes instead of a Python step, tuple and decode per row.
        The values decode first as a list of str/int/float/bool/None, so "flat"
        (no container to wrap, no bytes or datetime) comes free with the decode.
        A page too big for one SQLite value is read row by row instead (flat:
        False, i.e. not known).
        """
        db = self._db
        if rng.empty or not db._kv_ready():
            return [], [], True
        # CF: every SqliteKv::list() opens a ListCursor, which cancels the live one.
        self.cancel_list()
        n = rng.limit if rng.limit is not None else -1
        lo, hi, params = _bounds(rng, None)
        sql = _page_sql(lo is not None, hi is not None, rng.reverse, n, gathered=True)
        auth = db._auth
        conn = db._conn
        if db._parked:
            conn = db._unpark()
        if not db._reading and not db._txn_open:
            db.begin_read()
        auth.internal = True
        try:
            row: Any = _execute(_Cursor(conn), sql, params).fetchone()
            count, keys, blob = row  # an aggregate without GROUP BY: always one row
        except apsw.TooBigError:
            pass  # the page's values together exceed SQLITE_LIMIT_LENGTH
        else:
            if not count:
                return [], [], True
            header = bytes((0xDC, count >> 8, count & 0xFF)) if count < 0x10000 else b"\xdd" + count.to_bytes(4, "big")
            array = header + blob
            try:
                return _decode_keys(keys), _decode_flat(array), True
            except msgspec.ValidationError:  # a container, bytes, a datetime or a big int
                return _decode_keys(keys), _decode(array), False
        finally:
            auth.internal = False
        decode = _decode  # the decoder's bound method: one C call per value, no wrapper
        out_keys, values = [], []
        for k, v in self._page_rows(rng, None, n):
            out_keys.append(k)
            values.append(decode(v))
        return out_keys, values, False

    def iterate(self, rng: ListRange) -> Iterator[tuple[str, Any]]:
        """Lazy (key, value) pairs; a newer list invalidates this one."""
        if rng.empty or not self._db._kv_ready():
            return iter(())  # CF: an empty range or a missing table opens no cursor
        self.cancel_list()
        return self._iterate(rng, self._list_gen)

    def _iterate(self, rng: ListRange, gen: int) -> Iterator[tuple[str, Any]]:
        remaining = rng.limit
        after: str | None = None
        while True:
            if gen != self._list_gen:
                raise StorageError(_cf.KV_LIST_INVALIDATED_MESSAGE)  # CF: sync-kv.c++
            if not self._db._kv_ready() or remaining == 0:
                return
            n = _BATCH if remaining is None else min(_BATCH, remaining)
            page = self._page(rng, after, n)
            for key, blob in page:
                if gen != self._list_gen:
                    raise StorageError(_cf.KV_LIST_INVALIDATED_MESSAGE)
                yield key, decode_kv_value(blob)
            if remaining is not None:
                remaining -= len(page)
            if len(page) < n:
                return
            after = page[-1][0]


def _bounds(rng: ListRange, after: str | None) -> tuple[str | None, str | None, tuple[str, ...]]:
    """A page's lower (inclusive) and upper (exclusive) key bounds, and its bindings."""
    lo, hi = rng.lo, rng.hi
    if rng.reverse:
        if after is not None:
            hi = after if hi is None or after < hi else hi
    elif after is not None:
        lo = after + "\0"
    if lo is None:
        return lo, hi, () if hi is None else (hi,)
    return lo, hi, (lo,) if hi is None else (lo, hi)


_PAGE_SQL: dict[tuple[bool, bool, bool, int, bool], str] = {}


def _page_sql(has_lo: bool, has_hi: bool, reverse: bool, n: int, gathered: bool = False) -> str:
    """The text of a page query (cached: building it costs more than the lookup)."""
    key = (has_lo, has_hi, reverse, n, gathered)
    sql = _PAGE_SQL.get(key)
    if sql is None:
        clauses = [c for c, on in (("key >= ?", has_lo), ("key < ?", has_hi)) if on]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if reverse else "ASC"
        # The limit is written into the text, not bound: SQLite's planner reads a bound
        # LIMIT, so every new binding of it re-prepared the statement at its first step.
        sql = f"SELECT key, value FROM _cf_KV{where} ORDER BY key {order} LIMIT {int(n)}"
        if gathered:
            # The outer query reads the ordered (and limited) subquery as a co-routine,
            # in its order; both aggregates step over the same rows, so keys and values
            # pair up. x'' joins the blobs byte for byte.
            sql = (
                "SELECT count(*), json_group_array(key), CAST(group_concat(value, x'') AS BLOB) "
                f"FROM ({sql})"
            )
        if len(_PAGE_SQL) >= 256:  # one entry per limit used: bounded
            _PAGE_SQL.clear()
        _PAGE_SQL[key] = sql
    return sql


_decode_keys = msgspec.json.Decoder(list[str]).decode
#: Decodes a page of values only if each is a str, int, float, bool or None (else
#: ValidationError); ints beyond 64 bits are an extension type, so they fail too.
_decode_flat = msgspec.msgpack.Decoder(list[Union[str, int, float, bool, None]]).decode

_MISSING: Any = object()


class SyncKv:
    """``ctx.storage.kv``: synchronous get/put/delete/list on the object's SQLite file."""

    __slots__ = ("_db", "_store")

    def __init__(self, db: ObjectDatabase) -> None:
        self._db = db
        self._store: KvStore = db.kv_store

    def get(self, key: str) -> Any:
        if self._db._sql_blocked:
            self._db._require_sql(kv=True)
        return self._store.get(key)

    def put(self, key: str, value: Any = _MISSING) -> None:
        if self._db._sql_blocked:
            self._db._require_sql(kv=True)
        if value is _MISSING:
            # CF: workerd 1.20261117.1 (observed): kv.put(key) with no value
            raise StorageTypeError("Failed to execute 'put' on 'SyncKvStorage': parameter 2 is not of type 'Value'.")
        self._store.put(key, value)

    def delete(self, key: str) -> bool:
        if self._db._sql_blocked:
            self._db._require_sql(kv=True)
        return self._store.delete(key)

    def list(self, options: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[tuple[str, Any]]:
        if self._db._sql_blocked:
            self._db._require_sql(kv=True)
        if options is not None and not isinstance(options, Mapping):
            raise StorageTypeError(_cf.LIST_OPTIONS_TYPE_TEMPLATE.format(cls="SyncKvStorage"))  # CF: observed
        return self._store.iterate(compile_list_options(options, **kw))
