"""Point-in-time recovery: one object's history, bookmarks, and restores.

What this module owns and guarantees
------------------------------------
* ``getCurrentBookmark()`` names the object's current state; ``getBookmarkForTime(ms)``
  names its state at a moment within the retention window (30 days by default,
  as on Cloudflare); ``onNextSessionRestoreBookmark(b)`` arranges that when the
  database is next opened (after ``ctx.abort()`` or on the next activation) it
  holds exactly the state named by ``b``, and returns a bookmark of the state
  before the restore, so the restore can itself be undone.
* Bookmarks stay valid across restarts and across restores; a bookmark from
  another object, a malformed one, or one older than the window is refused.
* Nothing here can lose an acknowledged write: history is written *inside* the
  transaction it describes, and a restore replaces the file in one step.

Mechanism (chosen by measurement, see ``docs/pitr.md``)
-------------------------------------------------------
Every commit that changed something gets the next sequence number ``seq``; a
bookmark is ``seq`` in Cloudflare's bookmark shape. History is *snapshots plus
changesets*:

* An apsw :class:`apsw.Session` (SQLite's session extension) is attached to the
  main database for the whole transaction. Just before ``COMMIT`` the engine
  asks :meth:`History.before_commit`, which writes the transaction's changeset
  into ``_dohost_pitr_log`` in the *same* transaction (no second fsync, crash-safe
  by construction). If the transaction changed the schema (``PRAGMA
  schema_version`` moved: ``CREATE``/``ALTER``/``DROP``, ``deleteAll()``), a
  changeset cannot replay it, so the entry is marked and a full snapshot
  (``sqlite3_serialize``, zlib-compressed) of the committed state is written to
  the side file ``<id>.sqlite.pitr`` right after the commit.
* The side file holds ``snapshots(seq, ms, data)`` and the archived log. Every
  :data:`ARCHIVE_EVERY` entries the main file's log is copied to the side file
  (insert-or-ignore, so a crash between the two writes only duplicates) and
  deleted from the main file inside the next user transaction.
* The state at ``seq = b`` is the newest snapshot ``s <= b`` plus the
  changesets ``s+1 .. b`` applied in order to an in-memory copy. A restore
  builds that copy, records it as a new snapshot ``seq = last+1`` (so history
  runs on, and the state before the restore remains a bookmark), then copies
  it over the main file with SQLite's backup API (one atomic write transaction).
  The pending restore is recorded in the side file at once (out of band, as on
  Cloudflare, since ``ctx.abort()`` usually follows and drops the open
  transaction) and cleared only after the backup: a crash in between restores
  again on the next open.
* A snapshot is also taken when the changesets since the last one outgrow it
  (bounded replay), and history older than the window is pruned, keeping the
  newest snapshot at or before the window's start (bounded history).

Reads and writes of the history tables bypass Cloudflare's authorizer (they are
``_dohost_`` names user SQL cannot touch), and the session ignores them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import apsw

from . import _cf
from .errors import PitrError, StorageError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

__all__ = ["History", "PitrError", "DEFAULT_RETENTION_MS", "history_path"]

#: CF: https://developers.cloudflare.com/durable-objects/api/storage-api/ ("any point in
#: time in the past 30 days")
DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000
#: Log entries kept in the main file before they move to the side file.
ARCHIVE_EVERY = 64
#: A snapshot is taken when the changesets since the last one exceed this many bytes
#: and the last snapshot's size (so replaying is never much more work than loading).
SNAPSHOT_MIN_BYTES = 1 << 20

LOG = "_dohost_pitr_log"
_PREFIX = "_dohost_pitr_"
_BOOKMARK_RE = re.compile(_cf.BOOKMARK_PATTERN)

# Production's wording for these refusals is not public (the PITR back-end is not in
# workerd); the conditions are the documented ones.
# CF: https://developers.cloudflare.com/durable-objects/api/storage-api/ (PITR: "bookmarks
#     older than 30 days are invalid"; format 8-8-8-32 hex digits, lexicographically sortable)
MALFORMED_MESSAGE = "Invalid bookmark: {bookmark!r} is not a bookmark (expected 8-8-8-32 hexadecimal digits)"
FOREIGN_MESSAGE = "Invalid bookmark: {bookmark!r} does not belong to this Durable Object's history"
EXPIRED_MESSAGE = (
    "Invalid bookmark: {bookmark!r} is older than the point-in-time recovery window ({days:g} days)"
)
TIME_EXPIRED_MESSAGE = (
    "getBookmarkForTime(): {ms!r} is older than the point-in-time recovery window ({days:g} days)"
)
TIME_TYPE_MESSAGE = "getBookmarkForTime(): expected a number of milliseconds or a datetime, got {type}"


def history_path(db_path: Path) -> Path:
    """The side file beside an object's database (``<id>.sqlite.pitr``)."""
    return db_path.with_name(db_path.name + ".pitr")


class History:
    """The point-in-time history of one :class:`ObjectDatabase` (see the module docstring)."""

    def __init__(
        self,
        db: ObjectDatabase,
        *,
        retention_ms: float = DEFAULT_RETENTION_MS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._db = db
        self._conn: apsw.Connection = db._conn
        self.retention_ms = float(retention_ms)
        self._clock = clock or (lambda: time.time() * 1000.0)
        self.path = history_path(db.path)
        self._side: apsw.Connection | None = None
        self._hid = b""
        self._main_log = 0  # entries still in the main file's log
        self._since_snapshot = 0  # changeset bytes since the newest snapshot
        self._last_snapshot_size = 0
        self._last_snapshot_ms = 0.0
        self._snapshot_due = False
        self._logged = False
        self._log_ready = False  # _dohost_pitr_log exists in the main file (cached)
        self._session: apsw.Session | None = None
        existed = self.path.exists()
        if existed:
            self._open_side()
            self.last = self._max_seq()
            self._main_log = self._count_main_log()
            if self._pending() is not None:
                self._restore(self._pending_seq())
            self._prune()
        else:
            self.last = 0
            if self._user_objects():
                # A file from before history was kept: its current state is the base.
                self._open_side()
                self._write_snapshot(0, self._serialize())
        self._schema_version = self._read_schema_version()
        self._log_ready = self._has_table(LOG)
        self._new_session()

    # ----------------------------------------------------------- side file
    def _open_side(self) -> None:
        if self._side is not None:
            return
        side = apsw.Connection(str(self.path))
        side.set_busy_timeout(0)
        durable = self._db.durability != "none"
        side.execute("PRAGMA journal_mode=WAL" if durable else "PRAGMA journal_mode=MEMORY").fetchall()
        # The side file is never the only copy of an acknowledged write: losing its last
        # transaction to a power cut costs at most a restore point, never data.
        side.execute("PRAGMA synchronous=NORMAL" if durable else "PRAGMA synchronous=OFF")
        side.execute(
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, ms REAL NOT NULL,"
            " schema INTEGER NOT NULL, changes BLOB);"
            "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, ms REAL NOT NULL, data BLOB);"
        )
        row = _rows(side, "SELECT v FROM meta WHERE k = 'history_id'")
        if row:
            self._hid = bytes(row[0][0])
        else:
            self._hid = secrets.token_bytes(16)
            side.execute("INSERT INTO meta VALUES ('history_id', ?)", (self._hid,))
            if not self._user_objects():
                # A new object: its first state is the empty database.
                side.execute("INSERT OR IGNORE INTO snapshots VALUES (0, ?, NULL)", (self._clock(),))
        self._side = side
        snap = _rows(side, "SELECT seq, length(data), ms FROM snapshots ORDER BY seq DESC LIMIT 1")
        if snap:
            self._last_snapshot_size = snap[0][1] or 0
            self._last_snapshot_ms = snap[0][2]
            total = _rows(side, "SELECT coalesce(sum(length(changes)), 0) FROM log WHERE seq > ?", (snap[0][0],))
            self._since_snapshot = total[0][0]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._side is not None:
            self._side.close()
            self._side = None

    # ------------------------------------------------------- main file reads
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._db._exec_internal(sql, params))

    def _has_table(self, name: str) -> bool:
        return bool(self._q("SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?", (name,)))

    def _user_objects(self) -> bool:
        return bool(self._q(f"SELECT 1 FROM sqlite_schema WHERE NOT name LIKE '{_PREFIX}%' LIMIT 1"))

    def _count_main_log(self) -> int:
        return self._q(f"SELECT count(*) FROM {LOG}")[0][0] if self._has_table(LOG) else 0

    def _read_schema_version(self) -> int:
        return int(self._q("PRAGMA schema_version")[0][0])

    def _max_seq(self) -> int:
        assert self._side is not None
        side = _rows(self._side, 
            "SELECT max(coalesce((SELECT max(seq) FROM log), 0), coalesce((SELECT max(seq) FROM snapshots), 0))"
        )[0][0]
        main = self._q(f"SELECT coalesce(max(seq), 0) FROM {LOG}")[0][0] if self._has_table(LOG) else 0
        return int(max(side, main))

    def _pending(self) -> Any:
        assert self._side is not None
        rows = _rows(self._side, "SELECT v FROM meta WHERE k = 'pending_restore'")
        return rows[0][0] if rows else None

    def _pending_seq(self) -> int:
        return int(self._pending())

    # ------------------------------------------------------------ recording
    def _new_session(self) -> None:
        if self._session is not None:
            self._session.close()
        session = apsw.Session(self._conn, "main")
        # Tables without a PRIMARY KEY are recorded by rowid (SQLite >= 3.43).
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
        session.table_filter(_record_table)
        session.attach()
        self._session = session

    def _pending_changes(self) -> bool:
        session = self._session
        return (session is not None and not session.is_empty) or self._read_schema_version() != self._schema_version

    def before_commit(self) -> None:
        """Inside the transaction, just before COMMIT: log what it changed."""
        session = self._session
        assert session is not None
        schema = self._read_schema_version() != self._schema_version
        changes: bytes | None = None
        if not schema:
            if session.is_empty:
                return
            auth = self._db._auth
            auth.internal = True  # the session reads the tables (the _cf_ ones too)
            try:
                # A patchset: forward replay needs only new values, so SQLite reads less.
                changes = session.patchset()
            except apsw.SchemaChangeError:
                # A table the session saw changed shape inside the transaction (DDL
                # rolled back to a savepoint): a snapshot records the state instead.
                changes, schema = None, True
            finally:
                auth.internal = False
            if not changes and not schema:
                return
        if self._main_log >= ARCHIVE_EVERY:
            self._archive()
            # A snapshot every quarter window lets pruning drop what is older than the window.
            if self._clock() - self._last_snapshot_ms > self.retention_ms / 4:
                self._snapshot_due = True
        if not self._log_ready:
            self._db._exec_internal(
                f"CREATE TABLE IF NOT EXISTS {LOG} (seq INTEGER PRIMARY KEY, ms REAL NOT NULL,"
                " schema INTEGER NOT NULL, changes BLOB)"
            )
        self._db._exec_internal(
            f"INSERT INTO {LOG} VALUES (?, ?, ?, ?)", (self.last + 1, self._clock(), int(schema), changes)
        )
        self._log_ready = True
        self._main_log += 1
        self._logged = True
        self._snapshot_due = self._snapshot_due or schema
        if changes is not None:
            self._since_snapshot += len(changes)
            if self._since_snapshot > max(SNAPSHOT_MIN_BYTES, self._last_snapshot_size):
                self._snapshot_due = True

    def after_commit(self) -> None:
        """COMMIT succeeded."""
        if self._logged:
            self._logged = False
            self.last += 1
            if self._snapshot_due:
                self._open_side()
                self._write_snapshot(self.last, self._serialize())
            self._schema_version = self._read_schema_version()
        self._snapshot_due = False
        self._new_session()

    def after_rollback(self) -> None:
        """The transaction was dropped: so was its log entry (and any archiving delete)."""
        self._logged = False
        self._snapshot_due = False
        self._log_ready = self._has_table(LOG)
        self._main_log = self._count_main_log()
        self._schema_version = self._read_schema_version()
        self._new_session()

    def _archive(self) -> None:
        """Move the main file's log to the side file (the delete rides on this transaction)."""
        self._open_side()
        assert self._side is not None
        rows = self._q(f"SELECT seq, ms, schema, changes FROM {LOG}")
        with self._side:
            self._side.executemany("INSERT OR IGNORE INTO log VALUES (?, ?, ?, ?)", rows)
        self._db._exec_internal(f"DELETE FROM {LOG}")
        self._main_log = 0
        self._prune()

    def _serialize(self) -> bytes:
        # sqlite3_serialize reads a file database through sqlite_dbpage, which the
        # Cloudflare authorizer refuses to user SQL: this is dohost's own read.
        auth = self._db._auth
        auth.internal = True
        try:
            image = self._conn.serialize("main")
        finally:
            auth.internal = False
        if image is None:
            raise StorageError(f"{self._db.path.name}: could not snapshot the database for point-in-time recovery")
        return zlib.compress(image, 1)

    def _write_snapshot(self, seq: int, data: bytes | None) -> None:
        assert self._side is not None
        with self._side:
            _rows(self._side, "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (seq, self._clock(), data))
        self._since_snapshot = 0
        self._last_snapshot_size = len(data or b"")
        self._last_snapshot_ms = self._clock()

    # ------------------------------------------------------------ bookmarks
    def _render(self, seq: int) -> str:
        d = _cf.BOOKMARK_DIVISOR  # CF: actor-sqlite.c++ getCurrentBookmark (hi/lo split)
        check = hashlib.blake2b(self._hid + seq.to_bytes(8, "big"), digest_size=16).hexdigest()
        return f"{seq // d:08x}-{seq % d:08x}-{0:08x}-{check}"

    def _ensure_id(self) -> None:
        if self._side is None:
            self._open_side()

    def current_bookmark(self) -> str:
        """The state after every write made so far (the open transaction's included)."""
        self._ensure_id()
        return self._render(self.last + (1 if self._pending_changes() else 0))

    def parse(self, bookmark: Any) -> int:
        """A bookmark of this history -> its seq, or :class:`PitrError`."""
        if not isinstance(bookmark, str) or not _BOOKMARK_RE.match(bookmark):
            raise PitrError(MALFORMED_MESSAGE.format(bookmark=bookmark))
        self._ensure_id()
        hi, lo, _zero, _check = bookmark.split("-")
        seq = int(hi, 16) * _cf.BOOKMARK_DIVISOR + int(lo, 16)
        if self._render(seq) != bookmark or seq > self.last + 1:
            raise PitrError(FOREIGN_MESSAGE.format(bookmark=bookmark))
        if seq < self._earliest():
            raise PitrError(EXPIRED_MESSAGE.format(bookmark=bookmark, days=self.retention_ms / 86_400_000))
        return seq

    def _all_log(self, where: str, params: tuple[Any, ...]) -> list[Any]:
        """Log rows from both files (archived first; duplicates removed by seq)."""
        assert self._side is not None
        rows = {r[0]: r for r in _rows(self._side, f"SELECT seq, ms, schema, changes FROM log WHERE {where}", params)}
        if self._has_table(LOG):
            rows.update((r[0], r) for r in self._q(f"SELECT seq, ms, schema, changes FROM {LOG} WHERE {where}", params))
        return [rows[k] for k in sorted(rows)]

    def _earliest(self) -> int:
        """The oldest seq still restorable: the state current at the window's start."""
        assert self._side is not None
        base = _rows(self._side, "SELECT min(seq) FROM snapshots")[0][0] or 0
        cutoff = self._clock() - self.retention_ms
        # States that stopped being current before the cutoff are out of the window.
        ended = self._all_log("seq > ? AND ms <= ?", (base, cutoff))
        return max(base, ended[-1][0]) if ended else int(base)

    def bookmark_for_time(self, ms: float) -> str:
        self._ensure_id()
        now = self._clock()
        if ms < now - self.retention_ms:
            raise PitrError(TIME_EXPIRED_MESSAGE.format(ms=ms, days=self.retention_ms / 86_400_000))
        if ms >= now:
            return self.current_bookmark()
        assert self._side is not None
        rows = self._all_log("ms <= ?", (ms,))
        snaps = _rows(self._side, "SELECT max(seq) FROM snapshots WHERE ms <= ?", (ms,))[0][0]
        seq = max([r[0] for r in rows[-1:]] + [snaps or 0, self._earliest()])
        return self._render(seq)

    # -------------------------------------------------------------- restore
    def schedule_restore(self, bookmark: Any) -> str:
        """Record the restore (committed with the caller's transaction); return the undo bookmark."""
        seq = self.parse(bookmark)
        undo = self.current_bookmark()
        assert self._side is not None
        # Out of band, as on Cloudflare: the usual next step is ctx.abort(), which drops
        # the open transaction, so the request must not ride on it.
        with self._side:
            _rows(self._side, "INSERT OR REPLACE INTO meta VALUES ('pending_restore', ?)", (seq,))
        return undo

    def state_at(self, seq: int) -> apsw.Connection:
        """An in-memory database holding exactly the object's state at ``seq``."""
        assert self._side is not None
        snap = _rows(self._side, 
            "SELECT seq, data FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,)
        )
        if not snap:
            raise PitrError(EXPIRED_MESSAGE.format(bookmark=self._render(seq), days=self.retention_ms / 86_400_000))
        base, data = snap[0]
        mem = apsw.Connection(":memory:")
        if data is not None:
            image = bytearray(zlib.decompress(data))
            # A WAL file's header (bytes 18-19 = 2) would make the in-memory copy look
            # for a -wal file; mark it a rollback-journal database.
            image[18:20] = b"\x01\x01"
            mem.deserialize("main", bytes(image))
        mem.execute("PRAGMA foreign_keys=OFF")
        for entry_seq, _ms, schema, changes in self._all_log("seq > ? AND seq <= ?", (base, seq)):
            if schema:
                raise StorageError(
                    f"{self._db.path.name}: history is missing the snapshot of seq {entry_seq} (a schema change)"
                )
            apsw.Changeset.apply(changes, mem)
        return mem

    def _restore(self, seq: int) -> None:
        """Replace the main file by the state at ``seq`` (at open, before anything else runs)."""
        assert self._side is not None
        if self._has_table(LOG) and self._main_log:
            trace, self._conn.exec_trace = self._conn.exec_trace, None
            try:
                self._db._exec_internal("BEGIN")
                try:
                    self._archive()
                    self._db._exec_internal("COMMIT")
                except BaseException:
                    self._db._exec_internal("ROLLBACK")
                    raise
            finally:
                self._conn.exec_trace = trace
        mem = self.state_at(seq)
        try:
            for (name,) in list(mem.execute(f"SELECT name FROM sqlite_schema WHERE type='table' AND name LIKE '{_PREFIX}%'")):
                mem.execute(f'DROP TABLE "{name}"')
            if mem.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall():
                mem.execute("VACUUM")
            new = self.last + 1
            image = mem.serialize("main")
            with self._side:
                _rows(self._side, "INSERT OR IGNORE INTO log VALUES (?, ?, 1, NULL)", (new, self._clock()))
                _rows(self._side, 
                    "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
                    (new, self._clock(), zlib.compress(image, 1) if image else None),
                )
            self._replace_main(mem)
            # Cleared only now: a crash before this line restores again on the next open.
            with self._side:
                _rows(self._side, "DELETE FROM meta WHERE k = 'pending_restore'")
        finally:
            mem.close()
        self.last = new
        self._main_log = 0
        self._since_snapshot = 0
        self._db._forget_caches()

    def _replace_main(self, mem: apsw.Connection) -> None:
        """Copy ``mem`` over the main file: one write transaction (SQLite's backup API)."""
        with self._conn.backup("main", mem, "main") as backup:
            backup.step(-1)

    # -------------------------------------------------------------- pruning
    def _prune(self) -> None:
        """Drop history older than the window, keeping the snapshot the window starts from."""
        if self._side is None:
            return
        cutoff = self._clock() - self.retention_ms
        earliest = self._earliest() if cutoff > 0 else 0
        keep = _rows(self._side, "SELECT max(seq) FROM snapshots WHERE seq <= ?", (earliest,))[0][0]
        if keep:
            with self._side:
                _rows(self._side, "DELETE FROM snapshots WHERE seq < ?", (keep,))
                _rows(self._side, "DELETE FROM log WHERE seq <= ?", (keep,))

    # ------------------------------------------------------------ inspection
    def sizes(self) -> dict[str, int]:
        """Bytes and entries of history (for tests and the benchmark)."""
        if self._side is None:
            return {"snapshots": 0, "log": self._main_log, "bytes": 0}
        snaps, sbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(data)), 0) FROM snapshots")[0]
        logs, lbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(changes)), 0) FROM log")[0]
        return {"snapshots": int(snaps), "log": int(logs) + self._main_log, "bytes": int(sbytes) + int(lbytes)}


def _rows(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return list(conn.execute(sql, params))


def _record_table(name: str) -> bool:
    return not name.startswith(_PREFIX)


def remove_history(db_path: Path) -> None:
    """Delete an object's side file (with the object's database)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(str(history_path(db_path)) + suffix)
        except FileNotFoundError:
            pass
