"""Compiling expressions to SQLite, within a Durable Object's limits.

What it owns: turning :mod:`._expr` trees into SQL fragments over a row table
(``key``, ``value`` JSON text, ``metadata``, ``row_version``), and planning a
``load_subset`` SELECT.

Guarantees:

* **Exact or superset.** Every fragment is marked ``exact`` (same truth value
  as the in-memory evaluator for every row) or not, in which case it is a
  *superset* prefilter (true at least wherever the evaluator is). Only
  top-level ``AND`` conjuncts may be dropped or weakened; under ``NOT`` and
  inside values only exact fragments are used. The adapter re-checks every
  row in memory, so a dropped or weakened conjunct costs time, never
  correctness. ``LIMIT``/``OFFSET`` are pushed down only when the whole
  WHERE, the ORDER BY and the cursor are exact.
* **Cloudflare's limits hold for every statement** (:class:`SqlLimits`,
  defaults = Cloudflare's): at most 100 bound parameters (numbers are always
  inlined — exact, and immune to the DO binding ints as doubles; string
  literals become inline quoted literals once a conjunct would exceed the
  budget; ``IN`` lists are one parameter holding a JSON array read with
  ``json_each``, so 1,200 values cost one parameter, not 1,200 or a 900-value
  chunk as in TanStack); LIKE/GLOB patterns of at most 50 bytes (longer
  patterns become an exact-prefix ``substr`` prefilter); expression depth
  at most 100 (``AND``/``OR``/``||`` chains are balanced trees, depth is
  tracked with SQLite's own counting, too-deep conjuncts are evaluated in
  memory); statement text at most 100 KB.
* The reference expression for ``ref(path)`` decodes ``_codec``'s tags in SQL
  (bigint → NUMERIC, date → its UTC ISO text, ±inf → ±Inf, NaN → NULL), and
  is emitted identically in WHERE, ORDER BY and ``ensure_index``, so SQLite
  matches expression indexes.
* ``like`` compiles to ``GLOB`` with the pattern translated, because SQLite's
  LIKE is ASCII case-insensitive and ``like`` is case-sensitive.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Sequence

import msgspec

from ._codec import TAG, VALUE, literal
from ._expr import ARITHMETIC, COMPARISONS, Expr, Func, OrderBy, Ref, Val, like_to_glob
from .errors import InvalidExpressionError

__all__ = ["SqlLimits", "CLOUDFLARE_LIMITS", "Frag", "compile_value", "compile_pred",
           "compile_index_expression", "compile_index_where", "plan_select", "SelectPlan",
           "quote_text"]


class SqlLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-statement limits the generated SQL respects (defaults: Cloudflare's)."""

    max_params: int = 100  # CF: SQLITE_LIMIT_VARIABLE_NUMBER (workerd sqlite.c++ setupSecurity)
    max_like_pattern_bytes: int = 50  # CF: SQLITE_LIMIT_LIKE_PATTERN_LENGTH
    max_expr_depth: int = 100  # CF: SQLITE_LIMIT_EXPR_DEPTH
    max_sql_length: int = 100_000  # CF: SQLITE_LIMIT_SQL_LENGTH


CLOUDFLARE_LIMITS = SqlLimits()

_IN_INLINE_MAX = 16
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORBIDDEN_IN_LABEL = re.compile(r'["\\\x00-\x1f]')


class Frag(NamedTuple):
    sql: str
    params: tuple[Any, ...]
    depth: int  # SQLite's Expr height: a leaf is 1, a node 1 + its tallest child
    exact: bool = True


class _Ctx(NamedTuple):
    inline: bool  # literals inline (index / ORDER BY) rather than bound
    max_depth: int
    max_like: int


FALSE = Frag("0", (), 1)


def quote_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def json_path(path: Sequence[str | int]) -> str | None:
    out = "$"
    for segment in path:
        if type(segment) is int:
            out += f"[{segment}]"
        elif _IDENTIFIER.fullmatch(segment):  # type: ignore[arg-type]
            out += "." + segment  # type: ignore[operator]
        elif _FORBIDDEN_IN_LABEL.search(segment):  # type: ignore[arg-type]
            return None  # no portable quoting for these labels: evaluate in memory
        else:
            out += f'."{segment}"'
    return out


def ref_sql(path: str) -> str:
    def ex(p: str) -> str:
        return f"json_extract(value, {quote_text(p)})"

    # TanStack's tags (see _codec); the type name alone decides, as in its own compiler.
    return (
        f"(CASE {ex(path + '.' + TAG)}"
        f" WHEN 'bigint' THEN CAST({ex(path + '.' + VALUE)} AS NUMERIC)"
        f" WHEN 'date' THEN {ex(path + '.' + VALUE)}"
        " WHEN 'infinity' THEN 9e999 WHEN '-infinity' THEN -9e999 WHEN 'nan' THEN NULL"
        f" ELSE {ex(path)} END)"
    )


def literal_frag(scalar: Any, ctx: _Ctx) -> Frag | None:
    """A SQL literal for a scalar of the value model (see ``_codec.project``)."""
    if scalar is None:
        return Frag("NULL", (), 1)
    t = type(scalar)
    if t is int:
        return Frag(str(scalar), (), 2 if scalar < 0 else 1)
    if t is float:
        if scalar != scalar:
            return Frag("NULL", (), 1)
        text = "9e999" if scalar == float("inf") else "-9e999" if scalar == float("-inf") else repr(scalar)
        return Frag(text, (), 2 if text.startswith("-") else 1)
    if t is str:
        if not ctx.inline:
            return Frag("?", (scalar,), 1)
        if "\x00" in scalar:
            return None  # a NUL would end the statement text early
        return Frag(quote_text(scalar), (), 1)
    return None


def _node(sql: str, children: Sequence[Frag], exact: bool = True) -> Frag:
    params: tuple[Any, ...] = ()
    for c in children:
        params += c.params
    return Frag(sql, params, 1 + max((c.depth for c in children), default=0), exact)


def balanced(frags: list[Frag], op: str) -> Frag:
    """``a op b op c ...`` as a balanced tree: depth grows with log2 of the count."""
    level = list(frags)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            nxt.append(_node(f"({a.sql} {op} {b.sql})", (a, b), a.exact and b.exact))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _ok(frag: Frag | None, ctx: _Ctx) -> Frag | None:
    return frag if frag is not None and frag.depth <= ctx.max_depth else None


def compile_value(e: Expr, ctx: _Ctx) -> Frag | None:
    """An exact SQL value for ``e``, or None when it cannot be pushed down."""
    if isinstance(e, Ref):
        path = json_path(e.path)
        return None if path is None else Frag(ref_sql(path), (), 4)
    if isinstance(e, Val):
        return literal_frag(literal(e.value), ctx)
    assert isinstance(e, Func)
    name = e.name
    if name in COMPARISONS or name in ("and", "or", "not", "in", "like", "ilike", "is_null"):
        frag = compile_pred(e, ctx)
        return frag if frag is not None and frag.exact else None
    inner = ctx._replace(inline=True)
    args = [compile_value(a, inner) for a in e.args]
    if any(a is None for a in args):
        return None
    parts: list[Frag] = args  # type: ignore[assignment]
    if name in ("upper", "lower", "length"):
        return _ok(_node(f"{name}({parts[0].sql})", parts), ctx)
    if name == "concat":
        return _ok(balanced(parts, "||"), ctx)
    if name == "coalesce":
        if len(parts) == 1:
            return parts[0]
        return _ok(_node(f"coalesce({', '.join(p.sql for p in parts)})", parts), ctx)
    if name in ARITHMETIC:
        return _ok(_node(f"({parts[0].sql} {ARITHMETIC[name]} {parts[1].sql})", parts), ctx)
    if name in ("date", "datetime", "strftime"):
        return _ok(_node(f"{name}({', '.join(p.sql for p in parts)})", parts), ctx)
    return None


def _operand(e: Expr, ctx: _Ctx) -> Frag | None:
    # Only literals directly under a predicate are bound; everything nested is
    # inline so the text matches an expression index built from the same tree.
    return compile_value(e, ctx if isinstance(e, Val) else ctx._replace(inline=True))


def compile_pred(e: Expr, ctx: _Ctx) -> Frag | None:
    """SQL for ``e`` as a WHERE condition: exact, a superset prefilter, or None."""
    if not isinstance(e, Func):
        return compile_value(e, ctx)
    name = e.name
    if name == "and":
        kids = [compile_pred(a, ctx) for a in e.args]
        kept = [k for k in kids if k is not None]
        if not kept:
            return None
        frag = balanced(kept, "AND")
        return _ok(frag._replace(exact=frag.exact and len(kept) == len(kids)), ctx)
    if name == "or":
        kids = [compile_pred(a, ctx) for a in e.args]
        if any(k is None for k in kids):
            return None
        return _ok(balanced(kids, "OR"), ctx)  # type: ignore[arg-type]
    if name == "not":
        kid = compile_pred(e.args[0], ctx)
        if kid is None or not kid.exact:
            return None  # NOT of a superset is not a superset
        return _ok(_node(f"(NOT {kid.sql})", [kid]), ctx)
    if name in COMPARISONS:
        a, b = (_operand(x, ctx) for x in e.args)
        if a is None or b is None:
            return None
        return _ok(_node(f"({a.sql} {COMPARISONS[name]} {b.sql})", [a, b]), ctx)
    if name == "in":
        return _compile_in(e, ctx)
    if name in ("like", "ilike"):
        return _compile_like(e, ctx)
    if name == "is_null":
        a = _operand(e.args[0], ctx)
        return None if a is None else _ok(_node(f"({a.sql} IS NULL)", [a]), ctx)
    return compile_value(e, ctx)


def _compile_in(e: Func, ctx: _Ctx) -> Frag | None:
    left = _operand(e.args[0], ctx)
    if left is None:
        return None
    scalars = [literal(v) for v in e.args[1].value]  # type: ignore[attr-defined]
    if not scalars:
        return FALSE  # x IN () is false even for NULL x
    if len(scalars) <= _IN_INLINE_MAX:
        items = [literal_frag(s, ctx) for s in scalars]
        if all(i is not None for i in items):
            parts: list[Frag] = [left, *items]  # type: ignore[list-item]
            sql = f"({left.sql} IN ({', '.join(i.sql for i in items)}))"  # type: ignore[union-attr]
            return _ok(_node(sql, parts), ctx)
    array = "[" + ",".join(_json_scalar(s) for s in scalars) + "]"
    rhs = Frag(quote_text(array), (), 1) if ctx.inline else Frag("?", (array,), 1)
    if ctx.inline and "\x00" in array:
        return None
    sql = f"({left.sql} IN (SELECT value FROM json_each({rhs.sql})))"
    return _ok(Frag(sql, left.params + rhs.params, max(left.depth, 2) + 1), ctx)


def _json_scalar(s: Any) -> str:
    if type(s) is float:
        if s == float("inf"):
            return "9e999"  # SQLite's JSON reader turns this into +Inf, as the SQL literal does
        if s == float("-inf"):
            return "-9e999"
        return repr(s)
    return msgspec.json.encode(s).decode("utf-8")


def _compile_like(e: Func, ctx: _Ctx) -> Frag | None:
    a = _operand(e.args[0], ctx)
    pattern_expr = e.args[1]
    if a is None or not isinstance(pattern_expr, Val):
        return None
    pattern = literal(pattern_expr.value)
    if pattern is None:
        return Frag("NULL", (), 1)
    if type(pattern) is not str or "\x00" in pattern:
        return None
    fold = e.name == "ilike"
    # like is case-sensitive: GLOB with the wildcards translated is exactly it.
    sql_pattern = pattern if fold else like_to_glob(pattern)
    if len(sql_pattern.encode("utf-8")) <= ctx.max_like:
        p = literal_frag(sql_pattern, ctx)
        assert p is not None
        op = "LIKE" if fold else "GLOB"
        return _ok(_node(f"({a.sql} {op} {p.sql})", [a, p]), ctx)
    # Too long for the DO's pattern limit: prefilter on the literal prefix.
    prefix = re.split(r"[%_]", pattern, maxsplit=1)[0]
    if not prefix:
        return None
    if fold:
        prefix = prefix.translate({c: c + 32 for c in range(65, 91)})
    p = literal_frag(prefix, ctx)
    assert p is not None
    head = f"substr({a.sql}, 1, {len(prefix)})"
    sql = f"(lower({head}) = {p.sql})" if fold else f"({head} = {p.sql})"
    return _ok(_node(sql, [a, p])._replace(depth=a.depth + 3, exact=False), ctx)


# -- indexes ------------------------------------------------------------------------
def compile_index_expression(e: Expr, limits: SqlLimits) -> str:
    frag = compile_value(e, _Ctx(True, limits.max_expr_depth, limits.max_like_pattern_bytes))
    if frag is None or frag.params:
        raise InvalidExpressionError(f"index expression {e!r} cannot be compiled to SQLite")
    return frag.sql


def compile_index_where(e: Expr, limits: SqlLimits) -> str:
    frag = compile_pred(e, _Ctx(True, limits.max_expr_depth, limits.max_like_pattern_bytes))
    if frag is None or not frag.exact or frag.params:
        raise InvalidExpressionError(f"index where {e!r} cannot be compiled to SQLite exactly")
    return frag.sql


# -- load_subset plans ---------------------------------------------------------------
class SelectPlan(NamedTuple):
    sql: str
    params: tuple[Any, ...]
    order_pushed: bool  # rows arrive in final order
    filter_exact: bool  # SQL WHERE (and cursor) select exactly the matching rows
    limit_pushed: bool


def plan_select(
    table_sql: str,
    conjuncts: Sequence[Expr],
    order_by: Sequence[OrderBy],
    cursor: tuple[tuple[Any, ...], str] | None,
    limit: int | None,
    offset: int,
    limits: SqlLimits,
) -> SelectPlan:
    depth_budget = limits.max_expr_depth - 2
    bound = _Ctx(False, depth_budget, limits.max_like_pattern_bytes)
    inline = bound._replace(inline=True)
    budget = limits.max_params
    where: list[Frag] = []
    exact = True
    for conjunct in conjuncts:
        frag = compile_pred(conjunct, bound)
        if frag is not None and len(frag.params) > budget:
            frag = compile_pred(conjunct, inline)
        if frag is None:
            exact = False
            continue
        exact = exact and frag.exact
        budget -= len(frag.params)
        where.append(frag)
    order = [compile_value(c.expr, inline) for c in order_by]
    order_pushed = all(o is not None for o in order)
    if cursor is not None:
        frag = None
        if order_pushed:
            frag = _cursor_frag(order, order_by, cursor, bound)  # type: ignore[arg-type]
            if frag is not None and len(frag.params) > budget:
                frag = _cursor_frag(order, order_by, cursor, inline)  # type: ignore[arg-type]
        if frag is None:
            exact = False
        else:
            where.append(frag)
    while True:
        combined = balanced(where, "AND") if where else None
        if combined is not None and combined.depth > depth_budget:
            where.pop()
            exact = False
            continue
        order_sql = ""
        if order_pushed:
            # A constant orders nothing; as a bare integer SQLite would even read
            # it as a column number ("ORDER BY 2"), so constants are left out.
            clauses = [
                f"{o.sql} {c.direction.upper()} NULLS {c.nulls.upper()}"  # type: ignore[union-attr]
                for o, c in zip(order, order_by) if not isinstance(c.expr, Val)
            ]
            order_sql = " ORDER BY " + ", ".join([*clauses, "key ASC"])
        limit_pushed = exact and order_pushed and (limit is not None or offset > 0)
        tail = ""
        if limit_pushed:
            tail = f" LIMIT {limit if limit is not None else -1} OFFSET {offset}"
        where_sql = f" WHERE {combined.sql}" if combined is not None else ""
        sql = f"SELECT key, value, metadata, row_version FROM {table_sql}{where_sql}{order_sql}{tail}"
        if len(sql.encode("utf-8")) > limits.max_sql_length and where:
            where.pop()
            exact = False
            continue
        params = combined.params if combined is not None else ()
        return SelectPlan(sql, params, order_pushed, exact, limit_pushed)


def _cursor_frag(
    order: list[Frag], order_by: Sequence[OrderBy], cursor: tuple[tuple[Any, ...], str], ctx: _Ctx
) -> Frag | None:
    """Rows strictly after the cursor in ``ORDER BY <order>, key`` order."""
    values, encoded_key = cursor
    scalars = [literal(v) for v in values]
    terms: list[Frag] = []
    equal_so_far: list[Frag] = []
    for expr, clause, v in zip(order, order_by, scalars):
        lit = literal_frag(v, ctx) if v is not None else None
        if v is not None and lit is None:
            return None
        desc = clause.direction == "desc"
        nulls_first = clause.nulls == "first"
        if lit is None:
            after = _node(f"({expr.sql} IS NOT NULL)", [expr]) if nulls_first else None
            same = _node(f"({expr.sql} IS NULL)", [expr])
        else:
            cmp = _node(f"({expr.sql} {'<' if desc else '>'} {lit.sql})", [expr, lit])
            if nulls_first:
                after = cmp
            else:
                is_null = _node(f"({expr.sql} IS NULL)", [expr])
                after = _node(f"({cmp.sql} OR {is_null.sql})", [cmp, is_null])
            same = _node(f"({expr.sql} = {lit.sql})", [expr, lit])
        if after is not None:
            terms.append(balanced([*equal_so_far, after], "AND"))
        equal_so_far.append(same)
    key_lit = literal_frag(encoded_key, ctx)
    if key_lit is None:
        return None
    terms.append(balanced([*equal_so_far, _node(f"(key > {key_lit.sql})", [key_lit])], "AND"))
    return _ok(balanced(terms, "OR"), ctx)
