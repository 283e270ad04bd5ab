"""Cloudflare contract: implicit transactions, ``transactionSync``, ``deleteAll``, metadata.

Sources: ``src/workerd/api/sql-test.js`` (transactionSync, foreign keys, rollback of lazily
created tables), ``src/workerd/io/actor-sqlite.c++`` (commit regulator message,
deleteAll, getCurrentBookmark), ``src/workerd/util/sqlite-metadata.h``.
"""

from __future__ import annotations

import re

import pytest

from persistence import CommitFailedError, ObjectDatabase, SqlError, StorageTypeError, TransactionError
from persistence import _cf
from persistence import inspect_file

RESET = (
    "Durable Object was reset and rolled back to its last known good state because the application "
    "left the database in a state where constraints were violated: "
)


@pytest.fixture
def sql(db):
    return db.sql


def exact(message: str) -> str:
    return rf"^{re.escape(message)}$"


# -- transactionSync ---------------------------------------------------------------------------


def test_transaction_sync_returns_the_callbacks_value(db, sql):
    result = db.transactionSync(lambda: sql.exec("CREATE TABLE IF NOT EXISTS should_succeed (VALUE text);") and "some data")
    assert result == "some data"
    assert len([*sql.exec("SELECT * FROM sqlite_master WHERE tbl_name = 'should_succeed'")]) == 1


def test_transaction_sync_rolls_back_sql_and_kv_when_the_callback_raises(db, sql):
    def fail():
        sql.exec("CREATE TABLE should_be_rolled_back (VALUE text);")
        db.kv.put("k", "v")
        sql.exec("SELECT * FROM misspelled_table_name;")

    with pytest.raises(SqlError, match=exact("no such table: misspelled_table_name: SQLITE_ERROR")):
        db.transaction_sync(fail)
    assert [*sql.exec("SELECT * FROM sqlite_master WHERE tbl_name = 'should_be_rolled_back'")] == []
    assert db.kv.get("k") is None


def test_nested_transaction_sync_rolls_back_only_the_inner_one(db, sql):
    sql.exec("CREATE TABLE txnTest (i INTEGER)")
    sql.exec("INSERT INTO txnTest VALUES (1)")

    def get_i():
        return sql.exec("SELECT i FROM txnTest").one().i

    def outer():
        sql.exec("UPDATE txnTest SET i = ?", 2)
        assert get_i() == 2

        def inner():
            sql.exec("UPDATE txnTest SET i = ?", 3)
            assert get_i() == 3
            raise RuntimeError("foo")

        with pytest.raises(RuntimeError, match="^foo$"):
            db.transactionSync(inner)
        assert get_i() == 2

    db.transactionSync(outer)
    assert get_i() == 2


def test_transaction_sync_rejects_an_async_callback(db):
    async def callback():
        return 1

    with pytest.raises(StorageTypeError, match=r"^transactionSync\(\) callback must be synchronous"):
        db.transaction_sync(callback)
    assert not db.in_transaction  # nothing was opened for it


def test_transaction_sync_rejects_a_callback_that_returns_an_awaitable(db, sql):
    async def later():
        return 1

    def callback():
        sql.exec("CREATE TABLE t (x)")
        return later()

    with pytest.raises(StorageTypeError, match=r"^transactionSync\(\) callback returned an awaitable"):
        db.transaction_sync(callback)
    assert [*sql.exec("SELECT name FROM sqlite_master WHERE name = 't'")] == []


def test_the_alarm_set_in_a_rolled_back_transaction_is_gone(db):
    # CF: sql-test.js testRollbackAlarmInit
    def fail():
        db.set_alarm(1_700_000_000_000.0)
        raise RuntimeError("bar")

    with pytest.raises(RuntimeError, match="^bar$"):
        db.transaction_sync(fail)
    assert db.get_alarm() is None
    db.set_alarm(1_700_000_000_000.0)
    db.commit()
    assert db.get_alarm() == 1_700_000_000_000.0


# -- foreign keys (sql-test.js testForeignKeys) -----------------------------------------------


@pytest.fixture
def users_posts(db, sql):
    sql.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
    sql.exec(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, content TEXT, "
        "FOREIGN KEY(user_id) REFERENCES users(id));"
    )
    db.commit()
    return sql


def test_foreign_keys_are_enforced_immediately(db, users_posts):
    sql = users_posts
    with pytest.raises(SqlError, match=exact("FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)")):
        sql.exec("INSERT INTO posts (user_id, content) VALUES (?, ?)", 1, "Post 1")
    passed_first_statement = False

    def txn():
        nonlocal passed_first_statement
        sql.exec("INSERT INTO posts (user_id, content) VALUES (?, ?)", 1, "Post 1")
        passed_first_statement = True

    with pytest.raises(SqlError, match=exact("FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)")):
        db.transactionSync(txn)
    assert passed_first_statement is False


def test_deferred_foreign_keys_may_be_violated_until_commit(db, users_posts):
    sql = users_posts

    def txn():
        sql.exec("PRAGMA defer_foreign_keys=ON;")
        sql.exec("INSERT INTO posts (user_id, content) VALUES (?, ?)", 1, "Post 1")
        sql.exec("INSERT INTO users VALUES (?, ?)", 1, "Alice")

    db.transactionSync(txn)
    assert db.commit() is True
    assert sql.exec("SELECT count(*) AS n FROM posts").one().n == 1


def test_a_deferred_violation_at_commit_resets_the_object_with_cloudflares_message(db, users_posts):
    sql = users_posts

    def txn():
        sql.exec("PRAGMA defer_foreign_keys=ON;")
        sql.exec("INSERT INTO posts (user_id, content) VALUES (?, ?)", 2, "Post 2")

    db.kv.put("also", "lost")
    db.transactionSync(txn)
    with pytest.raises(CommitFailedError, match=exact(RESET + "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)")):
        db.commit()
    assert _cf.DEFERRED_CONSTRAINT_RESET_PREFIX == RESET
    assert sql.exec("SELECT count(*) AS n FROM posts").one().n == 0  # last known good state
    assert db.kv.get("also") is None
    assert not db.in_transaction


def test_foreign_keys_can_really_be_turned_off_outside_a_transaction(db, sql):
    # CF: sql-test.js "Assert foreign keys can be truly turned off, not just deferred"
    sql.exec("PRAGMA foreign_keys = OFF;")

    def txn():
        sql.exec(
            """
      CREATE TABLE A (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        bId INTEGER NOT NULL REFERENCES B (id) ON DELETE RESTRICT ON UPDATE CASCADE
      );
      INSERT INTO A VALUES(1,1); -- this would throw a parse error with foreign keys on
      CREATE TABLE B (
        id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT
      );
    """
        )

    db.transactionSync(txn)
    assert [*sql.exec("pragma foreign_key_check;")] == [{"table": "A", "rowid": 1, "parent": "B", "fkid": 0}]
    sql.exec("INSERT INTO B VALUES (1);")
    assert [*sql.exec("pragma foreign_key_check;")] == []
    db.commit()
    sql.exec("PRAGMA foreign_keys = ON;")
    assert sql.exec("PRAGMA foreign_keys").one().foreign_keys == 1


# -- deleteAll ------------------------------------------------------------------------------------


def test_delete_all_wipes_tables_kv_and_the_alarm(db, sql):
    sql.exec("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (pid REFERENCES p(id));")
    sql.exec("CREATE VIEW v AS SELECT * FROM p; CREATE INDEX ci ON c (pid);")
    sql.exec("CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO seq DEFAULT VALUES;")
    sql.exec("CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello');")
    sql.exec("CREATE TABLE SQLiteLookalike (x)")  # not an internal table despite the name
    sql.exec("INSERT INTO p VALUES (1); INSERT INTO c VALUES (1);")
    db.kv.put("counter", 888)
    db.set_alarm(2_000_000_000_000.0)
    db.commit()
    assert db.delete_all() == 1
    db.commit()
    assert db.kv.get("counter") is None
    assert db.get_alarm() is None
    names = [r.name for r in sql.exec("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite%'")]
    assert names == []  # CF: workerd resets the whole file, _cf_METADATA included
    assert [*sql.exec("SELECT name FROM sqlite_schema WHERE name = 'SQLiteLookalike'")] == []
    sql.exec("CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO seq DEFAULT VALUES;")
    assert sql.exec("SELECT id FROM seq").one().id == 1  # the AUTOINCREMENT counter went too


def test_delete_all_can_keep_the_alarm(db):
    db.set_alarm(2_000_000_000_000.0)
    db.kv.put("a", 1)
    db.delete_all(delete_alarm=False)
    assert db.get_alarm() == 2_000_000_000_000.0


def test_delete_all_is_atomic_with_the_implicit_transaction(db, sql):
    sql.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    db.kv.put("k", 1)
    db.commit()
    db.delete_all()
    db.rollback()
    assert sql.exec("SELECT x FROM t").one().x == 1
    assert db.kv.get("k") == 1


def test_delete_all_is_refused_inside_a_transaction(db, sql):
    sql.exec("CREATE TABLE t (x)")
    db.commit()
    with pytest.raises(TransactionError, match=exact("Cannot call deleteAll() within a transaction")):
        db.transaction_sync(db.delete_all)
    depth = db.savepoint()
    with pytest.raises(TransactionError, match=exact(_cf.DELETE_ALL_IN_TRANSACTION_MESSAGE)):
        db.delete_all()
    db.release(depth)
    assert [*sql.exec("SELECT name FROM sqlite_schema WHERE name = 't'")] == [{"name": "t"}]


def test_increments_start_over_after_delete_all(db):
    # CF: sql-test.js "Delete all: increments start over"
    def increment():
        value = (db.kv.get("counter") or 0) + 1
        db.kv.put("counter", value)
        db.commit()
        return value

    assert (increment(), increment()) == (1, 2)
    db.kv.put("counter", 888)
    db.delete_all()
    assert db.kv.get("counter") is None
    db.commit()
    assert (increment(), increment()) == (1, 2)


# -- _cf_METADATA: alarm, name, bookmarks -------------------------------------------------------


def test_metadata_lives_in_cloudflares_table_and_keys(db):
    db.set_alarm(1_700_000_000_123.5)
    db.record_name("room-1")
    db.current_bookmark()  # with point-in-time history kept, a bookmark writes nothing
    db.commit()
    rows = dict(db._exec_internal("SELECT key, value FROM _cf_METADATA").fetchall())
    assert rows == {1: 1_700_000_000_123_500_000}  # alarm in ns (no bookmark counter with history kept)
    # The name is kept with the file, not in it: workerd keeps none in it (tests/conformance).
    assert db.stored_name == "room-1"
    assert inspect_file.name_beside(db.path) == "room-1"
    sql = db._exec_internal("SELECT sql FROM sqlite_schema WHERE name = '_cf_METADATA'").fetchall()[0][0]
    assert sql == "CREATE TABLE _cf_METADATA (\n  key INTEGER PRIMARY KEY,\n  value BLOB\n)"
    db.set_alarm(None)
    assert db.get_alarm() is None
    assert db.stored_name == "room-1"


def test_bookmarks_have_cloudflares_shape_and_sort_by_time(tmp_path):
    path = tmp_path / "o.sqlite"
    db = ObjectDatabase(path, pitr_retention_ms=0)  # no history: local workerd's ersatz counter
    first = db.current_bookmark()
    assert first == "00000000-00000000-00000000-" + "0" * 32  # CF: the first ersatz bookmark is 0
    marks = [first] + [db.current_bookmark() for _ in range(20)]
    db.commit()
    db.close()
    db = ObjectDatabase(path, pitr_retention_ms=0)
    marks.append(db.current_bookmark())  # a later session sorts after an earlier one
    db.close()
    assert all(re.fullmatch(_cf.BOOKMARK_PATTERN, m) for m in marks)
    assert marks == sorted(marks) and len(set(marks)) == len(marks)
    assert marks[16] == "00000000-00000010-00000000-" + "0" * 32
