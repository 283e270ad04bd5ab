"""Statement boundaries as workerd's prepare loop finds them (``_split.py``)."""

from __future__ import annotations

import pytest

from persistence._split import renames_into_reserved, split_statements


@pytest.mark.parametrize(
    ("text", "statements", "trailing_empty"),
    [
        ("SELECT 1", ["SELECT 1"], False),
        ("SELECT 1;", ["SELECT 1;"], False),
        ("SELECT 1;  \n\t\r\v\f", ["SELECT 1;"], False),
        ("SELECT 1; SELECT 2", ["SELECT 1;", "SELECT 2"], False),
        ("SELECT 1;\n  SELECT 2;", ["SELECT 1;", "SELECT 2;"], False),
        ("SELECT 1; -- note", ["SELECT 1;"], True),
        ("SELECT 1;;", ["SELECT 1;"], True),
        ("SELECT 1;; SELECT 2", ["SELECT 1;", "; SELECT 2"], False),
        ("-- note\nSELECT 1", ["-- note\nSELECT 1"], False),
        ("SELECT 1; /* c */ SELECT 2 -- ;", ["SELECT 1;", "/* c */ SELECT 2 -- ;"], False),
        ("SELECT ';'; SELECT \"a;b\"; SELECT [c;d]; SELECT `e;f`", ["SELECT ';';", 'SELECT "a;b";', "SELECT [c;d];", "SELECT `e;f`"], False),
        ("SELECT 'it''s;'; SELECT 2", ["SELECT 'it''s;';", "SELECT 2"], False),
        ("SELECT 1;\u00a0", ["SELECT 1;", "\u00a0"], False),
        ("", [], True),
        (";", [], True),
        (" -- c", [], True),
        (
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END; SELECT 3",
            ["CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;", "SELECT 3"],
            False,
        ),
        ("SELECT 'unterminated; SELECT 2", ["SELECT 'unterminated; SELECT 2"], False),
    ],
)
def test_statements_split_where_workerd_would(text, statements, trailing_empty):
    _, got, empty, nbytes, _ = split_statements(text)
    assert (list(got), empty) == (statements, trailing_empty)
    assert nbytes == len(text.encode())


def test_only_a_plain_single_statement_takes_the_fast_path():
    assert split_statements("SELECT 1")[0] == "SELECT 1"
    assert split_statements("SELECT 1; SELECT 2")[0] is None
    assert split_statements("SELECT 1;;")[0] is None
    assert split_statements("SELECT 1" + " " * 100_000)[0] is None
    assert split_statements("ALTER TABLE t RENAME TO _cf_t")[0] is None
    assert split_statements("INSERT INTO t VALUES (1) RETURNING x")[0] is None


def test_a_last_statement_that_may_return_written_rows_is_flagged():
    assert split_statements("INSERT INTO t VALUES (1) returning *")[4] is True
    assert split_statements("INSERT INTO t VALUES (1) RETURNING x; SELECT 1")[4] is False
    assert split_statements("INSERT INTO t VALUES (1)")[4] is False


def test_the_byte_length_counts_utf8():
    assert split_statements("SELECT 'é'")[3] == 11


@pytest.mark.parametrize(
    ("stmt", "reserved"),
    [
        ("ALTER TABLE r RENAME TO _cf_r", True),
        ('alter table r rename to "_CF_x"', True),
        ("/* c */ ALTER TABLE r RENAME TO [_dohost_x]", True),
        ("ALTER  TABLE r  RENAME  TO  `_cF_y`", True),
        ("ALTER TABLE r RENAME a TO _cf_a", False),
        ("ALTER TABLE r RENAME COLUMN a TO _cf_a", False),
        ("ALTER TABLE _cf_x RENAME TO y", False),
        ("ALTER TABLE r RENAME TO cf_r", False),
        ("INSERT INTO t VALUES ('alter table x rename to _cf_')", False),
    ],
)
def test_renames_into_the_reserved_namespace_are_spotted(stmt, reserved):
    assert renames_into_reserved(stmt) is reserved
