"""Opening an object's SQLite file: its lock and its connection's settings.

Owns what must hold before an :class:`~._engine.ObjectDatabase` runs its first
statement, and again each time a parked connection reopens:

* the exclusive per-file lock (``<id>.sqlite.lock``, an ``flock``) — or, for a
  host's :class:`~._locks.LockTable`, the refusal message — so one ID is live
  in one host only;
* the files beside the database (:func:`name_path`, :func:`lock_path`);
* a torn first write of a new file is started afresh (nothing was committed
  to it);
* the connection's settings: Cloudflare's limits, defensive mode, EXCLUSIVE
  locking when the file is the connection's alone, WAL entry (or an in-memory
  journal for ``durability="none"``), ``synchronous`` and foreign keys.

Nothing here keeps state; it never touches trio.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Literal

import apsw

from . import _cf
from .errors import ObjectLockedError

__all__ = ["Durability", "name_path", "lock_path", "lock_file", "locked_error", "connect"]

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
    journal (see :func:`connect`). If power fails during that very write, the
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


def connect(path: Path, durability: Durability, statement_cache: int, *, exclusive: bool) -> apsw.Connection:
    """Open the object's file with Cloudflare's limits and dohost's journal settings."""
    new = _is_new_file(path)
    conn = apsw.Connection(str(path), statementcachesize=statement_cache)
    conn.set_busy_timeout(0)
    conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)  # CF: sqlite.c++ setupSecurity
    for code, value in _LIMITS:
        conn.limit(code, value)
    # The object's file belongs to this connection alone (the lock taken before it
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
    if durability == "none":
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
    conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
