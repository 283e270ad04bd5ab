"""dohost's own state of an object in and beside its file: alarm, name, bookmarks.

Owns :class:`Metadata`, a part of :class:`~._engine.ObjectDatabase`:

* ``_cf_METADATA``, workerd's table for the alarm and local bookmarks; it is
  created by the first write that needs it, never by a read (workerd
  1.20261117.1 keeps none in a fresh file, observed);
* the alarm time, stored as integer nanoseconds, exact to the millisecond
  fraction; ``alarm_changed`` tells the host an alarm moved in the open
  transaction;
* the object's name, in an extended attribute of the database file
  (``_open.NAME_XATTR``; ``<id>.sqlite.name`` beside it, written whole by
  rename, where the filesystem has no user attributes), fsync'd under
  durability ``"full"``;
* bookmarks (from point-in-time history when it is kept, else a counter);
* whole-file operations: ``deleteAll()`` (which leaves the file as workerd's
  reset does) and ``databaseSize``.

Every write goes through the open implicit transaction: nothing here is
acknowledged before the engine's ``commit()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw

from . import _cf
from ._bookmarks import render_counter
from ._open import NAME_XATTR, NO_XATTR_ERRNOS, Durability, name_path, read_name
from .errors import TransactionError

if TYPE_CHECKING:
    from ._authorizer import Authorizer
    from ._kv import KvStore
    from ._pitr import History

__all__ = ["Metadata"]


class Metadata:
    """Alarm, name, bookmarks and whole-file operations of :class:`~._engine.ObjectDatabase`."""

    path: Path
    durability: Durability
    history: History | None
    kv_store: KvStore
    alarm_changed: bool
    _meta_exists: bool | None
    _kv_exists: bool | None
    _alarm_unknown: bool
    _sp_names: list[str]
    _conn: apsw.Connection
    _auth: Authorizer
    created: bool
    #: The name :meth:`write_name` stored in this open (a file this open created has no other).
    _name_written: str | None = None

    if TYPE_CHECKING:

        def _check_open(self) -> None: ...

        def _internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor: ...

        def _internal_write(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...

        def _kv_ready(self) -> bool: ...

        def _forget_caches(self) -> None: ...

        def _sync_file(self) -> None: ...

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

        It is kept with the file (an extended attribute, see :meth:`write_name`),
        not in it: workerd 1.20261117.1 keeps no name in the object's SQLite
        file, so a table for it would show in ``sqlite_schema`` and
        ``databaseSize`` (observed, tests/conformance). Files written by
        earlier dohost versions kept it in ``<id>.sqlite.name`` or
        ``_cf_METADATA``; both are still read (not for a file this open created:
        its only name is the one this open wrote).
        """
        if self.created:
            # This open made the file, under the object's lock: no name but the one it wrote
            # (no getxattr for every new object).
            return self._name_written
        name = read_name(self.path)
        if name is not None:
            return name
        value = self._meta_get(_cf.METADATA_KEY_ACTOR_NAME)
        return value if isinstance(value, str) else None

    def record_name(self, name: str) -> None:
        """Store the object's name with its file, unless it is stored already."""
        if self.stored_name != name:
            self.write_name(name)

    def write_name(self, name: str) -> None:
        """Store the object's name with its file (the caller knows it is not stored yet).

        An extended attribute of the database file (one syscall, no file of its
        own). Under ``durability="full"`` the file is then fsync'd — one fsync
        for the attribute and, for a new file, its first page, which the first
        commit would sync anyway (``_sync_first_page``): the host writes the name
        in the first commit's worker thread just before that commit, whose WAL
        sync also syncs the folder. So an object with an acknowledged commit
        has a durable name. ``"normal"`` does not survive a power cut anyway,
        so no fsync there. Where the filesystem has no user attributes (or the
        name is too long for one) the name goes to ``<id>.sqlite.name``,
        written whole by rename (fsync'd under ``"full"``).
        """
        # The name is a fixed fact of the ID: writing it early (before the commit
        # it rides with) can never record a wrong one.
        data = name.encode("utf-8")
        try:
            os.setxattr(self.path, NAME_XATTR, data)
        except OSError as exc:
            if exc.errno not in NO_XATTR_ERRNOS:
                raise
            self._write_name_file(data)
            self._name_written = name
            return
        self._name_written = name
        if self.durability == "full":
            self._sync_file()

    def _write_name_file(self, data: bytes) -> None:
        target = str(name_path(self.path))
        tmp = target + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data):]
            if self.durability == "full":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)

    def current_bookmark(self) -> str:
        """A bookmark in Cloudflare's format; later calls sort after earlier ones."""
        self._check_open()
        if self.history is not None:
            return self.history.current_bookmark()
        stored = self._meta_get(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK)
        n = 0 if stored is None else int(stored) + 1  # CF: the first bookmark is 0
        self._meta_set(_cf.METADATA_KEY_LOCAL_DEV_BOOKMARK, n)
        return render_counter(n)

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
        if self._auth.settings:
            self._reset_settings()
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

    def _reset_settings(self) -> None:
        """Put the connection settings user SQL set (``_cf.CONNECTION_SETTINGS``) back to a new connection's.

        CF: workerd util/sqlite-kv.c++ ``SqliteKv::deleteAll`` resets the database
        (``SqliteDatabase::reset``): the connection closes and a new one opens, with
        foreign keys on and every other setting off. Here the connection stays (the
        wipe is part of the implicit transaction), so its settings are set back.
        """
        settings = self._auth.settings
        for name in settings:
            if name == "foreign_keys":
                # The flag itself: ``PRAGMA foreign_keys`` is a no-op inside the transaction.
                self._conn.config(apsw.SQLITE_DBCONFIG_ENABLE_FKEY, 1)
            else:
                self._internal(f"PRAGMA {name}=OFF")  # name from _cf.CONNECTION_SETTINGS
        settings.clear()

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


# SQLite reserves names starting "sqlite_" in any case; LIKE's "_" is a wildcard, so escape it.
_NOT_SQLITE = "NOT (name LIKE 'sqlite\\_%' ESCAPE '\\')"


def _ms_to_ns(ms: float) -> int:
    """Milliseconds to integer nanoseconds without the float error of ``ms * 1e6``."""
    whole = int(ms)
    return whole * 1_000_000 + round((ms - whole) * 1_000_000)


def _q(name: str) -> str:
    return name.replace('"', '""')
