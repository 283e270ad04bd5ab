"""``dohost d1 execute`` / ``dohost d1 migrations apply`` and the harness's ``apply_d1_migrations``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runtime import open_runtime
from wrangler_compat.bindings._d1_admin import split_statements
from wrangler_compat.cli import main

WRANGLER = """\
name = "app"
main = "src/entry.py"
compatibility_date = "2026-11-01"

[[d1_databases]]
binding = "DB"
database_name = "app-db"
database_id = "0000-app"
migrations_dir = "db/migrations"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "src").mkdir(parents=True)
    (root / "src" / "entry.py").write_text("def on_fetch(request):\n    pass\n")
    (root / "wrangler.toml").write_text(WRANGLER)
    migrations = root / "db" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "0001_users.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n")
    (migrations / "0002_seed.sql").write_text(
        "-- seed\nINSERT INTO users (name) VALUES ('ann');\nINSERT INTO users (name) VALUES ('a;b');\n"
    )
    return root


def test_statements_split_where_sqlite_says_they_end() -> None:
    sql = "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;\nINSERT INTO y VALUES ('a;b');\n-- end\n"
    assert split_statements(sql) == [
        "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;",
        "INSERT INTO y VALUES ('a;b');",
    ]


async def test_cli_migrations_apply_then_execute_reach_the_database_dev_serves(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["d1", "migrations", "apply", "app-db", "--local", "-c", str(project)]) == 0
    assert capsys.readouterr().out.splitlines() == ["Applied 0001_users.sql", "Applied 0002_seed.sql"]
    assert main(["d1", "migrations", "apply", "DB", "-c", str(project)]) == 0
    assert capsys.readouterr().out.strip() == "No migrations to apply."
    assert main(["d1", "execute", "app-db", "-c", str(project), "--command", "SELECT name FROM users ORDER BY id"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["results"] == [{"name": "ann"}, {"name": "a;b"}] and result["success"] is True
    async with open_runtime(config=project, data_dir=project / ".dohost" / "state") as rt:
        assert await rt.env.DB.prepare("SELECT count(*) AS n FROM users").first("n") == 2


def test_a_failing_file_changes_nothing_and_exits_1(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = tmp_path / "bad.sql"
    sql.write_text(textwrap.dedent("""\
        CREATE TABLE t (x);
        INSERT INTO nope VALUES (1);
    """))
    assert main(["d1", "execute", "app-db", "-c", str(project), "--file", str(sql)]) == 1
    assert capsys.readouterr().err.strip() == "dohost: error: d1: D1_ERROR: no such table: nope: SQLITE_ERROR"
    assert main(["d1", "execute", "app-db", "-c", str(project), "--command",
                 "SELECT name FROM sqlite_master WHERE name = 't'"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["results"] == []


def test_an_unknown_database_names_the_ones_there_are(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["d1", "execute", "nope", "-c", str(project), "--command", "SELECT 1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "dohost: error: wrangler.toml: d1_databases: no database named 'nope' (databases: app-db (env.DB))"
    )


async def test_a_failing_migration_is_not_recorded_and_the_earlier_ones_stay(project: Path) -> None:
    from wrangler_compat.testing._harness import ProjectSource, open_harness
    from wrangler_compat.bindings import D1Error

    (project / "db" / "migrations" / "0003_broken.sql").write_text("ALTER TABLE nope ADD COLUMN x;\n")
    prepared = ProjectSource.load(project).prepare(project.parent / "state")
    async with open_harness(prepared) as harness:
        with pytest.raises(D1Error, match=r"^Migration 0003_broken\.sql failed: D1_ERROR: no such table: nope"):
            await harness.apply_d1_migrations("DB")
        names = await harness.env.DB.prepare("SELECT name FROM d1_migrations ORDER BY id").raw()
        assert names == [["0001_users.sql"], ["0002_seed.sql"]]
        (project / "db" / "migrations" / "0003_broken.sql").write_text("ALTER TABLE users ADD COLUMN age INTEGER;\n")
        assert await harness.apply_d1_migrations("DB") == ["0003_broken.sql"]
