"""Point-in-time recovery on one object file: bookmarks, restores, undo, the window, crashes."""

from __future__ import annotations

import errno
import re

import apsw
import pytest

from persistence import LockTable, ObjectDatabase, PitrError
from persistence import _cf
from persistence._pitr import ARCHIVE_AGE_MS, History, history_path, read_restore_points

COMMITS = 74  # more than a screenful of restore points

DAY = 86_400_000.0


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000.0

    def __call__(self) -> float:
        return self.ms


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def open_db(tmp_path, clock):
    opened: list[ObjectDatabase] = []

    def open_(**kw):
        db = ObjectDatabase(tmp_path / "o.sqlite", clock=clock, **kw)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        db.close()


def rows(db, sql="SELECT id, v FROM t ORDER BY id"):
    return [tuple(r.values()) for r in db.sql.exec(sql)]


def schedule_a_restore_of_a_1(db):
    """``a`` is 1, then 2; a restore to the state where it was 1 is scheduled."""
    db.kv.put("a", 1)
    db.commit()
    mark = db.current_bookmark()
    db.kv.put("a", 2)
    db.commit()
    db.history.schedule_restore(mark)


def restore(open_db, db, bookmark):
    undo = db.history.schedule_restore(bookmark)
    db.rollback()  # as ctx.abort() would: the restore does not ride on the open transaction
    db.close()
    return open_db(), undo


def test_a_restore_undoes_a_bad_delete_and_can_itself_be_undone(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.commit()
    for i in range(5):
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, f"row{i}")
        db.kv.put(f"k{i}", i)
        db.commit()
        clock.ms += 1000
    good = db.current_bookmark()
    db.sql.exec("DELETE FROM t")
    db.commit()
    db, undo = restore(open_db, db, good)
    assert rows(db) == [(i, f"row{i}") for i in range(5)]
    assert db.kv.get("k4") == 4
    db, _ = restore(open_db, db, undo)
    assert rows(db) == []
    assert db.kv.get("k4") == 4  # the bad DELETE touched only the table


def test_bookmarks_have_cloudflares_shape_sort_by_time_and_survive_restarts(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    marks = []
    for i in range(5):
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, i)
        db.commit()
        marks.append(db.current_bookmark())
    db.close()
    db = open_db()
    assert all(re.fullmatch(_cf.BOOKMARK_PATTERN, m) for m in marks)
    assert marks == sorted(marks) and len(set(marks)) == 5
    db, _ = restore(open_db, db, marks[1])
    assert rows(db) == [(0, 0), (1, 1)]


def test_reading_a_bookmark_writes_nothing_and_names_the_open_transactions_writes(open_db):
    db = open_db()
    before = db.current_bookmark()
    assert not db.dirty
    db.kv.put("a", 1)
    pending = db.current_bookmark()
    assert pending > before
    db.commit()
    assert db.current_bookmark() == pending


def test_delete_all_is_recoverable(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'x')")
    db.sql.exec("CREATE TABLE nopk (a, b); INSERT INTO nopk VALUES (1, 2), (1, 2)")
    db.kv.put("k", {"deep": [1, 2]})
    db.set_alarm(2_000_000_000_000.0)
    db.commit()
    mark = db.current_bookmark()
    db.delete_all()
    db.commit()
    assert db.kv.get("k") is None
    db, _ = restore(open_db, db, mark)
    assert rows(db) == [(1, "x")]
    assert rows(db, "SELECT a, b FROM nopk") == [(1, 2), (1, 2)]
    assert db.kv.get("k") == {"deep": [1, 2]}
    assert db.get_alarm() == 2_000_000_000_000.0


def test_bookmark_for_time_names_the_state_current_then(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    times = []
    for i in range(COMMITS):  # crosses an archive into the side file
        clock.ms += 1000
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, i)
        db.commit()
        times.append(clock.ms)
    clock.ms += 1000
    at = db.history.bookmark_for_time(times[3] + 500)  # after row 3, before row 4
    db, _ = restore(open_db, db, at)
    assert rows(db) == [(i, i) for i in range(4)]


def test_schema_changes_between_bookmarks_restore_exactly(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    one = db.current_bookmark()
    db.sql.exec("ALTER TABLE t ADD COLUMN w DEFAULT 7")
    db.sql.exec("INSERT INTO t VALUES (2, 'b', 8)")
    db.commit()
    two = db.current_bookmark()
    db.sql.exec("DROP TABLE t")
    db.commit()
    db, _ = restore(open_db, db, one)
    assert rows(db, "SELECT * FROM t") == [(1, "a")]
    db, _ = restore(open_db, db, two)
    assert rows(db, "SELECT * FROM t ORDER BY id") == [(1, "a", 7), (2, "b", 8)]


def test_malformed_foreign_and_expired_bookmarks_are_refused_and_change_nothing(tmp_path, open_db, clock):
    other = ObjectDatabase(tmp_path / "other.sqlite", clock=clock)
    other.kv.put("x", 1)
    other.commit()
    foreign = other.current_bookmark()
    other.close()
    db = open_db(pitr_retention_ms=DAY)
    db.kv.put("a", 1)
    db.commit()
    old = db.current_bookmark()
    clock.ms += 1000
    db.kv.put("a", 2)  # the state `old` names ends here, more than a day before the last write
    db.commit()
    with pytest.raises(PitrError, match=r"^Invalid bookmark: 'nope' is not a bookmark"):
        db.history.schedule_restore("nope")
    with pytest.raises(PitrError, match=r"does not belong to this Durable Object's history$"):
        db.history.schedule_restore(foreign)
    clock.ms += 2 * DAY
    db.kv.put("a", 3)
    db.commit()
    with pytest.raises(PitrError, match=r"older than the point-in-time recovery window \(1 days\)$"):
        db.history.schedule_restore(old)
    with pytest.raises(PitrError, match=r"^getBookmarkForTime\(\): .* older than the point-in-time"):
        db.history.bookmark_for_time(clock.ms - 1.5 * DAY)
    assert not db.dirty
    db.close()
    db = open_db(pitr_retention_ms=DAY)
    assert db.kv.get("a") == 3


def test_history_older_than_the_window_is_pruned(open_db, clock):
    db = open_db(pitr_retention_ms=DAY)
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    for day in range(6):
        for i in range(COMMITS):
            db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", i, day)
            db.commit()
        clock.ms += DAY
    sizes = db.history.sizes()
    assert sizes["log"] <= 3 * (COMMITS)  # about two days of log, never six
    mark = db.history.bookmark_for_time(clock.ms - DAY / 2)
    db, _ = restore(open_db, db, mark)
    assert rows(db, "SELECT DISTINCT v FROM t") == [(5,)]


def test_a_restore_interrupted_before_it_replaced_the_file_runs_again(open_db, monkeypatch):
    db = open_db()
    schedule_a_restore_of_a_1(db)
    db.commit()
    db.close()

    def crash(*a, **k):
        raise KeyboardInterrupt  # the process dies between the side file and the backup

    monkeypatch.setattr(History, "_replace_main", crash)
    with pytest.raises(KeyboardInterrupt):
        open_db()
    monkeypatch.undo()
    db = open_db()
    assert db.kv.get("a") == 1


def test_no_history_is_kept_when_turned_off(tmp_path, clock):
    db = ObjectDatabase(tmp_path / "off.sqlite", clock=clock, pitr_retention_ms=0)
    db.kv.put("a", 1)
    db.commit()
    db.close()
    assert db.history is None
    assert not history_path(tmp_path / "off.sqlite").exists()


def crash(db):
    """The process dies: nothing of history's close runs, SQLite checkpoints nothing."""
    history = db.history
    if history._side is not None:
        history._side.close()  # its locks go with the process
    history.close = lambda: None
    if not db.parked:
        db._conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    db.close()


def test_a_crash_keeps_every_committed_state_restorable(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    marks = [(db.current_bookmark(), [])]
    for i in range(3):
        clock.ms += 5000
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, "x")
        db.commit()
        marks.append((db.current_bookmark(), rows(db)))
    db.sql.exec("INSERT INTO t VALUES (9, 'y')")
    inside = db.current_bookmark()  # names this transaction's commit, still only in the WAL
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (10, 'z')")  # acknowledged, never archived
    db.commit()
    crash(db)
    db = open_db()
    everything = [(i, "x") for i in range(3)] + [(9, "y"), (10, "z")]
    assert rows(db) == everything  # acknowledged writes are all there
    now = db.current_bookmark()  # the WAL left by the crash was archived at the open
    for mark, expected in marks + [(inside, everything[:-1]), (now, everything)]:
        db, _ = restore(open_db, db, mark)
        assert rows(db) == expected


def test_history_a_foreign_checkpoint_took_is_refused_as_lost_never_misrestored(tmp_path, open_db, monkeypatch):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    kept = db.current_bookmark()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    lost = db.current_bookmark()  # "after this transaction"
    monkeypatch.setattr(History, "after_commit", lambda self: None)  # dies right after COMMIT
    db.commit()
    crash(db)
    monkeypatch.undo()
    raw = apsw.Connection(str(tmp_path / "o.sqlite"))  # a writer that knows nothing of history:
    raw.execute("INSERT INTO t VALUES (2, 'b')")  # its close checkpoints the WAL away
    raw.close()
    db = open_db()
    assert rows(db) == [(1, "a"), (2, "b")]  # never data
    with pytest.raises(PitrError, match=r"history was lost when the host crashed$"):
        db.history.state_at(db.history.parse(lost))
    now = db.current_bookmark()
    db, _ = restore(open_db, db, kept)
    assert rows(db) == []
    db, _ = restore(open_db, db, now)  # the state found is a restore point
    assert rows(db) == [(1, "a"), (2, "b")]


def test_commits_within_a_second_share_an_entry_and_a_quiet_gap_ends_it_exactly(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    for i in range(8):  # 100 ms apart: one group
        clock.ms += 100
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, i)
        db.commit()
    quiet_from = clock.ms
    clock.ms += 5000
    db.sql.exec("INSERT INTO t VALUES (99, 99)")  # begins long after: the group closed before it
    db.commit()
    clock.ms += 5000
    entries = db.history.sizes()["log"]
    mark = db.history.bookmark_for_time(quiet_from + 1000)
    db, _ = restore(open_db, db, mark)
    assert rows(db) == [(i, i) for i in range(8)]
    assert entries <= 3  # the schema snapshot's entry, one group, the late insert


def test_rolled_back_writes_never_reach_history(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.sql.exec("INSERT INTO t VALUES (1, 'kept')")
    db.commit()

    def doomed():
        db.sql.exec("INSERT INTO t VALUES (2, 'rolled back')")
        db.sql.exec("UPDATE t SET v = 'rolled back' WHERE id = 1")
        raise ValueError

    with pytest.raises(ValueError):
        db.transaction_sync(doomed)
    db.sql.exec("INSERT INTO t VALUES (3, 'kept')")
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (4, 'dropped')")
    db.rollback()
    mark = db.current_bookmark()
    db.sql.exec("DELETE FROM t")
    db.commit()
    db, _ = restore(open_db, db, mark)
    assert rows(db) == [(1, "kept"), (3, "kept")]


def test_an_unreadable_history_file_is_set_aside_and_history_starts_again(tmp_path, open_db):
    db = open_db()
    db.kv.put("a", 1)
    db.commit()
    db.current_bookmark()
    db.close()
    side = history_path(tmp_path / "o.sqlite")
    side.write_bytes(b"not a database" * 100)  # what a power cut might leave
    db = open_db()
    assert db.kv.get("a") == 1
    mark = db.current_bookmark()
    db.kv.put("a", 2)
    db.commit()
    db, _ = restore(open_db, db, mark)
    assert db.kv.get("a") == 1
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def test_a_bookmark_asked_inside_a_transaction_that_changed_nothing_names_its_end(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.current_bookmark()
    db.sql.exec("DELETE FROM t WHERE id = 0")  # a write statement that changes no row
    assert db.dirty
    mark = db.current_bookmark()
    db.commit()
    db.sql.exec("ALTER TABLE t ADD COLUMN w")
    db.commit()
    db, _ = restore(open_db, db, mark)
    assert [r["name"] for r in db.sql.exec("SELECT name FROM pragma_table_info('t')")] == ["id", "v"]


def test_restore_points_list_each_state_newest_first_and_reading_them_opens_nothing_for_writing(open_db, clock):
    from persistence import read_restore_points

    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.commit()
    first = db.current_bookmark()
    clock.ms += 5000
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    second = db.current_bookmark()
    live = db.history.restore_points()
    assert [b for b, _ in live[:2]] == [second, first] and live[0][1] > live[1][1]
    db.close()
    assert read_restore_points(db.path) == live  # the side file, read-only, says the same
    reader = open_db()
    assert reader.history.restore_points() == live
    assert reader.history._side is None  # a session that only reads leaves its history file alone


def test_a_new_objects_history_file_is_written_whole_when_history_is_first_read(tmp_path, open_db, clock):
    db = open_db(locks=LockTable(tmp_path))
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    clock.ms += 5_000
    side = history_path(db.path)
    assert db.park()
    assert not side.exists()  # the commit waits in the WAL: parking wrote nothing
    assert len(db.history.restore_points()) == 2  # the empty start and the commit
    assert db.parked  # read from the WAL file: the connection stayed closed
    # Made in memory and written by rename: one file, no journal beside it, no temporary left.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("o.sqlite.pitr")) == ["o.sqlite.pitr"]
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")  # reopens; history carries on on the file
    db.commit()
    clock.ms += 5_000
    then = db.history.bookmark_for_time(clock.ms - 7_000)  # after the first commit, before the second
    db2, _ = restore(open_db, db, then)
    assert rows(db2) == [(1, "a")]


def test_a_parked_objects_recent_commits_wait_in_its_wal_and_still_name_exact_states(tmp_path, open_db, clock):
    db = open_db(locks=LockTable(tmp_path))
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    clock.ms += 5_000
    assert db.park()
    on_disk = read_restore_points(db.path)
    assert on_disk == []  # a new object's history waits in its WAL too
    for v in ("b", "c"):
        db.sql.exec("UPDATE t SET v = ? WHERE id = 1", v)
        db.commit()
        clock.ms += 5_000
        assert db.park()
    # Young commits wait in the WAL: parking opened no file for them.
    assert read_restore_points(db.path) == on_disk
    points = db.history.restore_points()  # the inspector looking at the parked object
    assert len(points) == 4  # the empty start, "a", "b", "c"
    assert db.parked  # looking wrote them out without reopening the object's connection
    assert read_restore_points(db.path) == points
    mark = db.history.bookmark_for_time(clock.ms - 7_000)  # after "b", before "c"
    db2, _ = restore(open_db, db, mark)
    assert rows(db2) == [(1, "b")]


def test_parking_archives_commits_older_than_the_archive_age(tmp_path, open_db, clock):
    db = open_db(locks=LockTable(tmp_path))
    for v in (1, 2):
        db.kv.put("a", v)
        db.commit()
        clock.ms += 5_000
        assert db.park()
    assert read_restore_points(db.path) == []  # young commits wait in the WAL: no file yet
    clock.ms += ARCHIVE_AGE_MS
    db.kv.put("a", 3)
    db.commit()
    clock.ms += 5_000
    assert db.park()
    assert len(read_restore_points(db.path)) == 4  # the empty start and the three commits


def test_a_crash_while_parked_keeps_the_parked_commits_restorable(tmp_path, open_db, clock):
    db = open_db(locks=LockTable(tmp_path))
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    kept = db.current_bookmark()
    clock.ms += 5_000
    assert db.park()
    db.sql.exec("UPDATE t SET v = 'b' WHERE id = 1")
    db.commit()
    clock.ms += 5_000
    assert db.park()  # the commit stays in the WAL, not archived
    crash(db)
    db = open_db(locks=LockTable(tmp_path))
    assert rows(db) == [(1, "b")]  # the acknowledged write is there
    now = db.current_bookmark()
    db, _ = restore(open_db, db, kept)
    assert rows(db) == [(1, "a")]
    db, _ = restore(open_db, db, now)
    assert rows(db) == [(1, "b")]


def test_a_failure_to_archive_history_never_fails_a_commit(open_db, monkeypatch):
    from persistence import _pitr

    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    kept = db.current_bookmark()
    monkeypatch.setattr(_pitr, "CHECKPOINT_FRAMES", 1)  # every commit archives and checkpoints
    real = History._append

    def full_disk(self, entries, **kw):
        self.last += len(entries)  # their numbers were given out
        raise OSError("disk full")

    monkeypatch.setattr(History, "_append", full_disk)
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    assert db.commit()  # committed, and said so
    monkeypatch.setattr(History, "_append", real)
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")
    db.commit()
    after = db.current_bookmark()  # a base image made what follows restorable again
    db, _ = restore(open_db, db, kept)
    assert rows(db) == []
    db, _ = restore(open_db, db, after)
    assert rows(db) == [(1, "a"), (2, "b")]


def test_closing_with_a_users_cursor_left_unfinished_closes_the_file_and_keeps_history(open_db, caplog):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    for i in range(3):
        db.sql.exec("INSERT INTO t VALUES (?, 'x')", i)
        db.commit()
    mark = db.current_bookmark()
    cursor = iter(db.sql.exec("SELECT id FROM t"))
    next(cursor)  # read one row of three, and kept
    db.close()  # the statement keeps history's checkpoint from truncating the WAL
    with caplog.at_level("WARNING", logger="dohost.pitr"):
        db = open_db()
        db.sql.exec("INSERT INTO t VALUES (3, 'x')")
        db.commit()
        db, _ = restore(open_db, db, mark)
    assert rows(db) == [(i, "x") for i in range(3)]
    assert "lost commits" not in caplog.text


def test_a_failure_to_archive_history_never_fails_the_next_write(open_db, monkeypatch):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.current_bookmark()  # names the end of this transaction, which then rolls back
    db.rollback()

    def full_disk(self, entries, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(History, "_append", full_disk)
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")  # history archives before this write
    assert db.commit()
    monkeypatch.undo()
    assert rows(db) == [(2, "b")]


def test_a_base_image_taken_inside_a_transaction_holds_only_committed_writes(tmp_path, open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    db.current_bookmark()
    db.close()
    history_path(tmp_path / "o.sqlite").write_bytes(b"not a database" * 100)
    db = open_db()
    db.sql.exec("INSERT INTO t VALUES (3, 'c')")
    db.commit()  # in the WAL only
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")
    mark = db.current_bookmark()  # history starts again here: from the committed state
    db.rollback()
    db, _ = restore(open_db, db, mark)
    assert rows(db) == [(1, "a"), (3, "c")]


def test_a_bookmark_naming_a_transaction_a_crash_ended_uncommitted_names_the_state_before_it(open_db):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.close()  # the WAL is checkpointed away: the next open finds none
    db = open_db()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    mark = db.current_bookmark()  # "the end of this transaction"
    crash(db)  # before its commit
    db = open_db()
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")  # the next activation's commit
    db.commit()
    db.current_bookmark()
    db, _ = restore(open_db, db, mark)
    assert rows(db) == []


def test_a_restore_whose_history_does_not_replay_is_dropped_and_the_object_still_opens(open_db, monkeypatch, caplog):
    from persistence import StorageError, _pitr

    db = open_db()
    schedule_a_restore_of_a_1(db)
    db.close()

    def damaged(image, entry):
        raise StorageError("point-in-time history: page 2 does not replay (history damaged)")

    monkeypatch.setattr(_pitr, "_apply", damaged)
    with caplog.at_level("WARNING", logger="dohost.pitr"):
        db = open_db()  # not refused forever: the object opens as it is
    assert db.kv.get("a") == 2
    assert "restore dropped" in caplog.text
    assert not db.history.restore_flag.exists()


def test_a_history_file_a_power_cut_left_empty_is_set_aside_and_the_object_opens(tmp_path, open_db):
    db = open_db()
    db.kv.put("a", 1)
    db.commit()
    db.current_bookmark()
    db.kv.put("a", 2)
    db.commit()
    crash(db)  # the WAL holds a commit to archive at the next open
    history_path(tmp_path / "o.sqlite").write_bytes(b"")  # renamed into place, never synced
    db = open_db()
    assert db.kv.get("a") == 2
    mark = db.current_bookmark()
    db.kv.put("a", 3)
    db.commit()
    db, _ = restore(open_db, db, mark)
    assert db.kv.get("a") == 2
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]


def test_a_history_failure_at_close_still_closes_the_objects_file(open_db, monkeypatch):
    db = open_db()
    db.kv.put("a", 1)
    db.commit()

    def full_disk(self, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(History, "_settle_side", full_disk)
    with pytest.raises(OSError):
        db.close()
    monkeypatch.undo()
    with pytest.raises(apsw.ConnectionClosedError):
        db._conn.execute("SELECT 1")  # not left open, holding the file
    db = open_db()
    assert db.kv.get("a") == 1


def test_a_power_cut_that_reverts_the_history_file_never_makes_a_bookmark_name_another_state(tmp_path, open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    kept = db.current_bookmark()  # the history file is on disk from here
    side = history_path(tmp_path / "o.sqlite")
    old = side.read_bytes()  # what a power cut may leave of it (never fsync'd since)
    for i in range(2):  # two commits within a second: one entry
        db.sql.exec("INSERT INTO t VALUES (?, 'a')", i)
        db.commit()
        clock.ms += 10
    both = db.current_bookmark()
    crash(db)  # the object's WAL (fsync'd by its commits) keeps both commits ...
    side.write_bytes(old)  # ... the history file reverts to its older copy
    db = open_db()
    assert rows(db) == [(0, "a"), (1, "a")]
    with pytest.raises(PitrError, match=r"history was lost when the host crashed$"):
        db.history.state_at(db.history.parse(both))  # refused, never another state
    now = db.current_bookmark()
    db, _ = restore(open_db, db, kept)
    assert rows(db) == []
    db, _ = restore(open_db, db, now)
    assert rows(db) == [(0, "a"), (1, "a")]


def _disk_full(*_args, **_kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_archiving_at_open_never_stops_the_object_opening(open_db, monkeypatch, caplog):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    kept = db.current_bookmark()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")  # acknowledged, only in the WAL
    db.commit()
    crash(db)
    monkeypatch.setattr(History, "_append", _disk_full)  # the open archives the WAL: disk full
    db = open_db()
    assert rows(db) == [(1, "a")]
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")  # the object works
    assert db.commit()
    assert "point-in-time history" in caplog.text
    monkeypatch.undo()
    now = db.current_bookmark()  # history carries on once the disk has room
    db, _ = restore(open_db, db, kept)
    assert rows(db) == []
    db, _ = restore(open_db, db, now)
    assert rows(db) == [(1, "a"), (2, "b")]


def test_a_full_disk_at_open_drops_a_requested_restore_and_the_object_opens_as_it_is(open_db, monkeypatch, caplog):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.history.schedule_restore(db.current_bookmark())
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")  # only in the WAL: the open archives it
    db.commit()
    crash(db)
    monkeypatch.setattr(History, "_append", _disk_full)
    db = open_db()
    assert rows(db) == [(1, "a")]  # opened as it is, the request dropped (and said so)
    assert "restore dropped" in caplog.text
    monkeypatch.undo()
    db.close()
    db = open_db()
    assert rows(db) == [(1, "a")]  # and not replayed later over newer writes


def test_a_page_freed_within_a_grouped_entry_and_written_again_later_still_replays(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.current_bookmark()
    clock.ms += 5000
    db.sql.exec("INSERT INTO t VALUES (1, ?)", b"x" * 20_000)  # the file grows ...
    db.commit()
    clock.ms += 10
    db.sql.exec("DELETE FROM t")
    db.commit()
    db._conn.limit(apsw.SQLITE_LIMIT_ATTACHED, 1)  # VACUUM attaches its copy
    list(db._exec_internal("VACUUM", ()))  # ... and shrinks again, within the same entry
    clock.ms += 5000
    db.current_bookmark()
    clock.ms += 5000
    db.sql.exec("INSERT INTO t VALUES (2, ?)", b"y" * 20_000)  # the freed pages written again
    db.commit()
    grown = db.current_bookmark()
    db.sql.exec("DELETE FROM t")
    db.commit()
    db, _ = restore(open_db, db, grown)
    assert rows(db) == [(2, b"y" * 20_000)]


def test_after_a_power_cut_a_promised_bookmark_still_names_its_transactions_commit(tmp_path, open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.current_bookmark()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    inside = db.current_bookmark()  # promised: the history file notes it
    side = history_path(tmp_path / "o.sqlite")
    old = side.read_bytes()
    db.commit()
    clock.ms += 5000
    for i in (2, 3):  # one entry
        db.sql.exec("INSERT INTO t VALUES (?, 'b')", i)
        db.commit()
        clock.ms += 10
    later = db.current_bookmark()
    crash(db)
    side.write_bytes(old)  # the power cut leaves the copy that holds the promise
    db = open_db()
    with pytest.raises(PitrError, match=r"history was lost when the host crashed$"):
        db.history.state_at(db.history.parse(later))
    db.sql.exec("DELETE FROM t")
    db.commit()
    db, _ = restore(open_db, db, inside)
    assert rows(db) == [(1, "a")]


def test_after_a_power_cut_the_numbers_after_a_promised_commit_are_never_handed_out_again(tmp_path, open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.current_bookmark()
    db.sql.exec("INSERT INTO t VALUES (1, 'a')")
    inside = db.current_bookmark()
    side = history_path(tmp_path / "o.sqlite")
    old = side.read_bytes()
    db.commit()
    db.sql.exec("INSERT INTO t VALUES (2, 'b')")
    later = db.current_bookmark()  # the next number, naming the state {1} (it rolls back)
    db.rollback()
    crash(db)
    side.write_bytes(old)  # the WAL keeps only the promised commit
    db = open_db()
    db.sql.exec("INSERT INTO t VALUES (3, 'c')")
    again = db.current_bookmark()
    db.commit()
    assert again != later  # never handed out again for another state
    with pytest.raises(PitrError, match=r"history was lost when the host crashed$"):
        db.history.state_at(db.history.parse(later))
    db, _ = restore(open_db, db, inside)
    assert rows(db) == [(1, "a")]
    db, _ = restore(open_db, db, again)
    assert rows(db) == [(1, "a"), (3, "c")]


def test_archiving_reads_the_wal_a_chunk_at_a_time_and_every_state_still_restores(open_db, clock, monkeypatch):
    from persistence import _pitr

    monkeypatch.setattr(_pitr, "_CHUNK_FRAMES", 3)  # groups and pages span chunks
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    db.commit()
    db.current_bookmark()
    times = []
    for i in range(6):
        clock.ms += 2000
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, b"z" * (3000 * i))  # 1 to 6 frames a commit
        db.commit()
        times.append(clock.ms)
    clock.ms += 2000
    marks = [db.history.bookmark_for_time(ms) for ms in times]  # one archive of all six
    for i, mark in enumerate(marks):
        db, _ = restore(open_db, db, mark)
        assert [r[0] for r in rows(db)] == list(range(i + 1))


def test_a_one_row_change_is_archived_as_the_bytes_it_changed_not_its_page(open_db, clock):
    db = open_db()
    db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    for i in range(100):
        db.sql.exec("INSERT INTO t VALUES (?, ?)", i, i)
    db.commit()
    marks = [db.current_bookmark()]
    before = db.history.sizes()["log_bytes"]
    for i in range(10):
        clock.ms += 2000  # an entry each
        db.sql.exec("UPDATE t SET v = ? WHERE id = ?", 1000 + i, 50)
        db.commit()
        marks.append(db.current_bookmark())
    # A page is 4,096 bytes; its XOR with the version before is zero but for the row.
    assert (db.history.sizes()["log_bytes"] - before) / 10 < 64
    db, _ = restore(open_db, db, marks[4])
    assert db.sql.exec("SELECT v FROM t WHERE id = 50").one() == {"v": 1003}


def test_entries_and_side_files_of_the_earlier_format_still_replay(tmp_path, open_db, clock):
    import struct
    import zlib

    from persistence import _pitr

    # Format 2 entries: a zlib stream of whole pages and whole-page XOR records.
    first, second = bytes(range(256)) * 16, b"\x07" * 4096
    changed = bytearray(first)
    changed[100:104] = b"abcd"
    image = bytearray()
    _pitr._apply(image, zlib.compress(struct.pack(">II", 4096, 2) + struct.pack(">I", 1) + first
                                      + struct.pack(">I", 2) + second))
    xor = bytes(a ^ b for a, b in zip(first, changed))
    _pitr._apply(image, zlib.compress(struct.pack(">II", 4096, 2)
                                      + struct.pack(">II", 1 | 1 << 31, zlib.crc32(bytes(changed))) + xor))
    assert bytes(image) == bytes(changed) + second

    # A side file marked format 2 is read as it is, and marked with the current format.
    db = open_db()
    db.kv.put("a", 1)
    db.commit()
    mark = db.current_bookmark()
    db.close()
    side = apsw.Connection(str(history_path(tmp_path / "o.sqlite")))
    side.execute("UPDATE meta SET v = 2 WHERE k = 'format'")
    side.close()
    db = open_db()
    db.kv.put("a", 2)
    db.commit()
    db, _ = restore(open_db, db, mark)
    assert db.kv.get("a") == 1
    db.close()
    side = apsw.Connection(str(history_path(tmp_path / "o.sqlite")))
    assert side.execute("SELECT v FROM meta WHERE k = 'format'").fetchall() == [(_pitr.FORMAT,)]
    side.close()


def test_the_changed_span_of_a_page_is_its_first_to_last_differing_byte():
    from persistence._pitr import _changed_span

    page = bytes(range(256)) * 16
    assert _changed_span(page, page) == (0, 0)
    for spots in ([0], [4095], [7, 3000], [100, 101], [0, 4095]):
        new = bytearray(page)
        for i in spots:
            new[i] ^= 0x5A
        assert _changed_span(bytes(new), page) == (min(spots), max(spots))
