"""Open files stay bounded whatever the number of live objects, and idle objects give theirs back.

Objects are locked through one lock file per folder (``persistence.LockTable``),
so a live object whose file is closed ("parked") holds no descriptor; it keeps
its lock and its instance, and its next event reopens the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from objects import DurableObject
from persistence import LOCK_SHARDS, LOCK_TABLE_FILE, LockTable, ObjectDatabase, ObjectLockedError, ofd_locks_available
from runtime import open_runtime

pytestmark = pytest.mark.skipif(not ofd_locks_available(), reason="needs Linux OFD locks")


class Box(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.constructed = getattr(Box, "constructed", 0)
        Box.constructed = self.constructed + 1
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS v(x INTEGER)")

    def add(self, x: int) -> int:
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO v VALUES (?)", x)
        return int(sql.exec("SELECT sum(x) AS s FROM v").one()["s"])


def _object_files_open(folder: Path) -> int:
    """Descriptors of this process open on object files under ``folder``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)) and ".sqlite" in target and "alarms" not in target:
            count += 1
    return count


async def test_open_object_files_stay_under_the_budget_while_every_object_stays_live(tmp_path, autojump_clock):
    Box.constructed = 0
    async with open_runtime(bindings={"B": Box}, data_dir=tmp_path, idle_timeout=3600) as rt:
        rt.max_open_objects = 4
        stubs = [rt.env.B.getByName(f"b{i}") for i in range(20)]
        for stub in stubs:
            assert await stub.add(1) == 1
            assert _object_files_open(tmp_path) <= 4 * 2
        for stub in stubs:  # every parked object reopens its file with its data
            assert await stub.add(2) == 3
            assert _object_files_open(tmp_path) <= 4 * 2
        assert Box.constructed == 20  # parked, never evicted: constructors ran once each
        assert all(s.state in ("active", "idle") for s in rt.statistics())


async def test_an_idle_object_closes_its_file_and_keeps_its_lock(tmp_path, autojump_clock):
    async with open_runtime(bindings={"B": Box}, data_dir=tmp_path, idle_timeout=3600) as first:
        stub = first.env.B.getByName("idle")
        assert await stub.add(5) == 5
        assert _object_files_open(tmp_path) > 0
        await trio.sleep(31)  # past the idle time before parking (30 s while the budget has room)
        assert _object_files_open(tmp_path) == 0
        async with open_runtime(bindings={"B": Box}, data_dir=tmp_path) as second:
            with pytest.raises(ObjectLockedError, match=r"this Durable Object is live in another host"):
                await second.env.B.getByName("idle").add(1)
        assert await stub.add(1) == 6  # the same instance reopens its file


async def test_an_object_used_every_few_seconds_keeps_its_file_open_while_the_budget_has_room(tmp_path, autojump_clock):
    async with open_runtime(bindings={"B": Box}, data_dir=tmp_path, idle_timeout=3600) as rt:
        stub = rt.env.B.getByName("warm")
        act = None
        for i in range(5):
            assert await stub.add(1) == i + 1
            act = act or rt.live_activation("B", stub.id)
            await trio.sleep(5)
            assert not act.db.parked  # no reopen for the next call
        await trio.sleep(30)
        assert act.db.parked


async def test_idle_objects_park_after_a_second_once_half_the_budget_is_open(tmp_path, autojump_clock):
    async with open_runtime(bindings={"B": Box}, data_dir=tmp_path, idle_timeout=3600) as rt:
        rt.max_open_objects, rt.park_soon_above = 8, 4
        stubs = [rt.env.B.getByName(f"b{i}") for i in range(6)]
        for stub in stubs:
            await stub.add(1)
        await trio.sleep(2)  # six open, over the four of half the budget: parked after a second
        assert _object_files_open(tmp_path) == 0
        for stub in stubs[:3]:
            assert await stub.add(1) == 2
        await trio.sleep(2)  # three open: under half the budget, they keep their files a while
        assert _object_files_open(tmp_path) == 3 * 2
        await trio.sleep(30)
        assert _object_files_open(tmp_path) == 0


async def test_the_budget_parks_the_objects_used_longest_ago_first(tmp_path, autojump_clock):
    async with open_runtime(bindings={"B": Box}, data_dir=tmp_path, idle_timeout=3600) as rt:
        rt.max_open_objects = 3
        stubs = [rt.env.B.getByName(f"b{i}") for i in range(3)]
        for stub in stubs:
            await stub.add(1)
        await stubs[0].add(1)  # opened first, but used last
        await rt.env.B.getByName("b3").add(1)  # over the budget: one must park
        parked = [rt.live_activation("B", s.id).db.parked for s in stubs]
        assert parked == [False, True, False]


def test_a_lock_table_holds_many_locks_through_a_few_descriptors(tmp_path):
    first, second = LockTable(tmp_path), LockTable(tmp_path)
    try:
        tokens = [first.try_acquire(f"o{i}.sqlite") for i in range(100)]
        assert None not in tokens and first.held == 100
        assert second.try_acquire("o7.sqlite") is None
        assert first.try_acquire("o7.sqlite") is None  # a second open through the same table
        first.release(tokens[7])  # type: ignore[arg-type]
        assert second.try_acquire("o7.sqlite") is not None
        files = os.listdir(tmp_path)
        assert LOCK_TABLE_FILE in files and len(files) <= LOCK_SHARDS
        assert all(f == LOCK_TABLE_FILE or f.startswith(LOCK_TABLE_FILE + ".") for f in files)
    finally:
        first.close()
        second.close()


def test_a_tool_locking_an_object_in_a_lock_file_no_host_opened_yet_still_keeps_hosts_out(tmp_path):
    from persistence._locks import _offset, _shard_file, hold_shared

    table = LockTable(tmp_path)
    try:
        # An object whose lock lives in a shard file this host has not made yet.
        name = next(f"o{i}.sqlite" for i in range(1000) if _offset(f"o{i}.sqlite") % LOCK_SHARDS != 0)
        assert not (tmp_path / _shard_file(_offset(name) % LOCK_SHARDS)).exists()
        fd = hold_shared(tmp_path, name)
        assert fd is not None and fd >= 0
        try:
            assert table.try_acquire(name) is None  # the tool's shared lock keeps the host out
        finally:
            os.close(fd)
        token = table.try_acquire(name)
        assert token is not None
        assert hold_shared(tmp_path, name) is None  # and the host's keeps the tool out
    finally:
        table.close()


def test_a_tool_needs_no_lock_where_no_host_ever_ran(tmp_path):
    from persistence._locks import hold_shared

    assert hold_shared(tmp_path, "o1.sqlite") == -1
    assert os.listdir(tmp_path) == []


def test_a_parked_database_reopens_on_its_next_use_with_its_data(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.kv.put("k", 1)
        db.commit()
        assert db.park() is True and db.parked
        with pytest.raises(ObjectLockedError):
            ObjectDatabase(tmp_path / "o.sqlite", locks=LockTable(tmp_path))
        assert db.kv.get("k") == 1
        assert not db.parked
        db.close()
        assert table.held == 0
    finally:
        table.close()


@pytest.mark.parametrize("durability", ["full", "normal", "none"])
@pytest.mark.parametrize("history", [True, False])
def test_a_reopened_parked_database_has_the_settings_of_its_first_open(tmp_path, durability, history):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability=durability,
                            pitr_retention_ms=None if not history else 86_400_000.0)
        db.sql.exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v)")
        db.commit()

        def settings() -> list[Any]:
            db._auth.internal = True  # dohost's own pragmas, refused to user SQL
            try:
                return [db._conn.execute(f"PRAGMA {p}").fetchall()[0][0]
                        for p in ("locking_mode", "journal_mode", "synchronous", "foreign_keys")]
            finally:
                db._auth.internal = False

        db.ensure_sync_level()  # a new file's first commit leaves its level to the next transaction
        first = settings()
        assert db.park() is True
        assert settings() == first
        assert first[0] == "exclusive" and first[1] == ("memory" if durability == "none" and not history else "wal")
        db.sql.exec("INSERT INTO t VALUES (1, 2)")
        db.commit()
        db.close()
    finally:
        table.close()


def test_a_known_read_reopens_a_parked_database_and_later_writes_still_commit(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.sql.exec("CREATE TABLE t(k TEXT PRIMARY KEY, v)")
        db.sql.exec("INSERT INTO t VALUES ('a', 1)")
        db.commit()
        assert db.sql.exec("SELECT v FROM t WHERE k = ?", "a").one() == {"v": 1}  # now known read-only
        assert db.park() is True
        assert db.sql.exec("SELECT v FROM t WHERE k = ?", "a").one() == {"v": 1}
        assert db.park() is True
        assert db.kv.get("missing") is None
        db.sql.exec("INSERT INTO t VALUES ('b', 2)")  # the write still opens a transaction
        db.commit()
        db.close()
        again = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        assert again.sql.exec("SELECT count(*) AS n FROM t").one() == {"n": 2}
        again.close()
    finally:
        table.close()


def test_an_object_with_an_open_transaction_is_not_parked(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.kv.put("k", 1)
        assert db.park() is False
        db.commit()
        assert db.park() is True
        db.close()
    finally:
        table.close()


def test_a_cursor_left_unfinished_does_not_stop_its_database_from_parking_or_closing(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table)
        db.sql.exec("CREATE TABLE t(x)")
        db.sql.exec("INSERT INTO t VALUES (1), (2), (3)")
        db.commit()
        held = db.sql.exec("SELECT x FROM t ORDER BY x")
        assert held.next()["value"] == {"x": 1}  # a statement still running
        assert db.park() is True
        assert [r.x for r in db.sql.exec("SELECT x FROM t ORDER BY x")] == [1, 2, 3]
        kept = db.sql.exec("SELECT x FROM t ORDER BY x")
        assert next(kept) == {"x": 1}
        db.close()
        assert table.held == 0
    finally:
        table.close()


class Blob(DurableObject):
    def put(self, n: int) -> None:
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS b(k INTEGER PRIMARY KEY, v BLOB)")
        for i in range(n):
            sql.exec("INSERT OR REPLACE INTO b VALUES (?, ?)", i, b"x" * 4000)


def _wal_bytes(folder: Path) -> int:
    [wal] = [p for p in folder.rglob("*.sqlite-wal") if "alarms" not in p.name]
    return wal.stat().st_size


async def test_a_reopened_objects_long_wal_is_emptied_by_its_next_commit(tmp_path, autojump_clock):
    async with open_runtime(bindings={"B": Blob}, data_dir=tmp_path, idle_timeout=3600, durability="full") as rt:
        rt.park_after_idle = 1.0
        stub = rt.env.B.getByName("long")
        # One call, so no idle moment comes before the WAL is long: fake time can jump
        # while a commit waits on its thread, and a park between two calls would let
        # the second reopen and empty the WAL before it is measured.
        await stub.put(100)  # ~400 KiB of WAL
        assert _wal_bytes(tmp_path) > 300_000  # never reopened: SQLite's own checkpoint waits longer
        await trio.sleep(2)  # parks, the WAL left in place
        assert rt.live_activation("B", stub.id).db.parked
        await stub.put(1)  # reopens (reading the whole WAL back) and commits
        assert _wal_bytes(tmp_path) < 100_000  # so the next reopen reads little


def test_a_lock_file_a_tool_makes_gets_the_owner_and_mode_of_the_hosts_lock_files(tmp_path):
    # A tool run as root (``dohost do``) making a shard's missing lock file must leave
    # one the host's user can still open for writing.
    from persistence._locks import _offset, _shard_file, hold_shared

    LockTable(tmp_path).close()
    host_file = tmp_path / LOCK_TABLE_FILE
    if os.geteuid() == 0:
        os.chown(host_file, 12345, 12345)  # as if a host ran as another user
    os.chmod(host_file, 0o660)  # as if an operator shared the folder with a group
    name = next(f"o{i}.sqlite" for i in range(1000) if _offset(f"o{i}.sqlite") % LOCK_SHARDS != 0)
    old_umask = os.umask(0o077)  # a tool's umask must not narrow the mode either
    try:
        fd = hold_shared(tmp_path, name)
    finally:
        os.umask(old_umask)
    assert fd is not None and fd >= 0
    os.close(fd)
    made = (tmp_path / _shard_file(_offset(name) % LOCK_SHARDS)).stat()
    host = host_file.stat()
    assert (made.st_uid, made.st_gid, made.st_mode) == (host.st_uid, host.st_gid, host.st_mode)
