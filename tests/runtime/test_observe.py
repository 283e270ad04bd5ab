"""runtime.Observer: looking at objects never changes them; states, events and operations as they are."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import trio
import trio.testing

from objects import DurableObject
from persistence import PersistenceError, inspect_file
from runtime import Observer, open_runtime


class Notes(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, data BLOB)")
        self.constructed = getattr(Notes, "constructed", 0) + 1
        Notes.constructed = self.constructed

    def add(self, title):
        self.ctx.storage.sql.exec("INSERT INTO notes(title, data) VALUES (?, ?)", title, b"\x00\x01")
        return self.ctx.storage.sql.exec("SELECT count(*) AS n FROM notes").one()["n"]

    def remember(self, key, value):
        self.ctx.storage.kv.put(key, value)

    async def remind(self, at_ms):
        await self.ctx.storage.setAlarm(at_ms)

    def fail(self):
        self.ctx.storage.kv.put("before-failing", 1)
        raise ValueError("refused")

    async def alarm(self):
        self.ctx.storage.kv.put("alarm-ran", True)


def _files(directory: Path) -> set[str]:
    return {p.name for p in directory.rglob("*")}


async def test_reading_an_evicted_object_neither_wakes_it_nor_creates_a_file(tmp_path: Path) -> None:
    Notes.constructed = 0
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        stub = rt.env.NOTES.getByName("ada")
        await stub.add("first")
        await stub.remember("theme", {"dark": True, "sizes": [1, 2.5]})
        oid = rt.env.NOTES.idFromName("ada")
        await rt.evict("NOTES", oid)
        before = _files(tmp_path)
        obs = Observer(rt)

        tables = await obs.read("NOTES", oid, inspect_file.user_tables)
        kv = await obs.read("NOTES", oid, inspect_file.kv_entries)
        views = obs.objects("NOTES")

        assert tables == [("notes", 1)]
        assert kv == [("theme", {"dark": True, "sizes": [1, 2.5]})]
        assert [(v.name, v.state) for v in views] == [("ada", "evicted")]
        assert Notes.constructed == 1
        assert rt.live_activation("NOTES", oid) is None
        assert _files(tmp_path) == before


async def test_looking_at_an_idle_object_does_not_delay_its_eviction(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path, idle_timeout=10.0) as rt:
        await rt.env.NOTES.getByName("ada").add("first")
        oid = rt.env.NOTES.idFromName("ada")
        obs = Observer(rt)
        await trio.sleep(6)
        assert obs.state("NOTES", oid) == "idle"
        page = await obs.read("NOTES", oid, lambda c: inspect_file.table_page(c, "notes"))
        assert page is not None and page.rows[0][1] == "first"
        await trio.sleep(5)  # 11 s after the last event, 5 s after the read
        assert obs.state("NOTES", oid) == "evicted"


def _sized_files(directory: Path) -> set[tuple[str, int]]:
    return {(p.name, p.stat().st_size) for p in directory.rglob("*") if p.is_file()}


async def test_reading_a_parked_object_neither_reopens_its_file_nor_creates_one(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path, idle_timeout=3600) as rt:
        rt.park_after_idle = 1.0  # park after a second idle (the budget's room would allow 30 s)
        stub = rt.env.NOTES.getByName("ada")
        await stub.add("first")
        await stub.add("second")
        await stub.remember("theme", "dark")
        await stub.remind(rt.now_ms() + 3_600_000)
        oid = rt.env.NOTES.idFromName("ada")
        await trio.sleep(2)  # past the idle moment: the file is parked, its last commits still in the -wal
        act = rt.live_activation("NOTES", oid)
        assert act is not None and act.db is not None and act.db.parked
        before = _sized_files(tmp_path)
        obs = Observer(rt)

        page = await obs.read("NOTES", oid, lambda c: inspect_file.table_page(c, "notes"))
        kv = await obs.kv("NOTES", oid)
        [view] = obs.objects("NOTES")

        assert page is not None and [r[1] for r in page.rows] == ["first", "second"]
        assert kv == [("theme", "dark")]
        assert (view.name, view.state, view.alarm is not None) == ("ada", "idle", True)
        assert act.db.parked  # no reopened connection
        assert _sized_files(tmp_path) == before
        assert await stub.add("third") == 3  # the same instance reopens its file


async def test_an_import_keeps_the_objects_own_name_beside_its_file(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        await rt.env.NOTES.getByName("ada").add("first")
        oid = rt.env.NOTES.idFromName("ada")
        obs = Observer(rt)
        # A dump of a file written by an older dohost carries its name (key 3) in _cf_METADATA.
        old = ("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, data BLOB);\n"
               "INSERT INTO notes VALUES(1,'old',NULL);\n"
               "CREATE TABLE _cf_METADATA (key INTEGER PRIMARY KEY, value BLOB);\n"
               "INSERT INTO _cf_METADATA VALUES(3,'grace');\nCOMMIT;\n")
        await obs.import_dump("NOTES", oid, old)
        dump = await obs.read("NOTES", oid, inspect_file.dump_sql)
        tables = await obs.read("NOTES", oid, lambda c: [r[0] for r in c.execute("SELECT name FROM sqlite_schema")])
        assert [(v.name, v.state) for v in obs.objects("NOTES")] == [("ada", "evicted")]
        assert dump is not None and "grace" not in dump and "'old'" in dump
        assert tables is not None and "_cf_METADATA" not in tables  # the table only held the name
        assert rt.live_activation("NOTES", oid) is None


async def test_a_read_of_a_live_object_refuses_a_writing_statement(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        stub = rt.env.NOTES.getByName("ada")
        await stub.add("first")
        oid = rt.env.NOTES.idFromName("ada")
        obs = Observer(rt)
        try:
            await obs.read("NOTES", oid, lambda c: inspect_file.run_query(c, "DELETE FROM notes"))
        except inspect_file.ReadOnlyQueryError as exc:
            assert "DELETE FROM notes" in str(exc)
        else:
            raise AssertionError("the write was not refused")
        assert await stub.add("second") == 2


async def test_events_are_recorded_with_kind_rows_written_and_error(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        stub = rt.env.NOTES.getByName("ada")
        await stub.add("first")
        try:
            await stub.fail()
        except Exception:
            pass
        events = Observer(rt).events("NOTES", rt.env.NOTES.idFromName("ada"))
    newest, oldest = events[0], events[-1]
    assert (oldest.kind, oldest.rows_written, oldest.error) == ("rpc", 1, None)
    assert newest.kind == "rpc" and newest.error == "ValueError: refused" and newest.rows_written >= 1
    assert all(e.at is not None and e.at.endswith("Z") for e in events)


async def test_alarm_delete_on_an_evicted_object_changes_its_file_without_waking_it(tmp_path: Path) -> None:
    Notes.constructed = 0
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        stub = rt.env.NOTES.getByName("ada")
        await stub.remind(rt.now_ms() + 3_600_000)
        oid = rt.env.NOTES.idFromName("ada")
        await rt.evict("NOTES", oid)
        obs = Observer(rt)
        assert obs.view("NOTES", oid).alarm is not None
        await obs.delete_alarm("NOTES", oid)
        assert obs.view("NOTES", oid).alarm is None
        assert obs.state("NOTES", oid) == "evicted"
        assert Notes.constructed == 1


async def test_an_export_loads_into_an_empty_sqlite_database_and_its_import_restores_the_object(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path / "data") as rt:
        ada = rt.env.NOTES.getByName("ada")
        for title in ("first", "it's second"):
            await ada.add(title)
        await ada.remember("n", 7)
        await ada.remind(rt.now_ms() + 3_600_000)
        obs = Observer(rt)
        oid = rt.env.NOTES.idFromName("ada")
        dump = await obs.read("NOTES", oid, inspect_file.dump_sql)
        assert dump is not None

        with closing(sqlite3.connect(tmp_path / "loaded.sqlite")) as plain:  # (its own with only ends a transaction)
            plain.executescript(dump)
            assert plain.execute("SELECT title, data FROM notes ORDER BY id").fetchall() == [
                ("first", b"\x00\x01"), ("it's second", b"\x00\x01")
            ]
            assert plain.execute("SELECT key FROM _cf_KV").fetchall() == [("n",)]

        copy = rt.env.NOTES.idFromName("copy")
        await obs.import_dump("NOTES", copy, dump)
        copied = await obs.read("NOTES", copy, inspect_file.dump_sql)
        original = await obs.read("NOTES", oid, inspect_file.dump_sql)
        assert copied is not None and original is not None
        assert copied.replace("'copy'", "'ada'") == original
        assert obs.view("NOTES", copy).alarm == obs.view("NOTES", oid).alarm
        # The restored object runs on from where the original was.
        assert await rt.env.NOTES.getByName("copy").add("third") == 3


async def test_a_bad_dump_changes_nothing(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path) as rt:
        await rt.env.NOTES.getByName("ada").add("first")
        obs = Observer(rt)
        oid = rt.env.NOTES.idFromName("ada")
        before = await obs.read("NOTES", oid, inspect_file.dump_sql)
        try:
            await obs.import_dump("NOTES", oid, "BEGIN TRANSACTION;\nCREATE TABLE x(a);\nINSERT INTO nope VALUES(1);\nCOMMIT;\n")
        except PersistenceError as exc:
            assert "does not load" in str(exc)
        else:
            raise AssertionError("the bad dump was accepted")
        assert await obs.read("NOTES", oid, inspect_file.dump_sql) == before


class Holder(DurableObject):
    release: trio.Event

    async def hold(self):
        async def inner():
            self.ctx.storage.kv.put("step", 1)
            await Holder.release.wait()
            self.ctx.storage.kv.put("step", 2)

        await self.ctx.blockConcurrencyWhile(inner)


async def test_a_read_of_a_live_object_waits_until_no_gate_holder_runs(tmp_path: Path) -> None:
    Holder.release = trio.Event()
    async with open_runtime(bindings={"H": Holder}, data_dir=tmp_path) as rt:
        oid = rt.env.H.idFromName("h")
        obs = Observer(rt)
        seen: list[object] = []

        async def look() -> None:
            seen.append(await obs.read("H", oid, inspect_file.kv_entries))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.env.H.getByName("h").hold)
            await trio.testing.wait_all_tasks_blocked()
            assert obs.state("H", oid) == "active"
            nursery.start_soon(look)
            await trio.testing.wait_all_tasks_blocked()
            assert seen == []  # blockConcurrencyWhile() holds the gate: the read waits
            Holder.release.set()
        assert seen == [[("step", 2)]]


async def test_a_read_cannot_attach_a_file_or_change_a_setting_of_the_objects_connection(tmp_path: Path) -> None:
    async with open_runtime(bindings={"NOTES": Notes}, data_dir=tmp_path / "data") as rt:
        stub = rt.env.NOTES.getByName("ada")
        await stub.add("first")
        oid = rt.env.NOTES.idFromName("ada")
        obs = Observer(rt)
        for sql in (f"ATTACH DATABASE '{tmp_path / 'x.db'}' AS x", "PRAGMA foreign_keys = OFF", "PRAGMA journal_mode",
                    "BEGIN", "SAVEPOINT s"):
            try:
                await obs.read("NOTES", oid, lambda c: inspect_file.run_query(c, sql))
            except Exception as exc:
                assert "not authorized" in str(exc) or "read-only" in str(exc), (sql, exc)
            else:
                raise AssertionError(f"{sql} was allowed")
        assert not (tmp_path / "x.db").exists()
        columns = await obs.read("NOTES", oid, lambda c: inspect_file.run_query(c, "PRAGMA table_info(notes)"))
        assert columns is not None and [r[1] for r in columns.rows] == ["id", "title", "data"]
        assert await stub.add("second") == 2
