"""Cloudflare contract: what user SQL may do (workerd's authorizer and regulator).

Sources: ``src/workerd/util/sqlite.c++`` (isAuthorized, ALLOWED_PRAGMAS,
ALLOWED_SQLITE_FUNCTIONS), ``src/workerd/api/sql.c++`` (isAllowedName,
allowTransactions) and the expectations in ``src/workerd/api/sql-test.js``.
"""

from __future__ import annotations

import json
import re

import pytest

from persistence import SqlError
from persistence import _cf

NOT_AUTHORIZED = r"^not authorized: SQLITE_AUTH$"
TXN_MESSAGE = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)


@pytest.fixture
def sql(db):
    return db.sql


def exact(message: str) -> str:
    return rf"^{re.escape(message)}$"


def schema(db):
    return db._exec_internal("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()


# -- transactions in SQL -------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "BEGIN",
        "BEGIN TRANSACTION",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "END TRANSACTION",
        "ROLLBACK",
        "SAVEPOINT foo",
        "RELEASE foo",
        "ROLLBACK TO foo",
        "BEGIN TRANSACTION; END TRANSACTION",
    ],
)
def test_transaction_statements_point_to_the_transaction_apis(sql, statement):
    assert _cf.TRANSACTION_STATEMENT_MESSAGE == TXN_MESSAGE
    with pytest.raises(SqlError, match=exact(TXN_MESSAGE)):
        sql.exec(statement)


def test_a_refused_transaction_statement_leaves_no_state_behind(db, sql):
    with pytest.raises(SqlError, match=exact(TXN_MESSAGE)):
        sql.exec("SAVEPOINT foo")
    with pytest.raises(SqlError, match=exact("no such table: nope: SQLITE_ERROR")):
        sql.exec("SELECT * FROM nope")  # the stashed message is not reused for other errors
    sql.exec("CREATE TABLE t (x)")
    assert db.commit() is True


# -- reserved names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE _cf_invalid (name TEXT)",
        "CREATE TABLE _CF_Invalid (name TEXT)",
        "CREATE TABLE _cF_x (a)",
        "CREATE TABLE _dohost_x (a)",
        "CREATE VIEW _cf_v AS SELECT 1",
        "CREATE INDEX _cf_i ON t (a)",
        "CREATE TRIGGER _cf_tr AFTER INSERT ON t BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE _cf_fts USING fts5(a)",
        "ALTER TABLE t RENAME TO _cf_t",
        'ALTER TABLE t RENAME TO "_CF_KV"',
        "PRAGMA table_info(_cf_KV)",
        "PRAGMA table_xinfo(_cf_KV)",
        "PRAGMA index_list(_cf_KV)",
        "PRAGMA foreign_key_check(_cf_KV)",
        "PRAGMA quick_check(_cf_KV)",
        "SELECT * FROM pragma_table_info('_cf_METADATA')",
        "DROP TABLE _cf_KV",
        "DELETE FROM _cf_KV",
        "INSERT INTO _cf_KV VALUES ('a', x'00')",
        "UPDATE _cf_METADATA SET value = 1",
    ],
)
def test_names_starting_cf_in_any_case_are_not_authorized(db, sql, statement):
    sql.exec("CREATE TABLE t (a)")
    db.kv.put("blah", 123)  # CF: force creation of the _cf_KV table
    db.set_alarm(1000.0)
    before = schema(db)
    with pytest.raises(SqlError, match=NOT_AUTHORIZED):
        sql.exec(statement)
    assert schema(db) == before


def test_reading_cf_kv_names_the_first_column(db, sql):
    db.kv.put("blah", 123)
    with pytest.raises(SqlError, match=exact("access to _cf_KV.key is prohibited: SQLITE_AUTH")):
        sql.exec("SELECT * FROM _cf_KV")
    with pytest.raises(SqlError, match=exact("access to _cf_KV.value is prohibited: SQLITE_AUTH")):
        sql.exec("SELECT value FROM _cf_kv")


def test_a_trigger_cannot_write_to_a_reserved_table(db, sql):
    db.kv.put("blah", 123)
    sql.exec("CREATE TABLE t (a)")
    sql.exec("CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM _cf_KV; END")
    with pytest.raises(SqlError, match=NOT_AUTHORIZED):
        sql.exec("INSERT INTO t VALUES (1)")
    assert db.kv.get("blah") == 123


def test_table_list_shows_internal_tables(db, sql):
    db.kv.put("blah", 123)
    names = [r.name for r in sql.exec("PRAGMA table_list") if r.schema == "main"]
    assert "_cf_KV" in names  # CF: "the existence of these tables isn't really a secret"


# -- other databases, temp objects, virtual tables ------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "ATTACH DATABASE ':memory:' AS other",
        "DETACH DATABASE other",
        "CREATE TEMP TABLE tempy AS SELECT * FROM sqlite_master",
        "CREATE TEMP VIEW tv AS SELECT 1",
        "CREATE TEMPORARY TABLE tt (a)",
        "CREATE TEMP TRIGGER ttr AFTER INSERT ON t BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE test_fts USING fts5abcd(id)",
        "CREATE VIRTUAL TABLE g USING geopoly(a)",
        "CREATE VIRTUAL TABLE s USING json_each",
    ],
)
def test_other_databases_temp_objects_and_foreign_modules_are_not_authorized(db, sql, statement):
    sql.exec("CREATE TABLE t (a)")
    before = schema(db)
    with pytest.raises(SqlError, match=NOT_AUTHORIZED):
        sql.exec(statement)
    assert schema(db) == before


def test_the_temp_schema_can_be_read(sql):
    assert [*sql.exec("SELECT * FROM temp.sqlite_master")] == []


def test_fts5_and_fts5vocab_work_with_any_module_name_case(sql):
    # CF: sql-test.js "Full text search extension"
    sql.exec("CREATE TABLE documents (id INTEGER PRIMARY KEY, title TEXT NOT NULL, content TEXT NOT NULL);")
    sql.exec("CREATE VIRTUAL TABLE documents_fts USING FtS5(id, title, content, tokenize = porter);")
    sql.exec("CREATE VIRTUAL TABLE documents_fts_v_col USING fTs5VoCaB(documents_fts, col);")
    sql.exec("CREATE VIRTUAL TABLE documents_fts_v_row USING FtS5vOcAb(documents_fts, row);")
    sql.exec("CREATE VIRTUAL TABLE documents_fts_v_instance USING fTs5VoCaB(documents_fts, instance);")
    sql.exec(
        """
    CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents
    BEGIN
      INSERT INTO documents_fts(id, title, content) VALUES(new.id, new.title, new.content);
    END;
  """
    )
    sql.exec("INSERT INTO documents (title, content) VALUES ('Document 1', 'This is the contents of document 1 (of 2).');")
    sql.exec("INSERT INTO documents (title, content) VALUES ('Document 2', 'This is the content of document 2 (of 2).');")
    rows = [*sql.exec("SELECT * FROM documents_fts WHERE documents_fts MATCH 'content' ORDER BY rank;")]
    assert [r.id for r in rows] == [1, 2]  # porter stemming: 'contents' ranks first
    rows = [*sql.exec("SELECT *, bm25(documents_fts) FROM documents_fts WHERE documents_fts MATCH '2' ORDER BY rank;")]
    assert [r.id for r in rows] == [2, 1]
    assert rows[0]["bm25(documents_fts)"] < rows[1]["bm25(documents_fts)"]
    out = [
        r.output
        for r in sql.exec(
            "SELECT highlight(documents_fts, 2, '<b>', '</b>') as output FROM documents_fts "
            "WHERE documents_fts MATCH '2' ORDER BY rank;"
        )
    ]
    assert out == [
        "This is the content of document <b>2</b> (of <b>2</b>).",
        "This is the contents of document 1 (of <b>2</b>).",
    ]
    out = [
        r.output
        for r in sql.exec(
            "SELECT snippet(documents_fts, 2, '<b>', '</b>', '...', 4) as output FROM documents_fts "
            "WHERE documents_fts MATCH '2' ORDER BY rank;"
        )
    ]
    assert out == ["...document <b>2</b> (of <b>2</b>).", "...document 1 (of <b>2</b>)."]
    listed = [
        r.tbl_name
        for r in sql.exec(
            'SELECT name as tbl_name, ncol as num_columns FROM pragma_table_list WHERE TYPE = "table" '
            'AND tbl_name NOT LIKE "sqlite_%" AND tbl_name NOT LIKE "_cf_%" AND schema = "main" '
            "ORDER BY tbl_name"
        )
    ]
    assert listed == ["documents"]  # fts5 shadow tables list with type "shadow"


# -- PRAGMA allow-list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "PRAGMA hard_heap_limit = 1024",
        "PRAGMA data_version = 5",
        "PRAGMA max_page_count = 65536",
        "PRAGMA page_size = 8192",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA writable_schema = 1",
        "PRAGMA table_info",
        "PRAGMA index_info",
        "PRAGMA function_list",
        "PRAGMA temp.foreign_keys",
        "PRAGMA optimize = 1.5",
    ],
)
def test_pragmas_outside_the_allow_list_are_not_authorized(sql, statement):
    with pytest.raises(SqlError, match=NOT_AUTHORIZED):
        sql.exec(statement)


def test_rtree_tables_and_page_size_and_any_case_pragmas_are_allowed(sql):
    # CF: workerd 1.20261117.1 (observed, tests/conformance/cases/sql_statements.json, pragmas.json)
    sql.exec("CREATE VIRTUAL TABLE rt USING rtree(id, minx, maxx)")
    sql.exec("INSERT INTO rt VALUES (1, 0, 10)")
    assert sql.exec("SELECT id FROM rt WHERE minx <= 5 AND maxx >= 5").one()["id"] == 1
    assert sql.exec("PRAGMA page_size").one()["page_size"] == 4096
    assert sql.exec("PRAGMA FOREIGN_KEYS").one()["foreign_keys"] == 1


def test_functions_workerds_sqlite_lacks_are_missing_not_denied(sql):
    with pytest.raises(SqlError, match=exact("no such function: median at offset 7: SQLITE_ERROR")):
        sql.exec("SELECT median(1)")
    with pytest.raises(SqlError, match=exact("no such table: dbstat: SQLITE_ERROR")):
        sql.exec("SELECT * FROM dbstat")


def test_read_only_pragmas_read(sql):
    (row,) = [*sql.exec("pragma data_version;")]
    assert isinstance(row["data_version"], int)


def test_table_info_and_xinfo_describe_user_tables(sql):
    sql.exec("CREATE TABLE myTable (foo TEXT, bar INTEGER)")
    assert [r.name for r in sql.exec("PRAGMA table_info(myTable)")] == ["foo", "bar"]
    assert [r.name for r in sql.exec("PRAGMA table_xinfo(myTable)")] == ["foo", "bar"]


@pytest.mark.parametrize(
    "statement",
    ["pragma quick_check;", "pragma quick_check(1);", "pragma quick_check(100);", "pragma quick_check(myTable);"],
)
def test_quick_check_takes_nothing_a_number_or_a_table(sql, statement):
    sql.exec("CREATE TABLE myTable (foo TEXT)")
    assert [*sql.exec(statement)] == [{"quick_check": "ok"}]


@pytest.mark.parametrize("statement", ["PRAGMA optimize", "PRAGMA optimize(0x10002)", "PRAGMA optimize = -1"])
def test_optimize_is_allowed_even_though_it_analyzes_internal_tables(db, sql, statement):
    db.kv.put("a", 1)
    sql.exec("CREATE TABLE t (a); CREATE INDEX ti ON t (a); INSERT INTO t VALUES (1)")
    sql.exec(statement)
    sql.exec("ANALYZE")


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("true", 1),
        ("false", 0),
        ("on", 1),
        ("off", 0),
        ("yes", 1),
        ("no", 0),
        ("1", 1),
        ("0", 0),
        ("tRuE", 1),
        ("NO", 0),
        ("'true'", 1),
        ('"yes"', 1),
        ('"0"', 0),
        ("  true    ", 1),
    ],
)
def test_boolean_pragmas_accept_every_spelling_workerd_accepts(sql, literal, expected):
    sql.exec(f"PRAGMA defer_foreign_keys = {literal};")
    assert [*sql.exec("PRAGMA defer_foreign_keys;")][0]["defer_foreign_keys"] == expected


@pytest.mark.parametrize("literal", ["abcd", '"foo"'])
def test_other_boolean_literals_are_not_authorized(sql, literal):
    with pytest.raises(SqlError, match=NOT_AUTHORIZED):
        sql.exec(f"PRAGMA defer_foreign_keys = {literal};")


def test_an_unterminated_literal_is_a_syntax_error_first(sql):
    with pytest.raises(SqlError, match=r"""^unrecognized token: "'yes;" at offset \d+: SQLITE_ERROR$"""):
        sql.exec("PRAGMA defer_foreign_keys = 'yes;")


@pytest.mark.parametrize(
    "pragma",
    ["case_sensitive_like", "ignore_check_constraints", "legacy_alter_table", "recursive_triggers", "reverse_unordered_selects"],
)
def test_the_other_boolean_pragmas_are_allowed(sql, pragma):
    sql.exec(f"PRAGMA {pragma} = ON")
    sql.exec(f"PRAGMA {pragma} = OFF")


def test_foreign_key_pragmas_describe_user_tables(sql):
    sql.exec("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (pid REFERENCES p(id));")
    sql.exec("CREATE INDEX ci ON c (pid)")
    assert [r.table for r in sql.exec("PRAGMA foreign_key_list(c)")] == ["p"]
    assert [r.name for r in sql.exec("PRAGMA index_list(c)")] == ["ci"]
    assert [r.name for r in sql.exec("PRAGMA index_info(ci)")] == ["pid"]
    assert [r.name for r in sql.exec("PRAGMA index_xinfo(ci)") if r.name] == ["pid"]
    assert [*sql.exec("PRAGMA foreign_key_check")] == []
    assert [*sql.exec("PRAGMA foreign_key_check(c)")] == []


# -- SQL function allow-list -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["sqlite_version", "sqlite_source_id", "sqlite_compileoption_used", "sqlite_compileoption_get"]
)
def test_introspection_functions_are_not_authorized(sql, name):
    args = "'x'" if "compileoption" in name else ""
    with pytest.raises(
        SqlError, match=exact(f"not authorized to use function: {name} at offset 7: SQLITE_ERROR")
    ):
        sql.exec(f"SELECT {name}({args})")


def test_function_names_are_matched_in_any_case(sql):
    # SQLite hands the authorizer the canonical (lower-case) name; its message quotes the text.
    with pytest.raises(
        SqlError, match=exact("not authorized to use function: SQLITE_VERSION at offset 7: SQLITE_ERROR")
    ):
        sql.exec("SELECT SQLITE_VERSION()")
    assert sql.exec("SELECT ABS(-1) AS a").one().a == 1


def test_load_extension_passes_the_authorizer_but_sqlite_refuses_it(sql):
    with pytest.raises(SqlError, match=exact("not authorized: SQLITE_ERROR")):
        sql.exec("SELECT load_extension('x')")


def test_allowed_functions_from_each_family_work(sql):
    row = sql.exec(
        "SELECT printf('%d', 5) AS p, concat('a', 'b') AS c, unixepoch('2020-01-01') AS u, "
        "json_array(1, 2) AS j, total(1) AS t, round(2.5) AS r, octet_length('é') AS o"
    ).one()
    assert row == {"p": "5", "c": "ab", "u": 1577836800, "j": "[1,2]", "t": 1, "r": 3, "o": 2}
    assert [r.x for r in sql.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3) SELECT x FROM c")] == [1, 2, 3]
    assert [r.rn for r in sql.exec("SELECT row_number() OVER () AS rn FROM (SELECT 1 UNION ALL SELECT 2)")] == [1, 2]
    assert [r.value for r in sql.exec("SELECT value FROM json_each('[1,2]')")] == [1, 2]


def test_json_objects_can_describe_the_schema(sql):
    # CF: sql-test.js "Similar query using JSON objects"
    sql.exec("CREATE TABLE myTable (foo TEXT, bar INTEGER)")
    data = sql.exec(
        """SELECT json_group_array(json_object(
              'type', type,
              'name', name,
              'columns', json((SELECT json_group_object(name, type) from pragma_table_info(tbl_name)))
          )) as data
       FROM sqlite_master
       WHERE type = "table" AND tbl_name != "_cf_KV";"""
    ).one().data
    assert json.loads(data) == [{"type": "table", "name": "myTable", "columns": {"foo": "TEXT", "bar": "INTEGER"}}]


def test_quick_check_accepts_anything_that_is_not_a_reserved_name(sql):
    # CF: not an unsigned number, so it is taken as an object name, and "-1" is an allowed one.
    assert [*sql.exec("PRAGMA quick_check(-1)")] == [{"quick_check": "ok"}]
