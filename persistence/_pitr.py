"""Point-in-time recovery: one object's history, bookmarks, and restores.

What this module owns and guarantees
------------------------------------
* ``getCurrentBookmark()`` names the object's current state; ``getBookmarkForTime(ms)``
  names its state at a moment within the retention window (30 days by default,
  as on Cloudflare); ``onNextSessionRestoreBookmark(b)`` arranges that when the
  database is next opened (after ``ctx.abort()`` or on the next activation) it
  holds exactly the state named by ``b``, and returns a bookmark of the state
  before the restore, so the restore can itself be undone.
* Bookmarks stay valid across restarts, crashes and restores; a bookmark from
  another object, a malformed one, or one older than the window is refused.
* Nothing here can lose an acknowledged write: history only reads the object's
  file and its WAL, checkpoints only what it has copied, and a restore replaces
  the file in one step.

Mechanism: WAL-frame archiving (chosen by measurement, see ``docs/pitr.md``)
----------------------------------------------------------------------------
History is a sequence of entries numbered ``seq``; a bookmark is ``seq`` in
Cloudflare's bookmark shape (plus a check value tying it to this object's
history; see :mod:`._bookmarks`). Entries are *base images plus WAL frames*,
kept in the side file ``<id>.sqlite.pitr``; the object's own file holds
nothing extra, and nothing runs per written row:

* Objects keep their file in WAL mode (``durability="none"`` too, when history
  is kept). Every commit appends the pages it changed to the WAL as frames;
  its last frame records the database's size (a *commit frame*). Those frames,
  applied to the state before the commit, give the state after it. SQLite's
  automatic checkpoint is off on history's connections (installing a WAL hook
  replaces it): history decides when the WAL is copied into the file.
* The WAL hook (SQLite calls it once per commit that wrote frames, with the
  WAL's frame count) notes ``(frames, time)``: the only per-commit work, O(1),
  in the thread that committed. Nothing is recorded per row.
* *Archiving* copies the committed frames the WAL holds beyond the last
  archived one into the side file: commits closer together than
  :data:`GROUP_MS` become one entry (the pages they wrote, newest version of
  each, and the size after the last), so ``getBookmarkForTime``
  is exact to :data:`GROUP_MS`. A page whose previous version history knows
  (a frame it archived from the current WAL, or the object's file as its own
  last checkpoint left it) is stored as the span where its XOR with it — what
  replay holds there — is not zero, plus a CRC-32 of the whole new page that
  replay checks: ~25 bytes for a one-row change instead of a ~2 KB compressed
  page. An entry up to :data:`_RAW_MAX` bytes is stored as it is, a larger one
  in raw deflate (level 1, a 4 KB window); entries of format 2 (zlib, whole-page
  XORs) still replay. Every bookmark handed out archives first, so
  a bookmark always names an entry boundary: an exact committed state.
  Archiving happens when history is read (a bookmark, the inspector), when
  the WAL reaches :data:`CHECKPOINT_FRAMES` frames (then it is checkpointed:
  copied into the file and truncated, so the WAL stays bounded as SQLite's
  own default keeps it), before the host's checkpoint and the close of the
  database (in the commit/close worker thread under ``durability="full"``),
  and at a park when the oldest unarchived commit is older than
  :data:`ARCHIVE_AGE_MS`. A park otherwise does nothing: the WAL stays in
  place and is read back on reopen, frames included.
* Every checkpoint of an object's WAL is history's (its own, or SQLite's at
  close, after history truncated the WAL), and each is preceded by archiving.
  So the frames of every commit reach history before they leave the WAL,
  whatever happens to the process: after a crash the next open reads the WAL
  (SQLite's recovery validates it; ``wal_checkpoint(NOOP)`` then says how many
  frames are valid, torn tails excluded) and archives what was not yet
  archived. Bookmarks handed out before the crash name the same states after
  it. (The commit times of frames archived after a crash were in memory: they
  are recorded as the time of the reopen, so ``getBookmarkForTime`` before it
  names the last archived state.)
* The side file records which WAL (its header's salts) and how many of its
  frames are archived, and the object file's size and mtime after history's
  last checkpoint. A WAL that was checkpointed by anyone else (frames lost to
  history, never to the object) shows as a different WAL over a changed file:
  then ``seq`` skips ahead (bookmarks naming lost states are refused:
  ``... history was lost when the host crashed``) and the current state
  becomes a base image.
* Archiving never fails the operation it rides on (a commit that succeeded,
  a write about to begin, a park, a close): a failure is logged, the numbers it had given stay
  skipped, and a base image is taken at the next chance. A statement left
  running at close keeps history's checkpoint from truncating the WAL; the
  connection's close, which ends it, then checkpoints only archived frames.
* Base images (``sqlite3_serialize``, zlib level 1) are taken when an object
  first keeps history, at every restore, when the archived frames since the
  last image outgrow it (bounded replay) and every quarter window (so pruning
  can drop what is older than the window). One needed inside a transaction
  that wrote (history first read there) is read from the disk — the file and
  the WAL's committed frames — so it never holds uncommitted writes.
* The state at ``seq = b`` is the newest base image ``s <= b`` plus the page
  images of entries ``s+1 .. b``, each truncated to its size, loaded into an
  in-memory database. A restore builds that, copies it over the main file
  with SQLite's backup API (one atomic write transaction), records the file,
  read back, as base image ``seq = last+1`` (history runs on, and the state
  before the restore stays a bookmark: the undo) and checkpoints. The request is a small
  file beside the history (``<id>.sqlite.pitr-restore``, written whole by
  rename, out of band as on Cloudflare: ``ctx.abort()`` usually follows and
  drops the open transaction), removed only after the backup: a crash in
  between restores again on the next open.
* The side file is opened lazily — at the first archive or read of history —
  so activations that do not write never touch it; it is written without
  fsync (a process crash leaves it intact; a power cut can cost history, never
  the object's data; an unreadable one is set aside, as is a side file in the
  format of earlier versions). A new side file is built in memory and reaches
  the disk whole, by rename, at the end of the operation that made it.
* A power cut never makes a bookmark name another state: bookmark numbers are
  promised in blocks of :data:`FENCE_BLOCK`, the block's end fsync'd in the
  side file before a number past it is handed out (``_hand_out``). An open
  that archives WAL frames again (after a crash; after a power cut the side
  file may be an older copy) first skips past that block; the entry after the
  gap is marked (``schema`` 2) so replay crosses it, and the numbers in it
  are refused as lost.
* A failure opening history (archiving at open on a full disk) never stops the
  object: it is logged, the side file let go of, and history starts again from
  the file at its next use; a restore requested for that open is dropped.
* History older than the window is pruned (at an archive, at most every 1/16
  window), keeping the newest base image at or before the window's start.

History is read and written with the authorizer bypassed (dohost's own SQL);
the frames hold every table, ``_cf_KV`` and ``_cf_METADATA`` included, so a
restore brings back KV values and the alarm too.
"""

from __future__ import annotations

import array
import functools
import logging
import os
import secrets
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import apsw
import msgspec

from ._bookmarks import (
    EXPIRED_MESSAGE,
    FOREIGN_MESSAGE,
    LOST_MESSAGE,
    TIME_EXPIRED_MESSAGE,
    decode,
    render,
)
from ._open import fsync_file
from ._sql import close_connection
from .errors import PitrError, StorageError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

log = logging.getLogger("dohost.pitr")

__all__ = ["History", "PitrError", "DEFAULT_RETENTION_MS", "history_path", "read_restore_points"]

#: CF: https://developers.cloudflare.com/durable-objects/api/storage-api/ ("any point in
#: time in the past 30 days")
DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000
#: Commits closer together than this share one entry: bookmarks handed out are always
#: exact; getBookmarkForTime() is exact to this many ms.
GROUP_MS = 1000.0
#: The WAL is archived and checkpointed when a commit leaves it this many frames long
#: (SQLite's own automatic checkpoint threshold).
CHECKPOINT_FRAMES = 1000
#: A park archives the WAL when its oldest unarchived commit is this old (so a crash
#: while parked keeps those commits' times); younger ones wait in the WAL.
ARCHIVE_AGE_MS = 600_000.0
#: A base image is taken when the entries since the last one exceed this many bytes
#: and the last image's size (so replaying is never much more work than loading).
SNAPSHOT_MIN_BYTES = 1 << 20
#: Bookmark numbers are promised in blocks this long: the side file records (fsync'd)
#: the highest number any bookmark may have been handed out with, once per block.
FENCE_BLOCK = 4096
#: The side file's layout (meta ``format``); files without it are set aside. Format 3
#: adds entries in raw deflate with changed-span records (see :class:`_EntryBody`, :func:`_apply`); a format 2
#: file is read as it is and marked 3 when opened (older dohost versions set it aside).
FORMAT = 3
_READABLE_FORMATS = (2, 3)

_WAL_HEADER = 32
_FRAME_HEADER = 24
_ENTRY_HEADER = struct.Struct(">II")  # page size, database size in pages after the entry
_PGNO = struct.Struct(">I")
#: A page stored as its XOR with the previous version (then a CRC-32 of the result).
_DELTA = struct.Struct(">II")
_DELTA_BIT = 1 << 31
#: Format 3: a page stored as the changed span of that XOR — page number with both bits,
#: CRC-32 of the new page, first and last byte of the span — then the span's bytes.
#: (Page numbers stay below 2**30: Cloudflare caps a database at 10 GB.)
_SPAN = struct.Struct(">IIHH")
_SPAN_BIT = 1 << 30
#: Format 3 entries start with this byte (never a zlib stream's first byte), then the
#: CRC-32 of the entry's plain bytes (:data:`_CRC`), then raw deflate. A 4 KB window and
#: memLevel 4: zlib's default state (~256 KB, fresh pages to fault in) cost ~100 µs an
#: entry against ~6 µs for the same bytes out.
_ENTRY_MARK = b"\x01"
_WBITS, _MEMLEVEL = -12, 4
#: Format 3 entries this small are stored as they are, after this byte and the CRC:
#: deflate would add bytes to a one-row change (~30 bytes) and cost a compressor's setup.
_RAW_MARK = b"\x02"
_RAW_MAX = 256
#: A format 3 entry's CRC-32 of its plain bytes (header and records): raw deflate has
#: no checksum of its own (format 2's zlib streams had Adler-32), and whole-page records
#: carry none, so a side file a power cut left half old (it is never fsync'd) is
#: refused as damaged rather than replayed into a wrong page.
_CRC = struct.Struct(">I")
#: Frames read at a time when archiving (4 MB of 4 KB pages).
_CHUNK_FRAMES = 1024


def history_path(db_path: Path) -> Path:
    """The side file beside an object's database (``<id>.sqlite.pitr``)."""
    return db_path.with_name(db_path.name + ".pitr")


class _Group(msgspec.Struct):
    """Commits archived as one entry: the pages they wrote and the size after the last."""

    #: The first commit's time; ``last_ms`` the last's, ``None`` for a commit whose time
    #: the WAL hook did not note (archived after a crash, or a restore's copy).
    first_ms: float
    last_ms: float | None
    #: The database's size in pages after the group.
    size: int
    #: Page number -> the WAL frame (1-based) holding its newest image.
    pages: dict[int, int]


class _SetAside(Exception):
    """The side file cannot be used (unreadable, or an earlier format)."""


_CLOSED: list[apsw.Connection] = []


def _closed_connection() -> apsw.Connection:
    """One closed connection for every parked object's history (see :meth:`History.park`)."""
    if not _CLOSED:
        conn = apsw.Connection(":memory:")
        conn.close()
        _CLOSED.append(conn)
    return _CLOSED[0]


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
        #: The object file's path as a string: the paths beside it (``path``,
        #: ``restore_flag``, ``_wal_path``) are made from it when first used, not at
        #: every open (a new object's open needs none of them as objects).
        self._base = os.fspath(db.path)
        self._side: apsw.Connection | None = None
        #: The side file is new and still in memory (written whole by _settle_side).
        self._side_memory = False
        #: Close and restore write a new side file once, at their end (not at each step).
        self._batch = False
        self._hid = b""
        self.last = 0
        #: No bookmark handed out names a seq above this (kept durably in meta ``reserved``).
        self._reserved = 0
        #: Set at an open that re-archives WAL frames: the next entry's seq skips past
        #: ``_reserved`` (the side file may be an older copy a power cut left).
        self._fence = 0
        #: ``(frames in the WAL after the commit, commit time)`` of commits not archived yet.
        self._commits: list[tuple[int, float]] = []
        #: Valid frames in the WAL (its last commit's frame count).
        self._wal_frames = 0
        #: Frames of the current WAL already in history; the WAL's salts (its identity).
        self._archived = 0
        self._salt = b""
        #: Where replay's previous version of a page is (for XOR entries): the WAL frame
        #: this history last archived it from, or the object's file for pages up to
        #: ``_file_pages`` (as history's last checkpoint left it); ``_size``: the
        #: database's size in pages after the last archived commit.
        self._frame_of: dict[int, int] = {}
        self._file_pages = 0
        self._size = 0
        #: A commit left the WAL at CHECKPOINT_FRAMES: the next after_commit archives it.
        self._checkpoint_due = False
        #: A bookmark named "after the open transaction": this seq must end an entry.
        self._boundary_seq = 0
        self._since_snapshot = 0  # entry bytes since the newest base image
        self._last_snapshot_size = 0
        self._last_snapshot_ms = 0.0
        self._snapshot_due = False
        self._pruned_ms = float("-inf")
        self._opened_ms = self._clock()
        self._side_existed = os.path.exists(self._base + ".pitr")
        pending = self._pending()
        empty = new_file or not self._user_objects()
        # After the read above SQLite has recovered the WAL: NOOP says how many of its
        # frames are valid (a crash's torn tail excluded) and copies nothing.
        self._wal_frames = 0 if new_file else max(0, self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_NOOP)[0])
        #: The WAL's frames at this open: commits past them are this session's.
        self._open_frames = self._wal_frames
        #: History starts from the empty database (a new object, or one that holds nothing).
        self._new_file = empty and pending is None and not self._side_existed and not self._wal_frames
        try:
            self._open_history(pending)
        except Exception:
            # History's trouble (a full disk, an I/O error) never stops the object
            # opening. Its side file is let go of unwritten: the next read or archive of
            # history starts again from what the file durably says, and the commits
            # still in the WAL wait there (a checkpoint history does not make before
            # then shows as lost history, refused as such). A requested restore is
            # dropped, as when its history was lost: it is never replayed later over
            # writes acknowledged after this open.
            log.warning("%s: point-in-time history could not be opened", self.path.name, exc_info=True)
            if pending is not None:
                log.warning("%s: point-in-time restore dropped", db.path.name)
                self.restore_flag.unlink(missing_ok=True)
            self._drop_side()
        conn = self._conn
        conn.set_wal_hook(self._on_wal)

    @functools.cached_property
    def path(self) -> Path:
        """The side file (:func:`history_path`)."""
        return Path(self._base + ".pitr")

    @functools.cached_property
    def restore_flag(self) -> Path:
        """The restore request beside the side file (``<id>.sqlite.pitr-restore``)."""
        return Path(self._base + ".pitr-restore")

    @functools.cached_property
    def _wal_path(self) -> Path:
        return Path(self._base + "-wal")

    def _open_history(self, pending: int | None) -> None:
        """At open: archive what the WAL holds beyond history, run a requested restore."""
        if pending is not None or (self._side_existed and self._wal_frames):
            # Commits the WAL holds beyond the archived ones (a crash, a close while
            # parked) are archived now, before anything else runs.
            self._open_side()
            if pending is not None:
                try:
                    self._restore(pending)
                except PitrError as exc:
                    # Accepted, then made impossible by a crash that lost its history (or
                    # history found damaged): the object opens as it is (the request is
                    # dropped, and said so).
                    log.warning("%s: point-in-time restore dropped: %s", self._db.path.name, exc)
        elif not self._side_existed and not self._new_file:
            # A file from before history was kept: its current state is the base.
            self._open_side()
        self._settle_side()

    def _drop_side(self) -> None:
        """Forget the side file's connection and what was read from it (after a failure)."""
        self._batch = False
        side, self._side = self._side, None
        self._side_memory = False
        if side is not None:
            try:
                side.close()
            except apsw.Error:
                log.warning("%s: closing point-in-time history failed", self.path.name, exc_info=True)
        self._side_existed = self.path.exists()
        self._archived, self._salt, self._fence, self._boundary_seq = 0, b"", 0, 0
        self._frame_of, self._file_pages, self._size = {}, 0, 0

    # ----------------------------------------------------------- side file
    def _open_side(self) -> None:
        if self._side is not None:
            return
        try:
            self._connect_side()
        except (apsw.CorruptError, apsw.NotADBError, _SetAside) as exc:
            # History is never the only copy of anything: a side file a power cut broke
            # (or one in an earlier version's format) is set aside, and history starts
            # again from the state the object is in.
            if self._side is not None:
                self._side.close()
                self._side = None
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
            log.warning("%s: point-in-time history unusable (%s); moved to %s", self.path.name, exc, aside.name)
            os.replace(self.path, aside)
            self._side_existed = False
            self._new_file = False
            self._hid = b""
            self._connect_side()

    def _connect_side(self) -> None:
        if not self._side_existed and not self.path.exists():
            self._new_side()
            return
        if self._hid and self.path.exists():
            # A file this history wrote and read before (a close of the side file let go
            # of it): its id, numbering and figures are in memory; only the settings are due.
            self._side = self._side_connection()
            return
        side = self._side_connection()
        self._side = side
        try:
            meta = {k: v for k, v in _rows(side, "SELECT k, v FROM meta")}
        except apsw.SQLError as exc:
            # No history's tables (an empty file: a rename a power cut kept, its data not).
            raise _SetAside(f"not a history file ({exc})") from None
        if meta.get("format") not in _READABLE_FORMATS or "history_id" not in meta:
            raise _SetAside(f"not a format {FORMAT} history file")
        if meta["format"] != FORMAT:
            # Entries of the earlier format replay as they are; the new ones this history
            # writes need this version: older versions then set the file aside.
            with side:
                side.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
        self._hid = bytes(meta["history_id"])
        # Numbering and base-image figures in one statement (a reopen's cost is its queries).
        last, size, snap_ms, since = _rows(side, _FIGURES)[0]
        self.last = int(last)
        if snap_ms is not None:
            self._last_snapshot_size, self._last_snapshot_ms, self._since_snapshot = size or 0, snap_ms, since
        if meta.get("pruned") is not None:
            self._pruned_ms = float(meta["pruned"])
        # A side file from before the fence: what it holds is all that was handed out.
        self._reserved = max(self.last, int(meta.get("reserved") or 0))
        if meta.get("boundary") is not None and int(meta["boundary"]) > self.last:
            # A bookmark named the end of a transaction and the process died before it
            # was archived: that transaction's commit, if it made one, is the first
            # commit in the WAL beyond the archived ones (an entry of its own, as every
            # commit archived after a crash is); if it made none, the state stays.
            self._boundary_seq = int(meta["boundary"])
        self._catch_up(bytes(meta.get("wal_salt") or b""), int(meta.get("wal_frames") or 0), meta.get("db"))

    def _new_side(self) -> None:
        """A new side file, built in memory (written whole by _settle_side); its base image
        is the object's current state (the empty database for a new object)."""
        side = apsw.Connection(":memory:")
        side.deserialize("main", _side_template())
        self._side_memory = True
        self._side = side
        self._hid = secrets.token_bytes(16)
        # A new history's first block of numbers needs no fsync: a power cut leaves no
        # older copy of a new file (absent or unreadable, it is a new history, and
        # bookmarks of this one are refused as foreign).
        self._reserved = self.last + FENCE_BLOCK
        with side:
            side.execute("INSERT INTO meta VALUES ('history_id', ?), ('format', ?), ('reserved', ?)",
                         (self._hid, FORMAT, self._reserved))
        self._since_snapshot = 0
        if self._new_file:
            # A new object: its first state is the empty database; its commits so far
            # are all in the WAL, to be archived as entries.
            self._write_snapshot(0, None, ms=self._opened_ms)
        else:
            # Every committed frame is in the base image: the WAL is archived as it stands.
            self._archived = self._wal_frames
            self._salt = self._read_salt() if self._wal_frames else b""
            self._commits.clear()
            self._write_snapshot(self.last, self._serialize())
        self._write_wal_state(stamp=True)

    def _catch_up(self, salt: bytes, frames: int, stamp: Any) -> None:
        """At the first open of the side file: archive what the WAL holds beyond it."""
        wal_salt = self._read_salt() if self._wal_frames else b""
        if wal_salt and wal_salt == salt and self._wal_frames >= frames:
            self._archived, self._salt = frames, salt  # the WAL history last saw, maybe grown
        elif stamp is not None and stamp == self._db_stamp():
            # No checkpoint since history's last one: the WAL (if any) is new, all of it.
            self._archived, self._salt = 0, wal_salt
            frames = 0
        else:
            # The WAL history had not finished archiving was checkpointed by someone else:
            # those commits are in the object's file, not in history. Their numbers are
            # skipped (bookmarks naming them are refused) and the state now is a base image.
            log.warning("%s: point-in-time history lost commits (a checkpoint it did not make)", self.path.name)
            # Past every number a bookmark may have named (the side file may be an old copy).
            self.last = max(self.last + CHECKPOINT_FRAMES + 2, self._reserved)
            self._archived, self._salt = self._wal_frames, wal_salt
            self._write_snapshot(self.last, self._serialize())
            self._write_wal_state(stamp=True)
            return
        if self._wal_frames > frames:
            # Commits are archived again from the WAL. After a process crash the side file
            # is intact and they were never handed out; after a power cut it may be an
            # older copy (it is never fsync'd), and the numbers handed out since named
            # states these commits, archived one per entry, would not: they are skipped.
            self._fence = self._reserved
        if self._boundary_seq and self._open_frames <= frames:
            # The transaction the promised bookmark named made no commit before the
            # process died (the WAL held none past the archived ones at this open): it
            # names the state before it, not a commit of this session's.
            self._append([(self._opened_ms, b"")])
            self._boundary_seq = 0
        self._archive()
        if self._fence > self.last:
            # Only the promised commit was archived: the skip is made now (an entry for
            # the same state past the gap), before any number is handed out again.
            self._append([(self._opened_ms, b"")])

    def _side_connection(self) -> apsw.Connection:
        side = apsw.Connection(str(self.path))
        side.set_busy_timeout(0)
        journal = "PERSIST" if self._db.durability != "none" else "MEMORY"
        # A rollback journal kept on disk (PERSIST: no file created per transaction) and no
        # fsync: a process crash leaves the file intact; a power cut may cost history (see
        # _open_side), never the object's data, which lives in the other file.
        # WAL here cost an fsync per open/close cycle (the checkpoint): 20 ms an activation.
        # Only this connection ever opens the file (the object's lock guards both files):
        # keep the lock and the parsed schema between transactions. One call for all three.
        list(side.execute(f"PRAGMA journal_mode={journal}; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE"))
        return side

    def _settle_side(self, *, reopen: bool = True) -> None:
        """Write a side file still in memory to disk, whole (not during close's steps).

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
        self._side_existed = True
        if reopen:
            self._side = self._side_connection()

    def _let_go_of_side(self) -> None:
        """Close the side file (written whole first if still in memory); history stays open."""
        self._settle_side(reopen=False)
        if self._side is not None:
            self._side.close()
            self._side = None

    # ------------------------------------------------------------------ WAL
    def _on_wal(self, _conn: apsw.Connection, _name: str, frames: int) -> int:
        """SQLite's WAL hook: a commit wrote frames; the WAL now holds ``frames``."""
        self._commits.append((frames, self._clock()))
        self._wal_frames = frames
        if frames >= CHECKPOINT_FRAMES:
            self._checkpoint_due = True
        return apsw.SQLITE_OK

    def _read_salt(self) -> bytes:
        with open(self._wal_path, "rb") as f:
            head = f.read(_WAL_HEADER)
        return head[16:24]

    def _db_stamp(self) -> str:
        """The object file's size and mtime: they change only when a checkpoint writes it."""
        st = os.stat(self._db.path)
        return f"{st.st_size}:{st.st_mtime_ns}"

    def _write_wal_state(self, *, stamp: bool = False) -> None:
        assert self._side is not None
        rows: list[tuple[str, Any]] = [("wal_salt", self._salt), ("wal_frames", self._archived)]
        if stamp:
            rows.append(("db", self._db_stamp()))
        with self._side:
            self._side.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def _archive(self, *, checkpoint: bool = False) -> None:
        """Copy the committed WAL frames not yet in history into it as entries; with
        ``checkpoint``, then copy the WAL into the object's file and truncate it."""
        frames = self._wal_frames
        fresh = frames > self._archived
        if fresh or self._boundary_seq or checkpoint or self._snapshot_due:
            self._open_side()
        if fresh:
            if not self._archived and not self._salt:
                self._salt = self._read_salt()
            entries = self._entries(self._archived, frames)
            self._archived = frames
            self._append(entries, wal_state=True)
        self._commits.clear()
        if self._boundary_seq and not self._db.dirty:
            # The transaction a bookmark named ended without frames (it changed nothing,
            # or rolled back): its state is the one before it, under the promised number.
            if self.last < self._boundary_seq:
                self._append([(self._clock(), b"")])
            self._boundary_seq = 0
        if checkpoint and frames and not self._db.parked and self._truncate():
            self._archived = self._wal_frames = 0
            self._salt = b""
            # The file now holds the last archived state, and the WAL is empty.
            self._frame_of = {}
            self._file_pages = self._size
            self._write_wal_state(stamp=True)
        self._checkpoint_due = False
        if self._snapshot_due and not self._db.parked and not self._db.in_transaction:
            self._write_snapshot(self.last, self._serialize())
        now = self._clock()
        if fresh and now - self._pruned_ms >= self.retention_ms / 16:
            # What leaves the window does so gradually: pruning at most every 1/16 window.
            self._pruned_ms = now
            self._prune()
            side = self._side
            assert side is not None
            with side:
                side.execute("INSERT OR REPLACE INTO meta VALUES ('pruned', ?)", (now,))
        self._settle_side()

    def _conn_closed(self) -> bool:
        try:
            self._conn.txn_state()
        except apsw.ConnectionClosedError:
            return True
        return False

    def _truncate(self) -> bool:
        """Checkpoint the WAL into the file and truncate it; False if a statement still
        running on the connection (a cursor left unfinished) holds it: it then stays."""
        # A checkpoint syncs the WAL and the file: never at a new file's synchronous=OFF.
        self._db.ensure_sync_level()
        try:
            return self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)[0] == 0
        except (apsw.LockedError, apsw.BusyError):
            return False

    def _entries(self, start: int, end: int) -> list[tuple[float, bytes]]:
        """Frames ``start+1 .. end`` of the WAL (``end`` a commit's last frame) as entries
        ``(ms, compressed pages)``: commits less than :data:`GROUP_MS` apart share one.

        A page whose previous version this history knows (a frame it archived from
        the current WAL, or the object's file as history's last checkpoint left it)
        is stored as the span where its XOR with that version, which is what replay
        holds there, is not zero: a one-row change costs tens of bytes, not a page."""
        wal = os.open(self._wal_path, os.O_RDONLY | os.O_CLOEXEC)
        #: The object's file, opened at the first page read from it, once per archive.
        file: list[int] = []
        try:
            head = os.pread(wal, _WAL_HEADER, 0)
            page = int.from_bytes(head[8:12], "big")
            step = page + _FRAME_HEADER
            groups = self._groups(wal, start, end, step)
            entries = []
            for group in groups:
                size, found = group.size, group.pages
                body = _EntryBody(_ENTRY_HEADER.pack(page, size))
                for n in sorted(found):
                    if n > size:
                        continue
                    new = self._frame(wal, found[n], step, page)
                    old = self._previous(n, wal, step, page, file)
                    if old is None:
                        body.add(_PGNO.pack(n) + new)
                        continue
                    # Only the span where the page changed, as its XOR with the old bytes.
                    lo, hi = _changed_span(new, old)
                    span = _xor(new[lo : hi + 1], old[lo : hi + 1])
                    body.add(_SPAN.pack(n | _DELTA_BIT | _SPAN_BIT, zlib.crc32(new), lo, hi) + span)
                for n, frame in found.items():
                    if n <= size:  # a page the group freed again is not replay's (it is cut off)
                        self._frame_of[n] = frame
                if size < self._size:
                    # Pages past the new end are gone (replay cuts them off): no longer
                    # a previous version for anything.
                    self._frame_of = {n: f for n, f in self._frame_of.items() if n <= size}
                    self._file_pages = min(self._file_pages, size)
                self._size = size
                ms = group.first_ms if group.last_ms is None else group.last_ms
                entries.append((ms, body.done()))
        finally:
            os.close(wal)
            for fd in file:
                os.close(fd)
        return entries

    @staticmethod
    def _frame(wal: int, frame: int, step: int, page: int) -> bytes:
        return os.pread(wal, page, _WAL_HEADER + (frame - 1) * step + _FRAME_HEADER)

    @staticmethod
    def _commit_frames(wal: int, start: int, end: int, step: int) -> Iterator[tuple[int, int, dict[int, int]]]:
        """``(frame, size after the commit, {page: its newest frame})`` of each commit in
        frames ``start+1 .. end``, read :data:`_CHUNK_FRAMES` at a time (an archive never
        holds the whole WAL). Headers are read in C (strided views of the chunk);
        Python runs per commit, not per frame."""
        words = step // 4
        pages: dict[int, int] = {}
        for first in range(start, end, _CHUNK_FRAMES):
            data = os.pread(wal, min(_CHUNK_FRAMES, end - first) * step, _WAL_HEADER + first * step)
            count = len(data) // step
            # Each frame's first two big-endian words, strided out of the chunk without a copy.
            view = memoryview(data)[: count * step].cast("I")
            heads = array.array("I", view[0::words])
            sized = array.array("I", view[1::words])
            if sys.byteorder == "little":
                heads.byteswap()
                sized.byteswap()
            pgnos, sizes = heads.tolist(), sized.tolist()
            view.release()
            done = 0
            for i in [i for i, size in enumerate(sizes) if size]:  # a commit's last frame
                if i == done:
                    pages[pgnos[i]] = first + i + 1  # a one-frame commit (a one-row change)
                else:
                    pages.update(zip(pgnos[done : i + 1], range(first + done + 1, first + i + 2)))
                yield first + i + 1, sizes[i], pages
                pages = {}
                done = i + 1
            pages.update(zip(pgnos[done:count], range(first + done + 1, first + count + 1)))

    def _groups(self, wal: int, start: int, end: int, step: int) -> list[_Group]:
        """The groups of commits in the WAL's frames ``start+1 .. end``."""
        times = dict(self._commits)
        fallback = self._clock()
        groups: list[_Group] = []
        for frame, size, pages in self._commit_frames(wal, start, end, step):
            ms = times.get(frame)
            last = groups[-1] if groups else None
            if ms is not None and last is not None and last.last_ms is not None and (
                ms - last.first_ms < GROUP_MS and ms - last.last_ms < GROUP_MS
            ):
                last.last_ms, last.size = ms, size
                last.pages.update(pages)
            else:
                # A commit whose time the WAL hook did not note (archived after a crash,
                # or a restore's copy) is an entry of its own, timed now.
                groups.append(_Group(ms, ms, size, pages) if ms is not None else _Group(fallback, None, size, pages))
        return groups

    def _previous(self, n: int, wal: int, step: int, page: int, file: list[int]) -> bytes | None:
        """Page ``n`` as replay holds it before the entry being built, if known here
        (``file`` holds the object's file's descriptor once one page was read from it)."""
        frame = self._frame_of.get(n)
        if frame is not None:
            old = self._frame(wal, frame, step, page)
        elif n <= self._file_pages:
            if not file:
                file.append(os.open(self._db.path, os.O_RDONLY | os.O_CLOEXEC))
            old = os.pread(file[0], page, (n - 1) * page)
        else:
            return None
        return old if len(old) == page else None

    def _append(self, entries: list[tuple[float, bytes]], *, wal_state: bool = False) -> None:
        """Entries ``last+1 ..`` into the side file (with ``wal_state``, the archived WAL
        position in the same transaction); a base image becomes due when the rules say so."""
        assert self._side is not None
        rows = []
        for ms, blob in entries:
            kind = 0
            if self._fence > self.last and self._boundary_seq != self.last + 1:
                # Past every number handed out (see _catch_up); ``schema`` 2 tells replay
                # that this entry follows the one before the gap.
                self.last, kind, self._fence = self._fence, 2, 0
            self.last += 1
            rows.append((self.last, ms, kind, blob))
            self._since_snapshot += len(blob)
        with self._side:
            if rows:
                self._side.executemany("INSERT OR REPLACE INTO log VALUES (?, ?, ?, ?)", rows)
            if wal_state:
                self._side.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("wal_salt", self._salt), ("wal_frames", self._archived)],
                )
            if rows and self._boundary_seq and self.last >= self._boundary_seq:
                self._side.execute("DELETE FROM meta WHERE k = 'boundary'")
        if rows and (
            self._since_snapshot > max(SNAPSHOT_MIN_BYTES, self._last_snapshot_size)
            or rows[-1][1] - self._last_snapshot_ms > self.retention_ms / 4
        ):
            self._snapshot_due = True

    def _serialize(self) -> bytes:
        """The committed state, compressed: a base image."""
        if self._db.parked or self._conn.txn_state() == apsw.SQLITE_TXN_WRITE:
            # A base image is needed at the first read of history, which may come inside
            # a transaction that wrote (a bookmark asked mid-transaction): serialize
            # would include its uncommitted writes, so the committed state is read
            # from the disk instead.
            return zlib.compress(self._committed_image(), 1)
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

    def _committed_image(self) -> bytes:
        """The object's file with the WAL's committed frames (``_wal_frames``) over it:
        the last committed state, whatever a transaction holds uncommitted (in memory,
        or in frames past the last commit's)."""
        image = bytearray(self._db.path.read_bytes())
        if not self._wal_frames:
            return bytes(image)
        with open(self._wal_path, "rb") as f:
            page = int.from_bytes(f.read(_WAL_HEADER)[8:12], "big")
            step = page + _FRAME_HEADER
            data = f.read(self._wal_frames * step)
        size = 0
        for off in range(0, self._wal_frames * step, step):
            pgno, commit = _ENTRY_HEADER.unpack_from(data, off)
            at = (pgno - 1) * page
            if len(image) < at:
                image.extend(bytes(at - len(image)))
            image[at : at + page] = data[off + _FRAME_HEADER : off + step]
            size = commit or size
        del image[size * page :]
        return bytes(image)

    def _write_snapshot(self, seq: int, data: bytes | None, *, ms: float | None = None) -> None:
        assert self._side is not None
        now = self._clock() if ms is None else ms
        with self._side:
            self._side.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (seq, now, data))
        self._since_snapshot = 0
        self._last_snapshot_size = len(data or b"")
        self._last_snapshot_ms = now
        self._snapshot_due = False

    # --------------------------------------------------------- engine hooks
    def on_begin(self) -> None:
        """A transaction is about to write; the database still holds the last committed state."""
        if self._boundary_seq:
            # A bookmark named the end of a transaction that rolled back. Safely: this
            # runs before a user's write, which history's trouble must never fail.
            self._archive_safely()

    def after_commit(self) -> None:
        """COMMIT succeeded (the WAL hook has noted it): archive when due."""
        if self._checkpoint_due or self._boundary_seq:
            self._archive_safely(checkpoint=self._checkpoint_due)

    def _archive_safely(self, *, checkpoint: bool = False) -> None:
        """:meth:`_archive` where a failure must not fail the caller (a commit that
        succeeded, a write about to begin, a park, a close): history's trouble is
        logged, never the data's."""
        try:
            self._archive(checkpoint=checkpoint)
        except Exception:
            # Numbers already given to the entries that did not reach the side file stay
            # skipped (refused as lost); a base image, as soon as one can be written,
            # makes what follows restorable again.
            log.warning("%s: archiving point-in-time history failed", self.path.name, exc_info=True)
            self._snapshot_due = True

    def checkpoint(self) -> None:
        """Archive, then copy the WAL into the file and truncate it (the host's checkpoint
        before a close, in a worker thread: the close then has nothing to copy)."""
        self._archive(checkpoint=True)

    def close(self) -> None:
        """Archive what the WAL holds (and checkpoint it, unless parked), let go of the files."""
        self._batch = True
        try:
            if self._wal_frames > self._archived or self._boundary_seq or (
                self._wal_frames and not self._db.parked
            ):
                # SQLite checkpoints a WAL at close: history must have it first, and the
                # object file's stamp after history's checkpoint.
                self._archive_safely(checkpoint=True)
                if self._wal_frames and not self._db.parked and self._archived == self._wal_frames:
                    # A statement still running kept the WAL from being truncated. Closing
                    # the connection (the engine does it next anyway) ends the statement and
                    # checkpoints only frames history has: note the file's stamp after it.
                    # (close_connection: a user's unfinished cursor fails a plain close.)
                    close_connection(self._conn)
                    self._archived = self._wal_frames = 0
                    self._salt = b""
                    self._write_wal_state(stamp=True)
        finally:
            self._batch = False
            if not self._db.parked and not self._conn_closed():
                self._conn.set_wal_hook(None)
            try:
                self._settle_side(reopen=False)
            finally:
                if self._side is not None:
                    self._side.close()
                    self._side = None
                    self._side_memory = False

    def park(self) -> None:
        """The object's connection closes while the object stays live (``ObjectDatabase.park``).

        The WAL stays (no checkpoint at a park): nothing to do unless the oldest
        unarchived commit is older than :data:`ARCHIVE_AGE_MS`, then the WAL is
        archived (a crash while parked would lose those commits' times, not them).
        """
        commits = self._commits
        if commits and self._clock() - commits[0][1] >= ARCHIVE_AGE_MS:
            self._archive_safely()
        if self._side is not None and not self._side_memory:
            self._let_go_of_side()
        # The engine closes the connection next; holding on to it kept each parked
        # object's closed apsw object alive (~0.76 KiB each; README, round 10). A shared
        # closed one answers any use as the parked connection did: ConnectionClosedError.
        self._conn = _closed_connection()

    def wal_dropped(self, conn: apsw.Connection) -> None:
        """A new file's first commit was undone (its WAL sync failed, ``ObjectDatabase._drop_new_wal``):
        the WAL is empty again, read through ``conn``. Nothing of it was archived (that
        happens after a commit succeeds)."""
        self._commits.clear()
        self._wal_frames = 0
        self._checkpoint_due = False
        self.unpark(conn)

    def unpark(self, conn: apsw.Connection) -> None:
        """The object's connection reopened: note its commits."""
        self._conn = conn
        conn.set_wal_hook(self._on_wal)

    # ------------------------------------------------------- main file reads
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._db._exec_internal(sql, params))

    def _user_objects(self) -> bool:
        return bool(self._q("SELECT 1 FROM sqlite_schema LIMIT 1"))

    def _pending(self) -> int | None:
        """The seq of a requested restore: the flag file beside the history, if any."""
        try:
            with open(self._base + ".pitr-restore", encoding="utf-8") as f:
                return int(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("%s: unreadable restore request ignored", self.restore_flag.name)
            return None

    # ------------------------------------------------------------ bookmarks
    def _render(self, seq: int) -> str:
        return render(self._hid, seq)

    def _hand_out(self, seq: int) -> str:
        """The bookmark of ``seq``, given to a caller: first the side file durably says
        no bookmark names more than ``_reserved >= seq`` (an fsync once per
        :data:`FENCE_BLOCK` numbers and after a crash)."""
        if seq > self._reserved:
            self._reserve(seq + FENCE_BLOCK)
        return self._render(seq)

    def _reserve(self, upto: int) -> None:
        self._open_side()
        side = self._side
        assert side is not None
        with side:
            side.execute("INSERT OR REPLACE INTO meta VALUES ('reserved', ?)", (upto,))
        self._settle_side()
        if not self._side_memory and self._db.durability != "none":
            # A power cut may revert the side file to this copy, never to an older one.
            fsync_file(self.path)
        self._reserved = upto

    def _ready(self) -> None:
        """The side file open and holding every committed state (readers of history call this)."""
        self._open_side()
        self._archive()

    def current_bookmark(self) -> str:
        """The current state; inside a transaction that wrote, the state it ends with
        (its commit, or the committed state if it rolls back)."""
        self._ready()
        if self._db.dirty:
            if not self._boundary_seq:
                # The entry is made when this transaction ends. Kept in the side file too:
                # if the process dies first, the next open knows the number is promised.
                self._boundary_seq = self.last + 1
                assert self._side is not None
                with self._side:
                    self._side.execute("INSERT OR REPLACE INTO meta VALUES ('boundary', ?)", (self._boundary_seq,))
                self._settle_side()
            return self._hand_out(self.last + 1)
        return self._hand_out(self.last)

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
        ended = _rows(self._side, "SELECT max(seq) FROM log WHERE seq > ? AND ms <= ?", (base, cutoff))[0][0]
        return max(base, ended or 0)

    def bookmark_for_time(self, ms: float) -> str:
        self._ready()
        now = self._clock()
        if ms < now - self.retention_ms:
            raise PitrError(TIME_EXPIRED_MESSAGE.format(ms=ms, days=self.retention_ms / 86_400_000))
        if ms >= now:
            return self.current_bookmark()
        assert self._side is not None
        logged = _rows(self._side, "SELECT max(seq) FROM log WHERE ms <= ?", (ms,))[0][0]
        snaps = _rows(self._side, "SELECT max(seq) FROM snapshots WHERE ms <= ?", (ms,))[0][0]
        return self._hand_out(max(logged or 0, snaps or 0, self._earliest()))

    # -------------------------------------------------------------- restore
    def schedule_restore(self, bookmark: Any) -> str:
        """Record the restore request (out of band); return the undo bookmark."""
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
        snap = _rows(self._side, "SELECT seq, data FROM snapshots WHERE seq <= ? ORDER BY seq DESC LIMIT 1", (seq,))
        if not snap:
            raise PitrError(EXPIRED_MESSAGE.format(bookmark=self._render(seq), days=self.retention_ms / 86_400_000))
        base, data = snap[0]
        image = bytearray(zlib.decompress(data)) if data is not None else bytearray()
        expected = base + 1
        for entry_seq, _ms, schema, changes in self._all_log("seq > ? AND seq <= ?", (base, seq)):
            if entry_seq != expected and schema != 2:
                break
            expected = entry_seq + 1
            if schema == 1:
                raise StorageError(f"{self._db.path.name}: history is missing the base image of seq {entry_seq}")
            if changes:
                _apply(image, changes)
        if expected <= seq:
            raise PitrError(LOST_MESSAGE.format(bookmark=self._render(seq)))
        mem = apsw.Connection(":memory:")
        if image:
            # Pages from a WAL database say so (header bytes 18-19 = 2), which would make
            # the in-memory copy look for a -wal file: mark it a rollback-journal database.
            image[18:20] = b"\x01\x01"
            mem.deserialize("main", bytes(image))
        mem.execute("PRAGMA foreign_keys=OFF")
        return mem

    def _restore(self, seq: int) -> None:
        """Replace the main file by the state at ``seq`` (at open, before anything else runs)."""
        assert self._side is not None
        self._db.ensure_sync_level()  # the restore's commit and checkpoint sync (a new file opens OFF)
        try:
            mem = self.state_at(seq)
        except (StorageError, zlib.error, struct.error) as exc:
            # Unrestorable now (its history was lost in a crash, or is damaged): drop
            # the request rather than refuse to open the object forever.
            self.restore_flag.unlink(missing_ok=True)
            if isinstance(exc, PitrError):
                raise
            detail = str(exc) if isinstance(exc, StorageError) else f"point-in-time history damaged: {exc!r}"
            raise PitrError(detail) from exc
        try:
            if mem.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall():
                mem.execute("VACUUM")
            self._replace_main(mem)
            # The base image is read back from the object's file, not taken from ``mem``:
            # the copy rewrites page 1's header (WAL mode, sizes), and later entries store
            # pages as differences from exactly what the file holds. A crash before the
            # side file has it leaves the copy's frames in the WAL: the next open archives
            # them, then restores again.
            image = self._serialize()
            new = self.last + 1
            now = self._clock()
            with self._side:
                _rows(self._side, "INSERT OR REPLACE INTO log VALUES (?, ?, 1, NULL)", (new, now))
                _rows(self._side, "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (new, now, image))
            self.last = new
            self._since_snapshot = 0
            self._last_snapshot_size = len(image)
            self._last_snapshot_ms = now
            # The copy's frames are the base image just written: checkpoint them away.
            self._truncate()
            self._archived = self._wal_frames = 0
            self._salt = b""
            self._frame_of, self._file_pages, self._size = {}, 0, 0
            self._write_wal_state(stamp=True)
            # Cleared only now: a crash before this line restores again on the next open.
            self.restore_flag.unlink(missing_ok=True)
        finally:
            mem.close()
        self._db._forget_caches()

    def _replace_main(self, mem: apsw.Connection) -> None:
        """Copy ``mem`` over the main file: one write transaction (SQLite's backup API)."""
        with self._conn.backup("main", mem, "main") as backup:
            backup.step(-1)

    # -------------------------------------------------------------- pruning
    def _prune(self) -> None:
        """Drop history older than the window, keeping the base image the window starts from."""
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
        if self._side is None and self._wal_frames <= self._archived and not self._boundary_seq:
            # Nothing waits in the WAL: the file says it all, and looking neither creates
            # nor opens it for writing.
            return read_restore_points(self._db.path, limit)
        # Archiving reads the WAL file: a parked object's connection stays closed.
        self._ready()
        if self._db.parked:
            self._let_go_of_side()
            return read_restore_points(self._db.path, limit)
        assert self._side is not None
        self._hand_out(self.last)
        return _points(self._side, self._hid, limit)

    def sizes(self) -> dict[str, int]:
        """Bytes and entries of history, everything committed archived (tests, benchmarks)."""
        self._ready()
        assert self._side is not None
        snaps, sbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(data)), 0) FROM snapshots")[0]
        logs, lbytes = _rows(self._side, "SELECT count(*), coalesce(sum(length(changes)), 0) FROM log")[0]
        return {"snapshots": int(snaps), "log": int(logs), "bytes": int(sbytes) + int(lbytes),
                "log_bytes": int(lbytes)}


class _EntryBody:
    """An entry's bytes as built: kept as they are while small (:data:`_RAW_MARK`),
    else deflated as they come (:data:`_ENTRY_MARK`), so memory holds one page at a
    time, not the group's pages."""

    __slots__ = ("_parts", "_size", "_packer", "_crc")

    def __init__(self, head: bytes) -> None:
        self._parts = [head]
        self._size = len(head)
        self._packer: Any = None
        self._crc = zlib.crc32(head)

    def add(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        if self._packer is None:
            self._size += len(data)
            self._parts.append(data)
            if self._size <= _RAW_MAX:
                return
            self._packer = zlib.compressobj(1, zlib.DEFLATED, _WBITS, _MEMLEVEL)
            self._parts = [self._packer.compress(b"".join(self._parts))]
        else:
            self._parts.append(self._packer.compress(data))

    def done(self) -> bytes:
        crc = _CRC.pack(self._crc)
        if self._packer is None:
            return _RAW_MARK + crc + b"".join(self._parts)
        self._parts.append(self._packer.flush())
        return _ENTRY_MARK + crc + b"".join(self._parts)


def _inflate(blob: bytes) -> tuple[bytes, bool]:
    """A stored entry's bytes, and whether it is format 3 (span records) or format 2.

    A format 3 entry whose bytes do not match its CRC raises (history damaged)."""
    mark = blob[:1]
    if mark == _RAW_MARK or mark == _ENTRY_MARK:
        head = 1 + _CRC.size
        try:
            entry = blob[head:] if mark == _RAW_MARK else zlib.decompress(blob[head:], -15)
        except zlib.error:
            entry = None
        if entry is None or len(blob) < head or zlib.crc32(entry) != _CRC.unpack_from(blob, 1)[0]:
            raise StorageError("point-in-time history: an entry does not match its checksum (history damaged)")
        return entry, True
    return zlib.decompress(blob), False


def _xor(a: bytes | bytearray, b: bytes) -> bytes:
    """``a`` XOR ``b``, byte by byte (same length): a page's changed span, stored or replayed."""
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _changed_span(new: bytes, old: bytes) -> tuple[int, int]:
    """The first and last byte where ``new`` and ``old`` (same length) differ; ``(0, 0)``
    if they do not.

    Two binary searches over slice comparisons (memcmp): ~12 steps each, where
    turning both 4 KB pages into integers to XOR them cost ~90,000 instructions
    (``int.from_bytes`` goes byte by byte); only the span is XOR'd then."""
    if new == old:
        return 0, 0
    lo, up = 0, len(new)  # new[:lo] == old[:lo]; new[lo:up] != old[lo:up]
    while up - lo > 1:
        mid = (lo + up) // 2
        if new[lo:mid] == old[lo:mid]:
            lo = mid
        else:
            up = mid
    down, hi = lo, len(new) - 1  # new[hi + 1:] == old[hi + 1:]; new[down:hi + 1] != old[down:hi + 1]
    while hi - down > 0:
        mid = (down + hi + 1) // 2
        if new[mid : hi + 1] == old[mid : hi + 1]:
            hi = mid - 1
        else:
            down = mid
    return lo, hi


def _apply(image: bytearray, blob: bytes) -> None:
    """One entry's pages over ``image``, which is then cut (or grown) to the entry's size.

    ``blob`` is the entry as stored: format 3 (:data:`_RAW_MARK` or
    :data:`_ENTRY_MARK`, span records) or format 2 (a zlib stream, whole-page XOR
    records)."""
    entry, spans = _inflate(blob)
    page, size = _ENTRY_HEADER.unpack_from(entry, 0)
    end = size * page
    if len(image) < end:
        image.extend(bytes(end - len(image)))
    off = _ENTRY_HEADER.size
    while off < len(entry):
        pgno = _PGNO.unpack_from(entry, off)[0]
        if spans and pgno & _SPAN_BIT:
            pgno, crc, lo, hi = _SPAN.unpack_from(entry, off)
            pgno &= ~(_DELTA_BIT | _SPAN_BIT)
            at = (pgno - 1) * page
            off += _SPAN.size
            length = hi - lo + 1
            if hi < lo or hi >= page or at + page > len(image):
                raise StorageError(f"point-in-time history: page {pgno} does not replay (history damaged)")
            image[at + lo : at + hi + 1] = _xor(image[at + lo : at + hi + 1], entry[off : off + length])
            if zlib.crc32(image[at : at + page]) != crc:
                raise StorageError(f"point-in-time history: page {pgno} does not replay (history damaged)")
            off += length
            continue
        if pgno & _DELTA_BIT:
            pgno, crc = _DELTA.unpack_from(entry, off)
            at = ((pgno & ~_DELTA_BIT) - 1) * page
            off += _DELTA.size
            old = image[at : at + page]
            new = _xor(old, entry[off : off + page]) if len(old) == page else b""
            if not new or zlib.crc32(new) != crc:
                raise StorageError(f"point-in-time history: page {pgno & ~_DELTA_BIT} does not replay (history damaged)")
        else:
            at = (pgno - 1) * page
            off += _PGNO.size
            new = entry[off : off + page]
        image[at : at + page] = new
        off += page
    del image[end:]


def _points(side: apsw.Connection, hid: bytes, limit: int) -> list[tuple[str, float]]:
    # Each entry, and each base image with no entry (a new object's empty start, the
    # state a lost stretch of history left): the moment that state became current.
    rows = _rows(side, "SELECT seq, ms FROM log UNION ALL SELECT seq, ms FROM snapshots"
                       " WHERE seq NOT IN (SELECT seq FROM log) ORDER BY seq DESC LIMIT ?", (limit,))
    return [(render(hid, int(seq)), float(ms)) for seq, ms in rows]


def read_restore_points(db_path: Path, limit: int = 20) -> list[tuple[str, float]]:
    """Restore points of an object no connection holds, read from its side file opened
    read-only (nothing created, nothing written); ``[]`` when it keeps no history.

    Commits still only in a live object's WAL are not there: a live object's
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
    # One entry per group of commits: ``changes`` is (page size, size in pages, then a
    # record per page the group wrote: the page whole, or its changed span), stored raw or
    # in raw deflate (format 3) or zlib (format 2; see _apply); ``schema`` = 2 marks an
    # entry that follows the one before it across skipped numbers; ``schema`` = 1 marks an
    # entry whose state is the base image of the same seq (a restore).
    "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, ms REAL NOT NULL,"
    " schema INTEGER NOT NULL, changes BLOB);"
    "CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, ms REAL NOT NULL, data BLOB);"
)
_FIGURES = (
    "WITH s AS (SELECT seq, length(data) AS size, ms FROM snapshots ORDER BY seq DESC LIMIT 1)"
    " SELECT max(coalesce((SELECT max(seq) FROM log), 0), coalesce((SELECT seq FROM s), 0)),"
    " (SELECT size FROM s), (SELECT ms FROM s),"
    " (SELECT coalesce(sum(length(changes)), 0) FROM log WHERE seq > coalesce((SELECT seq FROM s), 0))"
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
