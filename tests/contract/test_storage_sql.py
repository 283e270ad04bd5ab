"""Cloudflare contract: ``ctx.storage.sql.exec`` and its cursor.

Expected values and messages come from workerd's own tests
(``src/workerd/api/sql-test.js``) and sources (``src/workerd/util/sqlite.c++``,
``src/workerd/api/sql.c++``); each test says which.
"""

from __future__ import annotations

import re

import pytest

from persistence import ObjectDatabase, SqlError, StorageError, StorageTypeError
from persistence import _cf


@pytest.fixture
def sql(db):
    return db.sql


def exact(message: str) -> str:
    return rf"^{re.escape(message)}$"


# -- results (sql-test.js: "Test numeric/string/blob results") ---------------------------


def test_numeric_string_and_blob_results_come_back_as_python_values(sql):
    assert [*sql.exec("SELECT 123")] == [{"123": 123}]
    assert [*sql.exec("SELECT 123").raw()] == [[123]]
    assert [*sql.exec("SELECT 'hello'")] == [{"'hello'": "hello"}]
    assert [*sql.exec("SELECT x'ff' as blob")] == [{"blob": b"\xff"}]


def test_bindings_are_positional_arguments(sql):
    assert [*sql.exec("SELECT ?", 456)] == [{"?": 456}]
    assert [*sql.exec("SELECT ? + ?", 123, 456)] == [{"? + ?": 579}]


def test_several_rows_iterate_in_order(sql):
    cursor = sql.exec("SELECT 1 AS value\nUNION ALL\nSELECT 2 AS value\nUNION ALL\nSELECT 3 AS value;")
    assert [row["value"] for row in cursor] == [1, 2, 3]


def test_next_follows_the_javascript_iterator_protocol(sql):
    cursor = sql.exec('SELECT 1 AS col\nUNION ALL\nSELECT "foo" AS col\nUNION ALL\nSELECT 3 AS col;')
    assert cursor.next() == {"done": False, "value": {"col": 1}}
    assert cursor.next() == {"done": False, "value": {"col": "foo"}}
    assert cursor.next() == {"done": False, "value": {"col": 3}}
    assert cursor.next() == {"done": True}
    assert cursor.next() == {"done": True}


def test_to_array_returns_every_row_and_has_a_snake_case_twin(sql):
    query = 'SELECT 1 AS value\nUNION ALL\nSELECT "foo" AS value\nUNION ALL\nSELECT 3 AS value;'
    assert sql.exec(query).toArray() == [{"value": 1}, {"value": "foo"}, {"value": 3}]
    assert sql.exec(query).to_array() == [{"value": 1}, {"value": "foo"}, {"value": 3}]


def test_rows_are_dicts_that_also_allow_attribute_access(sql):
    row = sql.exec("SELECT 1 AS a, 'x' AS b").one()
    assert isinstance(row, dict)
    assert (row.a, row.b) == (1, "x")
    with pytest.raises(AttributeError):
        row.missing  # noqa: B018


def test_one_returns_the_only_row_and_consumes_the_cursor(sql):
    cursor = sql.exec('SELECT 123 AS foo, "abc" AS bar')
    assert cursor.one() == {"foo": 123, "bar": "abc"}
    assert [*cursor] == []


def test_one_with_several_rows_raises_cloudflares_message(sql):
    cursor = sql.exec('SELECT 1 AS value\nUNION ALL\nSELECT "foo" AS value\nUNION ALL\nSELECT 3;')
    with pytest.raises(StorageError, match=exact(_cf.CURSOR_ONE_MULTIPLE_RESULTS_MESSAGE)):
        cursor.one()
    assert [*cursor] == []  # CF: one() ends the query either way


def test_one_with_no_rows_raises_cloudflares_message(sql):
    sql.exec("CREATE TABLE IF NOT EXISTS empty (x INTEGER)")
    with pytest.raises(
        StorageError, match=exact("Expected exactly one result from SQL query, but got no results.")
    ):
        sql.exec("SELECT * from empty;").one()
    with pytest.raises(StorageError, match=exact(_cf.CURSOR_ONE_NO_RESULTS_MESSAGE)):
        sql.exec("DROP TABLE empty").one()


def test_raw_shares_the_position_of_row_iteration(sql):
    cursor = sql.exec("SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3")
    raw = cursor.raw()
    assert next(cursor) == {"n": 1}
    assert next(raw) == [2]
    assert cursor.next() == {"done": False, "value": {"n": 3}}
    assert list(raw) == []


def test_math_json_and_date_functions_work(sql):
    assert sql.exec("SELECT cos(0)").one() == {"cos(0)": 1}
    assert sql.exec("SELECT abs(-123)").raw().__next__() == [123]
    value = sql.exec("""SELECT '{"a":2,"c":[4,5,{"f":7}]}' -> '$.c' AS value""").one().value
    assert value == '[4,5,{"f":7}]'
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sql.exec("SELECT current_date").one()["current_date"])
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", sql.exec("SELECT current_time").one()["current_time"])
    stamp = sql.exec("SELECT current_timestamp").one()["current_timestamp"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", stamp)


def test_count_and_sum_aggregate(sql):
    inner = "(SELECT 1 AS value UNION ALL SELECT 2 AS value UNION ALL SELECT 3 AS value)"
    assert sql.exec(f"SELECT count(value) from {inner};").one() == {"count(value)": 3}
    assert sql.exec(f"SELECT sum(value) from {inner};").one() == {"sum(value)": 6}


# -- statements, multi-statement exec ------------------------------------------------------


@pytest.mark.parametrize("text", ["", ";", "   ", "-- only a comment", "/* c */ ;"])
def test_text_without_a_statement_is_refused(sql, text):
    with pytest.raises(SqlError, match=exact("SQL code did not contain a statement.")):
        sql.exec(text)


def test_a_trailing_comment_counts_as_an_empty_last_statement(sql):
    # CF: sql-test.js "Exec throws with trailing comments"
    with pytest.raises(SqlError, match=exact(_cf.EMPTY_STATEMENT_MESSAGE)):
        sql.exec("SELECT 123; SELECT 456; -- trailing comment")


def test_statements_before_an_empty_last_one_have_already_run(sql):
    sql.exec("CREATE TABLE t (x)")
    with pytest.raises(SqlError, match=exact(_cf.EMPTY_STATEMENT_MESSAGE)):
        sql.exec("INSERT INTO t VALUES (1);;")
    assert sql.exec("SELECT count(*) AS n FROM t").one().n == 1


@pytest.mark.parametrize("ws", [" ", "\t", "\n", "\r", "\v", "\f", "\r\n"])
def test_whitespace_after_the_last_statement_is_ignored(sql, ws):
    assert len([*sql.exec(f"SELECT 1;{ws}")]) == 1


def test_only_the_last_statements_rows_are_returned(sql):
    assert [*sql.exec("SELECT 1; SELECT 2;")] == [{"2": 2}]


def test_empty_statements_between_real_ones_are_skipped(sql):
    assert [*sql.exec("SELECT 1;; ; SELECT 2")] == [{"2": 2}]


def test_earlier_statements_run_before_exec_returns(sql):
    # CF: sql-test.js testMultiStatement
    sql.exec("PRAGMA case_sensitive_like = TRUE")
    cursor = sql.exec(
        """
      CREATE TABLE items(i INTEGER, s TEXT);
      CREATE INDEX itemsIdx ON items(s);
      INSERT INTO items VALUES (123, "abc");
      INSERT INTO items VALUES (456, "def");
      SELECT i FROM items WHERE s = "abc";
    """
    )
    assert [*cursor] == [{"i": 123}]


def test_only_the_last_statement_may_have_parameters(sql):
    message = (
        "When executing multiple SQL statements in a single call, only the last statement can "
        "have parameters."
    )
    with pytest.raises(SqlError, match=exact(message)):
        sql.exec("SELECT ?; SELECT 2", 1)
    assert [*sql.exec("SELECT 1; SELECT ?", 7)] == [{"?": 7}]


def test_the_last_statement_runs_inside_exec(sql):
    sql.exec("CREATE TABLE t (x)")
    sql.exec("INSERT INTO t VALUES (1) RETURNING x")  # cursor never read
    assert sql.exec("SELECT count(*) AS n FROM t").one().n == 1


def test_trigger_bodies_are_not_split_at_their_semicolons(sql):
    sql.exec(
        "CREATE TABLE t (x); CREATE TABLE log (x);"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); "
        "INSERT INTO log VALUES (new.x * 10); END; INSERT INTO t VALUES (2)"
    )
    assert [r.x for r in sql.exec("SELECT x FROM log ORDER BY x")] == [2, 20]


def test_the_same_statement_can_run_twice_at_once(sql):
    first = sql.exec("SELECT 789")
    second = sql.exec("SELECT 789")
    assert [*second][0]["789"] == 789
    assert [*first][0]["789"] == 789


# -- errors ----------------------------------------------------------------------------


def test_syntax_errors_carry_the_offset_and_the_code(sql):
    with pytest.raises(SqlError, match=exact('near ";": syntax error at offset 7: SQLITE_ERROR')):
        sql.exec("SELECT ;")
    with pytest.raises(SqlError, match=exact('near ";": syntax error at offset 8: SQLITE_ERROR')):
        sql.exec("SELECT -;")
    with pytest.raises(SqlError, match=exact('near "bunk": syntax error at offset 9: SQLITE_ERROR')):
        sql.exec("SELECT * bunk")
    with pytest.raises(SqlError, match=exact('near "bunk": syntax error at offset 7: SQLITE_ERROR')):
        sql.exec("INSERT bunk")
    with pytest.raises(SqlError, match=exact("incomplete input: SQLITE_ERROR")):  # no offset
        sql.exec("UPDATE bunk")


def test_an_error_offset_is_relative_to_the_statement_workerd_prepared(sql):
    # workerd prepares the tail after the skipped whitespace, so the offset restarts there.
    with pytest.raises(SqlError, match=exact('near "bunk": syntax error at offset 9: SQLITE_ERROR')):
        sql.exec("SELECT 1;   SELECT * bunk")


def test_non_ascii_space_after_a_statement_is_handed_to_sqlite(sql):
    with pytest.raises(SqlError, match=r"^near .*: syntax error at offset 0: SQLITE_ERROR$"):
        sql.exec("SELECT 1;\u00a0")


def test_sqlite_errors_name_their_primary_code(sql):
    sql.exec("CREATE TABLE test_error_codes (name TEXT);")
    with pytest.raises(SqlError, match=exact("datatype mismatch: SQLITE_MISMATCH")) as info:
        sql.exec("INSERT INTO test_error_codes(rowid, name) values ('yeah','nah');")
    assert info.value.code == "SQLITE_MISMATCH"
    with pytest.raises(SqlError, match=exact("no such table: misspelled_table_name: SQLITE_ERROR")):
        sql.exec("SELECT * FROM misspelled_table_name;")


def test_constraint_errors_use_the_primary_code(sql):
    sql.exec("CREATE TABLE u (x UNIQUE)")
    sql.exec("INSERT INTO u VALUES (1)")
    with pytest.raises(SqlError, match=exact("UNIQUE constraint failed: u.x: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)")):
        sql.exec("INSERT INTO u VALUES (1)")


@pytest.mark.parametrize(("query", "args"), [("SELECT ?", ()), ("SELECT ?", (1, 2)), ("SELECT 1", (1,))])
def test_a_wrong_number_of_bindings_is_refused(sql, query, args):
    with pytest.raises(SqlError, match=exact("Wrong number of parameter bindings for SQL query.")):
        sql.exec(query, *args)


def test_a_query_that_is_not_a_string_is_a_type_error(sql):
    with pytest.raises(TypeError, match=exact("sql.exec: query must be a str, got bytes")):
        sql.exec(b"SELECT 1")


def test_check_constraints_report_their_expression(sql):
    sql.exec("CREATE TABLE altercolumns (meta TEXT)")
    sql.exec("ALTER TABLE altercolumns ADD COLUMN checked_col TEXT CHECK(checked_col IN ('A','B'));")
    sql.exec("INSERT INTO altercolumns(checked_col) VALUES ('A')")
    with pytest.raises(
        SqlError, match=exact("CHECK constraint failed: checked_col IN ('A','B'): SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)")
    ):
        sql.exec("INSERT INTO altercolumns(checked_col) VALUES ('C')")
    sql.exec("PRAGMA ignore_check_constraints=ON;")
    sql.exec("INSERT INTO altercolumns(checked_col) VALUES ('C')")
    sql.exec("PRAGMA ignore_check_constraints=OFF;")
    assert [*sql.exec("SELECT checked_col FROM altercolumns")] == [
        {"checked_col": "A"},
        {"checked_col": "C"},
    ]
    assert [*sql.exec("PRAGMA quick_check;")] == [
        {"quick_check": "CHECK constraint failed in altercolumns"}
    ]


def test_tables_and_columns_can_be_renamed_added_and_dropped(sql):
    sql.exec("CREATE TABLE beforerename (id INTEGER)")
    sql.exec("ALTER TABLE beforerename RENAME TO afterrename")
    sql.exec("CREATE TABLE altercolumns (meta TEXT)")
    sql.exec("ALTER TABLE altercolumns ADD COLUMN tobedeleted TEXT;")
    sql.exec("ALTER TABLE altercolumns RENAME COLUMN meta TO metadata")
    sql.exec("ALTER TABLE altercolumns DROP COLUMN tobedeleted")
    assert [r.name for r in sql.exec("PRAGMA table_info(altercolumns)")] == ["metadata"]
    assert [*sql.exec("SELECT name FROM sqlite_schema WHERE name = 'afterrename'")] == [
        {"name": "afterrename"}
    ]


# -- column names, counters --------------------------------------------------------------


def test_duplicate_column_names_are_kept_in_raw_and_column_names(sql):
    # CF: sql-test.js "Test joining two tables with overlapping names"
    sql.exec("CREATE TABLE abc (a INT, b INT, c INT);")
    sql.exec("CREATE TABLE cde (c INT, d INT, e INT);")
    sql.exec("INSERT INTO abc VALUES (1,2,3),(4,5,6);")
    sql.exec("INSERT INTO cde VALUES (7,8,9),(1,2,3);")
    rows = [*sql.exec("SELECT * FROM abc, cde")]
    assert [len(r) for r in rows] == [5, 5, 5, 5]
    assert [r["c"] for r in rows] == [7, 1, 7, 1]  # the later column wins, as in JS
    cursor = sql.exec("SELECT * FROM abc, cde")
    assert cursor.columnNames == ["a", "b", "c", "c", "d", "e"]
    assert [*cursor.raw()] == [[1, 2, 3, 7, 8, 9], [1, 2, 3, 1, 2, 3], [4, 5, 6, 7, 8, 9], [4, 5, 6, 1, 2, 3]]
    assert cursor.column_names == ["a", "b", "c", "c", "d", "e"]  # still readable when consumed


def test_column_names_of_an_empty_result_and_of_a_statement_without_columns(sql):
    sql.exec("CREATE TABLE t (a, b)")
    assert sql.exec("SELECT * FROM t").columnNames == ["a", "b"]
    assert sql.exec("CREATE TABLE u (x)").columnNames == []
    assert sql.exec("INSERT INTO t VALUES (1, 2)").columnNames == []


def test_column_names_follow_schema_changes(sql):
    sql.exec("CREATE TABLE t (a)")
    sql.exec("INSERT INTO t VALUES (1)")
    assert [*sql.exec("SELECT * FROM t")] == [{"a": 1}]
    sql.exec("ALTER TABLE t ADD COLUMN b DEFAULT 2")
    assert [*sql.exec("SELECT * FROM t")] == [{"a": 1, "b": 2}]
    sql.exec("DELETE FROM t")
    assert sql.exec("SELECT * FROM t").columnNames == ["a", "b"]


def test_rows_written_counts_the_rows_a_statement_changed(sql):
    # CF: sql-test.js testIoStats
    sql.exec("CREATE TABLE tbl (id INTEGER PRIMARY KEY, value TEXT)")
    sql.exec("INSERT INTO tbl (id, value) VALUES (?, ?)", 100000, "arbitrary-initial-value")
    cursor = sql.exec("INSERT INTO tbl (id, value) VALUES (?, ?)", 1, "arbitrary-value")
    [*cursor]
    assert cursor.rowsWritten == 1
    cursor = sql.exec("SELECT * FROM tbl")
    [*cursor]
    assert cursor.rowsRead == 2
    assert cursor.rows_read == 2 and cursor.rows_written == 0


def test_each_execution_keeps_its_own_counters(sql):
    sql.exec("CREATE TABLE tbl (id INTEGER PRIMARY KEY, value TEXT)")
    first = sql.exec("INSERT INTO tbl (id, value) VALUES (?, ?)", 101, "value1")
    second = sql.exec("INSERT INTO tbl (id, value) VALUES (?, ?), (?, ?)", 202, "v", 303, "w")
    assert (first.rowsWritten, second.rowsWritten) == (1, 2)  # even though neither was read


def test_rows_read_grows_as_the_cursor_is_consumed(sql):
    sql.exec("CREATE TABLE tbl (id INTEGER PRIMARY KEY)")
    for i in range(1, 11):
        sql.exec("INSERT INTO tbl VALUES (?)", i)
    cursor = sql.exec("SELECT * FROM tbl")
    assert cursor.rowsRead == 0
    seen = 0
    while not cursor.next()["done"]:
        seen += 1
        assert cursor.rowsRead == seen
    assert seen == 10


def test_interleaved_cursors_count_separately(sql):
    sql.exec("CREATE TABLE abc (a INT, b INT, c INT); CREATE TABLE cde (c INT, d INT, e INT);")
    sql.exec("INSERT INTO abc VALUES (1,2,3),(4,5,6); INSERT INTO cde VALUES (7,8,9),(1,2,3);")
    join, counts = [], []
    rows = sql.exec("SELECT * FROM abc")
    for row in rows:
        cols = sql.exec("SELECT * FROM cde")
        for col in cols:
            join.append((row, col))
        counts.append(cols.rowsRead)
    assert join == [
        ({"a": 1, "b": 2, "c": 3}, {"c": 7, "d": 8, "e": 9}),
        ({"a": 1, "b": 2, "c": 3}, {"c": 1, "d": 2, "e": 3}),
        ({"a": 4, "b": 5, "c": 6}, {"c": 7, "d": 8, "e": 9}),
        ({"a": 4, "b": 5, "c": 6}, {"c": 1, "d": 2, "e": 3}),
    ]
    assert rows.rowsRead == 2 and counts == [2, 2]
    cursor = sql.exec("SELECT * FROM abc WHERE a IN (1,2,3,4,5,6)")
    [*cursor]
    assert (cursor.rowsRead, cursor.rowsWritten) == (2, 0)


def test_triggered_writes_count_as_rows_written(sql):
    sql.exec("CREATE TABLE t (x); CREATE TABLE log (x);")
    sql.exec("CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END")
    assert sql.exec("INSERT INTO t VALUES (1), (2)").rowsWritten == 4


# -- values crossing as in a Python Worker ------------------------------------------------


def test_a_python_int_binds_as_a_javascript_number(sql):
    assert sql.exec("SELECT typeof(?) AS t", 1).one().t == "real"
    assert sql.exec("SELECT typeof(?) AS t", 1.5).one().t == "real"
    assert sql.exec("SELECT ? AS v", 2**53 - 1).one().v == 2**53 - 1


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64])
def test_an_int_beyond_the_safe_range_is_a_type_error(sql, value):
    # CF: workerd 1.20261117.1 (observed): Pyodide passes it as a BigInt, which is refused.
    with pytest.raises(TypeError, match=r"^Cannot convert a BigInt value to a number$"):
        sql.exec("SELECT ?", value)


def test_bool_binds_as_the_text_true_or_false(sql):
    assert sql.exec("SELECT ? AS a, ? AS b, typeof(?) AS t", True, False, True).one() == {
        "a": "true",
        "b": "false",
        "t": "text",
    }


@pytest.mark.parametrize("value", [b"\x00\x01", bytearray(b"\x00\x01"), memoryview(b"\x00\x01")])
def test_buffers_bind_as_blobs_and_come_back_as_bytes(sql, value):
    row = sql.exec("SELECT ? AS v, typeof(?) AS t", value, value).one()
    assert row == {"v": b"\x00\x01", "t": "blob"}
    assert type(row.v) is bytes


def test_none_binds_as_null(sql):
    assert sql.exec("SELECT ? AS v, typeof(?) AS t", None, None).one() == {"v": None, "t": "null"}


def test_unsupported_binding_types_are_type_errors(sql):
    with pytest.raises(TypeError, match=r"^SQL binding 2: dict cannot be bound"):
        sql.exec("SELECT ?, ?", 1, {"a": 1})


def test_numbers_come_back_as_pyodide_would_convert_them(sql):
    row = sql.exec("SELECT 1.0 AS a, 1.5 AS b, 9007199254740993 AS c, 1e300 AS d, -0.0 AS e").one()
    assert row == {"a": 1, "b": 1.5, "c": 9007199254740992.0, "d": 1e300, "e": 0}
    assert [type(v) for v in row.values()] == [int, float, float, float, int]


def test_blobs_and_nulls_round_trip_through_a_table(sql):
    sql.exec("CREATE TABLE test_blob (id INTEGER PRIMARY KEY, data BLOB);")
    sql.exec("INSERT INTO test_blob(data) VALUES(?),(ZEROBLOB(10)),(null),(?);", bytes(12), None)
    rows = [*sql.exec("SELECT * FROM test_blob")]
    assert [r.data for r in rows] == [bytes(12), bytes(10), None, None]


def test_native_binding_keeps_integers_and_binds_bools_as_numbers(tmp_path):
    db = ObjectDatabase(tmp_path / "native.sqlite", binding="native")
    try:
        row = db.sql.exec("SELECT typeof(?) AS t, ? AS b, ? AS big", 1, True, 2**62).one()
        assert row == {"t": "integer", "b": 1, "big": 2**62}
        assert db.sql.exec("SELECT 2.0 AS f").one().f == 2.0
        with pytest.raises(StorageTypeError, match=r"^sql.exec: "):
            db.sql.exec("SELECT ?", object())
    finally:
        db.close()


# -- limits (setupSecurity) ---------------------------------------------------------------


def test_at_most_100_bound_parameters(sql):
    assert next(sql.exec("SELECT " + ",".join("?" * 100), *range(100)).raw()) == [*range(100)]
    with pytest.raises(SqlError, match=r"^too many SQL variables at offset \d+: SQLITE_ERROR$"):
        sql.exec("SELECT " + ",".join("?" * 101), *range(101))


def test_at_most_100_columns(sql):
    sql.exec("CREATE TABLE wide(" + ",".join(f"c{i}" for i in range(100)) + ")")
    with pytest.raises(SqlError, match=exact("too many columns on wider: SQLITE_ERROR")):
        sql.exec("CREATE TABLE wider(" + ",".join(f"c{i}" for i in range(101)) + ")")


def test_statements_longer_than_100000_bytes_are_refused(sql):
    assert sql.exec("SELECT 1" + " " * (100_000 - 8)).one() == {"1": 1}
    with pytest.raises(SqlError, match=exact("statement too long: SQLITE_TOOBIG")):
        sql.exec("SELECT 1" + " " * (100_000 - 7))


def test_the_length_limit_applies_to_the_whole_multi_statement_text(sql):
    sql.exec("CREATE TABLE t (x)")
    many = "INSERT INTO t VALUES (1);" * 4001  # 100,025 bytes of small statements
    with pytest.raises(SqlError, match=exact("statement too long: SQLITE_TOOBIG")):
        sql.exec(many)
    assert sql.exec("SELECT count(*) AS n FROM t").one().n == 0  # nothing ran


def test_at_most_five_compound_select_terms(sql):
    five = "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5"
    assert len([*sql.exec(five)]) == 5
    with pytest.raises(SqlError, match=exact("too many terms in compound SELECT: SQLITE_ERROR")):
        sql.exec(five + " UNION ALL SELECT 6")


def test_like_patterns_are_limited_to_50_bytes(sql):
    assert sql.exec("SELECT 'a' LIKE ? AS m", "a" * 50).one().m == 0
    with pytest.raises(SqlError, match=exact("LIKE or GLOB pattern too complex: SQLITE_ERROR")):
        sql.exec("SELECT 'a' LIKE ?", "a" * 51)
    with pytest.raises(SqlError, match=exact("LIKE or GLOB pattern too complex: SQLITE_ERROR")):
        sql.exec("SELECT 'a' GLOB ?", "a" * 51)


def test_expression_depth_is_limited_to_100(sql):
    with pytest.raises(
        SqlError, match=exact("Expression tree is too large (maximum depth 100): SQLITE_ERROR")
    ):
        sql.exec("SELECT " + "+".join(["1"] * 101))


def test_functions_take_at_most_127_arguments(sql):
    assert sql.exec("SELECT max(" + ",".join(["1"] * 127) + ") AS m").one().m == 1
    with pytest.raises(
        SqlError, match=exact("too many arguments on function max at offset 7: SQLITE_ERROR")
    ):
        sql.exec("SELECT max(" + ",".join(["1"] * 128) + ")")


def test_trigger_recursion_is_limited_to_10_levels(sql):
    sql.exec(
        "CREATE TABLE r (n); CREATE TRIGGER rt AFTER INSERT ON r WHEN new.n < 100 BEGIN "
        "INSERT INTO r VALUES (new.n + 1); END; PRAGMA recursive_triggers = ON"
    )
    with pytest.raises(
        SqlError,
        match=r"^(triggers nested too deep|too many levels of trigger recursion): SQLITE_ERROR$",
    ):
        sql.exec("INSERT INTO r VALUES (0)")


def test_one_length_limit_bounds_strings_blobs_and_rows(sql):
    limit = _cf.SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"]
    assert limit == 8 * 1024 * 1024 + 34  # CF: workerd 1.20261117.1 (observed; tests/conformance)
    assert sql.exec("SELECT length(?) AS n", b"x" * limit).one().n == limit
    too_big = exact("string or blob too big: SQLITE_TOOBIG")
    with pytest.raises(SqlError, match=too_big):
        sql.exec("SELECT ?", b"x" * (limit + 1))
    with pytest.raises(SqlError, match=too_big):
        sql.exec("SELECT zeroblob(?)", limit + 1)
    with pytest.raises(SqlError, match=too_big):
        sql.exec("SELECT ? || ?", "x" * limit, "y")
    sql.exec("CREATE TABLE t (a BLOB, b BLOB)")
    with pytest.raises(SqlError, match=too_big):  # each value fits, the row does not
        sql.exec("INSERT INTO t VALUES (?, ?)", b"x" * (limit // 2 + 1), b"y" * (limit // 2 + 1))


# -- databaseSize ---------------------------------------------------------------------------


def test_database_size_is_used_pages_times_page_size(db, sql):
    def pragma(name):
        return db._exec_internal(f"PRAGMA {name}").fetchall()[0][0]

    page = pragma("page_size")
    before = sql.databaseSize
    sql.exec("CREATE TABLE should_make_one_more_page(VALUE text);")
    assert sql.databaseSize == before + page
    sql.exec("DROP TABLE should_make_one_more_page;")
    assert sql.database_size == before  # the freed page is on the freelist
    assert sql.databaseSize == (pragma("page_count") - pragma("freelist_count")) * page


# -- rowsRead / rowsWritten where workerd's counts can be reproduced ------------------------


def test_a_statement_that_reads_no_table_reads_no_rows(sql):
    # CF: workerd 1.20261117.1 (observed): its SQLite counts rows a cursor visits.
    cursor = sql.exec("SELECT ? AS a, 1 + 1 AS b", 1)
    assert cursor.toArray() == [{"a": 1, "b": 2}]
    assert (cursor.rowsRead, cursor.rowsWritten) == (0, 0)


@pytest.mark.parametrize(
    ("statement", "counts"),
    [
        ("CREATE TABLE a (id INTEGER PRIMARY KEY, x)", (1, 2)),
        ("CREATE TABLE b (id INTEGER PRIMARY KEY, u UNIQUE, v UNIQUE)", (1, 4)),
        ("CREATE TABLE c (k TEXT PRIMARY KEY) WITHOUT ROWID", (1, 2)),
        ("CREATE VIEW v AS SELECT 1", (1, 2)),
        ("CREATE VIRTUAL TABLE f USING fts5(body)", (1, 2)),
    ],
)
def test_create_statements_count_the_schema_rows_they_touch(sql, statement, counts):
    # CF: workerd 1.20261117.1 (observed, tests/conformance/cases/sql_statements.json)
    cursor = sql.exec(statement)
    assert (cursor.rowsRead, cursor.rowsWritten) == counts


def test_create_if_not_exists_of_an_existing_table_counts_nothing(sql):
    sql.exec("CREATE TABLE t (x)")
    cursor = sql.exec("CREATE TABLE IF NOT EXISTS t (x)")
    assert (cursor.rowsRead, cursor.rowsWritten) == (0, 0)
