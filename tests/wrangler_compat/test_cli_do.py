"""`dohost do`: offline on a data directory, and against a running `dohost serve`."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import trio

from persistence import LockTable, ObjectDatabase
from runtime import open_runtime
from wrangler_compat.cli import main

PROJECT = Path(__file__).parent / "inspector" / "project"
CONFIG = PROJECT / "wrangler.toml"
FAR = 4102444800000  # 2100-01-01, in ms


def _seed(data: Path) -> None:
    async def go() -> None:
        async with open_runtime(config=CONFIG, data_dir=data) as rt:
            for title in ("alpha", "it's beta"):
                await rt.fetch(f"http://x/ada/add?title={title}&stars=4")
            await rt.fetch("http://x/ada/set?key=theme&value=dark")
            await rt.fetch(f"http://x/ada/remind?at={FAR}")
            await rt.fetch("http://x/grace/add?title=gamma")

    trio.run(go)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    _seed(tmp_path / "state")
    return tmp_path / "state"


def do(capsys: pytest.CaptureFixture[str], *argv: str, where: list[str]) -> tuple[int, str, str]:
    code = main(["do", *argv, *where])
    out = capsys.readouterr()
    return code, out.out, out.err


def _offline(data: Path) -> list[str]:
    return ["--config", str(CONFIG), "--persist-to", str(data)]


def test_do_list_shows_every_object_with_its_state_as_a_table_and_as_json(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = do(capsys, "list", where=_offline(data))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["binding", "name", "id", "state", "storage_bytes", "alarm"]
    assert sorted(line.split()[1] for line in lines[2:]) == ["ada", "grace"]
    code, out, _ = do(capsys, "list", "NOTEBOOK", "--json", where=["--data-dir", str(data), "--config", str(CONFIG)])
    listing = {o["name"]: o for o in json.loads(out)}
    assert listing["ada"]["state"] == "evicted" and listing["ada"]["alarm"] == "2100-01-01T00:00:00.000Z"
    assert listing["grace"]["alarm"] is None


def test_do_sql_reads_without_changing_the_file_and_writes_under_the_objects_lock(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "SELECT title FROM notes ORDER BY id", where=_offline(data))
    assert code == 0 and out.splitlines()[2:] == ["alpha", "it's beta"]
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == files

    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "INSERT INTO notes(title) VALUES ('delta')", where=_offline(data))
    assert code == 0 and out.strip() == "1 row(s) written"
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "SELECT count(*) AS n FROM notes", "--json", where=_offline(data))
    assert json.loads(out)["rows"] == [[3]]


def test_do_sql_reports_a_bad_statement_with_exit_code_1_and_changes_nothing(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = do(capsys, "sql", "NOTEBOOK", "ada", "INSERT INTO missing VALUES (1)", where=_offline(data))
    assert code == 1 and "no such table: missing" in err


def test_do_kv_puts_gets_lists_and_deletes_with_exit_codes(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _offline(data)
    assert do(capsys, "kv", "put", "NOTEBOOK", "ada", "limits", '{"max": 3}', where=w)[0] == 0
    assert do(capsys, "kv", "put", "NOTEBOOK", "ada", "zip", "00501", "--string", where=w)[0] == 0
    code, out, _ = do(capsys, "kv", "get", "NOTEBOOK", "ada", "limits", "--json", where=w)
    assert code == 0 and json.loads(out) == {"key": "limits", "value": {"max": 3}}
    code, out, _ = do(capsys, "kv", "list", "NOTEBOOK", "ada", "--json", where=w)
    assert [e["key"] for e in json.loads(out)] == ["limits", "theme", "zip"]
    assert json.loads(out)[2]["value"] == "00501"
    assert do(capsys, "kv", "delete", "NOTEBOOK", "ada", "limits", where=w)[0] == 0
    assert do(capsys, "kv", "get", "NOTEBOOK", "ada", "limits", where=w)[0] == 4
    assert do(capsys, "kv", "delete", "NOTEBOOK", "ada", "limits", where=w)[0] == 4


def test_do_alarm_gets_runs_and_deletes_it(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _offline(data)
    code, out, _ = do(capsys, "alarm", "get", "NOTEBOOK", "ada", where=w)
    assert code == 0 and out.strip() == "2100-01-01T00:00:00.000Z"
    code, out, _ = do(capsys, "alarm", "run", "NOTEBOOK", "ada", where=w)
    assert code == 0 and out.strip() == "alarm() ran"
    assert json.loads(do(capsys, "kv", "get", "NOTEBOOK", "ada", "reminded", "--json", where=w)[1])["value"] is True
    assert do(capsys, "alarm", "get", "NOTEBOOK", "ada", where=w)[0] == 4
    assert do(capsys, "alarm", "delete", "NOTEBOOK", "grace", where=w)[0] == 0


def test_do_export_loads_into_sqlite3_and_import_restores_the_object_exactly(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _offline(data)
    code, dump, _ = do(capsys, "export", "NOTEBOOK", "ada", where=w)
    assert code == 0
    with closing(sqlite3.connect(tmp_path / "plain.sqlite")) as plain:  # (its own with only ends a transaction)
        plain.executescript(dump)
        assert plain.execute("SELECT title FROM notes ORDER BY id").fetchall() == [("alpha",), ("it's beta",)]
        assert plain.execute("SELECT key FROM _cf_KV").fetchall() == [("theme",)]
    (tmp_path / "dump.sql").write_text(dump)
    # Into a new object, and back over an object that changed since.
    assert do(capsys, "import", "NOTEBOOK", "copy", str(tmp_path / "dump.sql"), where=w)[0] == 0
    do(capsys, "sql", "NOTEBOOK", "ada", "DELETE FROM notes", where=w)
    assert do(capsys, "import", "NOTEBOOK", "ada", str(tmp_path / "dump.sql"), where=w)[0] == 0
    assert do(capsys, "export", "NOTEBOOK", "ada", where=w)[1] == dump
    # The name lives beside the file (<id>.sqlite.name), not in the dump: each object keeps its own.
    assert do(capsys, "export", "NOTEBOOK", "copy", where=w)[1] == dump
    code, out, _ = do(capsys, "list", "--json", where=w)
    assert sorted(o["name"] for o in json.loads(out)) == ["ada", "copy", "grace"]


def test_do_restore_brings_back_a_bookmark_offline_and_prints_the_undo(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _offline(data)
    code, out, _ = do(capsys, "bookmark", "NOTEBOOK", "ada", "--json", where=w)
    assert code == 0
    mark = json.loads(out)["bookmark"]
    do(capsys, "sql", "NOTEBOOK", "ada", "INSERT INTO notes(title) VALUES ('delta')", where=w)
    code, out, _ = do(capsys, "bookmark", "NOTEBOOK", "ada", "--at", "2100-01-01T00:00:00Z", where=w)
    assert code == 0 and out.strip() != mark  # a moment after the insert: the state with delta
    code, out, _ = do(capsys, "restore", "NOTEBOOK", "ada", mark, where=w)
    assert code == 0 and out.splitlines()[0] == f"restored NOTEBOOK ada to {mark}"
    undo = out.splitlines()[1].split()[-1]
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "SELECT title FROM notes ORDER BY id", "--json", where=w)
    assert json.loads(out)["rows"] == [["alpha"], ["it's beta"]]
    assert do(capsys, "restore", "NOTEBOOK", "ada", undo, where=w)[0] == 0
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "SELECT count(*) FROM notes", "--json", where=w)
    assert json.loads(out)["rows"] == [[3]]


def test_do_restore_refuses_another_objects_bookmark_with_exit_code_1(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _offline(data)
    grace = json.loads(do(capsys, "bookmark", "NOTEBOOK", "grace", "--json", where=w)[1])["bookmark"]
    code, _, err = do(capsys, "restore", "NOTEBOOK", "ada", grace, where=w)
    assert code == 1 and "does not belong" in err
    assert do(capsys, "bookmark", "NOTEBOOK", "nobody", where=w)[0] == 4


def test_do_refuses_an_object_a_host_holds(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = do(capsys, "list", "--json", where=_offline(data))
    ada = next(o["id"] for o in json.loads(out) if o["name"] == "ada")
    path = next(data.rglob(f"{ada}.sqlite"))
    table = LockTable(path.parent)  # held as a host holds it: its byte in the folder's lock table
    held = ObjectDatabase(path, locks=table)
    try:
        code, _, err = do(capsys, "sql", "NOTEBOOK", ada, "SELECT 1", where=_offline(data))
        assert code == 3 and "live in a running host" in err
        assert do(capsys, "kv", "put", "NOTEBOOK", "ada", "k", "1", where=_offline(data))[0] == 3
        code, out, _ = do(capsys, "list", "--json", where=_offline(data))
        assert {o["name"]: o["state"] for o in json.loads(out)} == {"ada": "locked", "grace": "evicted"}
    finally:
        held.close()
        table.close()
    assert do(capsys, "kv", "put", "NOTEBOOK", "ada", "k", "1", where=_offline(data))[0] == 0


def test_do_names_an_unknown_binding_with_exit_code_2(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = do(capsys, "sql", "NOPE", "ada", "SELECT 1", where=_offline(data))
    assert code == 2 and "no Durable Object binding named 'NOPE'" in err and "NOTEBOOK" in err


# ------------------------------------------------------------------ against dohost serve
@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    import socket

    data = tmp_path_factory.mktemp("serve") / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "dohost"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    log_path = data.parent / "serve.log"
    with open(log_path, "w") as log:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOHOST_")}
        process = subprocess.Popen(
            [*argv, "serve", "--data-dir", str(data), "--config", str(CONFIG), "--listen", f"127.0.0.1:{port}",
             "--token", "s3cret"], stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/__dohost/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dohost serve did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            with httpx.Client(base_url=url) as http:
                for title in ("alpha", "beta"):
                    http.get(f"/ada/add?title={title}")
                http.get(f"/ada/remind?at={FAR}")
            yield url, data
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_do_works_against_a_running_serve_with_its_token(serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _data = serve
    w = ["--to", url, "--token", "s3cret"]
    code, out, _ = do(capsys, "list", "--json", where=w)
    assert code == 0 and [o["name"] for o in json.loads(out)] == ["ada"]
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "ada", "SELECT title FROM notes ORDER BY id", where=w)
    assert code == 0 and out.splitlines()[2:] == ["alpha", "beta"]
    assert do(capsys, "sql", "NOTEBOOK", "ada", "INSERT INTO notes(title) VALUES ('gamma')", where=w)[0] == 0
    assert do(capsys, "kv", "put", "NOTEBOOK", "ada", "n", "5", where=w)[0] == 0
    assert json.loads(do(capsys, "kv", "get", "NOTEBOOK", "ada", "n", "--json", where=w)[1])["value"] == 5
    assert do(capsys, "alarm", "get", "NOTEBOOK", "ada", where=w)[1].strip() == "2100-01-01T00:00:00.000Z"
    assert do(capsys, "alarm", "run", "NOTEBOOK", "ada", where=w)[0] == 0
    assert json.loads(do(capsys, "kv", "get", "NOTEBOOK", "ada", "reminded", "--json", where=w)[1])["value"] is True

    code, dump, _ = do(capsys, "export", "NOTEBOOK", "ada", where=w)
    (tmp_path / "dump.sql").write_text(dump)
    assert do(capsys, "import", "NOTEBOOK", "twin", str(tmp_path / "dump.sql"), where=w)[0] == 0
    code, out, _ = do(capsys, "sql", "NOTEBOOK", "twin", "SELECT title FROM notes ORDER BY id", "--json", where=w)
    assert json.loads(out)["rows"] == [["alpha"], ["beta"], ["gamma"]]


@pytest.mark.slow
def test_do_on_a_served_data_directory_goes_through_the_server_and_needs_its_token(serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url, data = serve
    where = ["--config", str(CONFIG), "--data-dir", str(data)]
    code, _, err = do(capsys, "list", where=where)
    assert code == 3 and "--token" in err and url in err
    code, out, _ = do(capsys, "list", "--json", where=[*where, "--token", "s3cret"])
    assert code == 0 and "ada" in [o["name"] for o in json.loads(out)]
    code, _, err = do(capsys, "list", where=["--to", url, "--token", "wrong"])
    assert code == 3 and "token" in err


@pytest.mark.slow
def test_do_bookmark_and_restore_go_through_a_running_serve(serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url, _data = serve
    w = ["--to", url, "--token", "s3cret"]
    count = ["sql", "NOTEBOOK", "ada", "SELECT count(*) FROM notes", "--json"]
    before = json.loads(do(capsys, *count, where=w)[1])["rows"]
    code, out, _ = do(capsys, "bookmark", "NOTEBOOK", "ada", "--json", where=w)
    assert code == 0
    mark = json.loads(out)["bookmark"]
    with httpx.Client(base_url=url) as http:
        http.get("/ada/add?title=later")  # through the Worker: the object is live
    code, out, _ = do(capsys, "restore", "NOTEBOOK", "ada", mark, "--json", where=w)
    assert code == 0 and json.loads(out)["restored"] == mark
    assert json.loads(do(capsys, *count, where=w)[1])["rows"] == before
