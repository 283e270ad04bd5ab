"""One object's SQLite file: connection set-up, implicit transactions, savepoints.

An :class:`ObjectDatabase` owns exactly one apsw connection to one object's
file and an exclusive ``flock`` on it, so a second process (or a second host
in this process) cannot open a live object. Everything here is synchronous and
never touches trio; the host decides *when* to commit.

Transaction model (workerd's ``ActorSqlite``):

* The first *write* after a commit point opens an implicit transaction
  (``BEGIN``), as workerd's ``onWrite`` callback does: SQLite says whether a
  prepared statement is read-only, and an exec tracer that ``sql.exec`` puts
  on its cursor while no transaction is open begins one just before a writing
  statement runs (on the cursor, not the connection: a statement already
  known to read, and dohost's own SQL, run without a Python callback). A run
  of known reads shares one *read* transaction (:meth:`begin_read`), which the
  first write turns into the implicit one; it ends before a statement that
  acts differently inside a transaction is prepared, so ``PRAGMA
  foreign_keys`` takes effect as on Cloudflare, and it never counts as
  :attr:`in_transaction`. The first write calls ``hooks.on_write()``
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
  told when a transaction begins and after each commit, makes the host's
  checkpoint, and closes with the file; it only reads the object's file and
  its WAL (its own file lives beside it). It needs WAL mode, so with history
  ``durability="none"`` runs in WAL mode too (``synchronous=OFF``).

Durability: ``"full"`` = ``synchronous=FULL`` (fsync per commit; the host runs
:meth:`commit` in a worker thread; a new file's first page, written unsynced
at open, is synced by its first commit, which itself runs unsynced and then
syncs the new WAL and the folder once: ``_commit_new_wal``), ``"normal"`` =
``synchronous=NORMAL`` in WAL mode: survives a process crash, not a power cut
(a new file's first commit syncs nothing).

The class is assembled from parts, each in its own module: opening the file
(lock, pragmas, WAL entry: :mod:`._open`), error translation
(:mod:`._translate`), alarm/name/bookmarks and whole-file operations
(:mod:`._metadata`) and parking (:mod:`._parking`). This module keeps the
transaction model above and the statement-level internals ``SqlStorage`` and
``KvStore`` use.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

import apsw

from . import _cf
from ._authorizer import Authorizer
from ._codec import Binding
from ._kv import KvStore, SyncKv
from ._locks import LockTable
from ._metadata import Metadata
from ._open import _SYNCHRONOUS as _SYNCHRONOUS  # bench/ imports it from here
from ._open import Durability, fsync_file, lock_file, locked_error, open_connection, reconnect, sync_new_wal
from ._parking import Parking
from ._pitr import DEFAULT_RETENTION_MS, History
from ._sql import SqlStorage, close_connection, close_cursors, format_sqlite_error
from ._translate import ErrorTranslation
from .errors import (
    CommitFailedError,
    DatabaseClosedError,
    SqlError,
    StorageError,
    StorageTypeError,
    TransactionError,
)

__all__ = ["ObjectDatabase", "StorageHooks", "NoHooks", "Durability"]

T = TypeVar("T")

_PERSIST = apsw.SQLITE_PREPARE_PERSISTENT
#: SQLite's default automatic checkpoint (pages), put back after a new file's first commit.
_WAL_AUTOCHECKPOINT = 1000
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


class ObjectDatabase(ErrorTranslation, Metadata, Parking):
    """The private SQLite database of one Durable Object."""

    # Slots, the fields every event reads first (``parked``, ``closed``,
    # ``in_transaction``, ``dirty``, ``rows_read``): a request to one of many
    # resident objects finds its database object cold in the CPU caches, and an
    # instance dict of ~40 entries (past CPython's 30-key limit for shared-key
    # dicts) was a 1.5 KB table per object over which those reads spread. The
    # mixins have no slots, so an instance still gets a ``__dict__`` if anything
    # sets a field not listed (a test patching a method does): only then.
    __slots__ = (
        "_parked", "_closed", "_txn_open", "_wrote", "rows_read", "_conn", "_hooks", "_reading",
        "_sp_names", "_cf_rows", "_spare", "_epoch", "_names", "_cursor_free", "_fast_reads",
        "_readonly", "_sql_blocked", "alarm_changed", "commits", "history", "kv_store", "kv", "sql",
        "path", "durability", "sqlite_backed", "_locks", "_lock_token", "_lock_fd", "_statement_cache",
        "_auth", "_file_is_ours", "created", "_first_page_unsynced", "_kv_exists", "_meta_exists",
        "_alarm_unknown", "on_unpark", "_unsynced_conn", "_level_due", "_name_written",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        binding: Binding = "cloudflare",
        sqlite_backed: bool = True,
        hooks: StorageHooks | None = None,
        lock: bool = True,
        statement_cache: int = 100,
        locks: LockTable | None = None,
        pitr_retention_ms: float | None = DEFAULT_RETENTION_MS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability: expected 'full', 'normal' or 'none', got {durability!r}")
        if binding not in ("cloudflare", "native"):
            raise ValueError(f"binding: expected 'cloudflare' or 'native', got {binding!r}")
        self.on_unpark: Callable[[], None] | None = None
        self._name_written: str | None = None  # (a slot: the Metadata mixin's class default would be shadowed)
        self.path = path if isinstance(path, Path) else Path(path)  # (a Path is not parsed again)
        self.durability = durability
        self.sqlite_backed = sqlite_backed
        self._hooks: StorageHooks = hooks or NoHooks()
        self._locks = locks if lock else None
        self._lock_token: int | None = None
        self._lock_fd = -1
        if self._locks is not None:
            self._lock_token = self._locks.try_acquire(self.path.name)
            if self._lock_token is None:
                raise locked_error(self.path)
        elif lock:
            self._lock_fd = lock_file(self.path)
        self._statement_cache = statement_cache
        self._parked = False
        try:
            self._conn, created = open_connection(
                self.path, durability, statement_cache, exclusive=lock, wal=bool(sqlite_backed and pitr_retention_ms)
            )
        except BaseException:
            self._unlock()
            raise
        self._auth = Authorizer(on_ddl=self._on_ddl)
        self._conn.authorizer = self._auth
        #: Cloudflare binding mode: ints bind as doubles, numbers come back as Pyodide sees them.
        self._cf_rows = binding == "cloudflare"
        self._txn_open = False
        self._wrote = False
        #: A read transaction is open for a run of known reads (``begin_read``); never
        #: while ``_txn_open``.
        self._reading = False
        #: The file is this connection's alone (the lock): a read transaction may stay
        #: open between reads. Not so for a shared file (``lock=False``, D1): another
        #: connection's commits must show at the next read.
        self._file_is_ours = lock
        self._sp_names: list[str] = []
        #: True when this open created the file: it holds no table, no name, no alarm yet.
        self.created = created
        #: The new file's first page is not synced yet (see _sync_first_page).
        self._first_page_unsynced = created and durability == "full"
        #: A new file's connection, opened with ``synchronous=OFF`` until its first commit
        #: that writes (``_commit_new_wal``). A park and reopen replaces the connection
        #: (with the durability's own level): then SQLite syncs that commit itself.
        self._unsynced_conn: apsw.Connection | None = self._conn if created and durability != "none" else None
        #: The first commit is done and synced; ``synchronous`` is still OFF until the
        #: next transaction or checkpoint sets the durability's level (ensure_sync_level).
        self._level_due = False
        self._kv_exists: bool | None = None
        self._meta_exists: bool | None = False if created else None
        #: deleteAll() forgot whether an alarm exists: the next deleteAlarm() writes.
        self._alarm_unknown = False
        #: Result column names by SQL text, valid while ``_epoch`` is unchanged.
        self._names: dict[str, list[str]] = {}
        #: SQL texts whose bytecode opens no cursor (see ``opens_no_cursor``).
        self._cursor_free: dict[str, bool] = {}
        #: SQL texts SQLite reported read-only (a property of the text, kept across DDL).
        self._readonly: set[str] = set()
        #: ``sql.exec``'s fast path: single-statement read-only texts (the text is its
        #: own statement) and their column names, valid while ``_epoch`` is unchanged.
        self._fast_reads: dict[str, list[str]] = {}
        #: A finished apsw cursor ``one()`` handed back, for the next known read (``_sql``).
        self._spare: Any = None
        self._epoch = 0
        self._closed = False
        self._sql_blocked = not sqlite_backed
        self.commits = 0
        #: Rows handed out by ``sql.exec`` cursors that were read to the end (telemetry).
        self.rows_read = 0
        #: Set when the alarm changed in the open transaction; the host reads and clears it.
        self.alarm_changed = False
        self.sql = SqlStorage(self)
        self.kv_store = KvStore(self)
        self.kv = SyncKv(self)
        #: Point-in-time history (``None``: not kept). Opening it may apply a pending restore.
        self.history: History | None = None
        if sqlite_backed and pitr_retention_ms:
            try:
                self.history = History(self, retention_ms=pitr_retention_ms, clock=clock, new_file=created)
            except BaseException:
                self.close()
                raise


    # ------------------------------------------------------------ internals
    def _require_sql(self, kv: bool = False) -> None:
        self._check_open()
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
        if self._reading:
            # The read transaction becomes the implicit one: SQLite upgrades it at the
            # first write (no other connection can have written: the file is ours).
            self._reading = False
            if self._conn.get_autocommit():  # SQLite ended it (an error rolled it back)
                self._exec_internal("BEGIN")
        else:
            if self._level_due:
                self.ensure_sync_level()
            self._exec_internal("BEGIN")
        self._txn_open = True

    def begin_read(self) -> None:
        """Open a read transaction for the known reads that follow (``sql.exec``, ``kv.get``).

        A statement in autocommit mode opens and ends a read transaction of its
        own, ~1,000 instructions of SQLite's work (a twentieth of a point read).
        One transaction serves a run of reads instead. It becomes the implicit
        write transaction at the first write (``_begin``), and ends
        (:meth:`end_read`) before a user statement that does not run alike inside
        a transaction is prepared (``PRAGMA foreign_keys`` is a no-op inside one,
        ``VACUUM`` refused: ``_split.runs_alike_in_a_transaction``), and before a
        checkpoint, park, close or dump load. Nothing is written in it,
        so ending it never loses anything. Not on a file other connections share
        (``lock=False``): there each read runs in a transaction of its own.
        """
        if self._file_is_ours:
            if self._level_due:
                self.ensure_sync_level()
            self._exec_internal("BEGIN")
            self._reading = True

    def end_read(self) -> None:
        """End the read transaction :meth:`begin_read` opened (if SQLite has not)."""
        self._reading = False
        conn = self._conn
        if not conn.get_autocommit():
            try:
                self._exec_internal("COMMIT")
            except apsw.Error:
                self._exec_internal("ROLLBACK")

    def _autocommit_trace(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        """Put on a user statement's cursor while no transaction is open: begin one before a write."""
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

    def _run_leading(self, stmt: str) -> None:
        """Run a statement that is not the last of an ``exec``: no bindings, stepped once."""
        cur = self._conn.cursor()
        if not self._txn_open:
            cur.exec_trace = self._autocommit_trace
        try:
            cur.execute(stmt)
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
        if self._fast_reads:
            self._fast_reads = {}
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
                if self._first_page_unsynced:
                    self._sync_first_page()
                if self._unsynced_conn is not None:
                    self._commit_new_wal()
                else:
                    self._exec_internal("COMMIT")
            else:
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

    def _sync_first_page(self) -> None:
        """fsync a new file's first page, before its first commit (durability "full").

        The page is written unsynced when the file is created (``_open``): an
        object that never writes never pays for it, and the sync runs here, in
        the commit's worker thread, not on the event loop. It must precede the
        commit: SQLite deletes a WAL found beside an empty database file. A
        named object's first commit has usually synced it already, with its
        name (:meth:`write_name`).
        """
        self._sync_file()

    def _commit_new_wal(self) -> None:
        """A new file's first commit that writes: COMMIT unsynced, then the WAL's one sync (``_open.sync_new_wal``).

        Under ``"full"``: the file (first page, name) was fsync'd just before
        (:meth:`_sync_first_page`); after the COMMIT one fdatasync covers the new
        WAL's header and frames and one the folder — three fsyncs where SQLite's
        own first commit after the file's makes four — all before this returns,
        so before anything is acknowledged. Under ``"normal"`` nothing is synced
        (a process crash keeps what the page cache holds). Then the durability's
        ``synchronous`` level holds for every later commit.
        """
        conn = self._conn
        if conn is not self._unsynced_conn:  # parked and reopened since: SQLite syncs as usual
            self._unsynced_conn = None
            self._exec_internal("COMMIT")
            return
        if self.history is None:
            # SQLite's automatic checkpoint (history replaces it with its own) would copy a
            # long first commit into the file unsynced and let the next commit overwrite
            # the WAL: off until the level is back (ensure_sync_level).
            conn.wal_autocheckpoint(0)
        try:
            self._exec_internal("COMMIT")
        except BaseException:
            if self.history is None:  # the window never opened: the automatic checkpoint is back
                conn.wal_autocheckpoint(_WAL_AUTOCHECKPOINT)
            raise
        self._unsynced_conn = None
        # The level is set back by the next transaction or checkpoint, on whatever
        # thread runs it (ensure_sync_level): here it would cost this worker thread
        # one more hand-off of the GIL with the event loop, before the acknowledgement.
        self._level_due = True
        if self.durability == "full":
            try:
                sync_new_wal(conn, self.path)
            except BaseException:
                if self._file_is_ours:
                    self._drop_new_wal()
                raise

    def _drop_new_wal(self) -> None:
        """Undo a new file's first commit whose WAL sync failed, as SQLite drops a commit whose own sync fails.

        The COMMIT published it before the sync (:meth:`_commit_new_wal`), and the
        caller reports it failed and rolled back: it must not stay, nor reach the
        file at a later checkpoint. The WAL holds that commit alone (the file is
        new, and this connection's alone: the lock), so the connection closes
        without a checkpoint, the WAL is emptied, and a new connection (the
        durability's own level) sees the file as this open made it. (If the WAL
        cannot be emptied the new connection reads the commit back, as before.)
        """
        old = self._conn
        old.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        close_connection(old)
        self._level_due = False
        try:
            os.truncate(f"{self.path}-wal", 0)
        finally:
            conn = reconnect(self.path, self.durability, self._statement_cache, wal=self.history is not None)
            conn.authorizer = self._auth
            self._conn = conn
            if self.history is not None:
                self.history.wal_dropped(conn)

    def ensure_sync_level(self) -> None:
        """Set the durability's ``synchronous`` level if a new file's scheme left it OFF.

        Before the next transaction (``_begin``, :meth:`begin_read`) and before
        anything that checkpoints — a checkpoint copies the WAL into the file and
        empties it, which must sync both (:meth:`checkpoint`, :meth:`close`,
        history's checkpoints and restores). Before the first commit this gives
        the scheme up: that commit is then synced by SQLite itself. Only outside
        a transaction.
        """
        if self._level_due or self._unsynced_conn is not None:
            committed = self._level_due
            own = self._unsynced_conn is self._conn
            if own or not self._parked:
                # The flags are cleared only once the level is set: were the
                # PRAGMA refused (SQLite refuses it inside a transaction), a
                # later close must not checkpoint with nothing synced.
                self._exec_internal(f"PRAGMA synchronous={_SYNCHRONOUS[self.durability]}")
                if committed and self.history is None:
                    self._conn.wal_autocheckpoint(_WAL_AUTOCHECKPOINT)
            self._level_due = False
            self._unsynced_conn = None

    def _sync_file(self) -> None:
        """fsync the database file: its pages written so far and its attributes (the name)."""
        fsync_file(self.path)
        self._first_page_unsynced = False

    def _txn_closed(self) -> None:
        self._txn_open = False
        self._wrote = False
        self._sp_names.clear()

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

    def checkpoint(self) -> None:
        """Copy the WAL into the file and empty it: the closing connection's checkpoint, early.

        SQLite checkpoints when the last connection closes, fsyncing the WAL and
        the file (durability "full") on the closing thread. The host calls this
        in a worker thread just before :meth:`close`, which then has nothing left
        to copy or sync. Only between transactions; a parked connection (its
        WAL kept for the reopen) is left as it is.
        """
        if self._reading and not self._closed and not self._parked:
            self.end_read()
        if self._closed or self._parked or self._txn_open:
            return
        self.ensure_sync_level()
        if self.history is not None:
            self.history.checkpoint()  # history archives the WAL's frames first
            return
        self._exec_internal("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def release_memory(self) -> None:
        """Give back what SQLite caches for this connection (pages); reads refill it."""
        if not self._closed and not self._parked:
            self._conn.release_memory()

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
            elif self._reading and not self._parked:
                self.end_read()
            if not self._parked:
                self.ensure_sync_level()  # the close's checkpoint syncs as every checkpoint does
        finally:
            if self._level_due and not self._parked:
                # The level could not be set: no checkpoint at this close (SQLite's; history's
                # ensures the level itself); the WAL stays, synced, and the next open reads it.
                try:
                    self._conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
                except apsw.Error:
                    pass
            self._reading = False
            self._closed = True
            self._sql_blocked = True
            self._fast_reads = {}  # exec's fast path skips the blocked check
            self.kv_store.cancel_list()
            try:
                if self.history is not None:
                    self._close_history()
            finally:
                try:
                    if not self._parked:
                        close_connection(self._conn)
                finally:
                    self._unlock()  # never before the connection is closed: it holds the file

    def _close_history(self) -> None:
        """Close point-in-time history before the connection; if that fails, the WAL stays."""
        assert self.history is not None
        conn = self._conn
        if not self._parked and conn.txn_state() != apsw.SQLITE_TXN_NONE:
            # A user's cursor left unfinished still reads: history's closing checkpoint
            # could not truncate the WAL, and its close of the connection would be
            # refused (sql.exec's cursors are not registered with it, see close_connection).
            close_cursors(conn)
        try:
            self.history.close()
        except BaseException:
            if not self._parked:
                # As after a crash: the connection closes without its checkpoint, and the
                # next open archives what the WAL holds before anything else runs.
                try:
                    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
                except apsw.ConnectionClosedError:
                    pass
            raise

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        if self._locks is not None and self._lock_token is not None:
            self._locks.release(self._lock_token)
            self._lock_token = None


# VDBE opcodes that open a cursor rows can be read through (SQLite's vdbe.c names).
_CURSOR_OPENERS = ("OpenRead", "OpenWrite", "ReopenIdx", "OpenDup", "OpenEphemeral", "OpenAutoindex", "VOpen")
