"""The expression language of ``load_subset``: its trees, builders and normalisation.

An expression is a small tree: :class:`Ref` (a path into the row value),
:class:`Val` (a literal) and :class:`Func` (an operator over expressions), built
with the functions below (``eq(ref("done"), False)``). Plain Python values
given where an expression is expected become :class:`Val`.

Semantics are SQLite's, evaluated over the SQL value model of ``_codec``
(bools are 1/0, datetimes compare as UTC text, objects as JSON text): NULL
propagates, ``and``/``or``/``not`` are three-valued, values of different types
order NULL < numbers < text, text compares by code point, ``upper``/``lower``
and ``ilike`` fold ASCII letters only (SQLite without ICU, as on Cloudflare),
``like`` is case-sensitive with ``%`` and ``_``. The same tree compiles to SQL
(``_sqlgen``) and evaluates in memory (``_eval``); both sides have one meaning, so the
in-memory re-check of pushed-down SQL is a consistency check, and SQL that
cannot be pushed (limits, unsupported paths) is evaluated here instead with
identical results. TanStack's evaluator is JavaScript's and its pushdown
SQLite's, which can disagree (LIKE case, NaN/Infinity, mixed types).

:func:`normalize` runs first on both sides: ``'now'`` in date functions
becomes the adapter clock's instant, and a datetime literal compared with a
``date(...)``/``datetime(...)`` call is wrapped in the same call (TanStack's
rule), so ``gt(datetime_(ref("at")), some_datetime)`` compares like with like.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable, Literal, Sequence

import msgspec

from .errors import InvalidExpressionError

__all__ = [
    "Expr", "Ref", "Val", "Func", "OrderBy",
    "ref", "val", "eq", "gt", "gte", "lt", "lte", "and_", "or_", "not_", "in_",
    "like", "ilike", "is_null", "upper", "lower", "length", "concat", "coalesce",
    "add", "subtract", "multiply", "divide", "date_", "datetime_", "strftime",
    "asc", "desc", "normalize", "as_expr", "check_order_by", "like_to_glob",
]


class Expr(msgspec.Struct, frozen=True):
    """Base of expression nodes."""


class Ref(Expr, frozen=True):
    """A path into the row value: ``str`` segments are object keys, ``int`` ones array indexes."""

    path: tuple[str | int, ...]


class Val(Expr, frozen=True):
    value: Any


class Func(Expr, frozen=True):
    name: str
    args: tuple[Expr, ...]


class OrderBy(msgspec.Struct, frozen=True, kw_only=True):
    expr: Expr
    direction: Literal["asc", "desc"] = "asc"
    nulls: Literal["first", "last"] = "first"


# name -> (min args, max args or None)
ARITY: dict[str, tuple[int, int | None]] = {
    "eq": (2, 2), "gt": (2, 2), "gte": (2, 2), "lt": (2, 2), "lte": (2, 2),
    "and": (1, None), "or": (1, None), "not": (1, 1), "in": (2, 2),
    "like": (2, 2), "ilike": (2, 2), "is_null": (1, 1),
    "upper": (1, 1), "lower": (1, 1), "length": (1, 1), "concat": (1, None),
    "coalesce": (1, None), "add": (2, 2), "subtract": (2, 2), "multiply": (2, 2),
    "divide": (2, 2), "date": (1, None), "datetime": (1, None), "strftime": (2, None),
}
COMPARISONS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
ARITHMETIC = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
DATE_FUNCS = frozenset({"date", "datetime", "strftime"})


def as_expr(value: Any) -> Expr:
    return value if isinstance(value, Expr) else Val(value)


def _func(name: str, *args: Any) -> Func:
    low, high = ARITY[name]
    if len(args) < low or (high is not None and len(args) > high):
        want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low}..{high}"
        noun = "argument" if want == "at least 1" or want == "1" else "arguments"
        raise InvalidExpressionError(f"{name}() takes {want} {noun}, got {len(args)}")
    return Func(name, tuple(as_expr(a) for a in args))


def ref(*path: str | int) -> Ref:
    """``ref("address", "city")`` is ``row["address"]["city"]``."""
    if not path:
        raise InvalidExpressionError("ref() needs at least one path segment")
    for segment in path:
        if isinstance(segment, bool) or not isinstance(segment, (str, int)):
            raise InvalidExpressionError(f"ref() path segments must be str or int, got {segment!r}")
        if isinstance(segment, int) and segment < 0:
            raise InvalidExpressionError(f"ref() array indexes must be >= 0, got {segment!r}")
    return Ref(tuple(path))


def val(value: Any) -> Val:
    return Val(value)


def eq(a: Any, b: Any) -> Func: return _func("eq", a, b)
def gt(a: Any, b: Any) -> Func: return _func("gt", a, b)
def gte(a: Any, b: Any) -> Func: return _func("gte", a, b)
def lt(a: Any, b: Any) -> Func: return _func("lt", a, b)
def lte(a: Any, b: Any) -> Func: return _func("lte", a, b)
def and_(*args: Any) -> Func: return _func("and", *args)
def or_(*args: Any) -> Func: return _func("or", *args)
def not_(a: Any) -> Func: return _func("not", a)
def like(a: Any, pattern: Any) -> Func: return _func("like", a, pattern)
def ilike(a: Any, pattern: Any) -> Func: return _func("ilike", a, pattern)
def is_null(a: Any) -> Func: return _func("is_null", a)
def upper(a: Any) -> Func: return _func("upper", a)
def lower(a: Any) -> Func: return _func("lower", a)
def length(a: Any) -> Func: return _func("length", a)
def concat(*args: Any) -> Func: return _func("concat", *args)
def coalesce(*args: Any) -> Func: return _func("coalesce", *args)
def add(a: Any, b: Any) -> Func: return _func("add", a, b)
def subtract(a: Any, b: Any) -> Func: return _func("subtract", a, b)
def multiply(a: Any, b: Any) -> Func: return _func("multiply", a, b)
def divide(a: Any, b: Any) -> Func: return _func("divide", a, b)
def date_(a: Any, *modifiers: Any) -> Func: return _func("date", a, *modifiers)
def datetime_(a: Any, *modifiers: Any) -> Func: return _func("datetime", a, *modifiers)
def strftime(fmt: Any, a: Any, *modifiers: Any) -> Func: return _func("strftime", fmt, a, *modifiers)


def in_(a: Any, values: Iterable[Any]) -> Func:
    """``a`` is one of ``values`` (literals, any number of them)."""
    if isinstance(values, (str, bytes, dict, Expr)) or not isinstance(values, Iterable):
        raise InvalidExpressionError(f"in_() needs a list of literal values, got {values!r}")
    items = tuple(values)
    if any(isinstance(v, Expr) for v in items):
        raise InvalidExpressionError("in_() values must be literals, not expressions")
    return Func("in", (as_expr(a), Val(items)))


def asc(expr: Any, nulls: Literal["first", "last"] = "first") -> OrderBy:
    return OrderBy(expr=as_expr(expr), direction="asc", nulls=nulls)


def desc(expr: Any, nulls: Literal["first", "last"] = "last") -> OrderBy:
    return OrderBy(expr=as_expr(expr), direction="desc", nulls=nulls)


def check_order_by(order_by: Sequence[Any]) -> tuple[OrderBy, ...]:
    out = []
    for clause in order_by:
        if isinstance(clause, OrderBy):
            if clause.direction not in ("asc", "desc") or clause.nulls not in ("first", "last"):
                raise InvalidExpressionError(f"invalid order_by clause {clause!r}")
            out.append(clause)
        elif isinstance(clause, Expr):
            out.append(asc(clause))
        else:
            raise InvalidExpressionError(f"order_by entries must be asc()/desc()/expressions, got {clause!r}")
    return tuple(out)


# -- normalisation -------------------------------------------------------------------
MAX_NESTING = 200  # well past SQLite's depth 100; keeps Python's recursion limit out of reach


def normalize(expr: Expr, now: str) -> Expr:
    """Pin ``'now'`` to ``now`` and wrap temporal literals compared with date calls."""
    _check_nesting(expr)
    return _normalize(expr, now)


def _check_nesting(expr: Expr) -> None:
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise InvalidExpressionError(f"expression nesting exceeds {MAX_NESTING} levels")
        if isinstance(node, Func):
            stack.extend((a, depth + 1) for a in node.args)
        elif not isinstance(node, (Ref, Val)):
            raise InvalidExpressionError(f"expected an expression, got {node!r}")


def _normalize(expr: Expr, now: str) -> Expr:
    if not isinstance(expr, Func):
        return expr
    args = tuple(_normalize(a, now) for a in expr.args)
    if expr.name in DATE_FUNCS:
        args = tuple(Val(now) if _is_now(a) else a for a in args)
    if expr.name in COMPARISONS:
        a, b = args
        if _is_temporal_call(a) and _is_temporal_literal(b):
            b = Func(a.name, (b,))  # type: ignore[attr-defined]
        elif _is_temporal_call(b) and _is_temporal_literal(a):
            a = Func(b.name, (a,))  # type: ignore[attr-defined]
        args = (a, b)
    return Func(expr.name, args)


def _is_now(e: Expr) -> bool:
    return isinstance(e, Val) and isinstance(e.value, str) and e.value.lower() == "now"


def _is_temporal_call(e: Expr) -> bool:
    return isinstance(e, Func) and e.name in ("date", "datetime")


def _is_temporal_literal(e: Expr) -> bool:
    return isinstance(e, Val) and isinstance(e.value, _dt.date)


def like_to_glob(pattern: str) -> str:
    """A GLOB pattern matching exactly what case-sensitive LIKE ``pattern`` matches."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)
