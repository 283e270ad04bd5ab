"""Opening an object's SQLite file: its lock and its connection's settings.

Owns what must hold before an :class:`~._engine.ObjectDatabase` runs its first
statement, and again each time a parked connection reopens:

* the exclusive per-file lock (``<id>.sqlite.lock``, an ``flock``) — or, for a
  host's :class:`~._locks.LockTable`, the refusal message — so one ID is live
  in one host only;
* where the object's name is kept: an extended attribute of the database file
  (:data:`NAME_XATTR`), or on filesystems without user attributes the file
  beside it (:func:`name_path`); :func:`read_name` reads either;
* the files beside the database (:func:`name_path`, :func:`lock_path`);
* a new file's first page is written whole from a template (page 1 of an
  empty WAL database) without an fsync (the file's first commit syncs it); a
  file whose first page a crash lost or tore was never committed to and is
  started afresh (:func:`_is_new_file`);
* the connection's settings: Cloudflare's limits, defensive mode, foreign keys
  (``SQLITE_DBCONFIG_ENABLE_FKEY``, the flag ``PRAGMA foreign_keys`` sets),
  EXCLUSIVE locking when the file is the connection's alone, WAL entry (or an
  in-memory journal for ``durability="none"``) and ``synchronous``;
* a new file's first commit: it opens with ``synchronous=OFF`` and its
  first commit is synced by SQLite's own WAL sync called once, after the
  COMMIT (:func:`sync_new_wal`): the WAL's header and frames in one
  fdatasync and the folder, two fsyncs where SQLite's first commit to a
  new WAL makes three, and nothing left owed to a later commit.

Nothing here keeps state; it never touches trio.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from pathlib import Path
from typing import Any, Literal

import apsw

from . import _cf
from .errors import ObjectLockedError

__all__ = [
    "Durability", "NAME_XATTR", "read_name", "name_path", "lock_path", "lock_file", "locked_error", "connect",
    "open_connection", "reconnect", "fsync_file", "sync_new_wal",
]  # fmt: skip

Durability = Literal["full", "normal", "none"]

#: ``durability`` -> SQLite's ``synchronous``. "full": fsync per commit (survives a
#: power cut); "normal": WAL without fsync at commit (survives a process crash);
#: "none": no fsync and an in-memory rollback journal, for throwaway storage
#: (tests): fast, but a crash mid-transaction can corrupt the file.
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "none": "OFF"}

#: Cloudflare's SQLite limits as (apsw code, value), resolved once: objects reopen often.
_LIMITS = [
    (code, value)
    for code, value in ((getattr(apsw, name, None), value) for name, value in _cf.SQLITE_LIMITS.items())
    if code is not None
]


def fsync_file(path: str | Path) -> None:
    """fsync a file by name: its data and metadata (for a database file: its pages and its name attribute)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _IoMethods(ctypes.Structure):
    """The head of SQLite's ``sqlite3_io_methods`` (sqlite3.h, a stable ABI): up to ``xSync``."""

    _fields_ = [
        ("iVersion", ctypes.c_int),
        ("xClose", ctypes.c_void_p),
        ("xRead", ctypes.c_void_p),
        ("xWrite", ctypes.c_void_p),
        ("xTruncate", ctypes.c_void_p),
        ("xSync", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)),
    ]


_SQLITE_SYNC_NORMAL = 0x00002  # sqlite3.h
#: ``xSync`` by the address of the ``sqlite3_io_methods`` table it was read from.
_x_sync: dict[int, Any] = {}


def sync_new_wal(conn: apsw.Connection, path: Path) -> None:
    """Sync a new file's ``-wal`` after its first commit, made with ``synchronous=OFF``: SQLite's own WAL sync, once.

    Under ``synchronous=FULL`` SQLite's first commit to a new WAL syncs three
    times in a row: the WAL header alone, the folder (the first sync of a WAL
    file it opened syncs its folder: the WAL's name), then the frames. The
    header's own sync guards a WAL *restarted* over older frames (an
    out-of-order write could pair a new header with old frames whose
    checksums then chain); a new file's WAL has never held a frame, so its
    header and frames can be synced together. Here the commit ran unsynced,
    and this calls the WAL file's ``xSync`` — SQLite's VFS, reached through
    ``SQLITE_FCNTL_JOURNAL_POINTER``, so SQLite's own bookkeeping sees the
    sync: one fdatasync of the WAL (header and frames) and one of the folder
    (the names of the file and its ``-wal``), after which SQLite owes the
    folder nothing. A crash before it returns leaves that never-acknowledged
    commit whole or absent: SQLite's WAL recovery keeps only frames whose
    checksums chain from the header. Where the pointer is not to be had, the
    same two syncs are made by name (SQLite then syncs the folder once more
    at its next sync of the WAL).
    """
    handle = ctypes.c_void_p()
    if conn.file_control("main", apsw.SQLITE_FCNTL_JOURNAL_POINTER, ctypes.addressof(handle)) and handle.value:
        file = handle.value
        methods = ctypes.c_void_p.from_address(file).value
        if methods:
            x_sync = _x_sync.get(methods)
            if x_sync is None:  # one VFS's methods table for every file: resolved once
                x_sync = _x_sync[methods] = ctypes.cast(methods, ctypes.POINTER(_IoMethods)).contents.xSync
            rc = x_sync(file, _SQLITE_SYNC_NORMAL)
            if rc:
                raise OSError(f"{path}-wal: SQLite's WAL sync failed (code {rc})")
            return
    fsync_file(f"{path}-wal")
    fsync_file(path.parent)  # the folder: the names of the file and its -wal


def name_path(path: Path) -> Path:
    """The file beside an object's database that holds its name where :data:`NAME_XATTR` cannot (``<id>.sqlite.name``)."""
    return path.with_name(path.name + ".name")


#: The extended attribute of an object's database file that holds the object's
#: name (UTF-8). An attribute, not a file beside it: a new object's name then
#: costs no file of its own (creating one was the dearest step of a new object
#: on a busy ext4) and no fsync of its own (the fsync of the database file that
#: a new object's first page needs covers it). Copies keep it with ``cp -a``,
#: ``rsync -X``, ``tar --xattrs``.
NAME_XATTR = "user.dohost.name"

#: setxattr errors that mean "no attribute here" (filesystem without user
#: attributes, a name too long for one): the name goes to :func:`name_path`.
NO_XATTR_ERRNOS = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.E2BIG, errno.ENOSPC, errno.ERANGE})


def read_name(path: Path, *, file_too: bool = True) -> str | None:
    """The name stored with an object's file: its :data:`NAME_XATTR`, else (``file_too``) :func:`name_path`'s.

    ``file_too=False`` skips the file beside it (a file this process just
    created has none worth reading). Names kept in ``_cf_METADATA`` by older
    dohost versions are the caller's to read.
    """
    try:
        return os.getxattr(path, NAME_XATTR).decode("utf-8")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno != errno.ENODATA and exc.errno not in NO_XATTR_ERRNOS:
            raise
    if not file_too:
        return None
    try:
        return name_path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def lock_path(path: Path) -> Path:
    """The lock file beside an object's database (``<id>.sqlite.lock``)."""
    return path.with_name(path.name + ".lock")


_HEADER = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)
#: The page size dohost's new files get (SQLite's default): a new file's first write.
_NEW_FILE_PAGE = 4096


def _page_size(field: bytes) -> int:
    """A page size as SQLite stores it (2 bytes in the file header; 1 means 65536)."""
    value = int.from_bytes(field, "big")
    return 65_536 if value == 1 else value


def _valid_page_size(size: int) -> bool:
    return 512 <= size <= 65_536 and size & (size - 1) == 0


def _is_new_file(path: Path) -> bool:
    """True for a missing or empty object file — or one created but never committed to.

    A new file's first page (SQLite's header, WAL mode) is written without an
    fsync (see :func:`open_connection`); it is synced just before the file's
    first commit (``ObjectDatabase.commit``), before the WAL gets its header.
    So under ``"full"`` a file whose first page a crash lost or tore (empty,
    shorter than a page, no valid header) was never committed to, and its
    ``-wal``, if any, has no header either: such a file is started afresh,
    its header-less WAL removed. Under ``"normal"`` (nothing synced) a power
    cut may also leave commits in a WAL beside such a file: then the empty
    database's first page is written back and SQLite replays the WAL over
    it (every commit's pages, page 1 included, are in the WAL, since no
    checkpoint — which syncs the file — ran). dohost creates every file
    with SQLite's default page size, so a torn new file holds at most
    :data:`_NEW_FILE_PAGE` bytes: larger files (every object with a table,
    once checkpointed) are never read here, only stat'ed.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    if size > _NEW_FILE_PAGE:
        return False
    wal = path.with_name(path.name + "-wal")
    if size == 0 and not wal.exists():
        return True  # the usual new file (a crash right after its creation)
    if size:
        with open(path, "rb") as f:
            header = f.read(100)
        if len(header) == 100 and header[:16] == _HEADER:
            page = _page_size(header[16:18])
            if _valid_page_size(page) and size >= page:
                return False
    wal_page = _wal_page_size(wal)
    if wal_page:
        # Commits in the WAL but no first page: under "normal" durability (nothing
        # synced) a power cut can leave that. Write the first page of an empty
        # database back and let SQLite replay the WAL over it, rather than let it
        # delete the WAL (which it does beside an empty file).
        _restore_first_page(path, wal_page)
        return False
    os.truncate(path, 0)
    wal.unlink(missing_ok=True)  # a WAL without a header holds nothing committed
    return True


def _wal_page_size(wal: Path) -> int:
    """The page size in a ``-wal``'s header, or 0 when it has no valid header."""
    try:
        with open(wal, "rb") as f:
            head = f.read(32)
    except FileNotFoundError:
        return 0
    if len(head) < 32 or int.from_bytes(head[:4], "big") not in _WAL_MAGIC:
        return 0
    page = int.from_bytes(head[8:12], "big")
    return page if _valid_page_size(page) else 0


def _restore_first_page(path: Path, page_size: int) -> None:
    """Write the first page of an empty WAL-mode database (as SQLite writes it) over ``path``'s, synced."""
    page = _sqlite_first_page(path, page_size)
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, page, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_first_page(path: Path, page_size: int) -> bytes:
    """Page 1 of an empty WAL-mode database with ``page_size``-byte pages, made by SQLite beside ``path``.

    Made in a scratch file in the object's own folder (``<id>.sqlite.page1``),
    never the system temp folder: the object's folder is writable wherever
    objects can be created, a temp folder need not be (read-only root
    filesystems in containers). A scratch left by a crash is removed by the
    next build.
    """
    scratch = path.with_name(path.name + ".page1")
    leftovers = [scratch.with_name(scratch.name + suffix) for suffix in ("", "-wal", "-journal")]
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    try:
        conn = apsw.Connection(str(scratch))
        try:
            conn.execute(f"PRAGMA page_size={page_size}")
            # A scratch file: no fsync, no journal file (the page is the same).
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
        finally:
            conn.close()
        return scratch.read_bytes()[:page_size]
    finally:
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)


_empty_page: bytes | None = None


def _empty_wal_page(path: Path) -> bytes:
    """Page 1 of an empty WAL-mode database with :data:`_NEW_FILE_PAGE`-byte pages, as SQLite writes it.

    Made once per process by SQLite itself, beside the first new object's
    file (:func:`_sqlite_first_page`), so the page is exactly what entering
    WAL mode writes (this SQLite's version number included).
    """
    global _empty_page
    if _empty_page is None:
        page = _sqlite_first_page(path, _NEW_FILE_PAGE)
        if len(page) != _NEW_FILE_PAGE or page[:16] != _HEADER or page[18:20] != b"\x02\x02":
            raise RuntimeError(f"SQLite wrote an unexpected first page for an empty WAL database: {page[:100]!r}")
        _empty_page = page
    return _empty_page


def _write_first_page(path: Path) -> None:
    """Give a new object file its first page (unsynced)."""
    page = _empty_wal_page(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, page, 0)
    finally:
        os.close(fd)


def locked_error(path: Path) -> ObjectLockedError:
    return ObjectLockedError(
        f"{path}: this Durable Object is live in another host (the file is locked); "
        "only one instance per ID may run"
    )


def lock_file(path: Path) -> int:
    """Take the exclusive lock of an object's file; returns the lock file's descriptor."""
    # A separate file, never the database itself: SQLite's locks are POSIX
    # locks, which the kernel drops for the whole process when *any* descriptor
    # of the file is closed — as a refused second open here would do.
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise locked_error(path) from None
        raise
    return fd


def connect(
    path: Path, durability: Durability, statement_cache: int, *, exclusive: bool, wal: bool = False
) -> apsw.Connection:
    """Open the object's file with Cloudflare's limits and dohost's journal settings
    (``wal``: WAL mode even for ``durability="none"``; point-in-time history reads it)."""
    return open_connection(path, durability, statement_cache, exclusive=exclusive, wal=wal)[0]


def _new_connection(path: Path, statement_cache: int) -> apsw.Connection:
    """A connection to ``path`` with what every open sets first: no busy wait, defensive mode, foreign keys, the limits."""
    conn = apsw.Connection(str(path), statementcachesize=statement_cache)
    conn.set_busy_timeout(0)
    conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)  # CF: sqlite.c++ setupSecurity
    # PRAGMA foreign_keys=ON, the same flag, set without a statement to prepare (~5k
    # instructions less at each open and reopen).
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_FKEY, 1)
    for code, value in _LIMITS:
        conn.limit(code, value)
    return conn


def reconnect(path: Path, durability: Durability, statement_cache: int, *, wal: bool) -> apsw.Connection:
    """Open again a file this process opened before and still holds the lock of (a parked object).

    The settings of :func:`open_connection`, without what only a first open
    needs: the file cannot be new or torn (the process made or read it under
    the lock it never let go of), so no new-file check; its header already
    says WAL (entered at the first open), so no journal-mode statement — the
    first read opens the WAL as it finds it. The per-connection pragmas go in
    one statement batch. (~8-12 µs of a reopen's ~120 µs of CPU, ~12 % of
    its instructions: ``bench/bench_pitr.py``'s ``reopen`` row, README round 7.)
    """
    conn = _new_connection(path, statement_cache)
    try:
        # Run to the end: PRAGMA locking_mode answers a row, and apsw runs the next statement
        # of a batch only as the cursor is read on.
        list(conn.execute(_REOPEN_PRAGMAS[durability, wal]))
    except BaseException:
        conn.close()  # (another connection holding the file's lock: its descriptors go now, not at a GC)
        raise
    return conn


#: :func:`reconnect`'s pragmas by (durability, wal): EXCLUSIVE locking first (before the
#: first read opens the WAL: the WAL index in heap memory), as :func:`open_connection` sets them.
_REOPEN_PRAGMAS = {
    (durability, wal): "PRAGMA locking_mode=EXCLUSIVE;"
    + (" PRAGMA journal_mode=MEMORY;" if durability == "none" and not wal else "")
    + f" PRAGMA synchronous={_SYNCHRONOUS[durability]}"
    for durability in ("full", "normal", "none")
    for wal in (False, True)
}


def open_connection(
    path: Path, durability: Durability, statement_cache: int, *, exclusive: bool, wal: bool = False
) -> tuple[apsw.Connection, bool]:
    """:func:`connect`, also saying whether the file is new (created by this open)."""
    new = _is_new_file(path)
    # A new file in WAL mode (every durability but "none" without history,
    # ``wal``) gets its first page from here: page 1 of an empty WAL-mode
    # database, made once per process by SQLite itself (:func:`_empty_wal_page`,
    # beside the object's file), written in one write without an fsync. SQLite
    # then opens it as any WAL file: no journal-mode switch (a write transaction
    # of its own), and no -journal file and four fsyncs that entering WAL through
    # an on-disk rollback journal would cost; an empty file has nothing a
    # journal could protect. ObjectDatabase.commit syncs the page before the
    # first commit under "full" (SQLite deletes a WAL beside an empty file, so it
    # must be on disk first) — in the commit's worker thread, and never for an
    # object that does not write. The first commit's WAL sync syncs the folder,
    # covering both names. A crash that loses or tears the page leaves a file
    # :func:`_is_new_file` starts afresh.
    templated = new and (durability != "none" or wal)
    if templated:
        _write_first_page(path)
    conn = _new_connection(path, statement_cache)
    # The object's file belongs to this connection alone (the lock taken before it
    # guarantees it), so SQLite need not share its locks: in EXCLUSIVE mode,
    # set before WAL is entered, the WAL index lives in heap memory (no -shm
    # file, one descriptor less per object) and a statement outside a
    # transaction no longer takes and drops the shared-memory read locks —
    # that was most of a point read's cost in a live object. (``lock=False``
    # means the caller shares the file: keep SQLite's normal locking.)
    pragmas = ["PRAGMA locking_mode=EXCLUSIVE"] if exclusive else []
    # Throwaway storage ("none") keeps its rollback journal in memory: no -wal
    # file to create and delete for every test's objects — unless point-in-time
    # history is kept, which archives WAL frames (persistence._pitr).
    if durability == "none" and not wal:
        pragmas.append("PRAGMA journal_mode=MEMORY")
    elif not templated:
        pragmas.append("PRAGMA journal_mode=WAL")  # a no-op for a WAL file; converts an older one
    # A new WAL file starts unsynced: its first commit runs with nothing synced
    # and ObjectDatabase.commit then syncs it once (sync_new_wal, "full") and
    # sets the durability's level for every later commit. Under "normal" the
    # first commit so makes no fsync on the event loop (SQLite's would make
    # two: the new WAL's header and its folder).
    pragmas.append(f"PRAGMA synchronous={'OFF' if templated else _SYNCHRONOUS[durability]}")
    # One statement batch (as reconnect's), run to the end: apsw runs the next
    # statement of a batch only as the cursor is read on.
    try:
        list(conn.execute("; ".join(pragmas)))
    except BaseException:
        conn.close()
        raise
    return conn, new
