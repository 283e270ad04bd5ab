"""ObjectDatabase: connection set-up, implicit transactions and hooks, savepoints, the lock."""

from __future__ import annotations

import hashlib
import os
import shutil
import re
import subprocess
import sys
import textwrap

import apsw
import pytest

from persistence import (
    CommitFailedError,
    DatabaseClosedError,
    ObjectDatabase,
    ObjectLockedError,
    SqlError,
    StorageError,
    TransactionError,
    compile_list_options,
)
from persistence import _cf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Recorder:
    """StorageHooks that log their calls (workerd's pollAndExpectCalls style)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_next_commit: BaseException | None = None

    def on_write(self) -> None:
        self.calls.append("on_write")

    def before_commit(self) -> None:
        self.calls.append("before_commit")
        if self.fail_next_commit is not None:
            exc, self.fail_next_commit = self.fail_next_commit, None
            raise exc

    def on_commit(self) -> None:
        self.calls.append("on_commit")

    def on_rollback(self) -> None:
        self.calls.append("on_rollback")

    def take(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def hooks():
    return Recorder()


@pytest.fixture
def db(tmp_path, hooks):
    database = ObjectDatabase(tmp_path / "object.sqlite", hooks=hooks)
    yield database
    database.close()


def pragma(db, name):
    return db._exec_internal(f"PRAGMA {name}").fetchall()[0][0]


def exact(message: str) -> str:
    return rf"^{re.escape(message)}$"


def file_digest(db) -> str:
    db.commit()
    h = hashlib.sha256()
    for suffix in ("", "-wal"):
        p = db.path.with_name(db.path.name + suffix)
        h.update(p.read_bytes() if p.exists() else b"<none>")
    return h.hexdigest()


# -- connection set-up -------------------------------------------------------------------------


@pytest.mark.parametrize(("durability", "level"), [("full", 2), ("normal", 1)])
def test_the_connection_is_set_up_deliberately(tmp_path, durability, level):
    db = ObjectDatabase(tmp_path / "o.sqlite", durability=durability)
    try:
        assert pragma(db, "journal_mode") == "wal"
        # A new file starts unsynced; after its first commit that writes, the next
        # transaction sets the durability's level (before it begins).
        assert pragma(db, "synchronous") == 0
        db.sql.exec("CREATE TABLE t (x)")
        db.commit()
        db.sql.exec("INSERT INTO t VALUES (1)")
        assert pragma(db, "synchronous") == level
        db.commit()
        assert pragma(db, "foreign_keys") == 1
        assert db._conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1) == 1
        for name, value in _cf.SQLITE_LIMITS.items():
            assert db._conn.limit(getattr(apsw, name), -1) == value, name
    finally:
        db.close()


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=exact("durability: expected 'full', 'normal' or 'none', got 'off'")):
        ObjectDatabase(tmp_path / "a.sqlite", durability="off")
    with pytest.raises(ValueError, match=exact("binding: expected 'cloudflare' or 'native', got 'js'")):
        ObjectDatabase(tmp_path / "b.sqlite", binding="js")


def test_defensive_mode_protects_the_schema(db):
    db._auth.internal = True  # even dohost's own statements cannot write the schema directly
    try:
        with pytest.raises(apsw.Error):
            db._conn.execute("PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'x'")
    finally:
        db._auth.internal = False


# -- implicit transactions and hooks ------------------------------------------------------------


def test_reads_open_no_transaction(db, hooks):
    db.sql.exec("SELECT 1").one()
    db.kv.get("a")
    db.get_alarm()
    assert not db.in_transaction and not db.dirty
    assert db.commit() is False
    assert hooks.take() == []


def test_the_first_write_opens_the_transaction_and_calls_on_write_once(db, hooks):
    db.sql.exec("CREATE TABLE t (x)")
    assert db.in_transaction and db.dirty
    db.sql.exec("INSERT INTO t VALUES (1)")
    db.kv.put("a", 1)
    assert hooks.take() == ["on_write"]
    assert db.commit() is True
    assert hooks.take() == ["before_commit", "on_commit"]
    assert not db.in_transaction and not db.dirty and db.commits == 1
    db.kv.put("b", 2)
    db.commit()
    assert hooks.take() == ["on_write", "before_commit", "on_commit"]


def test_each_kind_of_write_marks_the_transaction_dirty(db, hooks):
    writes = [
        lambda: db.sql.exec("CREATE TABLE t (x)"),
        lambda: db.sql.exec("SELECT 1; INSERT INTO t VALUES (1)"),
        lambda: db.kv.put("k", 1),
        lambda: db.kv.delete("k"),
        lambda: db.kv_store.put_many({"a": 1, "b": 2}),
        lambda: db.kv_store.delete_many(["a"]),
        lambda: db.set_alarm(5.0),
        lambda: db.delete_all(),
    ]
    for write in writes:
        write()
        assert db.dirty
        assert db.commit() is True
        assert hooks.take() == ["on_write", "before_commit", "on_commit"]


def test_a_statement_that_fails_after_writing_still_marks_the_transaction(db, hooks):
    db.sql.exec("CREATE TABLE u (x UNIQUE)")
    db.commit()
    hooks.take()
    with pytest.raises(SqlError, match=exact("UNIQUE constraint failed: u.x: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)")):
        db.sql.exec("INSERT OR FAIL INTO u VALUES (1), (1)")  # FAIL keeps the first row
    assert db.dirty and hooks.take() == ["on_write"]
    assert db.commit() is True
    assert db.sql.exec("SELECT count(*) AS n FROM u").one().n == 1


def test_rollback_drops_the_writes_and_tells_the_host(db, hooks):
    db.sql.exec("CREATE TABLE t (x)")
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (1)")
    db.kv.put("k", 1)
    hooks.take()
    db.rollback()
    assert hooks.take() == ["on_rollback"]
    assert not db.in_transaction
    assert db.sql.exec("SELECT count(*) AS n FROM t").one().n == 0
    assert db.kv.get("k") is None
    db.rollback()  # nothing open: nothing happens
    assert hooks.take() == []


def test_a_failing_before_commit_fails_the_commit_and_rolls_back(db, hooks):
    db.kv.put("k", 1)
    hooks.fail_next_commit = OSError("disk on fire")
    with pytest.raises(CommitFailedError, match=r"^object\.sqlite: commit failed: OSError\('disk on fire'\)$"):
        db.commit()
    assert hooks.take() == ["on_write", "before_commit", "on_rollback"]
    assert db.kv.get("k") is None and not db.in_transaction
    db.kv.put("k", 2)
    assert db.commit() is True
    assert db.kv.get("k") == 2


def test_cancellation_during_commit_rolls_back_and_propagates_unchanged(db, hooks):
    class Cancelled(BaseException):
        pass

    db.kv.put("k", 1)
    hooks.fail_next_commit = Cancelled()
    with pytest.raises(Cancelled):
        db.commit()
    assert db.kv.get("k") is None and not db.in_transaction


def test_alarm_changed_is_set_by_set_alarm_and_cleared_by_rollback(db):
    assert db.alarm_changed is False
    db.set_alarm(10.0)
    assert db.alarm_changed is True
    db.rollback()
    assert db.alarm_changed is False and db.get_alarm() is None


def test_sqlite_rolling_back_on_its_own_is_reported_and_the_nesting_survives(db, hooks):
    db.sql.exec("CREATE TABLE u (a PRIMARY KEY)")
    db.commit()
    hooks.take()
    db.sql.exec("INSERT INTO u VALUES (1)")

    def callback():
        db.sql.exec("INSERT INTO u VALUES (2)")
        with pytest.raises(SqlError, match=exact("UNIQUE constraint failed: u.a: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)")):
            db.sql.exec("INSERT OR ROLLBACK INTO u VALUES (2)")
        db.sql.exec("INSERT INTO u VALUES (3)")
        return "done"

    assert db.transaction_sync(callback) == "done"
    assert hooks.take() == ["on_write", "on_rollback", "on_write"]
    assert db.commit() is True
    assert [r.a for r in db.sql.exec("SELECT a FROM u")] == [3]


def test_a_trigger_raising_rollback_is_handled_the_same_way(db, hooks):
    db.sql.exec(
        "CREATE TABLE t (x); CREATE TRIGGER no_sevens BEFORE INSERT ON t WHEN new.x = 7 "
        "BEGIN SELECT RAISE(ROLLBACK, 'no sevens'); END"
    )
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (1)")
    with pytest.raises(SqlError, match=exact("no sevens: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)")):
        db.sql.exec("INSERT INTO t VALUES (7)")
    db.sql.exec("INSERT INTO t VALUES (2)")
    db.commit()
    assert [r.x for r in db.sql.exec("SELECT x FROM t")] == [2]


def test_a_partly_read_returning_cursor_does_not_block_the_commit(db):
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, x)")
    db.commit()
    cursor = db.sql.exec("INSERT INTO t (x) VALUES (1), (2), (3) RETURNING id")
    assert cursor.next() == {"done": False, "value": {"id": 1}}
    assert cursor.rowsWritten == 3
    assert db.commit() is True  # no write statement is left in progress
    assert [*cursor] == [{"id": 2}, {"id": 3}] and cursor.rowsRead == 3
    empty = db.sql.exec("INSERT INTO t (x) SELECT 1 WHERE 0 RETURNING id, x")
    assert ([*empty], empty.columnNames) == ([], ["id", "x"])


def test_a_partly_read_select_survives_the_commit(db):
    db.sql.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2)")
    db.commit()
    cursor = db.sql.exec("SELECT x FROM t")
    assert next(cursor) == {"x": 1}
    db.kv.put("k", 1)
    assert db.commit() is True
    assert [*cursor] == [{"x": 2}]


# -- savepoints (used by the async transaction()) -----------------------------------------------


def test_savepoints_nest_release_and_roll_back(db):
    db.sql.exec("CREATE TABLE t (x)")
    outer = db.savepoint()
    db.sql.exec("INSERT INTO t VALUES (1)")
    inner = db.savepoint()
    assert (outer, inner) == (0, 1)
    db.sql.exec("INSERT INTO t VALUES (2)")
    db.rollback_to(inner)
    db.release(outer)
    db.commit()
    assert [r.x for r in db.sql.exec("SELECT x FROM t")] == [1]


def test_savepoints_use_workerds_names(db, monkeypatch):
    seen = []
    original = db._exec_internal
    monkeypatch.setattr(db, "_exec_internal", lambda sql, *a: seen.append(sql) or original(sql, *a))
    depth = db.savepoint()
    db.release(depth)
    depth = db.savepoint(_cf.TRANSACTION_SYNC_SAVEPOINT_PREFIX)
    db.rollback_to(depth, _cf.TRANSACTION_SYNC_SAVEPOINT_PREFIX)
    assert [s for s in seen if "_cf_" in s] == [
        "SAVEPOINT _cf_savepoint_0",
        "RELEASE _cf_savepoint_0",
        "SAVEPOINT _cf_sync_savepoint_0",
        "ROLLBACK TO _cf_sync_savepoint_0",
        "RELEASE _cf_sync_savepoint_0",
    ]


def test_only_the_innermost_savepoint_may_end(db):
    outer = db.savepoint()
    db.savepoint()
    with pytest.raises(TransactionError, match=exact(_cf.NESTED_TXN_ROLLBACK_MESSAGE)):
        db.rollback_to(outer)
    with pytest.raises(TransactionError, match=exact(_cf.NESTED_TXN_ROLLBACK_MESSAGE)):
        db.release(outer)
    with pytest.raises(TransactionError, match=exact(_cf.NESTED_TXN_ROLLBACK_MESSAGE)):
        db.release(1, _cf.TRANSACTION_SYNC_SAVEPOINT_PREFIX)  # right depth, wrong kind


def test_commit_waits_for_open_savepoints(db):
    depth = db.savepoint()
    with pytest.raises(TransactionError, match=r"^cannot commit while transaction\(\)/transactionSync\(\) is running$"):
        db.commit()
    db.release(depth)
    db.commit()


def test_transaction_sync_releases_its_savepoint_on_success_and_failure(db):
    assert db.transaction_sync(lambda: db.kv.put("a", 1)) is None
    with pytest.raises(ZeroDivisionError):
        db.transaction_sync(lambda: 1 / 0)
    assert db._sp_depth == 0
    assert db.commit() is True


# -- closing, reopening, the lock ---------------------------------------------------------------


def test_close_drops_uncommitted_writes_and_reopening_sees_committed_ones(tmp_path, hooks):
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, hooks=hooks)
    db.kv.put("committed", 1)
    db.sql.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    db.commit()
    db.kv.put("uncommitted", 2)
    db.close()
    assert hooks.take()[-1] == "on_rollback"
    db = ObjectDatabase(path)
    try:
        assert db.kv.get("committed") == 1 and db.kv.get("uncommitted") is None
        assert db.sql.exec("SELECT x FROM t").one().x == 1
    finally:
        db.close()


def test_a_closed_database_refuses_every_operation(db):
    cursor = db.sql.exec("SELECT 1")
    db.close()
    db.close()  # idempotent
    closed = r"^object\.sqlite: the object's database is closed$"
    for op in (
        lambda: db.sql.exec("SELECT 1"),
        lambda: db.kv.get("a"),
        lambda: db.kv.put("a", 1),
        lambda: db.kv.list(),
        lambda: db.kv_store.get("a"),
        lambda: db.kv_store.put("a", 1),
        lambda: db.kv_store.list_dict(compile_list_options()),
        lambda: db.get_alarm(),
        lambda: db.transaction_sync(lambda: None),
        lambda: db.delete_all(),
        lambda: db.database_size(),
    ):
        with pytest.raises(DatabaseClosedError, match=closed):
            op()
    assert db.closed
    del cursor


def test_a_second_open_in_this_process_is_refused_until_close(tmp_path):
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path)
    with pytest.raises(ObjectLockedError, match=r"this Durable Object is live in another host"):
        ObjectDatabase(path)
    db.close()
    ObjectDatabase(path).close()


@pytest.mark.slow
def test_another_process_cannot_open_a_live_object(tmp_path):
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path)
    db.kv.put("a", 1)
    db.commit()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from persistence import ObjectDatabase, ObjectLockedError
        try:
            ObjectDatabase({str(path)!r}).close()
        except ObjectLockedError as exc:
            print("locked:", exc)
        else:
            print("opened")
        """
    )
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert out.stdout.startswith("locked: "), out.stderr
        assert "only one instance per ID may run" in out.stdout
    finally:
        db.close()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "opened", out.stderr


def test_without_the_lock_flag_no_lock_is_taken(tmp_path):
    path = tmp_path / "o.sqlite"
    first = ObjectDatabase(path, lock=False)
    second = ObjectDatabase(path, lock=False)
    first.close()
    second.close()


# -- bad input changes nothing --------------------------------------------------------------------


def test_bad_input_leaves_the_file_unchanged(db):
    db.sql.exec("CREATE TABLE t (x)")
    db.kv.put("k", 1)
    db.set_alarm(1000.0)
    before = file_digest(db)
    bad = [
        (lambda: db.sql.exec("CREATE TABLE _cf_x (a)"), SqlError),
        (lambda: db.sql.exec("DROP TABLE _cf_KV"), SqlError),
        (lambda: db.sql.exec("BEGIN"), SqlError),
        (lambda: db.sql.exec("ATTACH ':memory:' AS x"), SqlError),
        (lambda: db.sql.exec("PRAGMA journal_mode = DELETE"), SqlError),
        (lambda: db.sql.exec("SELECT sqlite_version()"), SqlError),
        (lambda: db.sql.exec("INSERT INTO t VALUES (?)", 2**60), TypeError),
        (lambda: db.sql.exec("INSERT INTO t VALUES (?)"), SqlError),
        (lambda: db.sql.exec("INSERT INTO t VALUES (?)", b"x" * 8_388_643), SqlError),
        (lambda: db.sql.exec("INSERT INTO t VALUES (1)" + " " * 100_000), SqlError),
        (lambda: db.kv.put("k", b"x" * 8_388_642), SqlError),
        (lambda: db.kv.put("k", {"a": object()}), TypeError),
        (lambda: db.kv.put("k" * 8_388_643, 1), SqlError),
        (lambda: db.kv.put([5], 1), TypeError),
        (lambda: db.kv_store.put_many({"a": 1, "b": {1}}), TypeError),
        (lambda: db.kv.list(start="a", startAfter="b"), TypeError),
        (lambda: db.kv.list(limit=0), TypeError),
        (lambda: db.kv_store.list_dict(compile_list_options(limit=-5)), TypeError),
        (lambda: db.delete_all() if db.savepoint() is None else db.delete_all(), TransactionError),
    ]
    for op, error in bad:
        with pytest.raises(error):
            op()
        while db._sp_depth:
            db.release(db._sp_depth - 1)
    assert file_digest(db) == before


# -- misc -------------------------------------------------------------------------------------


def test_prepared_statements_are_cached_by_sql_text(db):
    db.sql.exec("SELECT ? AS v", 1).one()
    db.sql.exec("SELECT ? AS v", 1).one()  # the first known read also prepares the read transaction's BEGIN
    before = db._conn.cache_stats()
    for i in range(5):
        assert db.sql.exec("SELECT ? AS v", i).one().v == i
    after = db._conn.cache_stats()
    assert after["hits"] - before["hits"] >= 5 and after["misses"] == before["misses"]


def test_a_class_without_sqlite_storage_has_no_sql_or_sync_kv(tmp_path):
    db = ObjectDatabase(tmp_path / "o.sqlite", sqlite_backed=False)
    try:
        with pytest.raises(StorageError, match=exact(_cf.SQL_NOT_ENABLED_WORKERD_MESSAGE)):
            db.sql.exec("SELECT 1")
        for op in (lambda: db.kv.get("a"), lambda: db.kv.list()):
            with pytest.raises(StorageError, match=exact(_cf.KV_NOT_SQLITE_BACKED_MESSAGE)):
                op()
        db.kv_store.put("a", 1)  # the async API still works
        assert db.kv_store.get("a") == 1
    finally:
        db.close()


def test_the_object_name_is_recorded_once(db, hooks):
    assert db.stored_name is None
    db.record_name("alice")
    db.commit()
    hooks.take()
    db.record_name("alice")
    assert hooks.take() == [] and not db.dirty
    assert db.stored_name == "alice"


def _name_after_reopen(path, durability="full"):
    db = ObjectDatabase(path, durability=durability, pitr_retention_ms=0)
    try:
        return db.stored_name
    finally:
        db.close()


def test_the_name_is_kept_in_an_attribute_of_the_file_not_a_file_beside_it(tmp_path):
    probe = tmp_path / "probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        pytest.skip("this filesystem has no user extended attributes")
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, durability="full", pitr_retention_ms=0)
    try:
        db.write_name("room-1")
    finally:
        db.close()
    assert os.getxattr(path, "user.dohost.name") == b"room-1"
    assert not (tmp_path / "o.sqlite.name").exists()
    assert _name_after_reopen(path) == "room-1"


def test_without_user_attributes_the_name_goes_to_a_file_beside_the_database(tmp_path, monkeypatch):
    import errno

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    # A filesystem without user attributes (tmpfs before Linux 6.6, some overlay and
    # network mounts) refuses reads of them as well as writes.
    monkeypatch.setattr(os, "setxattr", refuse)
    monkeypatch.setattr(os, "getxattr", refuse)
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, durability="full", pitr_retention_ms=0)
    try:
        assert db.stored_name is None
        db.record_name("room-2")
        assert db.stored_name == "room-2"
    finally:
        db.close()
    assert (tmp_path / "o.sqlite.name").read_text() == "room-2"
    assert _name_after_reopen(path) == "room-2"


def test_a_name_file_written_by_an_older_dohost_is_still_read(tmp_path):
    path = tmp_path / "o.sqlite"
    ObjectDatabase(path, durability="normal", pitr_retention_ms=0).close()
    (tmp_path / "o.sqlite.name").write_text("legacy")
    assert _name_after_reopen(path, "normal") == "legacy"


def test_an_object_file_torn_while_being_created_starts_afresh(tmp_path):
    # Power lost during the first page write of a new file: no header, no -wal, nothing committed.
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"\x00garbage" * 100)
    db = ObjectDatabase(path)
    try:
        db.kv.put("k", 1)
        db.commit()
        assert db.kv.get("k") == 1
    finally:
        db.close()
    again = ObjectDatabase(path)
    try:
        assert again.kv.get("k") == 1
    finally:
        again.close()


def test_a_file_that_is_not_a_new_object_is_never_truncated(tmp_path):
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"\x00not sqlite" * 10_000)  # larger than any torn first page
    with pytest.raises(apsw.NotADBError, match=r"^file is not a database$"):
        ObjectDatabase(path)
    assert path.stat().st_size == 110_000


def _copy_files(src, dst_dir, name="o.sqlite"):
    """The object's file and its -wal as they are on disk now (the connection stays open)."""
    dst_dir.mkdir()
    for suffix in ("", "-wal"):
        data = (src.parent / (src.name + suffix)).read_bytes()
        (dst_dir / (name + suffix)).write_bytes(data)
    return dst_dir / name


@pytest.mark.parametrize("damage", ["empty", "short", "torn header"])
def test_a_normal_durability_object_whose_first_page_a_power_cut_lost_opens_with_its_commits(tmp_path, damage):
    # Under durability="normal" nothing is synced: a power cut can leave the new file
    # empty, short or torn while its -wal holds commits. SQLite would delete that WAL
    # beside an empty file; the file must open with the commits instead.
    path = tmp_path / "live" / "o.sqlite"
    path.parent.mkdir()
    db = ObjectDatabase(path, durability="normal")
    try:
        assert db.created
        db.sql.exec("CREATE TABLE t (x)")
        db.sql.exec("INSERT INTO t VALUES (42)")
        db.kv.put("k", "v")
        db.commit()
        crashed = _copy_files(path, tmp_path / "crashed")
    finally:
        db.close()
    if damage == "empty":
        crashed.write_bytes(b"")
    elif damage == "short":
        crashed.write_bytes(crashed.read_bytes()[:1000])
    else:
        crashed.write_bytes(b"\x00" * 512 + crashed.read_bytes()[512:])
    again = ObjectDatabase(crashed, durability="normal")
    try:
        assert not again.created
        assert again.sql.exec("SELECT x FROM t").one().x == 42
        assert again.kv.get("k") == "v"
        assert again._exec_internal("PRAGMA quick_check").fetchall() == [("ok",)]
    finally:
        again.close()


def test_an_object_never_committed_whose_first_page_was_lost_starts_afresh(tmp_path):
    path = tmp_path / "live" / "o.sqlite"
    path.parent.mkdir()
    db = ObjectDatabase(path, durability="full")
    try:
        db.sql.exec("CREATE TABLE t (x)")  # written, never committed
        crashed = _copy_files(path, tmp_path / "crashed")
    finally:
        db.close()
    crashed.write_bytes(b"")
    again = ObjectDatabase(crashed, durability="full")
    try:
        assert again.created
        assert again.sql.exec("SELECT count(*) AS n FROM sqlite_schema").one().n == 0
        again.sql.exec("CREATE TABLE t (x)")
        again.commit()
    finally:
        again.close()


def _strace(tmp_path, script: str, calls: str) -> list[str]:
    """The lines of ``strace -f -y -e trace=<calls>`` over ``python -c script`` (skips without strace)."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace"
    subprocess.run(
        ["strace", "-f", "-y", "-e", f"trace={calls}", "-o", str(trace), sys.executable, "-c", script],
        capture_output=True, text=True, check=True,
    )
    return trace.read_text().splitlines()


def test_a_new_object_file_is_synced_at_its_first_commit_before_the_wal_gets_a_header(tmp_path):
    # Opening a new file fsyncs nothing; the first commit (durability "full") syncs the
    # file's first page before SQLite writes the WAL header, so no WAL with a commit can
    # ever sit beside an empty file after a power cut. Counted with strace in a child.
    path = tmp_path / "o.sqlite"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from persistence import ObjectDatabase
        db = ObjectDatabase({str(path)!r}, durability="full", pitr_retention_ms=0)
        print("OPENED", flush=True)
        db.sql.exec("CREATE TABLE t (x)")
        db.commit()
        print("COMMITTED", flush=True)
        db.sql.exec("INSERT INTO t VALUES (1)")
        db.commit()
        print("SECOND", flush=True)
        db.close()
    """)
    lines = _strace(tmp_path, script, "fsync,fdatasync,pwrite64,write")
    opened = next(i for i, line in enumerate(lines) if '"OPENED' in line)
    committed = next(i for i, line in enumerate(lines) if '"COMMITTED' in line)
    assert not any("sync(" in line for line in lines[:opened])
    first = [line for line in lines[opened:committed] if "sync(" in line or "pwrite64(" in line]
    db_sync = next(i for i, line in enumerate(first) if "sync(" in line and f"{path}>" in line)
    wal_write = next(i for i, line in enumerate(first) if "pwrite64(" in line and f"{path}-wal>" in line)
    assert db_sync < wal_write
    # Three syncs in all (SQLite's own first commit makes four): the file (first page,
    # name), then -- after every WAL write, header and frames together -- the WAL, then
    # the folder (the names of both files).
    syncs = [i for i, line in enumerate(first) if "sync(" in line]
    assert len(syncs) == 3, first
    last_wal_write = max(i for i, line in enumerate(first) if "pwrite64(" in line and f"{path}-wal>" in line)
    assert f"{path}-wal>" in first[syncs[1]] and syncs[1] > last_wal_write
    assert f"{path.parent}>" in first[syncs[2]]
    # The second commit syncs only the WAL, once: SQLite owes the folder nothing (the
    # file itself again only at close's checkpoint).
    second_end = next(i for i, line in enumerate(lines) if '"SECOND' in line)
    second = [line for line in lines[committed:second_end] if "sync(" in line]
    assert len(second) == 1 and f"{path}-wal>" in second[0], second


# -- the read transaction a run of known reads shares (ObjectDatabase.begin_read) --
def _known_reads(db, n=3):
    for _ in range(n):  # the first run learns the statement is a read; the rest take the fast path
        assert db.sql.exec("SELECT count(*) AS n FROM p").one().n == 1


def test_a_setting_changed_after_known_reads_takes_effect(db):
    db.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    db.sql.exec("CREATE TABLE c(p INTEGER REFERENCES p(id))")
    db.sql.exec("INSERT INTO p VALUES (1)")
    db.commit()
    _known_reads(db)
    db.sql.exec("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: it must run outside one
    assert db.sql.exec("PRAGMA foreign_keys").one().foreign_keys == 0
    db.sql.exec("INSERT INTO c VALUES (99)")  # no parent row: refused while foreign keys are on
    db.commit()


def test_a_write_after_known_reads_waits_for_the_commit(db, hooks, tmp_path):
    db.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    db.sql.exec("INSERT INTO p VALUES (1)")
    db.commit()
    _known_reads(db)
    assert not db.in_transaction
    db.kv.put("k", 1)
    db.sql.exec("INSERT INTO p VALUES (2)")
    assert db.in_transaction and db.dirty
    db.rollback()
    _known_reads(db)
    assert db.kv.get("k") is None
    db.sql.exec("INSERT INTO p VALUES (2)")
    assert db.commit() is True
    db.close()
    again = ObjectDatabase(tmp_path / "object.sqlite")
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM p").one().n == 2
    finally:
        again.close()


def test_known_reads_leave_nothing_open_at_a_checkpoint_or_a_close(db, tmp_path):
    db.sql.exec("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    db.sql.exec("INSERT INTO p VALUES (1)")
    db.commit()
    _known_reads(db)
    assert db.kv.get("missing") is None
    db.checkpoint()
    assert db._conn.get_autocommit()
    assert os.path.getsize(str(tmp_path / "object.sqlite") + "-wal") == 0  # the checkpoint ran to the end


@pytest.mark.parametrize("retention_ms", [None, 0], ids=["history kept", "no history"])
def test_a_cursor_left_unfinished_is_closed_with_its_database_and_the_file_reopens(tmp_path, retention_ms):
    path = tmp_path / "o.sqlite"
    kwargs = {} if retention_ms is None else {"pitr_retention_ms": retention_ms}
    db = ObjectDatabase(path, durability="full", **kwargs)
    db.sql.exec("CREATE TABLE t(x)")
    db.sql.exec("INSERT INTO t VALUES (1), (2), (3)")
    db.commit()
    held = db.sql.exec("SELECT x FROM t ORDER BY x")
    assert next(held) == {"x": 1}  # a statement still running at the close
    db.close()
    with pytest.raises(SqlError):
        next(held)
    again = ObjectDatabase(path, durability="full", **kwargs)
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM t").one().n == 3
    finally:
        again.close()


def test_a_history_that_fails_to_close_still_lets_go_of_the_file_and_keeps_its_commits(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, durability="full")
    db.sql.exec("CREATE TABLE t(x)")
    db.sql.exec("INSERT INTO t VALUES (1)")
    db.commit()

    def fail() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    assert db.history is not None
    monkeypatch.setattr(db.history, "close", fail)
    with pytest.raises(OSError):
        db.close()
    monkeypatch.undo()
    # Left as a crash leaves it (no checkpoint at the close): history's next open archives it.
    assert os.path.getsize(str(path) + "-wal") > 0
    again = ObjectDatabase(path, durability="full")  # the lock is gone: so must the connection be
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM t").one().n == 1
    finally:
        again.close()


def test_a_file_shared_without_the_lock_shows_each_connection_the_others_commits(tmp_path):
    # D1 opens its databases so (lock=False): several runtimes (dohost serve --processes)
    # share one file, and SQLite arbitrates. A read must not keep an old snapshot open.
    path = tmp_path / "d1.sqlite"
    first = ObjectDatabase(path, lock=False, pitr_retention_ms=0)
    second = ObjectDatabase(path, lock=False, pitr_retention_ms=0)
    try:
        first.sql.exec("CREATE TABLE t(x)")
        first.commit()
        for _ in range(3):  # known reads
            assert first.sql.exec("SELECT count(*) AS n FROM t").one().n == 0
            first.commit()
        second.sql.exec("INSERT INTO t VALUES (1)")
        second.commit()
        assert first.sql.exec("SELECT count(*) AS n FROM t").one().n == 1
        first.sql.exec("INSERT INTO t VALUES (2)")  # the write is not refused as based on an old snapshot
        first.commit()
        assert second.sql.exec("SELECT count(*) AS n FROM t").one().n == 2
    finally:
        first.close()
        second.close()


def test_a_new_object_is_created_without_a_writable_system_temp_folder(tmp_path, monkeypatch):
    # A read-only root filesystem (containers) leaves no writable temp folder: the new
    # file's first-page template must not need one.
    import tempfile

    from persistence import _open

    unwritable = tmp_path / "no-tmp"
    unwritable.write_text("")  # a file, not a folder: nobody (root included) can write in it
    monkeypatch.setenv("TMPDIR", str(unwritable))
    monkeypatch.setattr(tempfile, "tempdir", str(unwritable))
    monkeypatch.setattr(_open, "_empty_page", None)
    folder = tmp_path / "objects"
    folder.mkdir()
    db = ObjectDatabase(folder / "o.sqlite")
    try:
        assert db.created
        assert pragma(db, "journal_mode") == "wal"
        db.sql.exec("CREATE TABLE t (x)")
        db.commit()
    finally:
        db.close()
    assert not [f for f in os.listdir(folder) if ".page1" in f]  # the template's scratch is gone


class _OpenRecorder(apsw.VFS):
    """The default VFS, recording the name of every file SQLite opens."""

    def __init__(self) -> None:
        self.base = apsw.vfs_names()[0]
        super().__init__("dohost-open-recorder", base=self.base, makedefault=True)
        self.opened: list[str] = []

    def xOpen(self, name, flags):
        self.opened.append(name if isinstance(name, str) or name is None else name.filename())
        return apsw.VFSFile(self.base, name, flags)


def test_a_new_throwaway_object_with_history_enters_wal_without_a_rollback_journal(tmp_path):
    # durability="none" with point-in-time history uses WAL mode: a new file gets the
    # template first page too, not a switch to WAL through an on-disk rollback journal.
    recorder = _OpenRecorder()
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", durability="none", pitr_retention_ms=60_000)
        try:
            assert db.created
            assert pragma(db, "journal_mode") == "wal"
            db.sql.exec("CREATE TABLE t (x)")
            db.commit()
        finally:
            db.close()
    finally:
        recorder.unregister()
    assert any(str(name).endswith("o.sqlite") for name in recorder.opened)
    assert not [name for name in recorder.opened if str(name).endswith("-journal")]


def test_reads_that_follow_one_get_their_own_rows_whatever_ran_before(db, hooks):
    # one() hands its used-up apsw cursor to the next known read (persistence/_sql.py).
    db.sql.exec("CREATE TABLE t(k TEXT PRIMARY KEY, v REAL)")
    db.sql.exec("INSERT INTO t VALUES ('a', 1.0), ('b', 2.5), ('c', 3.0)")
    db.commit()
    read = "SELECT v FROM t WHERE k = ?"
    assert db.sql.exec(read, "a").one() == {"v": 1}  # first run: the write path's cursor
    assert db.sql.exec(read, "b").one() == {"v": 2.5}
    assert db.sql.exec("SELECT k FROM t WHERE v > ?", 2.9).one() == {"k": "c"}
    unfinished = db.sql.exec("SELECT k FROM t ORDER BY k")
    assert db.sql.exec(read, "c").one() == {"v": 3}
    with pytest.raises(StorageError, match="got multiple results"):
        db.sql.exec("SELECT k FROM t").one()
    assert db.sql.exec(read, "a").one() == {"v": 1}
    assert db.sql.exec("UPDATE t SET v = v + 1 WHERE k = ? RETURNING v", "a").one() == {"v": 2}
    assert hooks.calls.count("on_write") == 2  # the write after reused cursors still began a transaction
    assert db.sql.exec(read, "a").one() == {"v": 2}
    assert [r["k"] for r in unfinished] == ["a", "b", "c"]
    db.commit()
    assert db.sql.exec(read, "a").one() == {"v": 2}


def test_a_new_files_first_commit_whose_wal_sync_fails_fails_and_later_commits_sync_as_usual(tmp_path, monkeypatch):
    # The first commit of a new file under "full" runs unsynced and then syncs its WAL
    # once: a failed sync fails the commit (nothing acknowledged), and from then on
    # SQLite syncs every commit itself (synchronous=FULL).
    import persistence._engine as engine

    db = ObjectDatabase(tmp_path / "o.sqlite", durability="full")
    try:
        db.sql.exec("CREATE TABLE t (x)")

        def fail(conn, path):
            raise OSError(5, "Input/output error (injected)")

        monkeypatch.setattr(engine, "sync_new_wal", fail)
        with pytest.raises(CommitFailedError, match="Input/output error"):
            db.commit()
        monkeypatch.undo()
        db.sql.exec("CREATE TABLE IF NOT EXISTS t (x)")
        db.sql.exec("INSERT INTO t VALUES (1)")
        assert pragma(db, "synchronous") == 2
        db.commit()
        assert db.sql.exec("SELECT count(*) AS n FROM t").one().n == 1
    finally:
        db.close()


def test_a_new_files_wal_is_synced_through_sqlites_own_file_handle(tmp_path, monkeypatch):
    # sync_new_wal reaches the WAL's sqlite3_file (SQLITE_FCNTL_JOURNAL_POINTER) and calls
    # its xSync: no fallback sync by name is needed where SQLite hands the pointer out.
    import persistence._open as opening

    by_name = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(opening.os, "fdatasync", lambda fd: (by_name.append(fd), real_fdatasync(fd)))
    db = ObjectDatabase(tmp_path / "o.sqlite", durability="full", pitr_retention_ms=0)
    try:
        db.sql.exec("CREATE TABLE t (x)")
        db.sql.exec("INSERT INTO t VALUES (5)")
        db.commit()
        assert by_name == []
    finally:
        db.close()
    again = ObjectDatabase(tmp_path / "o.sqlite", durability="full")
    try:
        assert again.sql.exec("SELECT x FROM t").one().x == 5
    finally:
        again.close()


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_a_new_file_parked_before_its_first_write_commits_with_sqlites_own_syncs(tmp_path, durability):
    from persistence import LockTable

    db = ObjectDatabase(tmp_path / "o.sqlite", durability=durability, locks=LockTable(tmp_path))
    try:
        assert pragma(db, "synchronous") == 0
        assert db.park()
        db.sql.exec("CREATE TABLE t (x)")  # reopens with the durability's own level
        db.sql.exec("INSERT INTO t VALUES (3)")
        db.commit()
        assert pragma(db, "synchronous") == (2 if durability == "full" else 1)
        assert db._unsynced_conn is None
    finally:
        db.close()
    again = ObjectDatabase(tmp_path / "o.sqlite", durability="full")
    try:
        assert again.sql.exec("SELECT x FROM t").one().x == 3
    finally:
        again.close()


def test_a_new_normal_durability_files_first_commit_syncs_nothing(tmp_path):
    # "normal" survives a process crash, not a power cut: SQLite's first commit to a
    # new WAL would sync its header and the folder, on the event loop (inline commit).
    path = tmp_path / "o.sqlite"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from persistence import ObjectDatabase
        db = ObjectDatabase({str(path)!r}, durability="normal")
        print("OPENED", flush=True)
        db.sql.exec("CREATE TABLE t (x)")
        db.commit()
        print("COMMITTED", flush=True)
        db.close()
    """)
    lines = _strace(tmp_path, script, "fsync,fdatasync,write")
    opened = next(i for i, line in enumerate(lines) if '"OPENED' in line)
    committed = next(i for i, line in enumerate(lines) if '"COMMITTED' in line)
    assert not [line for line in lines[opened:committed] if "sync(" in line]


@pytest.mark.parametrize("then", ["checkpoint", "close", "next transaction"])
def test_a_new_files_synchronous_level_is_back_before_its_next_checkpoint_or_transaction(tmp_path, then):
    # After a new file's first commit synchronous stays OFF only until the next
    # transaction or checkpoint: a checkpoint copies the WAL into the file and
    # empties it, and must sync both. Counted with strace in a child.
    path = tmp_path / "o.sqlite"
    step = {
        "checkpoint": "db.checkpoint()",
        "close": "pass",
        "next transaction": "db.sql.exec('INSERT INTO t VALUES (2)'); db.commit()",
    }[then]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from persistence import ObjectDatabase
        db = ObjectDatabase({str(path)!r}, durability="full")
        db.sql.exec("CREATE TABLE t (x)")
        db.sql.exec("INSERT INTO t VALUES (1)")
        db.commit()
        print("COMMITTED", flush=True)
        {step}
        db.close()
        print("CLOSED", flush=True)
    """)
    lines = _strace(tmp_path, script, "fsync,fdatasync,write")
    committed = next(i for i, line in enumerate(lines) if '"COMMITTED' in line)
    closed = next(i for i, line in enumerate(lines) if '"CLOSED' in line)
    syncs = [line for line in lines[committed:closed] if "sync(" in line]
    # The checkpoint (history's, before the close) syncs the WAL and then the file.
    assert any(f"{path}-wal>" in line for line in syncs), syncs
    assert any(f"{path}>" in line for line in syncs), syncs
    again = ObjectDatabase(path, durability="full")
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM t").one().n == (2 if then == "next transaction" else 1)
    finally:
        again.close()


def test_a_long_first_commit_without_history_is_not_checkpointed_while_its_level_is_off(tmp_path):
    # SQLite's automatic checkpoint (history replaces it) would copy a first commit of
    # more than 1,000 pages into the file unsynced: it is off until the level is back.
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, durability="full", pitr_retention_ms=0)
    try:
        db.sql.exec("CREATE TABLE t (x)")
        for i in range(1200):
            db.sql.exec("INSERT INTO t VALUES (?)", "x" * 3000 + str(i))
        db.commit()
        assert path.stat().st_size == 4096  # all of it still in the (synced) WAL
        assert pragma(db, "wal_autocheckpoint") == 0
        db.sql.exec("INSERT INTO t VALUES (1)")
        assert pragma(db, "wal_autocheckpoint") == 1000
        assert pragma(db, "synchronous") == 2
        db.commit()
    finally:
        db.close()
    again = ObjectDatabase(path, durability="full", pitr_retention_ms=0)
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM t").one().n == 1201
    finally:
        again.close()


def test_a_new_files_failed_first_commit_leaves_sqlites_automatic_checkpoint_on(tmp_path):
    # A first commit that fails (a deferred constraint) must not leave the automatic
    # checkpoint it turned off for its OFF window off for the connection's life.
    db = ObjectDatabase(tmp_path / "o.sqlite", durability="full", pitr_retention_ms=0)
    try:
        db.sql.exec("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        db.sql.exec("CREATE TABLE c (pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
        db.sql.exec("INSERT INTO c VALUES (7)")
        with pytest.raises(CommitFailedError):
            db.commit()
        db.checkpoint()  # gives the new file's scheme up: SQLite syncs from here on
        db.sql.exec("CREATE TABLE t (x)")
        assert pragma(db, "synchronous") == 2
        assert pragma(db, "wal_autocheckpoint") == 1000
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("retention", [0, None], ids=["no history", "history"])
def test_a_new_files_first_commit_whose_wal_sync_fails_is_rolled_back_as_reported(tmp_path, monkeypatch, retention):
    # The commit ran unsynced before its WAL sync: when that sync fails the commit is
    # reported failed (the object resets, "rolled back to its last known good state"),
    # so its writes must be gone, as SQLite drops a commit whose own sync fails.
    import persistence._engine as engine

    kwargs = {} if retention is None else {"pitr_retention_ms": retention}
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, durability="full", **kwargs)
    try:
        db.sql.exec("CREATE TABLE t (x)")
        db.sql.exec("INSERT INTO t VALUES (1)")

        def fail(conn, path):
            raise OSError(5, "Input/output error (injected)")

        monkeypatch.setattr(engine, "sync_new_wal", fail)
        with pytest.raises(CommitFailedError):
            db.commit()
        monkeypatch.undo()
        assert db.sql.exec("SELECT count(*) AS n FROM sqlite_schema WHERE name = 't'").one().n == 0
        db.sql.exec("CREATE TABLE u (y)")
        db.sql.exec("INSERT INTO u VALUES (2)")
        db.commit()
    finally:
        db.close()
    again = ObjectDatabase(path, durability="full", **kwargs)
    try:
        assert again.sql.exec("SELECT count(*) AS n FROM sqlite_schema WHERE name = 't'").one().n == 0
        assert again.sql.exec("SELECT y FROM u").one().y == 2
    finally:
        again.close()


def test_a_new_files_level_stays_due_when_setting_it_is_refused_and_is_set_by_the_next_try(tmp_path, monkeypatch):
    # SQLite refuses to change the safety level inside a transaction. Were the
    # PRAGMA refused, the flags must stay: a close would otherwise checkpoint
    # the WAL into the file with synchronous still OFF.
    db = ObjectDatabase(tmp_path / "o.sqlite", durability="full")
    try:
        db.sql.exec("CREATE TABLE t (x)")
        db.commit()
        real = ObjectDatabase._exec_internal

        def refuse(self, sql, *args, **kwargs):
            if sql.startswith("PRAGMA synchronous"):
                raise apsw.SQLError("Safety level may not be changed inside a transaction")
            return real(self, sql, *args, **kwargs)

        monkeypatch.setattr(ObjectDatabase, "_exec_internal", refuse)
        with pytest.raises(apsw.SQLError):
            db.ensure_sync_level()
        monkeypatch.setattr(ObjectDatabase, "_exec_internal", real)
        assert pragma(db, "synchronous") == 0
        db.ensure_sync_level()
        assert pragma(db, "synchronous") == 2
    finally:
        db.close()
