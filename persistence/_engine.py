"""One object's SQLite file: connection set-up, implicit transactions, savepoints.

An :class:`ObjectDatabase` owns exactly one apsw connection to one object's
file and an exclusive ``flock`` on it, so a second process (or a second host
in this process) cannot open a live object. Everything here is synchronous and
never touches trio; the host decides *when* to commit.

Transaction model (workerd's ``ActorSqlite``):

* The first *write* after a commit point opens an implicit transaction
  (``BEGIN``), as workerd's ``onWrite`` callback does: SQLite says whether a
  prepared statement is read-only, and an exec tracer installed while no
  transaction is open begins one just before a writing statement runs. Reads
  outside a transaction run in autocommit mode, so ``PRAGMA foreign_keys``
  takes effect as on Cloudflare. The first write calls ``hooks.on_write()``
  so the host can hold outgoing messages until :meth:`commit`.
* If SQLite itself rolls the transaction back (``INSERT OR ROLLBACK``,
  ``RAISE(ROLLBACK)``, a full disk), the engine notices, tells the host with
  ``hooks.on_rollback()`` and re-opens the transaction and any savepoints, so
  ``transactionSync`` / ``transaction()`` nesting stays valid.
* :meth:`commit` ends it. ``hooks.before_commit()`` may raise (tests force
  failures that way); any failure rolls the transaction back and raises
  :class:`CommitFailedError` — the object is then "broken" and must be reset.
  A deferred-constraint violation uses Cloudflare's "rolled back to its last
  known good state" message.
* ``transactionSync`` / ``transaction()`` are savepoints inside it, named as
  workerd names them; a raise rolls back to the savepoint only.
* Nothing written is ever acknowledged before :meth:`commit` returns.
* Point-in-time history (:mod:`._pitr`, on unless ``pitr_retention_ms=0``) is
  told when a transaction begins and after each commit, and closes with the
  file; it only reads the object's file (its own lives beside it).

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
from ._codec import Binding
from ._kv import KvStore, SyncKv
from ._locks import LockTable
from ._pitr import DEFAULT_RETENTION_MS, History
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

Durability = Literal["full", "normal", "none"]

#: ``durability`` -> SQLite's ``synchronous``. "full": fsync per commit (survives a
#: power cut); "normal": WAL without fsync at commit (survives a process crash);
#: "none": no fsync and an in-memory rollback journal, for throwaway storage
#: (tests): fast, but a crash mid-transaction can corrupt the file.
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "none": "OFF"}
T = TypeVar("T")

_PERSIST = apsw.SQLITE_PREPARE_PERSISTENT
#: Cloudflare's SQLite limits as (apsw code, value), resolved once: objects reopen often.
_LIMITS = [
    (code, value)
    for code, value in ((getattr(apsw, name, None), value) for name, value in _cf.SQLITE_LIMITS.items())
    if code is not None
]
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


def name_path(path: Path) -> Path:
    """The file beside an object's database that holds its name (``<id>.sqlite.name``)."""
    return path.with_name(path.name + ".name")


def lock_path(path: Path) -> Path:
    """The lock file beside an object's database (``<id>.sqlite.lock``)."""
    return path.with_name(path.name + ".lock")


_HEADER = b"SQLite format 3\x00"


def _is_new_file(path: Path) -> bool:
    """True for a missing or empty object file — or one whose creation was torn.

    A new file enters WAL mode by writing its first page without a rollback
    journal (see ``_connect``). If power fails during that very write, the
    file may hold part of a page and no valid header; nothing was committed to
    it yet (every commit goes through the -wal file), so it is started afresh.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    if size == 0:
        return True
    if size > 65_536 or path.with_name(path.name + "-wal").exists():
        return False
    with open(path, "rb") as f:
        if f.read(len(_HEADER)) == _HEADER:
            return False
    os.truncate(path, 0)
    return True


def _locked_error(path: Path) -> ObjectLockedError:
    return ObjectLockedError(
        f"{path}: this Durable Object is live in another host (the file is locked); "
        "only one instance per ID may run"
    )


def _lock(path: Path) -> int:
    # A separate file, never the database itself: SQLite's locks are POSIX
    # locks, which the kernel drops for the whole process when *any* descriptor
    # of the file is closed — as a refused second open here would do.
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise _locked_error(path) from None
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
        locks: LockTable | None = None,
        pitr_retention_ms: float | None = DEFAULT_RETENTION_MS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability: expected 'full', 'normal' or 'none', got {durability!r}")
        if binding not in ("cloudflare", "native"):
            raise ValueError(f"binding: expected 'cloudflare' or 'native', got {binding!r}")
        self.path = Path(path)
        self.durability = durability
        self.sqlite_backed = sqlite_backed
        self._hooks: StorageHooks = hooks or NoHooks()
        self._locks = locks if lock else None
        self._lock_token: int | None = None
        self._lock_fd = -1
        if self._locks is not None:
            self._lock_token = self._locks.try_acquire(self.path.name)
            if self._lock_token is None:
                raise _locked_error(self.path)
        elif lock:
            self._lock_fd = _lock(self.path)
        self._statement_cache = statement_cache
        self._parked = False
        try:
            self._conn = self._connect(statement_cache, exclusive=lock)
        except BaseException:
            self._unlock()
            raise
        self._auth = Authorizer(on_ddl=self._on_ddl)
        self._conn.authorizer = self._auth
        self._conn.exec_trace = self._autocommit_trace
        #: Cloudflare binding mode: ints bind as doubles, numbers come back as Pyodide sees them.
        self._cf_rows = binding == "cloudflare"
        self._txn_open = False
        self._wrote = False
        self._sp_names: list[str] = []
        self._kv_exists: bool | None = None
        self._meta_exists: bool | None = None
        #: deleteAll() forgot whether an alarm exists: the next deleteAlarm() writes.
        self._alarm_unknown = False
        #: Result column names by SQL text, valid while ``_epoch`` is unchanged.
        self._names: dict[str, list[str]] = {}
        #: SQL texts whose bytecode opens no cursor (see ``opens_no_cursor``).
        self._cursor_free: dict[str, bool] = {}
        #: SQL texts SQLite reported read-only (a property of the text, kept across DDL).
        self._readonly: set[str] = set()
        self._epoch = 0
        self._closed = False
        self._sql_blocked = not sqlite_backed
        self.commits = 0
        #: Rows handed out by ``sql.exec`` cursors that were read to the end (telemetry).
        self.rows_read = 0
        #: Set when the alarm changed in the open transaction; the host reads and clears it.
        self.alarm_changed = False
        self.sql = SqlStorage(self)
        self.kv_store = KvStore(self, sqlite_backed=sqlite_backed)
        self.kv = SyncKv(self)
        #: Point-in-time history (``None``: not kept). Opening it may apply a pending restore.
        self.history: History | None = None
        if sqlite_backed and pitr_retention_ms:
            try:
                self.history = History(self, retention_ms=pitr_retention_ms, clock=clock)
            except BaseException:
                self.close()
                raise

    def _connect(self, statement_cache: int, *, exclusive: bool) -> apsw.Connection:
        new = _is_new_file(self.path)
        conn = apsw.Connection(str(self.path), statementcachesize=statement_cache)
        conn.set_busy_timeout(0)
        conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)  # CF: sqlite.c++ setupSecurity
        for code, value in _LIMITS:
            conn.limit(code, value)
        # The object's file belongs to this connection alone (the flock below
        # guarantees it), so SQLite need not share its locks: in EXCLUSIVE mode,
        # set before WAL is entered, the WAL index lives in heap memory (no -shm
        # file, one descriptor less per object) and a statement outside a
        # transaction no longer takes and drops the shared-memory read locks —
        # that was most of a point read's cost in a live object. (``lock=False``
        # means the caller shares the file: keep SQLite's normal locking.)
        if exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        # Throwaway storage ("none") keeps its rollback journal in memory: no -wal
        # file to create and delete for every test's objects.
        if self.durability == "none":
            conn.execute("PRAGMA journal_mode=MEMORY")
        else:
            if new:
                # Entering WAL rewrites page 1 of the (empty) file. Through a rollback
                # journal that costs a -journal file and four fsyncs (journal twice,
                # folder, file); an empty file has nothing a journal could protect, so
                # keep that one journal in memory: one fsync of the file is left. The
                # first commit's WAL sync also syncs the folder, covering both names.
                conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self.durability]}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    # ------------------------------------------------------------ internals
    def _require_sql(self, kv: bool = False) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")
        if not self.sqlite_backed:
            # CF: workerd 1.20261117.1 (observed; "directly,set" sic)
            raise StorageError(_cf.KV_NOT_SQLITE_BACKED_MESSAGE if kv else _cf.SQL_NOT_ENABLED_WORKERD_MESSAGE)

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")

    def _begin(self) -> None:
        self._check_open()
        if self.history is not None:
            self.history.on_begin()  # the last committed state, before the first write
        self._exec_internal("BEGIN")
        self._txn_open = True
        self._conn.exec_trace = None

    def _autocommit_trace(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        """Installed while no transaction is open: begin one before a writing statement."""
        if not self._txn_open and not cursor.is_readonly:
            self._begin()
        return True

    def _exec_internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor:
        auth = self._auth
        auth.internal = True
        try:
            return self._conn.execute(sql, params, prepare_flags=_PERSIST)
        finally:
            auth.internal = False

    def _internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor:
        """A read of dohost's own tables (autocommit when no transaction is open)."""
        self._check_open()
        return self._exec_internal(sql, params)

    def _internal_write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if not self._txn_open:
            self._begin()
        try:
            self._exec_internal(sql, params)
        except apsw.Error as exc:
            raise self._translate(exc) from None
        if not self._wrote:
            self._mark_wrote()

    def _mark_wrote(self) -> None:
        self._wrote = True
        self._hooks.on_write()

    def _check_wrote(self) -> None:
        if self._conn.txn_state() == _TXN_WRITE:
            self._mark_wrote()

    def _translate(self, exc: apsw.Error) -> SqlError:
        auth = self._auth
        auth.ddl_log.clear()
        stashed = auth.stashed
        if stashed is not None:
            auth.stashed = None
            if isinstance(exc, apsw.AuthError):
                return SqlError(stashed, "SQLITE_ERROR" if stashed.endswith(": SQLITE_ERROR") else "SQLITE_AUTH")
        if auth.missing is not None:
            auth.missing = None
            err = format_sqlite_error(exc)
            text = str(err)
            denied = "not authorized to use function: "
            if text.startswith(denied):
                # CF: workerd's SQLite lacks the function (_cf.MISSING_FUNCTIONS).
                return SqlError("no such function: " + text[len(denied):], err.code)
            return err
        if self._txn_open and self._conn.get_autocommit():
            self._transaction_lost()
        return format_sqlite_error(exc)

    def _with_offset(self, exc: apsw.Error, sql: str, bindings: Any) -> apsw.Error:
        """The same error with SQLite's offset, when apsw lost it.

        apsw re-prepares a cached statement after a schema change, and an error
        raised by that re-prepare carries no offset ("table t already exists"
        without workerd's " at offset 13"; workerd prepares every exec afresh). A
        fresh prepare that is aborted before its first step recovers it; nothing runs.
        """
        if type(exc) is not apsw.SQLError or getattr(exc, "error_offset", -1) != -1:
            return exc
        auth = self._auth
        saved = auth.stashed, auth.missing
        cur = self._conn.cursor()
        cur.exec_trace = _abort_before_step
        try:
            cur.execute(sql, bindings, can_cache=False)
        except apsw.Error as again:
            if str(again) == str(exc) and getattr(again, "error_offset", -1) >= 0:
                return again
        finally:
            auth.stashed, auth.missing = saved
            cur.close()
        return exc

    def _transaction_lost(self) -> None:
        """SQLite rolled the whole transaction back on its own: say so, and re-open it."""
        wrote = self._wrote
        self._wrote = False
        self.alarm_changed = False
        self._forget_caches()
        self._exec_internal("BEGIN")
        for name in self._sp_names:
            self._exec_internal(f"SAVEPOINT {name}")
        if wrote:
            self._hooks.on_rollback()

    def _run_leading(self, stmt: str) -> None:
        """Run a statement that is not the last of an ``exec``: no bindings, stepped once."""
        try:
            self._conn.execute(stmt)
        except apsw.BindingsError:
            raise SqlError(_cf.MULTI_STATEMENT_PARAMS_MESSAGE) from None  # CF: sqlite.c++
        except apsw.Error as exc:
            if not self._wrote:
                self._check_wrote()
            raise self._translate(exc) from None
        if not self._wrote:
            self._check_wrote()
        self._auth.ddl_log.clear()  # only the last statement's cursor reports counts

    def _column_names(self, sql: str, bindings: tuple[Any, ...], epoch: int) -> list[str]:
        """Column names of a statement without running it (for results with no rows)."""
        names = self._names.get(sql) if epoch == self._epoch else None
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
            except apsw.Error:
                # The schema moved on (e.g. the CREATE TABLE that ran now fails to prepare):
                # such statements have no result columns.
                self._auth.stashed = None
                return []
            names = got
            if epoch == self._epoch:
                self._names[sql] = names
        return names

    def _on_ddl(self) -> None:
        """A statement that changes the schema is being prepared: cached shapes are stale."""
        self._epoch += 1
        if self._names:
            self._names = {}
        if self._cursor_free:
            self._cursor_free = {}

    def opens_no_cursor(self, sql: str, bindings: tuple[Any, ...]) -> bool:
        """True if the statement's bytecode opens no b-tree or virtual-table cursor.

        workerd's patched SQLite counts a row read each time a cursor moves onto
        a row; a statement with no cursor (``SELECT ?``, ``SELECT 1 + 1``) reads
        none, whatever it returns. Found once per SQL text from ``EXPLAIN``.
        """
        known = self._cursor_free.get(sql)
        if known is None:
            try:
                ops = {row[1] for row in self._internal(f"EXPLAIN {sql}", bindings)}
            except apsw.Error:
                return False
            known = not any(op.startswith(_CURSOR_OPENERS) for op in ops)
            if len(self._cursor_free) >= 1024:
                self._cursor_free = {}
            self._cursor_free[sql] = known
        return known

    def _kv_ready(self) -> bool:
        if self._kv_exists is None:
            self._kv_exists = bool(
                list(self._internal("SELECT 1 FROM sqlite_schema WHERE type='table' AND name='_cf_KV'"))
            )
        return self._kv_exists

    def _ensure_kv_table(self) -> bool:
        """Create ``_cf_KV`` if needed; True when this call created it."""
        if self._kv_exists or self._kv_ready():
            return False
        self._internal_write(_cf.KV_TABLE_SCHEMA)
        self._kv_exists = True
        return True

    def _forget_caches(self) -> None:
        self._kv_exists = None
        self._meta_exists = None
        self._on_ddl()

    # ------------------------------------------------------- transactions
    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open (a write, a savepoint, or dohost's own writes)."""
        return self._txn_open

    @property
    def _sp_depth(self) -> int:
        return len(self._sp_names)

    @property
    def dirty(self) -> bool:
        """True when the open transaction has writes that are not yet committed."""
        return self._wrote

    def commit(self) -> bool:
        """Commit the implicit transaction. Returns whether anything was written."""
        if not self._txn_open:
            return False
        if self._sp_names:
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
        except Exception as exc:
            self._abandon()
            raise CommitFailedError(f"{self.path.name}: commit failed: {exc!r}") from exc
        except BaseException:
            self._abandon()  # cancellation / interrupt: writes are gone, but re-raise as is
            raise
        self._txn_closed()
        if self.history is not None:
            self.history.after_commit()
        if wrote:
            self.commits += 1
            self._hooks.on_commit()
        return wrote

    def _txn_closed(self) -> None:
        self._txn_open = False
        self._wrote = False
        self._sp_names.clear()
        if not self._closed:
            self._conn.exec_trace = self._autocommit_trace

    def _abandon(self) -> None:
        wrote = self._wrote
        try:
            if not self._conn.get_autocommit():
                self._exec_internal("ROLLBACK")
        finally:
            self._txn_closed()
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
        depth = len(self._sp_names)
        name = f"{prefix}{depth}"
        self._exec_internal(f"SAVEPOINT {name}")
        self._sp_names.append(name)
        return depth

    def _check_depth(self, depth: int, prefix: str) -> str:
        names = self._sp_names
        if depth != len(names) - 1 or names[depth] != f"{prefix}{depth}":
            raise TransactionError(_cf.NESTED_TXN_ROLLBACK_MESSAGE)  # CF: actor-sqlite.c++
        return names[depth]

    def release(self, depth: int, prefix: str = _cf.TRANSACTION_SAVEPOINT_PREFIX) -> None:
        name = self._check_depth(depth, prefix)
        self._exec_internal(f"RELEASE {name}")
        del self._sp_names[depth:]

    def rollback_to(self, depth: int, prefix: str = _cf.TRANSACTION_SAVEPOINT_PREFIX) -> None:
        name = self._check_depth(depth, prefix)
        self._exec_internal(f"ROLLBACK TO {name}")
        self._exec_internal(f"RELEASE {name}")
        del self._sp_names[depth:]
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

    def set_alarm(self, ms: float | None, *, in_transaction: bool = False) -> None:
        """Store the alarm time (ms since the epoch) or clear it with ``None``.

        ``in_transaction``: a ``transaction()``'s ``txn.deleteAlarm()``, which
        workerd 1.20261117.1 never turns into a write of a missing table (observed).
        """
        self._check_open()
        if ms is not None or (self._alarm_unknown and not in_transaction) or self._meta_ready():
            # CF: workerd 1.20261117.1 (observed): deleteAlarm() with no _cf_METADATA creates
            # none, except right after deleteAll(), which writes the cleared alarm.
            self._meta_set(_cf.METADATA_KEY_ALARM, None if ms is None else _ms_to_ns(ms))
            self._alarm_unknown = False
        self.alarm_changed = True

    @property
    def stored_name(self) -> str | None:
        """The object's name (``ctx.id.name``) as recorded at first activation.

        It lives beside the database (``<id>.sqlite.name``), not in it: workerd
        1.20261117.1 keeps no name in the object's SQLite file, so a table for it
        would show in ``sqlite_schema`` and ``databaseSize`` (observed,
        tests/conformance). Files written by earlier dohost versions kept it in
        ``_cf_METADATA``; that is still read.
        """
        try:
            return name_path(self.path).read_text(encoding="utf-8")
        except FileNotFoundError:
            pass
        value = self._meta_get(_cf.METADATA_KEY_ACTOR_NAME)
        return value if isinstance(value, str) else None

    def record_name(self, name: str) -> None:
        if self.stored_name != name:
            # The name is a fixed fact of the ID: writing it early (before the commit
            # it rides with) can never record a wrong one.
            target = name_path(self.path)
            tmp = target.with_name(target.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(name)
                f.flush()
                if self.durability != "none":
                    os.fsync(f.fileno())
            os.replace(tmp, target)

    def current_bookmark(self) -> str:
        """A bookmark in Cloudflare's format; later calls sort after earlier ones."""
        self._check_open()
        if self.history is not None:
            return self.history.current_bookmark()
        stored = self._meta_get(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK)
        n = 0 if stored is None else int(stored) + 1  # CF: the first bookmark is 0
        self._meta_set(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK, n)
        d = _cf.BOOKMARK_DIVISOR  # CF: actor-sqlite.c++ getCurrentBookmark
        return _cf.BOOKMARK_TEMPLATE.format(hi=n // d, lo=n % d, zero=0)

    # ---------------------------------------------------------- whole file
    def delete_all(self, *, delete_alarm: bool = True) -> int:
        """Wipe SQL tables, KV and (by flag) the alarm, atomically. Returns the KV count."""
        self._check_open()
        if self._sp_names:
            raise TransactionError(_cf.DELETE_ALL_IN_TRANSACTION_MESSAGE)  # CF: actor-sqlite.c++
        count = 0
        if self._kv_ready():
            count = next(iter(self._internal("SELECT count(*) FROM _cf_KV")))[0]
        self.kv_store.cancel_list()  # CF: a reset cancels the live kv.list() cursor
        self._internal_write("PRAGMA defer_foreign_keys = ON")
        schema = list(self._internal(f"SELECT type, name, sql FROM sqlite_schema WHERE {_NOT_SQLITE}"))
        virtual = [n for t, n, sql in schema if t == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")]
        for name in virtual:
            self._internal_write(f'DROP TABLE IF EXISTS "{_q(name)}"')
        remaining = list(self._internal(f"SELECT type, name FROM sqlite_schema WHERE {_NOT_SQLITE}"))
        for kind in ("view", "trigger", "table"):
            for t, name in remaining:
                if t == kind and name != _cf.METADATA_TABLE:
                    self._internal_write(f'DROP {kind.upper()} IF EXISTS "{_q(name)}"')
        self._forget_caches()
        self._kv_exists = False
        alarm = self.get_alarm()
        if delete_alarm or alarm is None:
            # CF: workerd resets the whole file (SqliteDatabase::reset): afterwards even
            # _cf_METADATA is gone (observed on 1.20261117.1) and bookmarks restart.
            if self._meta_ready():
                self._internal_write(f"DROP TABLE {_cf.METADATA_TABLE}")
                self._meta_exists = False
            self._alarm_unknown = True
            if alarm is not None:
                self.alarm_changed = True
        return int(count)

    def release_memory(self) -> None:
        """Give back what SQLite caches for this connection (pages); reads refill it."""
        if not self._closed and not self._parked:
            self._conn.release_memory()

    def database_size(self) -> int:
        """(page_count − freelist_count) × page_size, as Cloudflare reports it."""
        self._check_open()
        # CF: sql.c++ getDatabaseSize, one statement so the two counts agree.
        pages = self._internal(
            "SELECT (SELECT * FROM pragma_page_count) - (SELECT * FROM pragma_freelist_count)"
        ).fetchall()[0][0]
        page_size = self._internal("PRAGMA page_size").fetchall()[0][0]
        assert isinstance(pages, int) and isinstance(page_size, int)
        # CF: workerd 1.20261117.1 (observed): a new object's database already holds its
        # first page (4096), where a file SQLite has not written yet counts 0 pages.
        return max(pages, 1) * page_size

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def rows_written(self) -> int:
        """Rows changed through this connection since it opened (SQLite's ``total_changes``; telemetry)."""
        return 0 if self._closed else self._conn.total_changes()

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
            self.kv_store.cancel_list()
            try:
                if self.history is not None:
                    self.history.close()
                if not self._parked:
                    self._conn.close()
            finally:
                self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        if self._locks is not None and self._lock_token is not None:
            self._locks.release(self._lock_token)
            self._lock_token = None

    # ------------------------------------------------------------- parking
    @property
    def parked(self) -> bool:
        return self._parked

    def park(self) -> bool:
        """Close the connection of an idle object but keep its lock; True if it was parked.

        Gives back the object's open files and SQLite's memory (page and
        statement caches) while the object stays live. Only between
        transactions, and only when the lock is a :class:`LockTable`'s (a
        per-file lock would keep a descriptor anyway). The next use of the
        connection reopens it (:class:`_Parked`).
        """
        if self._parked or self._closed or self._txn_open or self._locks is None:
            return False
        self.kv_store.cancel_list()
        if self.history is not None:
            self.history.park()  # its session lives on this connection
        conn = self._conn
        # No checkpoint at this close: it would fsync the WAL and the file on the
        # caller's thread; the WAL stays and the reopen reads it back.
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        conn.close()
        self._conn = _Parked(self)  # type: ignore[assignment]
        self._parked = True
        return True

    def _unpark(self) -> apsw.Connection:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")
        conn = self._connect(self._statement_cache, exclusive=True)
        conn.authorizer = self._auth
        conn.exec_trace = self._autocommit_trace
        self._conn = conn
        self._parked = False
        if self.history is not None:
            self.history.unpark(conn)
        if self.on_unpark is not None:
            self.on_unpark()
        return conn

    #: Called after a parked connection reopens (the host counts open files).
    on_unpark: Callable[[], None] | None = None


class _Parked:
    """Stands in for a parked object's connection: any use reopens it first."""

    __slots__ = ("_db",)

    def __init__(self, db: ObjectDatabase) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        db = self._db
        # A caller may hold this stand-in across the reopen (``conn = db._conn``):
        # once the real connection is back, forward to it.
        current: object = db._conn
        conn = db._unpark() if current is self else db._conn
        return getattr(conn, name)


# SQLite reserves names starting "sqlite_" in any case; LIKE's "_" is a wildcard, so escape it.
_NOT_SQLITE = "NOT (name LIKE 'sqlite\\_%' ESCAPE '\\')"


# VDBE opcodes that open a cursor rows can be read through (SQLite's vdbe.c names).
_CURSOR_OPENERS = ("OpenRead", "OpenWrite", "ReopenIdx", "OpenDup", "OpenEphemeral", "OpenAutoindex", "VOpen")


def _abort_before_step(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
    return False


def _ms_to_ns(ms: float) -> int:
    """Milliseconds to integer nanoseconds without the float error of ``ms * 1e6``."""
    whole = int(ms)
    return whole * 1_000_000 + round((ms - whole) * 1_000_000)


def _q(name: str) -> str:
    return name.replace('"', '""')
