"""Looking into an object's file for tools (the inspector, ``dohost do``), and its SQL dump.

Everything here reads through a plain apsw connection and is synchronous.
Guarantees:

* :func:`open_snapshot` opens a file that no connection has open (an
  evicted object, or a *parked* one: in memory, lock held, connection
  closed) **read-only and without creating anything**: with no ``-wal``
  beside it (a cleanly closed object) it is opened ``immutable``; with a
  ``-wal`` (a crash, or a parked object, whose close skips the checkpoint)
  it is opened ``mode=ro`` through the lock-free ``unix-none`` VFS in
  EXCLUSIVE locking mode, so SQLite rebuilds the WAL index in heap memory
  (hosts keep no ``-shm`` either) and the log's commits are seen. The caller
  makes sure no writer opens the file meanwhile (in-process: no connection
  exists and the read never awaits; another process: :func:`shared_lock`).
* :func:`reading` lends a live :class:`ObjectDatabase`'s own connection for
  reads between events. On it, as on a snapshot, a statement that would
  write is refused before it runs (:class:`ReadOnlyQueryError`), and an
  authorizer refuses what SQLite counts as read-only but which changes the
  connection (ATTACH, BEGIN, SAVEPOINT, a PRAGMA other than the describing
  ones); ``_cf_KV`` can be read. So nothing changes.
* :func:`dump_sql` writes the object's tables, ``_cf_KV`` and ``_cf_METADATA``
  (alarm; the name is beside the file) as SQL that the ``sqlite3`` shell loads into an empty
  database; :func:`restore_dump` replaces an object's whole contents with such
  a dump in one transaction (all or nothing).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import errno
import fcntl
import math
import os
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import apsw
import msgspec

from . import _cf
from ._codec import decode_kv_value
from ._engine import ObjectDatabase
from ._open import lock_path, read_name
from ._locks import hold_shared
from .errors import ObjectLockedError, PersistenceError

__all__ = [
    "QueryResult",
    "ReadOnlyQueryError",
    "open_snapshot",
    "shared_lock",
    "reading",
    "user_tables",
    "table_page",
    "run_query",
    "kv_entries",
    "stored_alarm_ms",
    "stored_name",
    "name_beside",
    "dump_sql",
    "restore_dump",
    "jsonable",
    "file_size",
    "total_changes",
]

#: Most rows a query shows (the query box, ``dohost do sql``); more are cut, and the result says so.
MAX_QUERY_ROWS = 1000


class ReadOnlyQueryError(PersistenceError):
    """A statement given as a read would write."""


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    columns: list[str]
    rows: list[list[Any]]
    #: Rows in the table (table pages) or None (queries).
    total: int | None = None
    truncated: bool = False


def total_changes(db: ObjectDatabase) -> int:
    """Rows changed through the object's connection since it opened (SQLite's ``total_changes``)."""
    return db.rows_written if not db.parked else 0  # a parked object's next connection starts at 0


def file_size(path: Path) -> int:
    """Bytes on disk: the file and its write-ahead log."""
    size = 0
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            size += p.stat().st_size
        except FileNotFoundError:
            pass
    return size


def open_snapshot(path: Path) -> apsw.Connection:
    """A read-only connection to a closed object's file that creates no file; see the docstring."""
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "no such object file", str(path))
    wal = path.with_name(path.name + "-wal")
    uri = "file:" + quote(str(path.resolve()))
    flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    if wal.exists():
        # mode=ro alone would create a -shm file; "unix-none" takes no lock (the
        # caller excludes writers) and EXCLUSIVE mode keeps the WAL index in memory.
        conn = apsw.Connection(uri + "?mode=ro", flags=flags, vfs="unix-none")
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    else:
        conn = apsw.Connection(uri + "?mode=ro&immutable=1", flags=flags)
    conn.set_busy_timeout(1000)
    conn.exec_trace = _refuse_writes  # the same refusals as on a live connection
    conn.authorizer = _read_authorizer
    return conn


@contextlib.contextmanager
def shared_lock(path: Path) -> Iterator[None]:
    """Hold a shared lock on an object (another process reading its file offline).

    Hosts lock an object with a byte of their folder's lock table
    (:class:`~persistence.LockTable`), or, where OFD locks are missing, by
    ``flock`` on ``<id>.sqlite.lock``; both are taken shared here. Raises
    :class:`ObjectLockedError` when a host holds the object; creates no file
    (a folder no host ever opened has no lock file, and needs none).
    """
    locked = ObjectLockedError(f"{path}: this Durable Object is live in a running host")
    table_fd = hold_shared(path.parent, path.name)
    if table_fd is None:
        raise locked
    try:
        try:
            fd = os.open(lock_path(path), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise locked from None
                raise
            yield
        finally:
            os.close(fd)
    finally:
        if table_fd >= 0:
            os.close(table_fd)


#: PRAGMAs a read may use: they describe, never configure.
_DESCRIBING_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "page_count", "freelist_count", "page_size", "database_list", "collation_list", "function_list",
})
#: What SQLite counts as "read-only" but changes the connection (writes are refused by the trace).
_CONNECTION_ACTIONS = frozenset({apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH, apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT})


def _read_authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    """No ATTACH, BEGIN, SAVEPOINT or setting PRAGMA: statements SQLite calls read-only that change the connection."""
    if action in _CONNECTION_ACTIONS:
        return int(apsw.SQLITE_DENY)
    if action == apsw.SQLITE_PRAGMA and (arg1 is None or arg1.lower() not in _DESCRIBING_PRAGMAS):
        return int(apsw.SQLITE_DENY)
    return int(apsw.SQLITE_OK)


def _refuse_writes(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
    if not cursor.is_readonly:
        raise ReadOnlyQueryError(f"this statement writes, and the query is read-only: {sql.strip()[:200]!r}")
    return True


@contextlib.contextmanager
def reading(db: ObjectDatabase) -> Iterator[apsw.Connection]:
    """A live object's own connection for reads (between events; see the docstring).

    Not for a parked object (that would reopen its connection): read its file
    with :func:`open_snapshot` instead.
    """
    db._check_open()
    if db.parked:
        raise PersistenceError(f"{db.path.name}: the object is parked; read its file with open_snapshot")
    conn = db._conn
    trace = conn.exec_trace
    conn.exec_trace = _refuse_writes
    conn.authorizer = _read_authorizer  # also lets the inspector read _cf_KV, as dohost's own reads do
    try:
        yield conn
    finally:
        conn.authorizer = db._auth
        conn.exec_trace = trace


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_internal(name: str) -> bool:
    return name.lower().startswith(_cf.RESERVED_NAME_PREFIX.lower()) or name.lower().startswith("sqlite_")


def user_tables(conn: apsw.Connection) -> list[tuple[str, int]]:
    """The object's own tables (no ``_cf_`` or ``sqlite_`` ones) with their row counts."""
    names = [
        str(n) for (n,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        if not _is_internal(str(n))
    ]
    return [(n, _count(conn, n)) for n in names]


def _count(conn: apsw.Connection, table: str) -> int:
    value = conn.execute(f"SELECT count(*) FROM {_q(table)}").fetchall()[0][0]
    assert isinstance(value, int)
    return value


def table_page(conn: apsw.Connection, table: str, *, offset: int = 0, limit: int = 50) -> QueryResult:
    """Rows ``offset .. offset+limit`` of a user table, in rowid order where it has one."""
    tables = dict(user_tables(conn))
    if table not in tables:
        raise PersistenceError(f"no table named {table!r} (tables: {', '.join(sorted(tables)) or 'none'})")
    if offset < 0 or not 0 < limit <= MAX_QUERY_ROWS:
        raise PersistenceError(f"offset must be >= 0 and limit 1..{MAX_QUERY_ROWS}, got {offset} and {limit}")
    cur = conn.execute(f"SELECT * FROM {_q(table)} LIMIT ? OFFSET ?", (limit, offset))
    try:
        columns = [d[0] for d in cur.getdescription()]
    except apsw.ExecutionCompleteError:  # no row at all: ask the schema
        columns = _columns_of(conn, table)
    rows = [list(r) for r in cur]
    return QueryResult(columns=columns, rows=rows, total=tables[table])


def _columns_of(conn: apsw.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")]


def run_query(conn: apsw.Connection, sql: str, *, max_rows: int = MAX_QUERY_ROWS) -> QueryResult:
    """Run ``sql`` (several statements allowed); the last statement's rows, at most ``max_rows``."""
    cur = conn.cursor()
    columns: list[str] = []
    rows: list[list[Any]] = []
    truncated = False
    for row in cur.execute(sql):
        if not columns:
            columns = [d[0] for d in cur.getdescription()]
        if len(rows) >= max_rows:
            truncated = True
            break
        rows.append(list(row))
    return QueryResult(columns=columns, rows=rows, truncated=truncated)


def _kv_exists(conn: apsw.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (_cf.KV_TABLE,)).fetchall())


def kv_entries(conn: apsw.Connection, *, prefix: str = "", limit: int = 1000) -> list[tuple[str, Any]]:
    """``_cf_KV`` entries in key order, values decoded with the storage codec."""
    if not _kv_exists(conn):
        return []
    out = []
    for key, blob in conn.execute(
        "SELECT key, value FROM _cf_KV WHERE key >= ? ORDER BY key LIMIT ?", (prefix, limit + 1000)
    ):
        if not key.startswith(prefix):
            break
        out.append((key, decode_kv_value(blob)))
        if len(out) >= limit:
            break
    return out


def _meta(conn: apsw.Connection, key: int) -> Any:
    if not conn.execute("SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (_cf.METADATA_TABLE,)).fetchall():
        return None
    for (value,) in conn.execute("SELECT value FROM _cf_METADATA WHERE key = ?", (key,)):
        return value
    return None


def stored_alarm_ms(conn: apsw.Connection) -> float | None:
    ns = _meta(conn, _cf.METADATA_KEY_ALARM)
    return None if ns is None else ns / 1_000_000


def name_beside(path: Path) -> str | None:
    """The name kept with the file (its attribute or ``<id>.sqlite.name``): readable while a host holds the object."""
    return read_name(path)


def stored_name(conn: apsw.Connection, path: Path) -> str | None:
    """The object's name: kept with ``path`` (:func:`name_beside`), else (files of older dohost) ``_cf_METADATA``."""
    name = name_beside(path)
    if name is not None:
        return name
    value = _meta(conn, _cf.METADATA_KEY_ACTOR_NAME)
    return value if isinstance(value, str) else None


def _literal(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NULL"  # SQLite stores NaN as NULL
    return str(apsw.format_sql_value(value))


def dump_sql(conn: apsw.Connection) -> str:
    """The object's tables, ``_cf_KV`` and ``_cf_METADATA`` as SQL (see the docstring)."""
    lines = ["PRAGMA foreign_keys=OFF;", "BEGIN TRANSACTION;"]
    schema = conn.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
    ).fetchall()
    for kind, name, sql in schema:
        if kind != "table":
            continue
        lines.append(f"{sql};")
        for row in conn.execute(f"SELECT * FROM {_q(str(name))}"):
            lines.append(f"INSERT INTO {_q(str(name))} VALUES({','.join(_literal(v) for v in row)});")
    if conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").fetchall():
        lines.append("DELETE FROM sqlite_sequence;")
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence"):
            lines.append(f"INSERT INTO sqlite_sequence VALUES({_literal(name)},{_literal(seq)});")
    for kind, name, sql in schema:
        if kind != "table":
            lines.append(f"{sql};")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


_HEAD = ("PRAGMA foreign_keys=OFF;", "BEGIN TRANSACTION;")


def restore_dump(db: ObjectDatabase, text: str) -> None:
    """Replace everything in ``db`` by a :func:`dump_sql` dump, in one transaction, and commit.

    The caller owns ``db`` exclusively (no event is running in it). The
    object's recorded name is kept (a dump of another object does not rename
    it): it is kept with the file, not in it, and a name row in the dump's
    ``_cf_METADATA`` (dumps of files of older dohost) is dropped, as is that
    table when the name was all it held. A bad dump changes nothing and raises
    :class:`PersistenceError` naming SQLite's complaint.
    """
    body = text.strip()
    for head in _HEAD:
        if body.startswith(head):
            body = body[len(head):].lstrip()
    if not body.endswith("COMMIT;"):
        raise PersistenceError("not a dohost dump: it must end with COMMIT; (made by `dohost do export`)")
    body = body[: -len("COMMIT;")]
    if db.in_transaction:
        db.commit()
    if db._reading:
        db.end_read()  # the dump loads in a transaction of its own
    conn, auth = db._conn, db._auth
    name = db.stored_name
    trace = conn.exec_trace
    conn.exec_trace = None
    auth.internal = True
    try:
        with conn:  # one transaction (a savepoint at top level): all or nothing
            conn.execute("PRAGMA defer_foreign_keys=ON")
            for kind, obj in conn.execute(
                "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "AND type IN ('table', 'view', 'trigger') ORDER BY type = 'table'"
            ).fetchall():
                conn.execute(f"DROP {str(kind).upper()} IF EXISTS {_q(str(obj))}")
            if conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").fetchall():
                conn.execute("DELETE FROM sqlite_sequence")
            conn.execute(body)
            if conn.execute("SELECT 1 FROM sqlite_schema WHERE name = '_cf_METADATA'").fetchall():
                conn.execute("DELETE FROM _cf_METADATA WHERE key = ?", (_cf.METADATA_KEY_ACTOR_NAME,))
                if conn.changes() and not conn.execute("SELECT 1 FROM _cf_METADATA LIMIT 1").fetchall():
                    conn.execute("DROP TABLE _cf_METADATA")
    except apsw.Error as exc:
        raise PersistenceError(f"the dump does not load: {exc}") from None
    finally:
        auth.internal = False
        conn.exec_trace = trace
        db._forget_caches()
    if name is not None:
        db.record_name(name)  # a name only _cf_METADATA held (older files) moves beside the file


def jsonable(value: Any) -> Any:
    """A stored value as JSON can carry it: bytes as ``{"$bytes": base64}``, datetimes as ISO 8601."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
