"""Parking an idle object's connection while the object stays live.

Owns :class:`Parking`, a part of :class:`~._engine.ObjectDatabase`, and the
``_Parked`` stand-in for a closed connection. Parking closes the connection
(giving back its open files and SQLite's page and statement caches) but keeps
the object's lock, so no other host can open it meanwhile. It happens only
between transactions, so nothing uncommitted is dropped; the WAL is left in
place (no checkpoint, no fsync on the caller's thread) and read back on
reopen. Any use of the connection reopens it with the same settings and
authorizer, and tells point-in-time history and ``on_unpark``. The settings
include what user SQL set for the connection's life (``PRAGMA foreign_keys
= OFF`` and the other ``_cf.CONNECTION_SETTINGS``): read at the park, set
again at the reopen, as a live object keeps its connection on Cloudflare.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import apsw

from ._open import Durability, reconnect
from ._sql import close_connection
from .errors import DatabaseClosedError

if TYPE_CHECKING:
    from ._authorizer import Authorizer
    from ._kv import KvStore
    from ._locks import LockTable
    from ._pitr import History

__all__ = ["Parking"]


class Parking:
    """Parking and unparking of :class:`~._engine.ObjectDatabase` (see the module docstring)."""

    path: Path
    durability: Durability
    history: History | None
    kv_store: KvStore
    _conn: apsw.Connection
    _auth: Authorizer
    _locks: LockTable | None
    _statement_cache: int
    _parked: bool
    _closed: bool
    _txn_open: bool
    _reading: bool
    _spare: Any
    end_read: Callable[[], None]

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
        if self._reading:
            self.end_read()
        self.kv_store.cancel_list()
        if self.history is not None:
            self.history.park()  # the WAL stays; history may archive old commits first
        conn = self._conn
        if self._auth.settings:
            _read_settings(conn, self._auth)
        # No checkpoint at this close: it would fsync the WAL and the file on the
        # caller's thread; the WAL stays and the reopen reads it back.
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        close_connection(conn)
        # The spare cursor ``one()`` gave back is the closed connection's: dropped now,
        # so a parked object keeps no apsw objects of it (the next statement after the
        # reopen made a new cursor anyway, after an exception asking the old one).
        self._spare = None
        self._conn = _Parked(self)  # type: ignore[assignment]
        self._parked = True
        return True

    def _unpark(self) -> apsw.Connection:
        if self._closed:
            raise DatabaseClosedError(f"{self.path.name}: the object's database is closed")
        conn = reconnect(self.path, self.durability, self._statement_cache, wal=self.history is not None)
        if self._auth.settings:
            _restore_settings(conn, self._auth.settings)
        conn.authorizer = self._auth
        self._conn = conn
        self._parked = False
        if self.history is not None:
            self.history.unpark(conn)
        if self.on_unpark is not None:
            self.on_unpark()
        return conn

    #: Called after a parked connection reopens (the host counts open files); set by ObjectDatabase.
    on_unpark: Callable[[], None] | None


def _read_settings(conn: apsw.Connection, auth: Authorizer) -> None:
    """Read the connection settings user SQL set (their values now, 0 or 1) into ``auth.settings``.

    A ``PRAGMA foreign_keys`` inside a transaction is a no-op, so what was
    written is not always what holds: each is read back. SQLite cannot report
    ``case_sensitive_like``: what ``LIKE`` does is read instead (a second
    reading of the argument could differ from SQLite's: ``0x1`` is on).
    """
    settings = auth.settings
    auth.internal = True
    try:
        for name in settings:
            if name == "case_sensitive_like":
                settings[name] = 0 if conn.execute("SELECT 'A' LIKE 'a'").fetchall()[0][0] else 1
            else:
                settings[name] = 1 if conn.execute(f"PRAGMA {name}").fetchall()[0][0] else 0
    finally:
        auth.internal = False


def _restore_settings(conn: apsw.Connection, settings: dict[str, int | None]) -> None:
    """Set a reopened connection's settings as the parked one had them (before its authorizer)."""
    for name, on in settings.items():
        if on is not None:
            conn.execute(f"PRAGMA {name}={on}")  # name from _cf.CONNECTION_SETTINGS, on 0 or 1


class _Parked:
    """Stands in for a parked object's connection: any use reopens it first."""

    __slots__ = ("_db",)

    def __init__(self, db: Parking) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        db = self._db
        # A caller may hold this stand-in across the reopen (``conn = db._conn``):
        # once the real connection is back, forward to it.
        current: object = db._conn
        conn = db._unpark() if current is self else db._conn
        return getattr(conn, name)

