"""The SQL compiler: what is pushed down, and that every statement fits Cloudflare's limits."""

from __future__ import annotations

from typing import Any

import apsw

from persistence.collections import (
    CLOUDFLARE_LIMITS, Expr, add, and_, asc, desc, eq, gt, ilike, in_, like, not_, or_, ref, upper,
)
from persistence.collections._sqlgen import plan_select

TABLE = '"c_test"'


def plan(where: list[Expr] = (), order: Any = (), cursor: Any = None, limit: Any = None, offset: int = 0) -> Any:
    return plan_select(TABLE, list(where), list(order), cursor, limit, offset, CLOUDFLARE_LIMITS)


def runs_under_cloudflare_limits(p: Any) -> None:
    conn = apsw.Connection(":memory:")
    conn.limit(apsw.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
    conn.limit(apsw.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50)
    conn.limit(apsw.SQLITE_LIMIT_EXPR_DEPTH, 100)
    conn.limit(apsw.SQLITE_LIMIT_SQL_LENGTH, 100_000)
    conn.execute(f"CREATE TABLE {TABLE} (key TEXT PRIMARY KEY, value TEXT, metadata TEXT, row_version INTEGER)")
    conn.execute(f"INSERT INTO {TABLE} VALUES ('s:a', '{{\"n\":1,\"s\":\"xx\"}}', NULL, 1)")
    conn.execute(p.sql, p.params).fetchall()


def test_simple_predicates_order_and_limit_are_pushed_down_exactly() -> None:
    p = plan([eq(ref("done"), False), gt(ref("n"), 3)], [desc(ref("n"))], limit=10, offset=5)
    assert p.filter_exact and p.order_pushed and p.limit_pushed
    assert " ORDER BY (CASE json_extract(value, '$.n.__tanstack_db_persisted_type__')" in p.sql
    assert p.sql.endswith(" DESC NULLS LAST, key ASC LIMIT 10 OFFSET 5")
    assert p.params == ()  # numbers (and bools) are inlined, never bound as doubles
    runs_under_cloudflare_limits(p)


def test_strings_are_bound_and_like_becomes_glob() -> None:
    p = plan([eq(ref("s"), "x"), like(ref("s"), "a%b_[")])
    assert p.params == ("x", "a*b?[[]")
    assert " GLOB ?" in p.sql and p.filter_exact
    runs_under_cloudflare_limits(p)


def test_in_lists_of_any_length_cost_one_parameter() -> None:
    p = plan([in_(ref("n"), range(1_200)), in_(ref("s"), [f"v{i}" for i in range(1_200)])])
    assert len(p.params) == 2 and p.filter_exact
    assert p.sql.count("json_each(?)") == 2
    runs_under_cloudflare_limits(p)
    small = plan([in_(ref("n"), [1, 2, None])])
    assert "IN (1, 2, NULL)" in small.sql and small.params == ()


def test_string_literals_beyond_100_are_inlined_not_bound() -> None:
    p = plan([or_(*[eq(ref("s"), f"v'{i}") for i in range(150)])])
    assert p.params == () and p.filter_exact
    assert "'v''7'" in p.sql
    runs_under_cloudflare_limits(p)
    split = plan([eq(ref("s"), f"a{i}") for i in range(150)])
    assert len(split.params) <= 100 and split.filter_exact
    runs_under_cloudflare_limits(split)


def test_long_like_patterns_become_a_prefix_prefilter_that_is_not_exact() -> None:
    p = plan([like(ref("s"), "x" * 60 + "%")], limit=5)
    assert "substr(" in p.sql and p.params == ("x" * 60,)
    assert not p.filter_exact and not p.limit_pushed
    runs_under_cloudflare_limits(p)
    folded = plan([ilike(ref("s"), "AB" * 30 + "%")])
    assert folded.params == ("ab" * 30,) and "lower(substr(" in folded.sql
    assert " WHERE " not in plan([like(ref("s"), "%" + "x" * 60)]).sql  # no prefix: nothing to push


def test_a_not_over_a_prefilter_is_not_pushed() -> None:
    p = plan([not_(like(ref("s"), "x" * 60 + "%")), eq(ref("n"), 1)])
    assert "substr(" not in p.sql and "= 1)" in p.sql and not p.filter_exact


def test_wide_conjunctions_are_balanced_below_the_depth_limit() -> None:
    p = plan([and_(*[not_(eq(ref("n"), i)) for i in range(300)])])
    assert p.filter_exact
    runs_under_cloudflare_limits(p)


def test_too_deep_expressions_are_left_to_memory() -> None:
    deep: Expr = ref("n")
    for _ in range(120):
        deep = add(deep, 1)
    p = plan([gt(deep, 0), eq(ref("s"), "xx")])
    assert not p.filter_exact and p.params == ("xx",)
    runs_under_cloudflare_limits(p)


def test_keyset_cursor_is_pushed_down_with_the_order() -> None:
    p = plan(order=[asc(ref("n")), desc(upper(ref("s")), nulls="first")], cursor=((1, "XX"), "s:a"), limit=3)
    assert p.filter_exact and p.limit_pushed and "(key > ?)" in p.sql
    runs_under_cloudflare_limits(p)


def test_unpushable_order_means_sorting_in_memory_without_limit() -> None:
    p = plan(order=[asc(ref('we"ird'))], limit=3)
    assert not p.order_pushed and not p.limit_pushed and "ORDER BY" not in p.sql
