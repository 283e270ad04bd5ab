"""D1 as Python Workers call it: prepared statements, D1's result shapes, batch atomicity, exec, errors."""

from __future__ import annotations

import re

import pytest

from wrangler_compat.bindings import D1Database, D1Error
from wrangler_compat.bindings._store import StoreHost


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


@pytest.fixture
async def db(store_host: StoreHost) -> D1Database:
    d1 = D1Database("DB", "db-id", store_host)
    await d1.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER)")
    return d1


async def test_run_reports_changes_and_the_last_row_id_in_meta(db: D1Database) -> None:
    result = await db.prepare("INSERT INTO users (name, age) VALUES (?, ?)").bind("ann", 31).run()
    assert result.success is True and result.results == []
    meta = result.meta
    assert (meta.changes, meta.last_row_id, meta.changed_db) == (1, 1, True)
    assert meta.rows_written >= 1 and meta.size_after > 0 and meta.duration >= 0
    assert set(meta) >= {"changes", "last_row_id", "rows_read", "rows_written", "duration", "changed_db", "size_after"}


async def test_all_returns_rows_as_dicts_with_attribute_access(db: D1Database) -> None:
    insert = db.prepare("INSERT INTO users (name, age) VALUES (?1, ?2)")
    await db.batch([insert.bind("ann", 31), insert.bind("bob", 25)])
    result = await db.prepare("SELECT name, age FROM users ORDER BY age").all()
    assert result["results"] == [{"name": "bob", "age": 25}, {"name": "ann", "age": 31}]
    assert result.results[0].name == "bob" and isinstance(result.results[0].age, int)
    assert result.meta.rows_read == 2 and result.meta.changes == 0 and result.meta.changed_db is False


async def test_first_gives_the_first_row_a_column_or_none(db: D1Database) -> None:
    await db.prepare("INSERT INTO users (name, age) VALUES ('ann', 31)").run()
    stmt = db.prepare("SELECT * FROM users WHERE name = ?")
    assert await stmt.bind("ann").first() == {"id": 1, "name": "ann", "age": 31}
    assert await stmt.bind("ann").first("age") == 31
    assert await stmt.bind("zed").first() is None
    with pytest.raises(D1Error, match=exact("D1_COLUMN_NOTFOUND: Column not found (nope)")):
        await stmt.bind("ann").first("nope")


async def test_raw_returns_lists_optionally_headed_by_column_names(db: D1Database) -> None:
    await db.prepare("INSERT INTO users (name, age) VALUES ('ann', 31)").run()
    stmt = db.prepare("SELECT name, age FROM users")
    assert await stmt.raw() == [["ann", 31]]
    assert await stmt.raw({"columnNames": True}) == [["name", "age"], ["ann", 31]]
    assert await stmt.raw(columnNames=True) == [["name", "age"], ["ann", 31]]


async def test_bind_returns_a_new_statement_and_converts_booleans(db: D1Database) -> None:
    base = db.prepare("INSERT INTO users (name, age) VALUES (?, ?)")
    await base.bind("t", True).run()
    assert await db.prepare("SELECT age FROM users").first("age") == 1
    assert base.params == ()


async def test_a_failing_batch_changes_nothing(db: D1Database) -> None:
    insert = db.prepare("INSERT INTO users (name) VALUES (?)")
    await insert.bind("ann").run()
    with pytest.raises(D1Error, match=exact(
        # Local D1 (miniflare) runs on workerd's Durable Object SQLite, whose errors
        # end with the extended code (tests/conformance).
        "D1_ERROR: UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"
    )):
        await db.batch([insert.bind("bob"), insert.bind("ann")])
    assert await db.prepare("SELECT name FROM users").raw() == [["ann"]]


async def test_batch_returns_one_result_per_statement(db: D1Database) -> None:
    results = await db.batch([
        db.prepare("INSERT INTO users (name) VALUES ('a')"),
        db.prepare("SELECT count(*) AS n FROM users"),
    ])
    assert [r.meta.changes for r in results] == [1, 0]
    assert results[1].results == [{"n": 1}]


async def test_exec_runs_one_statement_per_line_and_counts_them(db: D1Database) -> None:
    out = await db.exec("INSERT INTO users (name) VALUES ('a')\nINSERT INTO users (name) VALUES ('b')\n")
    assert out.count == 2 and out.duration >= 0
    with pytest.raises(D1Error, match=r"^D1_EXEC_ERROR: Error in line 1: SELEC 1: near \"SELEC\": syntax error"):
        await db.exec("SELEC 1")


async def test_sql_errors_carry_d1s_prefix(db: D1Database) -> None:
    with pytest.raises(D1Error, match=exact("D1_ERROR: no such table: nope: SQLITE_ERROR")):
        await db.prepare("SELECT * FROM nope").all()


async def test_an_object_binding_is_a_d1_type_error(db: D1Database) -> None:
    with pytest.raises(D1Error, match=r"^D1_TYPE_ERROR: Type 'object' not supported for value"):
        db.prepare("SELECT ?").bind({"a": 1})


async def test_reserved_names_and_transactions_are_refused_as_on_cloudflare(db: D1Database) -> None:
    with pytest.raises(D1Error, match=r"^D1_ERROR: "):
        await db.prepare("CREATE TABLE _cf_mine (x)").run()
    with pytest.raises(D1Error, match=r"^D1_ERROR: "):
        await db.prepare("BEGIN TRANSACTION").run()


async def test_the_database_outlives_its_connection(store_host: StoreHost, db: D1Database) -> None:
    await db.prepare("INSERT INTO users (name) VALUES ('kept')").run()
    store_host.close()
    again = D1Database("OTHER", "db-id", store_host)
    assert await again.prepare("SELECT name FROM users").first("name") == "kept"


async def test_with_session_uses_the_same_database(db: D1Database) -> None:
    session = db.withSession("first-primary")
    assert session.getBookmark() is None
    await session.prepare("INSERT INTO users (name) VALUES ('s')").run()
    assert await db.prepare("SELECT count(*) AS n FROM users").first("n") == 1
    # CF: a session's bookmark is a string once it has run a query
    # (cloudflare/workers-py runtime-sdk tests/bindings-test test_d1.py::test_session_bookmark)
    bookmark = session.getBookmark()
    assert isinstance(bookmark, str) and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}", bookmark)
    assert db.withSession(bookmark).getBookmark() == bookmark
