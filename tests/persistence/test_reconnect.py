"""A parked object's connection reopened by ``_open.reconnect`` is set up as its first open was."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import apsw
import pytest

from persistence import LockTable, ObjectDatabase
from persistence._open import _LIMITS


def _settings(db: ObjectDatabase) -> dict[str, Any]:
    conn = db._conn
    db._auth.internal = True  # dohost's own pragmas, refused to user SQL
    try:
        pragmas = {p: conn.execute(f"PRAGMA {p}").fetchall()[0][0]
                   for p in ("locking_mode", "journal_mode", "synchronous", "foreign_keys", "cache_size",
                             "wal_autocheckpoint", "temp_store", "trusted_schema")}
    finally:
        db._auth.internal = False
    return {
        **pragmas,
        "limits": [conn.limit(code, -1) for code, _ in _LIMITS],
        "defensive": conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1),
        "checkpoint_on_close": conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, -1),
        "authorizer": conn.authorizer is db._auth,
        "vfs": conn.vfsname("main"),
    }


@pytest.mark.parametrize("durability", ["full", "normal", "none"])
@pytest.mark.parametrize("history", [True, False])
def test_a_reopened_parked_connection_has_every_setting_and_hook_of_its_first_open(tmp_path, durability, history):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability=durability,
                            pitr_retention_ms=86_400_000.0 if history else 0)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.commit()
        if db._reading:
            db.end_read()
        db.ensure_sync_level()  # a new file's first commit leaves its level to the next transaction
        first = _settings(db)
        assert db.park() is True
        db._conn.txn_state()  # reopens it
        assert _settings(db) == first
        db.sql.exec("INSERT INTO t VALUES (1, 2)")
        db.commit()
        if history:
            assert db.history is not None and db.history._commits  # the WAL hook is back
            mark = db.current_bookmark()
            db.sql.exec("DELETE FROM t")
            db.commit()
            db.history.schedule_restore(mark)
        db.close()
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability=durability,
                            pitr_retention_ms=86_400_000.0 if history else 0)
        assert [tuple(r.values()) for r in db.sql.exec("SELECT k, v FROM t")] == [(1, 2)]
        db.close()
    finally:
        table.close()


def test_a_spare_cursor_closed_with_an_unfinished_one_at_a_park_is_not_reused(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.sql.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        db.commit()
        read = "SELECT v FROM t WHERE k = ?"
        assert db.sql.exec(read, 1).one() == {"v": "a"}
        assert db.sql.exec(read, 2).one() == {"v": "b"}  # one() left its cursor spare
        unfinished = db.sql.exec("SELECT k FROM t ORDER BY k")
        assert next(unfinished) == {"k": 1}
        assert db.park() is True  # the unfinished statement's cursors are closed, the spare too
        assert db.sql.exec(read, 1).one() == {"v": "a"}
        assert db.sql.exec(read, 2).one() == {"v": "b"}
        db.close()
    finally:
        table.close()


def test_a_park_lets_go_of_the_closed_connections_spare_cursor(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.sql.exec("INSERT INTO t VALUES (1, 'a')")
        db.commit()
        assert db.sql.exec("SELECT v FROM t WHERE k = ?", 1).one() == {"v": "a"}
        assert db._spare is not None  # one() left its cursor spare
        assert db.park() is True
        assert db._spare is None  # nothing of the closed connection stays with the parked object
        assert db.sql.exec("SELECT v FROM t WHERE k = ?", 1).one() == {"v": "a"}
        db.close()
    finally:
        table.close()


@pytest.mark.parametrize("history", [True, False])
def test_a_parked_object_keeps_no_apsw_object_of_its_closed_connection_alive(tmp_path, history):
    # A parked object's closed apsw connection was kept alive by its history:
    # ~0.76 KiB each, for every parked object of the process.
    import gc
    import weakref

    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability="full",
                            pitr_retention_ms=86_400_000.0 if history else 0)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.commit()
        for value in range(2):  # once on the first connection, once on a reopened one
            db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", 1, value)
            assert db.sql.exec("SELECT v FROM t WHERE k = ?", 1).one() == {"v": value}
            db.commit()
            if history:
                db.current_bookmark()
            closed = weakref.ref(db._conn)
            assert db.park() is True
            gc.collect()
            assert closed() is None
        assert db.sql.exec("SELECT v FROM t WHERE k = ?", 1).one() == {"v": 1}
        db.close()
    finally:
        table.close()


def _other_connection_reads(path) -> bool:
    """Whether a plain SQLite connection (default VFS, POSIX locks) can read the object's file now."""
    other = apsw.Connection(str(path))
    try:
        other.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        return True
    except apsw.BusyError:
        return False
    finally:
        other.close()


@contextmanager
def _object_with_a_table(tmp_path: Any, **options: Any) -> Iterator[ObjectDatabase]:
    """An object (its file ``o.sqlite``, a lock table's lock) with an empty table ``t`` committed."""
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, **options)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.commit()
        yield db
    finally:
        table.close()


@pytest.mark.parametrize("durability", ["full", "normal", "none"])
def test_other_sqlite_connections_are_refused_while_the_object_is_open_and_again_after_a_reopen(tmp_path, durability):
    # EXCLUSIVE locking mode holds SQLite's lock while the connection is open: another
    # connection, as a sqlite3 shell would open it, is refused at the first open and at
    # every reopen; a parked object's file holds no lock.
    with _object_with_a_table(tmp_path, durability=durability) as db:
        assert not _other_connection_reads(tmp_path / "o.sqlite")
        assert db.park() is True
        assert _other_connection_reads(tmp_path / "o.sqlite")
        db.sql.exec("INSERT INTO t VALUES (1, 2)")  # reopens
        db.commit()
        assert not _other_connection_reads(tmp_path / "o.sqlite")
        db.close()
        assert _other_connection_reads(tmp_path / "o.sqlite")


def test_an_object_opened_while_another_connection_reads_its_file_is_refused_as_before(tmp_path):
    with _object_with_a_table(tmp_path) as db:
        assert db.park() is True
        other = apsw.Connection(str(tmp_path / "o.sqlite"))
        try:
            other.execute("BEGIN; SELECT count(*) FROM t").fetchall()  # holds SQLite's shared lock
            with pytest.raises(apsw.BusyError):
                db.sql.exec("SELECT * FROM t").toArray()
            other.execute("COMMIT")
        finally:
            other.close()
        assert db.sql.exec("SELECT count(*) AS n FROM t").one() == {"n": 0}
        db.close()


def test_a_reopen_refused_by_another_connections_lock_closes_what_it_opened_and_stays_parked(tmp_path):
    with _object_with_a_table(tmp_path) as db:
        assert db.park() is True
        files = len(os.listdir("/proc/self/fd"))
        other = apsw.Connection(str(tmp_path / "o.sqlite"))
        try:
            other.execute("PRAGMA locking_mode=EXCLUSIVE; SELECT count(*) FROM t").fetchall()  # keeps the file
            with pytest.raises(apsw.BusyError):
                db.sql.exec("SELECT * FROM t").toArray()
            assert db.parked
        finally:
            other.close()
        # (SQLite keeps a closed descriptor while another connection of the process holds
        # POSIX locks on the file, and closes it with that connection.)
        assert len(os.listdir("/proc/self/fd")) == files
        assert db.sql.exec("SELECT count(*) AS n FROM t").one() == {"n": 0}
        db.close()


@pytest.mark.parametrize("durability", ["full", "none"])
def test_foreign_keys_are_enforced_at_the_first_open_and_after_a_reopen(tmp_path, durability):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability=durability)
        db.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
        db.sql.exec("CREATE TABLE k(p INTEGER REFERENCES p(id))")
        db.commit()
        for _ in range(2):
            assert db._conn.config(apsw.SQLITE_DBCONFIG_ENABLE_FKEY, -1) == 1
            assert db.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}
            with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
                db.sql.exec("INSERT INTO k VALUES (7)")
            db.rollback()
            assert db.park() is True
        db.close()
    finally:
        table.close()


@pytest.fixture
def db(tmp_path: Any) -> Iterator[ObjectDatabase]:
    """An object's database that can park (its lock in a LockTable), closed after the test."""
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        yield db
        db.close()
    finally:
        table.close()


SETTINGS_OFF_DEFAULT = [
    ("PRAGMA foreign_keys = OFF", "foreign_keys", 0),
    ("PRAGMA recursive_triggers = yes", "recursive_triggers", 1),
    ("PRAGMA reverse_unordered_selects = 1", "reverse_unordered_selects", 1),
    ("PRAGMA ignore_check_constraints = true", "ignore_check_constraints", 1),
    ("PRAGMA LEGACY_ALTER_TABLE = on", "legacy_alter_table", 1),
]


@pytest.mark.parametrize(("statement", "name", "value"), SETTINGS_OFF_DEFAULT)
def test_a_connection_setting_user_sql_made_holds_across_a_park_and_reopen(db, statement, name, value):
    db.sql.exec(statement)
    db.commit()
    for _ in range(3):
        assert db.sql.exec(f"PRAGMA {name}").one() == {name: value}
        db.commit()
        assert db.park() is True


def test_foreign_keys_off_holds_across_a_park_so_an_orphan_row_is_accepted_as_before(db):
    db.sql.exec("PRAGMA foreign_keys = OFF")
    db.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    db.sql.exec("CREATE TABLE k(p INTEGER REFERENCES p(id))")
    db.commit()
    assert db.park() is True
    db.sql.exec("INSERT INTO k VALUES (7)")  # no parent row: accepted with foreign keys off
    db.commit()
    assert db.sql.exec("SELECT count(*) AS n FROM k").one() == {"n": 1}


def test_a_foreign_keys_pragma_inside_a_transaction_changes_nothing_before_or_after_a_park(db):
    db.sql.exec("CREATE TABLE t(x)")
    db.sql.exec("INSERT INTO t VALUES (1)")  # the implicit transaction is open now
    db.sql.exec("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction, as in SQLite
    db.commit()
    assert db.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}
    db.commit()
    assert db.park() is True
    assert db.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}


def test_case_sensitive_like_holds_across_a_park(db):
    db.sql.exec("PRAGMA case_sensitive_like = ON")
    for _ in range(2):
        assert db.sql.exec("SELECT 'ABC' LIKE 'abc' AS hit").one() == {"hit": 0}
        db.commit()
        assert db.park() is True


@pytest.mark.parametrize("delete_alarm", [True, False])
def test_delete_all_puts_connection_settings_back_to_their_defaults_as_cloudflares_reset_of_the_database(db, delete_alarm):
    # CF: workerd util/sqlite-kv.c++ SqliteKv::deleteAll calls SqliteDatabase::reset, which
    # closes the connection and opens a new one (foreign keys on: SQLITE_DEFAULT_FOREIGN_KEYS=1).
    db.sql.exec("PRAGMA foreign_keys = OFF")
    db.sql.exec("PRAGMA case_sensitive_like = ON")
    db.sql.exec("PRAGMA recursive_triggers = ON")
    db.sql.exec("CREATE TABLE t(x)")
    db.commit()
    db.delete_all(delete_alarm=delete_alarm)
    db.commit()
    for _ in range(2):
        assert db.sql.exec("PRAGMA foreign_keys").one() == {"foreign_keys": 1}
        assert db.sql.exec("PRAGMA recursive_triggers").one() == {"recursive_triggers": 0}
        assert db.sql.exec("SELECT 'ABC' LIKE 'abc' AS hit").one() == {"hit": 1}
        db.sql.exec("CREATE TABLE IF NOT EXISTS p(id INTEGER PRIMARY KEY)")
        db.sql.exec("CREATE TABLE IF NOT EXISTS k(p INTEGER REFERENCES p(id))")
        with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
            db.sql.exec("INSERT INTO k VALUES (7)")
        db.rollback()
        assert db.park() is True


@pytest.mark.parametrize(("argument", "hit"), [("0x1", 0), ("ON", 0), ("OFF", 1), ("'onx'", 1)])
def test_case_sensitive_like_holds_across_a_park_as_sqlite_read_its_argument(db, argument, hit):
    # SQLite reads 0x1 as 1 (a hex integer) and 'onx' as its default, off: what holds is
    # what LIKE does, not a second reading of the argument.
    db.sql.exec(f"PRAGMA case_sensitive_like = {argument}")
    for _ in range(2):
        assert db.sql.exec("SELECT 'ABC' LIKE 'abc' AS hit").one() == {"hit": hit}
        db.commit()
        assert db.park() is True
