"""Adapter contract, reads: load_subset semantics, pushdown with fallback, cursors, indexes.

Every query runs twice — pushed down, and with ``pushdown=False`` (all in
memory) — and both must return the same rows in the same order.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable

import pytest

from persistence.collections import (
    CollectionAdapter, CommittedTx, Cursor, Expr, IndexSpec, InvalidExpressionError, Mutation, OrderBy,
    SQLiteDriver, add, and_, asc, coalesce, concat, date_, datetime_, desc, divide, eq, gt, gte, ilike, in_,
    is_null, length, like, lower, lt, lte, multiply, not_, or_, ref, strftime, subtract, upper,
)

C = "items"
UTC = dt.timezone.utc


@pytest.fixture
def pair(make_adapter: Callable[..., CollectionAdapter]) -> tuple[CollectionAdapter, CollectionAdapter]:
    return make_adapter(), make_adapter(pushdown=False)


def seed(adapter: CollectionAdapter, rows: dict[Any, dict[str, Any]]) -> None:
    adapter.apply_committed_tx(C, CommittedTx(tx_id="seed", term=1, seq=1,
                                              mutations=[Mutation.insert(k, v) for k, v in rows.items()]))


def query(pair: tuple[CollectionAdapter, CollectionAdapter], **kw: Any) -> list[Any]:
    pushed, memory = pair
    got = [r.key for r in pushed.load_subset(C, **kw)]
    assert got == [r.key for r in memory.load_subset(C, **kw)]
    return got


MIXED = {
    "n1": {"v": 1}, "n2": {"v": 2.5}, "big": {"v": 2**53 + 1}, "t": {"v": "10"}, "t2": {"v": "abc"},
    "null": {"v": None}, "missing": {}, "bool": {"v": True}, "neg": {"v": -7}, "inf": {"v": math.inf},
    "nan": {"v": math.nan}, "list": {"v": [1, 2]}, "huge": {"v": 2**70},
}


def test_values_of_different_types_order_null_numbers_text_and_ties_break_by_key(pair: Any) -> None:
    seed(pair[0], MIXED)
    assert query(pair, order_by=[asc(ref("v"))]) == [
        "missing", "nan", "null", "neg", "bool", "n1", "n2", "big", "huge", "inf", "t", "list", "t2"]
    assert query(pair, order_by=[desc(ref("v"), nulls="first")])[:3] == ["missing", "nan", "null"]
    assert query(pair, order_by=[desc(ref("v"))])[:4] == ["t2", "list", "t", "inf"]


def test_comparisons_follow_sqlite_semantics_across_types(pair: Any) -> None:
    seed(pair[0], MIXED)
    assert query(pair, where=gt(ref("v"), 2)) == ["big", "huge", "inf", "list", "n2", "t", "t2"]
    assert query(pair, where=eq(ref("v"), 1)) == ["bool", "n1"]
    assert query(pair, where=eq(ref("v"), "10")) == ["t"]
    assert query(pair, where=lte(ref("v"), -7)) == ["neg"]
    assert query(pair, where=is_null(ref("v"))) == ["missing", "nan", "null"]
    assert query(pair, where=not_(gt(ref("v"), 0))) == ["neg"]  # NULLs are neither
    assert query(pair, where=or_(lt(ref("v"), 0), eq(ref("v"), "abc"))) == ["neg", "t2"]


def test_big_integer_comparisons_are_exact(pair: Any) -> None:
    seed(pair[0], {i: {"v": v} for i, v in enumerate([2**53, 2**53 + 1, 2**53 + 2, 2**63 - 1, -(2**63), 2**64])})
    assert query(pair, where=gt(ref("v"), 2**53)) == [1, 2, 3, 5]
    assert query(pair, where=eq(ref("v"), 2**53 + 1)) == [1]
    assert query(pair, where=gte(ref("v"), 2**63 - 1)) == [3, 5]
    assert query(pair, order_by=[desc(ref("v"))]) == [5, 3, 2, 1, 0, 4]
    assert query(pair, where=in_(ref("v"), [2**53 + 2, 2**63 - 1])) == [2, 3]


def test_datetimes_compare_as_instants_whatever_their_offset(pair: Any) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    seed(pair[0], {
        "a": {"at": dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)},
        "b": {"at": dt.datetime(2024, 1, 1, 13, 30, tzinfo=plus2)},  # 11:30 UTC
        "c": {"at": dt.datetime(2024, 1, 1, 12, 0, 0, 1000)},  # naive = UTC
        "d": {"at": dt.date(2023, 12, 31)},
        "e": {"at": None},
        "f": {"at": dt.datetime(2024, 1, 1, 12, 0, 0, 999, tzinfo=UTC)},
    })
    noon = dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert query(pair, where=gt(ref("at"), noon)) == ["c"]
    # Compared at a JavaScript Date's precision (TanStack stores milliseconds): f is noon.
    assert query(pair, where=eq(ref("at"), noon)) == ["a", "f"]
    assert query(pair, where=eq(ref("at"), dt.datetime(2024, 1, 1, 14, 0, tzinfo=plus2))) == ["a", "f"]
    assert query(pair, order_by=[asc(ref("at"))]) == ["e", "d", "b", "a", "f", "c"]
    assert query(pair, where=eq(datetime_(ref("at")), noon)) == ["a", "c", "f"]  # second precision
    assert query(pair, where=eq(date_(ref("at")), dt.date(2024, 1, 1))) == ["a", "b", "c", "f"]
    assert query(pair, where=eq(strftime("%H:%M", ref("at")), "11:30")) == ["b"]


def test_now_in_date_functions_is_the_adapter_clock(pair: Any, clock: Any) -> None:
    clock.now = dt.datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    seed(pair[0], {"old": {"at": dt.datetime(2024, 5, 1, tzinfo=UTC)},
                   "new": {"at": dt.datetime(2024, 5, 30, tzinfo=UTC)}})
    assert query(pair, where=gt(datetime_(ref("at")), datetime_("now", "-7 days"))) == ["new"]


def test_like_is_case_sensitive_and_ilike_folds_ascii_only(pair: Any) -> None:
    seed(pair[0], {1: {"s": "Hello"}, 2: {"s": "hello"}, 3: {"s": "HÉLLO"}, 4: {"s": "hÉllo"},
                   5: {"s": "a*b?[c]"}, 6: {"s": "a_b%c"}, 7: {"s": 12345}, 8: {"s": 1.5}})
    assert query(pair, where=like(ref("s"), "h%")) == [2, 4]
    assert query(pair, where=ilike(ref("s"), "h%")) == [1, 2, 3, 4]
    assert query(pair, where=ilike(ref("s"), "hé%")) == []  # É/é are not ASCII: not folded
    assert query(pair, where=ilike(ref("s"), "HÉ%")) == [3, 4]
    assert query(pair, where=like(ref("s"), "a*b?[c]")) == [5]
    assert query(pair, where=like(ref("s"), "a_b%")) == [5, 6]
    assert query(pair, where=like(ref("s"), "123%")) == [7]
    assert query(pair, where=like(ref("s"), "1._")) == [8]


def test_like_patterns_longer_than_the_do_limit_fall_back_and_stay_correct(pair: Any) -> None:
    long_prefix = "x" * 60
    seed(pair[0], {1: {"s": long_prefix + "tail"}, 2: {"s": long_prefix.upper() + "tail"}, 3: {"s": "short"},
                   4: {"s": long_prefix + "TAIL"}})
    assert query(pair, where=like(ref("s"), long_prefix + "%tail")) == [1]
    assert query(pair, where=ilike(ref("s"), long_prefix + "%tail")) == [1, 2, 4]
    assert query(pair, where=like(ref("s"), "%" + "_" * 55 + "%")) == [1, 2, 4]


def test_in_lists_of_1200_values_work_under_the_parameter_limit(pair: Any) -> None:
    seed(pair[0], {i: {"n": i, "s": f"s{i}"} for i in range(2_000)})
    wanted = list(range(0, 2_400, 2))  # 1,200 values, half of them absent
    assert query(pair, where=in_(ref("n"), wanted)) == sorted(range(0, 2_000, 2), key=lambda k: f"n:{k}")
    strings = [f"s{i}" for i in range(1_200)]
    assert len(query(pair, where=in_(ref("s"), strings))) == 1_200
    assert len(query(pair, where=not_(in_(ref("n"), wanted)))) == 1_000
    assert query(pair, where=in_(ref("n"), [])) == []


def test_in_follows_three_valued_logic_with_nulls(pair: Any) -> None:
    seed(pair[0], {1: {"n": 1}, 2: {"n": 2}, 3: {"n": None}})
    assert query(pair, where=in_(ref("n"), [1, None])) == [1]
    assert query(pair, where=not_(in_(ref("n"), [1, None]))) == []  # 2 NOT IN (1, NULL) is NULL
    assert query(pair, where=not_(in_(ref("n"), [1]))) == [2]


def test_many_string_literals_exceed_no_parameter_limit(pair: Any) -> None:
    seed(pair[0], {i: {"s": f"v{i}"} for i in range(300)})
    many = or_(*[eq(ref("s"), f"v{i}") for i in range(0, 300, 2)])  # 150 literals
    assert len(query(pair, where=many)) == 150
    assert len(query(pair, where=and_(many, *[not_(eq(ref("s"), f"v{i}")) for i in range(0, 40, 2)]))) == 130


def test_deep_and_wide_expressions_stay_within_the_depth_limit(pair: Any) -> None:
    seed(pair[0], {i: {"n": i, "a": {"b": {"c": i % 3}}} for i in range(40)})
    wide = and_(*[not_(eq(ref("n"), i)) for i in range(300)], gte(ref("a", "b", "c"), 1))
    assert query(pair, where=wide) == []
    deep: Expr = eq(ref("n"), 7)
    for _ in range(60):  # 120 NOTs: deeper than SQLite's 100
        deep = not_(not_(deep))
    assert query(pair, where=deep) == [7]
    total: Expr = ref("n")
    for _ in range(120):
        total = add(total, 1)
    assert query(pair, where=eq(total, 125)) == [5]


def test_functions_follow_sqlite(pair: Any) -> None:
    seed(pair[0], {1: {"s": "Ünïcode", "n": 5, "f": 1e20}, 2: {"s": "ascii", "n": -3, "f": 0.5},
                   3: {"s": None, "n": 0, "f": 2.0}})
    assert query(pair, where=eq(upper(ref("s")), "ÜNïCODE")) == [1]
    assert query(pair, where=eq(lower(ref("s")), "ascii")) == [2]
    assert query(pair, where=eq(length(ref("s")), 7)) == [1]
    assert query(pair, where=eq(concat(ref("n"), "/", ref("f")), "5/1.0e+20")) == [1]
    assert query(pair, where=eq(concat(ref("n"), ref("f")), "02.0")) == [3]
    assert query(pair, where=eq(coalesce(ref("s"), "none"), "none")) == [3]
    assert query(pair, where=eq(divide(ref("n"), 2), 2)) == [1]  # integer division
    assert query(pair, where=is_null(divide(ref("n"), 0))) == [1, 2, 3]
    assert query(pair, where=gt(multiply(ref("n"), 2**62), 2**62)) == [1]  # overflows to REAL
    assert query(pair, where=eq(subtract(ref("f"), 0.5), 0)) == [2]


def test_unusual_paths_are_evaluated_in_memory(pair: Any) -> None:
    seed(pair[0], {1: {'we"ird': 1, "a.b": 2, "arr": [{"x": 9}]}, 2: {'we"ird': 2, "a.b": 3, "arr": []}})
    assert query(pair, where=eq(ref('we"ird'), 2)) == [2]
    assert query(pair, where=eq(ref("a.b"), 2)) == [1]
    assert query(pair, where=eq(ref("arr", 0, "x"), 9)) == [1]


def test_limit_and_offset_page_in_order(pair: Any) -> None:
    seed(pair[0], {i: {"g": i % 3} for i in range(10)})
    ordered = query(pair, order_by=[asc(ref("g"))])
    assert query(pair, order_by=[asc(ref("g"))], limit=4, offset=3) == ordered[3:7]
    assert query(pair, order_by=[asc(ref("g"))], where=like(ref("g"), "%" * 60), limit=2) == ordered[:2]
    assert query(pair, offset=8) == sorted(range(10), key=lambda k: f"n:{k}")[8:]


@pytest.mark.parametrize("order", [
    [asc(ref("g"))], [desc(ref("g"))], [asc(ref("g"), nulls="last")], [desc(ref("g"), nulls="first")],
    [asc(ref("g")), desc(ref("h"))], [desc(upper(ref("s")))], [],
])
def test_cursor_pagination_visits_every_row_once_despite_ties(pair: Any, order: list[OrderBy]) -> None:
    rows = {i: {"g": None if i % 5 == 0 else i % 3, "h": i % 2, "s": "ab"[i % 2]} for i in range(40)}
    rows["s"] = {"g": "text", "h": None}
    seed(pair[0], rows)
    for adapter in pair:
        everything = [r.key for r in adapter.load_subset(C, order_by=order)]
        pages: list[Any] = []
        cursor: Cursor | None = None
        while True:
            page = adapter.load_subset(C, order_by=order, limit=7, cursor=cursor)
            pages.extend(r.key for r in page)
            if len(page) < 7:
                break
            cursor = adapter.cursor_after(page[-1], order)
        assert pages == everything


def test_order_by_a_plain_expression_means_ascending(pair: Any) -> None:
    seed(pair[0], {1: {"n": 2}, 2: {"n": 1}})
    assert query(pair, order_by=[ref("n")]) == [2, 1]


def test_malformed_expressions_are_refused(adapter: CollectionAdapter) -> None:
    with pytest.raises(InvalidExpressionError, match=r"^and\(\) takes at least 1 argument, got 0$"):
        and_()
    with pytest.raises(InvalidExpressionError, match=r"^concat\(\) takes at least 1 argument, got 0$"):
        concat()
    with pytest.raises(InvalidExpressionError, match=r"^in_\(\) needs a list of literal values, got 'abc'$"):
        in_(ref("a"), "abc")
    with pytest.raises(InvalidExpressionError, match=r"^ref\(\) array indexes must be >= 0, got -1$"):
        ref("a", -1)


def test_expression_indexes_are_created_used_and_removed(adapter: CollectionAdapter, driver: SQLiteDriver) -> None:
    seed(adapter, {i: {"cat": f"c{i % 10}", "n": i} for i in range(200)})
    name = adapter.ensure_index(C, "by-cat", IndexSpec(expressions=(ref("cat"),)))
    listed = driver.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?", [name])
    assert listed == [{"name": name}]
    assert len(adapter.load_subset(C, where=eq(ref("cat"), "c3"))) == 20
    # Same signature, new SQL: the physical index is rebuilt under the registry entry.
    adapter.ensure_index(C, "by-cat", IndexSpec(expressions=(ref("cat"), ref("n"))))
    assert driver.query("SELECT expression_sql FROM persisted_index_registry") == [
        {"expression_sql": driver.query("SELECT expression_sql FROM persisted_index_registry")[0]["expression_sql"]}]
    adapter.mark_index_removed(C, "by-cat")
    assert driver.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = ?", [name]) == []
    assert driver.query("SELECT removed FROM persisted_index_registry") == [{"removed": 1}]


@pytest.mark.parametrize("fragment", ["x; DROP TABLE t", "x -- comment", "x /* c */", "   ", 5])
def test_raw_index_fragments_with_statement_breaks_or_comments_are_rejected(adapter: CollectionAdapter,
                                                                            fragment: Any) -> None:
    with pytest.raises(InvalidExpressionError, match=r"^Invalid persisted index SQL fragment: "):
        adapter.ensure_index(C, "sig", IndexSpec(expressions=(fragment,)))


def test_raw_index_fragments_and_partial_indexes_are_accepted(adapter: CollectionAdapter,
                                                              driver: SQLiteDriver) -> None:
    name = adapter.ensure_index(C, "raw", IndexSpec(expressions=("json_extract(value, '$.n')",),
                                                    where=gt(ref("n"), 3)))
    sql = driver.query("SELECT sql FROM sqlite_master WHERE name = ?", [name])[0]["sql"]
    assert "json_extract(value, '$.n')" in sql and " WHERE " in sql


def test_absurdly_nested_expressions_are_refused_before_any_work(adapter: CollectionAdapter) -> None:
    deep: Expr = ref("n")
    for _ in range(250):
        deep = upper(deep)
    with pytest.raises(InvalidExpressionError, match=r"^expression nesting exceeds 200 levels$"):
        adapter.load_subset(C, where=eq(deep, "x"))


def test_a_literal_where_keeps_or_drops_every_row(pair: Any) -> None:
    seed(pair[0], {1: {}, 2: {}})
    assert query(pair, where=True) == [1, 2]
    assert query(pair, where=0) == []
    assert query(pair, order_by=[asc(3)]) == [1, 2]


def test_sqlite_uses_the_expression_index_for_pushed_down_where_and_order(tmp_path: Any) -> None:
    from persistence.collections import ApswDriver, CLOUDFLARE_LIMITS
    from persistence.collections._schema import quote_identifier, table_names
    from persistence.collections._sqlgen import plan_select

    driver = ApswDriver.open(str(tmp_path / "plan.sqlite"))
    adapter = CollectionAdapter(driver)
    seed(adapter, {i: {"cat": f"c{i % 10}", "rank": i} for i in range(100)})
    by_cat = adapter.ensure_index(C, "by-cat", IndexSpec(expressions=(upper(ref("cat")),)))
    by_rank = adapter.ensure_index(C, "by-rank", IndexSpec(expressions=(ref("rank"),)))
    table = quote_identifier(table_names(C)[0])

    def plan_of(where: list[Expr], order: list[OrderBy]) -> str:
        p = plan_select(table, where, order, None, 10, 0, CLOUDFLARE_LIMITS)
        rows = driver.query("EXPLAIN QUERY PLAN " + p.sql, p.params)
        return " | ".join(r["detail"] for r in rows)

    assert f"USING INDEX {by_cat}" in plan_of([eq(upper(ref("cat")), "C3")], [])
    assert f"SCAN {table.strip(chr(34))} USING INDEX {by_rank}" in plan_of([], [asc(ref("rank"))])
    adapter.close()
    driver.close()
