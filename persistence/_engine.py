"""One object's SQLite file: connection set-up, implicit transactions, savepoints.

An :class:`ObjectDatabase` owns exactly one apsw connection to one object's
file and an exclusive ``flock`` on it, so a second process (or a second host
in this process) cannot open a live object. Everything here is synchronous and
never touches trio; the host decides *when* to commit.

Transaction model (workerd's ``ActorSqlite``):

* The first statement after a commit point opens an implicit transaction
  (``BEGIN``); the first write in it calls ``hooks.on_write()`` so the host
  can hold outgoing messages until :meth:`commit`.
* :meth:`commit` ends it. ``hooks.before_commit()`` may raise (tests force
  failures that way); any failure rolls the transaction back and raises
  :class:`CommitFailedError` — the object is then "broken" and must be reset.
  A deferred-constraint violation uses Cloudflare's "rolled back to its last
  known good state" message.
* ``transactionSync`` / ``transaction()`` are savepoints inside it, named as
  workerd names them; a raise rolls back to the savepoint only.
* Nothing written is ever acknowledged before :meth:`commit` returns.

Durability: ``"full"`` = ``synchronous=FULL`` (fsync per commit; the host runs
:meth:`commit` in a worker thread), ``"normal"`` = ``synchronous=NORMAL`` in
WAL mode: survives a process crash, not a power cut.
"""

from __future__ import annotations

import errno
import fcntl
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, TypeVar

import apsw

from . import _cf
from ._authorizer import Authorizer
from ._codec import Binding, bind_cloudflare, row_converter
from ._kv import KvStore, SyncKv
from ._sql import SqlStorage, format_sqlite_error
from .errors import (
    CommitFailedError,
    DatabaseClosedError,
    ObjectLockedError,
    SqlError,
    StorageError,
    StorageTypeError,
    TransactionError,
)

__all__ = ["ObjectDatabase", "StorageHooks", "NoHooks", "Durability"]

Durability = Literal["full", "normal"]
T = TypeVar("T")

_PERSIST = apsw.SQLITE_PREPARE_PERSISTENT
_TXN_WRITE = apsw.SQLITE_TXN_WRITE


class StorageHooks(Protocol):
    """What the host learns about (and may veto in) an object's transactions."""

    def on_write(self) -> None:
        """The implicit transaction made its first write: outputs must now wait."""

    def before_commit(self) -> None:
        """Called just before COMMIT of a transaction that wrote; may raise to fail it."""

    def on_commit(self) -> None:
        """A transaction that wrote has committed."""

    def on_rollback(self) -> None:
        """Uncommitted writes were dropped."""


class NoHooks:
    """The default :class:`StorageHooks`: nothing to tell."""

    def on_write(self) -> None:
        pass

    def before_commit(self) -> None:
        pass

    def on_commit(self) -> None:
        pass

    def on_rollback(self) -> None:
        pass


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise ObjectLockedError(
                f"{path}: this Durable Object is live in another host (the file is locked); "
                "only one instance per ID may run"
            ) from None
        raise
    return fd


class ObjectDatabase:
    """The private SQLite database of one Durable Object."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        binding: Binding = "cloudflare",
        sqlite_backed: bool = True,
        hooks: StorageHooks | None = None,
        lock: bool = True,
        statement_cache: int = 256,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability: expected 'full' or 'normal', got {durability!r}")
        if binding not in ("cloudflare", "native"):
            raise ValueError(f"binding: expected 'cloudflare' or 'native', got {binding!r}")
        self.path = Path(path)
        self.durability = durability
        self.sqlite_backed = sqlite_backed
        self._hooks: StorageHooks = hooks or NoHooks()
        self._lock_fd = _lock(self.path) if lock else -1
        try:
            self._conn = self._connect(statement_cache)
        except BaseException:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            raise
        self._auth = Authorizer()
        self._conn.authorizer = self._auth
        self._bind: Callable[[Any, int], Any] | None = bind_cloudflare if binding == "cloudflare" else None
        self._conv = row_converter(binding)
        self._txn_open = False
        self._wrote = False
        self._sp_depth = 0
        self._kv_exists: bool | None = None
        self._meta_exists: bool | None = None
        self._colcache: dict[str, list[str]] = {}
        self._closed = False
        self._sql_blocked = not sqlite_backed
        self.commits = 0
        #: Set when the alarm changed in the open transaction; the host reads and clears it.
        self.alarm_changed = False
        self.sql = SqlStorage(self)
        self.kv = SyncKv(self)
        self.kv_store = KvStore(self, sqlite_backed=sqlite_backed)

    def _connect(self, statement_cache: int) -> apsw.Connection:
        conn = apsw.Connection(str(self.path), statementcachesize=statement_cache)
        conn.set_busy_timeout(0)
        conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)  # CF: sqlite.c++ setupSecurity
        for name, value in _cf.SQLITE_LIMITS.items():
            code = getattr(apsw, name, None)
            if code is not None:
                conn.limit(code, value)
        conn.execute("PRAGMA journal_mode=WAL")
        sync = "FULL" if self.durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    # ------------------------------------------------------------ internals
    def _require_sql(self, kv: bool = False) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")
        if not self.sqlite_backed:
            # CF: src/workerd/api/actor-state.c++ (getSqliteDb / getSqliteKv)
            raise StorageError(_cf.SQL_NOT_SQLITE_BACKED_MESSAGE)

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")

    def _begin(self) -> None:
        self._check_open()
        self._exec_internal("BEGIN")
        self._txn_open = True

    def _exec_internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor:
        auth = self._auth
        auth.internal = True
        try:
            return self._conn.execute(sql, params, prepare_flags=_PERSIST)
        finally:
            auth.internal = False

    def _internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor:
        if not self._txn_open:
            self._begin()
        return self._exec_internal(sql, params)

    def _internal_write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if not self._txn_open:
            self._begin()
        self._exec_internal(sql, params)
        if not self._wrote:
            self._mark_wrote()

    def _mark_wrote(self) -> None:
        self._wrote = True
        self._hooks.on_write()

    def _check_wrote(self) -> None:
        if self._conn.txn_state() == _TXN_WRITE:
            self._mark_wrote()

    def _translate(self, exc: apsw.Error) -> SqlError:
        stashed = self._auth.stashed
        if stashed is not None:
            self._auth.stashed = None
            return SqlError(stashed, "SQLITE_AUTH")
        if isinstance(exc, (apsw.SchemaChangeError,)):
            self._colcache.clear()
        return format_sqlite_error(exc)

    def _run_leading(self, cur: apsw.Cursor, stmt: str, index: int) -> None:
        """Run a statement that is not the last of an ``exec``: no bindings, rows dropped."""
        try:
            cur.execute(stmt)
            for _ in cur:
                pass
        except apsw.BindingsError:
            raise SqlError(_cf.MULTI_STATEMENT_PARAMS_MESSAGE) from None  # CF: sqlite.c++
        except apsw.Error as exc:
            raise self._translate(exc) from None
        if not self._wrote:
            self._check_wrote()

    def _column_names(self, sql: str, bindings: tuple[Any, ...]) -> list[str]:
        """Column names of a statement without running it (for zero-row results)."""
        names = self._colcache.get(sql)
        if names is None:
            got: list[str] = []

            def trace(cursor: apsw.Cursor, _sql: str, _b: Any) -> bool:
                got.extend(d[0] for d in cursor.description)
                return False  # abort: we only wanted the prepared statement's shape

            cur = self._conn.cursor()
            cur.exec_trace = trace
            try:
                cur.execute(sql, bindings)
            except apsw.ExecTraceAbort:
                pass
            names = self._colcache[sql] = got
        return names

    def _kv_ready(self) -> bool:
        if self._kv_exists is None:
            self._kv_exists = bool(
                list(self._internal("SELECT 1 FROM sqlite_schema WHERE type='table' AND name='_cf_KV'"))
            )
        return self._kv_exists

    def _ensure_kv_table(self) -> None:
        if not self._kv_ready():
            self._internal_write(_cf.KV_TABLE_SCHEMA)
            self._kv_exists = True

    def _forget_caches(self) -> None:
        self._kv_exists = None
        self._meta_exists = None
        self._colcache.clear()

    # ------------------------------------------------------- transactions
    @property
    def in_transaction(self) -> bool:
        """True while an implicit transaction is open (reads or writes)."""
        return self._txn_open

    @property
    def dirty(self) -> bool:
        """True when the open transaction has writes that are not yet committed."""
        return self._wrote

    def commit(self) -> bool:
        """Commit the implicit transaction. Returns whether anything was written."""
        if not self._txn_open:
            return False
        if self._sp_depth:
            raise TransactionError("cannot commit while transaction()/transactionSync() is running")
        wrote = self._wrote
        try:
            if wrote:
                self._hooks.before_commit()
            self._exec_internal("COMMIT")
        except apsw.ConstraintError as exc:
            self._abandon()
            # CF: src/workerd/io/actor-sqlite.c++ (TxnCommitRegulator::onError)
            raise CommitFailedError(
                _cf.DEFERRED_CONSTRAINT_RESET_PREFIX + str(format_sqlite_error(exc))
            ) from None
        except BaseException as exc:
            self._abandon()
            raise CommitFailedError(f"{self.path.name}: commit failed: {exc!r}") from exc
        self._txn_open = False
        self._wrote = False
        if wrote:
            self.commits += 1
            self._hooks.on_commit()
        return wrote

    def _abandon(self) -> None:
        if not self._conn.get_autocommit():
            self._exec_internal("ROLLBACK")
        wrote = self._wrote
        self._txn_open = False
        self._wrote = False
        self._sp_depth = 0
        self.alarm_changed = False
        self._forget_caches()
        if wrote:
            self._hooks.on_rollback()

    def rollback(self) -> None:
        """Drop everything written since the last commit."""
        if self._txn_open:
            self._abandon()

    def savepoint(self, prefix: str = _cf.TRANSACTION_SAVEPOINT_PREFIX) -> int:
        """Open a savepoint; returns its depth, for :meth:`release` / :meth:`rollback_to`."""
        if not self._txn_open:
            self._begin()
        depth = self._sp_depth
        self._exec_internal(f"SAVEPOINT {prefix}{depth}")
        self._sp_depth = depth + 1
        return depth

    def _check_depth(self, depth: int) -> None:
        if depth != self._sp_depth - 1:
            raise TransactionError(_cf.NESTED_TXN_ROLLBACK_MESSAGE)  # CF: actor-sqlite.c++

    def release(self, depth: int, prefix: str = _cf.TRANSACTION_SAVEPOINT_PREFIX) -> None:
        self._check_depth(depth)
        self._exec_internal(f"RELEASE {prefix}{depth}")
        self._sp_depth = depth

    def rollback_to(self, depth: int, prefix: str = _cf.TRANSACTION_SAVEPOINT_PREFIX) -> None:
        self._check_depth(depth)
        self._exec_internal(f"ROLLBACK TO {prefix}{depth}")
        self._exec_internal(f"RELEASE {prefix}{depth}")
        self._sp_depth = depth
        self._forget_caches()

    def transaction_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` atomically: its SQL and KV writes roll back if it raises."""
        if inspect.iscoroutinefunction(fn):
            raise StorageTypeError(
                "transactionSync() callback must be synchronous; use transaction() for async code"
            )
        self._check_open()
        prefix = _cf.TRANSACTION_SYNC_SAVEPOINT_PREFIX
        depth = self.savepoint(prefix)
        try:
            result = fn()
        except BaseException:
            self.rollback_to(depth, prefix)
            raise
        if inspect.isawaitable(result):
            self.rollback_to(depth, prefix)
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise StorageTypeError(
                "transactionSync() callback returned an awaitable; it must be synchronous"
            )
        self.release(depth, prefix)
        return result

    transactionSync = transaction_sync

    # ----------------------------------------------------------- metadata
    def _meta_ready(self) -> bool:
        if self._meta_exists is None:
            self._meta_exists = bool(
                list(self._internal("SELECT 1 FROM sqlite_schema WHERE type='table' AND name='_cf_METADATA'"))
            )
        return self._meta_exists

    def _meta_get(self, key: int) -> Any:
        if not self._meta_ready():
            return None
        for (value,) in self._internal("SELECT value FROM _cf_METADATA WHERE key = ?", (key,)):
            return value
        return None

    def _meta_set(self, key: int, value: Any) -> None:
        if not self._meta_ready():
            self._internal_write(_cf.METADATA_TABLE_SCHEMA)
            self._meta_exists = True
        self._internal_write(
            "INSERT INTO _cf_METADATA (key, value) VALUES (?, ?) "
            "ON CONFLICT DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get_alarm(self) -> float | None:
        """Scheduled alarm time in ms since the epoch, or ``None``."""
        self._check_open()
        ns = self._meta_get(_cf.METADATA_KEY_ALARM)
        return None if ns is None else ns / 1_000_000

    def set_alarm(self, ms: float | None) -> None:
        """Store the alarm time (ms since the epoch) or clear it with ``None``."""
        self._check_open()
        self._meta_set(_cf.METADATA_KEY_ALARM, None if ms is None else int(round(ms * 1_000_000)))
        self.alarm_changed = True

    @property
    def stored_name(self) -> str | None:
        """The object's name (``ctx.id.name``) as recorded at first activation."""
        value = self._meta_get(_cf.METADATA_KEY_ACTOR_NAME)
        return value if isinstance(value, str) else None

    def record_name(self, name: str) -> None:
        if self.stored_name != name:
            self._meta_set(_cf.METADATA_KEY_ACTOR_NAME, name)

    def current_bookmark(self) -> str:
        """A bookmark in Cloudflare's format; later calls sort after earlier ones."""
        self._check_open()
        n = int(self._meta_get(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK) or 0) + 1
        self._meta_set(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK, n)
        d = _cf.BOOKMARK_DIVISOR  # CF: actor-sqlite.c++ getCurrentBookmark
        return _cf.BOOKMARK_TEMPLATE.format(hi=n // d, lo=n % d, zero=0)

    # ---------------------------------------------------------- whole file
    def delete_all(self, *, delete_alarm: bool = True) -> int:
        """Wipe SQL tables, KV and (by flag) the alarm, atomically. Returns the KV count."""
        self._check_open()
        if self._sp_depth:
            raise TransactionError(_cf.DELETE_ALL_IN_TRANSACTION_MESSAGE)  # CF: actor-sqlite.c++
        count = 0
        if self._kv_ready():
            count = next(iter(self._internal("SELECT count(*) FROM _cf_KV")))[0]
        self._internal_write("PRAGMA defer_foreign_keys = ON")
        schema = list(
            self._internal("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
        )
        virtual = [n for t, n, sql in schema if t == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")]
        for name in virtual:
            self._internal_write(f'DROP TABLE IF EXISTS "{_q(name)}"')
        remaining = list(
            self._internal("SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
        )
        for kind in ("view", "trigger", "table"):
            for t, name in remaining:
                if t == kind and name != _cf.METADATA_TABLE:
                    self._internal_write(f'DROP {kind.upper()} IF EXISTS "{_q(name)}"')
        self._kv_exists = False
        self._colcache.clear()
        if delete_alarm and self.get_alarm() is not None:
            self.set_alarm(None)
        return int(count)

    def database_size(self) -> int:
        """(page_count − freelist_count) × page_size, as Cloudflare reports it."""
        self._check_open()
        get = lambda p: next(iter(self._internal(f"PRAGMA {p}")))[0]  # noqa: E731
        return int((get("page_count") - get("freelist_count")) * get("page_size"))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the file. Uncommitted writes are dropped: commit first."""
        if self._closed:
            return
        try:
            if self._txn_open:
                self._abandon()
        finally:
            self._closed = True
            self._sql_blocked = True
            try:
                self._conn.close()
            finally:
                if self._lock_fd >= 0:
                    os.close(self._lock_fd)
                    self._lock_fd = -1


def _q(name: str) -> str:
    return name.replace('"', '""')
