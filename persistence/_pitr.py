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
* Nothing here can lose an acknowledged write: history only reads the object's
  file, and a restore replaces it in one step.

Mechanism (chosen by measurement, see ``docs/pitr.md``)
-------------------------------------------------------
History is a sequence of entries numbered ``seq``; a bookmark is ``seq`` in
Cloudflare's bookmark shape (plus a check value tying it to this object's
history; see :mod:`._bookmarks`). Entries are *snapshots plus
patchsets*, kept in the side file ``<id>.sqlite.pitr``; the object's own file
holds nothing extra:

* An apsw :class:`apsw.Session` (SQLite's session extension, configured to
  record tables without a primary key by rowid) records every row committed
  transactions change. Commits closer together than :data:`GROUP_MS` share
  one entry (a *group*): the group closes when a transaction begins more than
  :data:`GROUP_MS` after the group's last commit, when it has lasted that
  long, when a bookmark is asked for, and when the database closes — always
  at a moment the file holds exactly the committed state — and its patchset
  (new values only: replay goes forward) becomes the entry. A new session
  then starts. So every bookmark handed out names an exact state, and
  ``getBookmarkForTime`` is exact to :data:`GROUP_MS`. Taking a patchset per
  commit instead cost 1.3x a one-row commit through a live object (the
  session re-reads each table's shape); grouping costs 1.0-1.1x.
* Schema changes are found when a group closes: ``PRAGMA schema_version``
  (4 µs, so once per group, not per commit) differs from the last entry's.
  Then the committed state is snapshotted instead, since a patchset cannot
  replay DDL. Between closes, the engine's DDL counter (bumped whenever DDL is
  prepared) opens a group for a DDL-only commit.
* Entries wait in a memory buffer and reach the side file every
  :data:`FLUSH_EVERY` entries, when history is read, when the database
  closes, and when the object parks with an entry older than
  :data:`FLUSH_AGE_MS` (or a side file still in memory): a parked object's
  young entries stay in memory until then, so a park after a write opens no
  file (it cost ~240 µs of CPU: opening the side file and a transaction).
  Writing them inside the commit instead doubled the pages a one-row
  commit writes (1.8x); the buffer costs restore points, never data: after a
  crash the numbers of unwritten entries are skipped (bookmarks naming them
  are refused) and the state the crash left becomes a snapshot.
* Snapshots (``sqlite3_serialize``, zlib level 1) are also taken when the
  patchsets since the last one outgrow it (bounded replay) and every quarter
  window (so pruning can drop what is older than the window).
* The state at ``seq = b`` is the newest snapshot ``s <= b`` plus the
  patchsets ``s+1 .. b`` applied in order to an in-memory database. A restore
  builds that, records it as snapshot ``seq = last+1`` (history runs on, and
  the state before the restore stays a bookmark: the undo), then copies it
  over the main file with SQLite's backup API (one atomic write transaction).
  The request is a small file beside the history (``<id>.sqlite.pitr-restore``,
  written whole by rename, out of band as on Cloudflare: ``ctx.abort()``
  usually follows and drops the open transaction), removed only after the
  backup: a crash in between restores again on the next open.
* The side file is opened lazily — at a session's first write transaction, a
  bookmark, or an entry — so activations that only read never touch it; it is
  written without fsync (a process crash leaves it intact; a power cut can
  cost history, never the object's data; an unreadable one is set aside).
  A new side file is built in memory (from a schema image made once per
  process) and reaches the disk whole, by rename, at the end of the operation
  that made it — usually the park of a new object — instead of through a
  journal, table by table: one file and one write per new object.
* History older than the window is pruned (at a flush, at most every 1/16
  window), keeping the newest snapshot at or before the window's start.
* A side file this history already opened is reopened (after a park or a
  settle) with only its connection settings: its id, numbering and snapshot
  figures are in memory, and the ``open`` mark in it is this session's.
* What history costs a write is SQLite's session extension recording each
  row (its pre-update hook, in C: ~2,900 instructions per upserted row under
  callgrind, no Python callback); Python runs per transaction (two checks)
  and per group, not per row. See ``docs/pitr.md``.

History is read and written with the authorizer bypassed (dohost's own SQL);
the session sees every table, ``_cf_KV`` and ``_cf_METADATA`` included, so a
restore brings back KV values and the alarm too.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import apsw

from ._bookmarks import (
    EXPIRED_MESSAGE,
    FOREIGN_MESSAGE,
    LOST_MESSAGE,
    TIME_EXPIRED_MESSAGE,
    decode,
    render,
)
from .errors import PitrError, StorageError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

log = logging.getLogger("dohost.pitr")

__all__ = ["History", "PitrError", "DEFAULT_RETENTION_MS", "history_path", "read_restore_points"]

#: CF: https://developers.cloudflare.com/durable-objects/api/storage-api/ ("any point in
#: time in the past 30 days")
DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000
#: Commits closer together than this share one entry (one patchset): bookmarks
#: handed out are always exact; getBookmarkForTime() is exact to this many ms.
GROUP_MS = 1000.0
#: Entries kept in memory before they are written to the side file (one side-file
#: transaction per this many commits; a crash loses at most this many restore points).
FLUSH_EVERY = 64
#: Parking writes the buffer out only when its oldest entry is this old (or the side file
#: is still in memory): a parked object's few young entries wait for its next park, its
#: close, a full buffer or a read of history, and parking opens no file for them.
FLUSH_AGE_MS = 60_000.0
#: A snapshot is taken when the changesets since the last one exceed this many bytes
#: and the last snapshot's size (so replaying is never much more work than loading).
SNAPSHOT_MIN_BYTES = 1 << 20


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
        new_file: bool = False,
    ) -> None:
        self._db = db
        self._conn: apsw.Connection = db._conn
        self.retention_ms = float(retention_ms)
        self._clock = clock or (lambda: time.time() * 1000.0)
        self.path = history_path(db.path)
        self._side: apsw.Connection | None = None
        #: The side file is new and still in memory (written whole by _settle_side).
        self._side_memory = False
        #: Park and close write a new side file once, at their end (not at each step).
        self._batch = False
        self._hid = b""
        #: Entries committed in the main file but not yet written to the side file.
        self._buffer: list[tuple[int, float, int, bytes | None]] = []
        #: Committed changes in the session that are not an entry yet (the open group).
        self._group = False
        self._group_first_ms = 0.0
        self._group_last_ms = 0.0
        #: A bookmark named "after the open transaction": its commit closes the group.
        self._boundary_due = False
        self._epoch_seen = -1
        self._since_snapshot = 0  # patchset bytes since the newest snapshot
        self._last_snapshot_size = 0
        self._last_snapshot_ms = 0.0
        self._session: apsw.Session | None = None
        self._pruned_ms = float("-inf")
        self._opened_ms = self._clock()
        # A file this open created holds nothing yet (no query needed to know it).
        self._base_empty = new_file or not self._user_objects()
        self.last = 0
        #: The side file is opened lazily (at the first transaction, bookmark or entry):
        #: an activation that only reads never touches it.
        self._side_existed = self.path.exists()
        self.restore_flag = self.path.with_name(self.path.name + "-restore")
        pending = self._pending()
        if pending is not None:
            self._open_side()
            try:
                self._restore(pending)
            except PitrError as exc:
                # Accepted, then made impossible by a crash that lost its history:
                # the object opens as it is (the request is dropped, and said so).
                log.warning("%s: point-in-time restore dropped: %s", db.path.name, exc)
        elif not self._side_existed and not self._base_empty:
            # A file from before history was kept: its current state is the base.
            self._open_side()
            self._write_snapshot(0, self._serialize())
        self._settle_side()
        self._schema_version = 0 if new_file and pending is None else self._read_schema_version()
        self._new_session()

    # ----------------------------------------------------------- side file
    def _open_side(self) -> None:
        if self._side is not None:
            return
        try:
            self._connect_side()
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            # History is never the only copy of anything: a side file a power cut broke
            # is set aside, and history starts again from the state the object is in.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
            log.warning("%s: point-in-time history unreadable (%s); moved to %s", self.path.name, exc, aside.name)
            os.replace(self.path, aside)
            self._side_existed = False
            self._base_empty = False
            self._connect_side()
            self._write_snapshot(self.last, self._serialize())

    def _connect_side(self) -> None:
        if not self._side_existed and not self.path.exists():
            # A new side file: built in memory, written whole by _settle_side.
            side = apsw.Connection(":memory:")
            side.deserialize("main", _side_template())
            self._side_memory = True
            self._hid = secrets.token_bytes(16)
            with side:
                side.execute("INSERT INTO meta VALUES ('history_id', ?)", (self._hid,))
                side.execute("INSERT INTO meta VALUES ('open', 1)")
                if self._base_empty:
                    # A new object: its first state is the empty database.
                    side.execute("INSERT INTO snapshots VALUES (0, ?, NULL)", (self._opened_ms,))
            self._side = side
            if self._base_empty:
                self._last_snapshot_size, self._last_snapshot_ms = 0, self._opened_ms
            self._since_snapshot = 0  # the new file's log is empty
            return
        if self._hid and self.path.exists():
            # A file this history wrote and read before (a park or a settle closed it):
            # its id, numbering and snapshot figures are known, the ``open`` mark is this
            # session's and the tables exist, so only the connection's settings are due.
            self._side = self._side_connection()
            return
        side = self._side_connection()
        side.execute(_SIDE_SCHEMA)
        row = _rows(side, "SELECT v FROM meta WHERE k = 'history_id'")
        if row:
            self._hid = bytes(row[0][0])
        else:
            self._hid = secrets.token_bytes(16)
            with side:
                side.execute("INSERT INTO meta VALUES ('history_id', ?)", (self._hid,))
                side.execute("INSERT OR REPLACE INTO meta VALUES ('open', 1)")
                if self._base_empty:
                    # A new object: its first state is the empty database.
                    side.execute("INSERT OR IGNORE INTO snapshots VALUES (0, ?, NULL)", (self._opened_ms,))
        self._side = side
        if self._side_existed:
            # Opened at a moment the object's file holds the state this session found
            # (the first transaction's begin, a bookmark outside a transaction, a restore).
            self.last = self._max_seq()
            if _rows(side, "SELECT v FROM meta WHERE k = 'open'"):
                # The last session did not close (a crash): up to FLUSH_EVERY of its entries
                # never reached this file. Their numbers stay unused (bookmarks naming them
                # are refused), and the state the crash left becomes a restore point.
                self.last += FLUSH_EVERY + 2  # the buffer, and the group that was open
                self._write_snapshot(self.last, self._serialize())
            else:
                with side:
                    _rows(side, "INSERT OR REPLACE INTO meta VALUES ('open', 1)")
        snap = _rows(side, "SELECT seq, length(data), ms FROM snapshots ORDER BY seq DESC LIMIT 1")
        if snap:
            self._last_snapshot_size = snap[0][1] or 0
            self._last_snapshot_ms = snap[0][2]
            total = _rows(side, "SELECT coalesce(sum(length(changes)), 0) FROM log WHERE seq > ?", (snap[0][0],))
            self._since_snapshot = total[0][0]

    def _side_connection(self) -> apsw.Connection:
        side = apsw.Connection(str(self.path))
        side.set_busy_timeout(0)
        journal = "PERSIST" if self._db.durability != "none" else "MEMORY"
        # A rollback journal kept on disk (PERSIST: no file created per transaction) and no
        # fsync: a process crash leaves the file intact; a power cut may cost history (see
        # _open_side's caller), never the object's data, which lives in the other file.
        # WAL here cost an fsync per open/close cycle (the checkpoint): 20 ms an activation.
        # Only this connection ever opens the file (the object's lock guards both files):
        # keep the lock and the parsed schema between transactions. One call for all three.
        list(side.execute(f"PRAGMA journal_mode={journal}; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE"))
        return side

    def _settle_side(self, *, reopen: bool = True) -> None:
        """Write a side file still in memory to disk, whole (not during park/close's steps).

        Like every side-file write it is not fsync'd; the rename makes it appear
        whole or not at all. With ``reopen`` the history carries on on the file.
        """
        side = self._side
        if not self._side_memory or side is None or self._batch:
            return
        image = side.serialize("main")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(image or b"")
        os.replace(tmp, self.path)
        side.close()
        self._side = None
        self._side_memory = False
        # The ``open`` mark in the file is this session's, not a crash's.
        self._side_existed = False
        if reopen:
            self._connect_side()

    def flush(self, *, closing: bool = False) -> None:
        """Write buffered entries to the side file (also pruning what left the window);
        ``closing`` also marks the history cleanly closed, in the same transaction."""
        if not self._buffer and not (closing and self._side is not None):
            return
        self._open_side()
        assert self._side is not None
        with self._side:
            self._side.executemany("INSERT OR IGNORE INTO log VALUES (?, ?, ?, ?)", self._buffer)
            if closing:
                self._side.execute("DELETE FROM meta WHERE k = 'open'")
        if self._buffer:
            self._buffer.clear()
            now = self._clock()
            if now - self._pruned_ms >= self.retention_ms / 16:
                # What leaves the window does so gradually: pruning (two indexed queries
                # and deletes) at most every 1/16 window keeps flushes to the insert.
                self._pruned_ms = now
                self._prune()
        self._settle_side()

    def close(self) -> None:
        """Close the open group, flush, mark the history cleanly closed, let go of the files."""
        self._batch = True
        try:
            if self._session is not None and (
                self._group or self._boundary_due or self._read_schema_version() != self._schema_version
            ):
                self._close_group(renew=False)  # the engine dropped uncommitted writes first
            self.flush(closing=True)
        finally:
            self._batch = False
            if self._session is not None:
                self._session.close()
                self._session = None
            try:
                self._settle_side(reopen=False)
            finally:
                if self._side is not None:
                    self._side.close()
                    self._side = None
                    self._side_memory = False

    def park(self) -> None:
        """The object's connection closes while the object stays live (``ObjectDatabase.park``).

        Ends the open group (the database holds exactly the committed state: parking
        happens only between transactions), writes the buffer out only when it holds
        an entry older than :data:`FLUSH_AGE_MS` or the side file is still in memory
        (young entries wait for a later flush: restore points, never data, are what a
        crash could cost, as for any buffered entry), and lets go of the session and
        the side file. The history stays open (its ``open`` mark is kept):
        :meth:`unpark` carries on with the same numbering.
        """
        self._batch = True
        try:
            if self._session is not None and (
                self._group or self._boundary_due or self._read_schema_version() != self._schema_version
            ):
                self._close_group(renew=False)  # the session ends with the connection
            if self._buffer and (self._side_memory or self._clock() - self._buffer[0][1] >= FLUSH_AGE_MS):
                self.flush()
        finally:
            self._batch = False
        if self._session is not None:
            self._session.close()
            self._session = None
        self._let_go_of_side()

    def _let_go_of_side(self) -> None:
        """Close the side file (written whole first if still in memory); history stays open."""
        self._settle_side(reopen=False)
        if self._side is not None:
            self._side.close()
            self._side = None
            # Reopening it must not read the kept ``open`` mark as a crash.
            self._side_existed = False

    def unpark(self, conn: apsw.Connection) -> None:
        """The object's connection reopened: record changes on the new one."""
        self._conn = conn
        self._new_session()

    # ------------------------------------------------------- main file reads
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._db._exec_internal(sql, params))

    def _user_objects(self) -> bool:
        return bool(self._q("SELECT 1 FROM sqlite_schema LIMIT 1"))

    def _read_schema_version(self) -> int:
        return int(self._q("PRAGMA schema_version")[0][0])

    def _max_seq(self) -> int:
        assert self._side is not None
        side = _rows(
            self._side,
            "SELECT max(coalesce((SELECT max(seq) FROM log), 0), coalesce((SELECT max(seq) FROM snapshots), 0))",
        )[0][0]
        return int(side)

    def _pending(self) -> int | None:
        """The seq of a requested restore: the flag file beside the history, if any."""
        try:
            return int(self.restore_flag.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("%s: unreadable restore request ignored", self.restore_flag.name)
            return None

    # ------------------------------------------------------------ recording
    def _new_session(self) -> None:
        if self._session is not None:
            self._session.close()
        session = apsw.Session(self._conn, "main")
        # Tables without a PRIMARY KEY are recorded by rowid (SQLite >= 3.43).
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_ROWID, 1)
        # No running patchset size (sqlite3session_changeset_size): its per-row upkeep is
        # measurable and nothing here reads it.
        session.config(apsw.SQLITE_SESSION_OBJCONFIG_SIZE, 0)
        session.attach()
        self._session = session

    def on_begin(self) -> None:
        """A transaction is about to write; the database still holds the last committed state."""
        if self._side is None and self._side_existed:
            self._open_side()
        if self._boundary_due or (self._group and self._clock() - self._group_last_ms >= GROUP_MS):
            self._close_group()  # a bookmark named the state the last transaction ended with

    def after_commit(self) -> None:
        """COMMIT succeeded: the open group now ends at this commit."""
        session = self._session
        epoch = self._db._epoch  # moves when DDL is prepared (or the engine forgets caches)
        if (session is None or session.is_empty) and epoch == self._epoch_seen and not self._boundary_due:
            return
        self._epoch_seen = epoch
        now = self._clock()
        if not self._group:
            self._group, self._group_first_ms = True, now
        self._group_last_ms = now
        if self._boundary_due or now - self._group_first_ms >= GROUP_MS:
            self._close_group()

    def _close_group(self, *, renew: bool = True) -> None:
        """Make the committed changes since the last entry one entry (the database must
        hold exactly the committed state: no uncommitted writes); ``renew`` starts the
        next group's session (park and close end the session instead)."""
        session = self._session
        assert session is not None
        changes: bytes | None = b""
        schema = self._read_schema_version()
        if schema != self._schema_version:
            # A patchset cannot replay DDL: the committed state becomes a snapshot.
            changes = None
            self._schema_version = schema
        elif self._group:
            auth = self._db._auth
            auth.internal = True  # the session reads the tables (the _cf_ ones too)
            try:
                # A patchset: forward replay needs only new values, so SQLite reads less.
                changes = session.patchset()
            except apsw.SchemaChangeError:
                # DDL rolled back to a savepoint left the session confused: a snapshot
                # records the state instead.
                changes = None
            finally:
                auth.internal = False
        if changes or changes is None or self._boundary_due:
            self._append(self._group_last_ms if self._group else self._clock(), int(changes is None), changes)
        self._group = False
        self._boundary_due = False
        if renew:
            self._new_session()

    def _append(self, ms: float, schema: int, changes: bytes | None) -> None:
        """Entry ``last + 1``; snapshots and flushes as the rules in the docstring say."""
        self.last += 1
        self._buffer.append((self.last, ms, schema, changes))
        snapshot = bool(schema)
        if changes:
            self._since_snapshot += len(changes)
            snapshot = snapshot or self._since_snapshot > max(SNAPSHOT_MIN_BYTES, self._last_snapshot_size)
        if len(self._buffer) >= FLUSH_EVERY:
            # A snapshot every quarter window lets pruning drop what is older than the window.
            snapshot = snapshot or ms - self._last_snapshot_ms > self.retention_ms / 4
            self.flush()
        if snapshot:
            self.flush()
            self._write_snapshot(self.last, self._serialize())

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
        self._open_side()
        assert self._side is not None
        with self._side:
            self._side.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (seq, self._clock(), data))
        self._since_snapshot = 0
        self._last_snapshot_size = len(data or b"")
        self._last_snapshot_ms = self._clock()
        self._settle_side()

    # ------------------------------------------------------------ bookmarks
    def _render(self, seq: int) -> str:
        return render(self._hid, seq)

    def _ready(self) -> None:
        """The side file open and holding every entry (readers of history call this)."""
        self._open_side()
        if not self._db.dirty and (self._group or self._read_schema_version() != self._schema_version):
            self._close_group()
        self.flush()
        self._settle_side()

    def current_bookmark(self) -> str:
        """The current state; inside a transaction that wrote, the state it ends with
        (its commit, or the committed state if it rolls back)."""
        self._ready()
        if self._db.dirty:
            self._boundary_due = True  # the entry is made when this transaction commits
            return self._render(self.last + 1)
        return self._render(self.last)

    def parse(self, bookmark: Any) -> int:
        """A bookmark of this history -> its seq, or :class:`PitrError`."""
        seq = decode(bookmark)
        self._ready()
        if self._render(seq) != bookmark or seq > self.last + 1:
            raise PitrError(FOREIGN_MESSAGE.format(bookmark=bookmark))
        if seq < self._earliest():
            raise PitrError(EXPIRED_MESSAGE.format(bookmark=bookmark, days=self.retention_ms / 86_400_000))
        return seq

    def _all_log(self, where: str, params: tuple[Any, ...]) -> list[Any]:
        assert self._side is not None
        return _rows(self._side, f"SELECT seq, ms, schema, changes FROM log WHERE {where} ORDER BY seq", params)

    def _earliest(self) -> int:
        """The oldest seq still restorable: the state current at the window's start."""
        assert self._side is not None
        base = _rows(self._side, "SELECT min(seq) FROM snapshots")[0][0] or 0
        cutoff = self._clock() - self.retention_ms
        # States that stopped being current before the cutoff are out of the window.
        ended = self._all_log("seq > ? AND ms <= ?", (base, cutoff))
        return max(base, ended[-1][0]) if ended else int(base)

    def bookmark_for_time(self, ms: float) -> str:
        self._ready()
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
        # Out of band, as on Cloudflare: the usual next step is ctx.abort(), which drops
        # the open transaction, so the request must not ride on it. A file beside the
        # history, written whole (rename), tells the next open without opening history.
        tmp = self.restore_flag.with_name(self.restore_flag.name + ".tmp")
        tmp.write_text(str(seq))
        os.replace(tmp, self.restore_flag)
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
        expected = base + 1
        for entry_seq, _ms, schema, changes in self._all_log("seq > ? AND seq <= ?", (base, seq)):
            if entry_seq != expected:
                break
            expected += 1
            if schema:
                raise StorageError(
                    f"{self._db.path.name}: history is missing the snapshot of seq {entry_seq} (a schema change)"
                )
            if changes:
                apsw.Changeset.apply(changes, mem)
        if expected <= seq:
            mem.close()
            raise PitrError(LOST_MESSAGE.format(bookmark=self._render(seq)))
        return mem

    def _restore(self, seq: int) -> None:
        """Replace the main file by the state at ``seq`` (at open, before anything else runs)."""
        assert self._side is not None
        try:
            mem = self.state_at(seq)
        except PitrError:
            # Unrestorable now (its history was lost in a crash): drop the request rather
            # than refuse to open the object forever.
            self.restore_flag.unlink(missing_ok=True)
            raise
        try:
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
            self.restore_flag.unlink(missing_ok=True)
        finally:
            mem.close()
        self.last = new
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
        if self._side_memory and self._opened_ms > cutoff:
            return  # a side file made this session holds nothing older than the window
        earliest = self._earliest() if cutoff > 0 else 0
        keep = _rows(self._side, "SELECT max(seq) FROM snapshots WHERE seq <= ?", (earliest,))[0][0]
        if keep:
            with self._side:
                _rows(self._side, "DELETE FROM snapshots WHERE seq < ?", (keep,))
                _rows(self._side, "DELETE FROM log WHERE seq <= ?", (keep,))

    # ------------------------------------------------------------ inspection
    def restore_points(self, limit: int = 20) -> list[tuple[str, float]]:
        """The newest ``limit`` restore points (bookmark, epoch ms), newest first (the inspector)."""
        if self._side is None and not self._buffer and not self._group and not self._boundary_due:
            # This session has not touched its history (it only read, or it is parked): the
            # file says it all, and looking neither creates nor opens it for writing.
            return read_restore_points(self._db.path, limit)
        if self._db.parked:
            # Parking closed the group; young entries may wait in memory. Write them out
            # and let go of the file again, without reopening the object's connection.
            self.flush()
            self._let_go_of_side()
            return read_restore_points(self._db.path, limit)
        self._ready()
        assert self._side is not None
        return _points(self._side, self._hid, limit)

    def sizes(self) -> dict[str, int]:
        """Bytes and entries of history (for tests and the benchmark)."""
        if self._side is None:
            return {"snapshots": 0, "log": len(self._buffer), "bytes": 0}
        snaps, sbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(data)), 0) FROM snapshots")[0]
        logs, lbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(changes)), 0) FROM log")[0]
        return {"snapshots": int(snaps), "log": int(logs) + len(self._buffer), "bytes": int(sbytes) + int(lbytes)}


def _points(side: apsw.Connection, hid: bytes, limit: int) -> list[tuple[str, float]]:
    # Each entry, and each snapshot with no entry (a new object's empty start, a crash's
    # restore point): the moment that state became current.
    rows = _rows(side, "SELECT seq, ms FROM log UNION ALL SELECT seq, ms FROM snapshots"
                       " WHERE seq NOT IN (SELECT seq FROM log) ORDER BY seq DESC LIMIT ?", (limit,))
    return [(render(hid, int(seq)), float(ms)) for seq, ms in rows]


def read_restore_points(db_path: Path, limit: int = 20) -> list[tuple[str, float]]:
    """Restore points of an object no connection holds, read from its side file opened
    read-only (nothing created, nothing written); ``[]`` when it keeps no history.

    Entries still buffered in a live object's memory are not there: a live object's
    points come from :meth:`History.restore_points`."""
    path = history_path(Path(db_path))
    if not path.exists():
        return []
    side = apsw.Connection(path.resolve().as_uri() + "?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    try:
        side.set_busy_timeout(1000)
        hid = _rows(side, "SELECT v FROM meta WHERE k = 'history_id'")
        if not hid:
            return []
        return _points(side, bytes(hid[0][0]), limit)
    finally:
        side.close()


def _rows(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return list(conn.execute(sql, params))


_SIDE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, ms REAL NOT NULL,"
    " schema INTEGER NOT NULL, changes BLOB);"
    "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, ms REAL NOT NULL, data BLOB);"
)
_template: list[bytes] = []


def _side_template() -> bytes:
    """An empty side file's image (the schema above), made once per process."""
    if not _template:
        mem = apsw.Connection(":memory:")
        try:
            mem.execute(_SIDE_SCHEMA)
            image = mem.serialize("main")
        finally:
            mem.close()
        assert image is not None
        _template.append(image)
    return _template[0]
