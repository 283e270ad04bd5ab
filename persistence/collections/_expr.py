"""The expression language of ``load_subset``, and its in-memory evaluator.

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
(``_sqlgen``) and evaluates here; both sides have one meaning, so the
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
import functools
import re
from typing import Any, Callable, Iterable, Literal, Sequence, cast

import msgspec

from ._codec import literal, project
from ._sqlfunc import SqlFunctions
from .errors import InvalidExpressionError

__all__ = [
    "Expr", "Ref", "Val", "Func", "OrderBy",
    "ref", "val", "eq", "gt", "gte", "lt", "lte", "and_", "or_", "not_", "in_",
    "like", "ilike", "is_null", "upper", "lower", "length", "concat", "coalesce",
    "add", "subtract", "multiply", "divide", "date_", "datetime_", "strftime",
    "asc", "desc", "normalize", "Evaluator", "as_expr",
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


# -- the SQL value model in Python ---------------------------------------------------
def compare(a: Any, b: Any) -> int:
    """SQLite's order of two non-NULL scalars: numbers < text; text by code point."""
    ra = type(a) is str
    rb = type(b) is str
    if ra != rb:
        return 1 if ra else -1
    return int(a > b) - int(a < b)


_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_INT64 = (-(2**63), 2**63 - 1)

Fn = Callable[[Any], Any]


class Evaluator:
    """Compiles expressions to Python closures over a stored JSON tree."""

    def __init__(self, functions: SqlFunctions) -> None:
        self.fn = functions

    def predicate(self, expr: Expr) -> Callable[[Any], bool]:
        f = self.compile(expr)
        truth = self.fn.truth
        return lambda tree: truth(f(tree)) is True

    def compile(self, e: Expr) -> Fn:
        if isinstance(e, Ref):
            return _ref_getter(e.path)
        if isinstance(e, Val):
            constant = literal(e.value)
            return lambda tree: constant
        if not isinstance(e, Func) or e.name not in ARITY:
            raise InvalidExpressionError(f"unknown expression {e!r}")
        method = getattr(self, "_f_" + e.name)
        result: Fn = method(e)
        return result

    def _args(self, e: Func) -> list[Fn]:
        return [self.compile(a) for a in e.args]

    # comparisons and logic: results are 1 / 0 / None, like SQLite's
    def _cmp(self, e: Func, test: Callable[[int], bool]) -> Fn:
        fa, fb = self._args(e)

        def run(tree: Any) -> Any:
            a = fa(tree)
            b = fb(tree)
            if a is None or b is None:
                return None
            return 1 if test(compare(a, b)) else 0

        return run

    def _f_eq(self, e: Func) -> Fn: return self._cmp(e, lambda c: c == 0)
    def _f_gt(self, e: Func) -> Fn: return self._cmp(e, lambda c: c > 0)
    def _f_gte(self, e: Func) -> Fn: return self._cmp(e, lambda c: c >= 0)
    def _f_lt(self, e: Func) -> Fn: return self._cmp(e, lambda c: c < 0)
    def _f_lte(self, e: Func) -> Fn: return self._cmp(e, lambda c: c <= 0)

    def _f_and(self, e: Func) -> Fn:
        fs = self._args(e)
        truth = self.fn.truth

        def run(tree: Any) -> Any:
            unknown = False
            for f in fs:
                t = truth(f(tree))
                if t is False:
                    return 0
                if t is None:
                    unknown = True
            return None if unknown else 1

        return run

    def _f_or(self, e: Func) -> Fn:
        fs = self._args(e)
        truth = self.fn.truth

        def run(tree: Any) -> Any:
            unknown = False
            for f in fs:
                t = truth(f(tree))
                if t is True:
                    return 1
                if t is None:
                    unknown = True
            return None if unknown else 0

        return run

    def _f_not(self, e: Func) -> Fn:
        (f,) = self._args(e)
        truth = self.fn.truth

        def run(tree: Any) -> Any:
            t = truth(f(tree))
            return None if t is None else (0 if t else 1)

        return run

    def _f_in(self, e: Func) -> Fn:
        fa = self.compile(e.args[0])
        raw = e.args[1].value  # type: ignore[attr-defined]
        scalars = [literal(v) for v in raw]
        has_null = any(s is None for s in scalars)
        # Python equality on these scalars is SQLite's: 1 == 1.0, '1' != 1.
        members = {s for s in scalars if s is not None}

        def run(tree: Any) -> Any:
            a = fa(tree)
            if a is None:
                return None if scalars else 0
            if a in members:
                return 1
            return None if has_null else 0

        return run

    def _f_is_null(self, e: Func) -> Fn:
        (f,) = self._args(e)
        return lambda tree: 1 if f(tree) is None else 0

    def _like(self, e: Func, fold: bool) -> Fn:
        fa, fp = self._args(e)
        text = self.fn.text
        call = self.fn.call
        sql = "lower(?) LIKE lower(?)" if fold else "? GLOB ?"
        compiled: dict[str, re.Pattern[str]] = {}

        def run(tree: Any) -> Any:
            a = text(fa(tree))
            p = text(fp(tree))
            if a is None or p is None:
                return None
            if "\x00" in a or "\x00" in p:
                # SQLite's matcher stops at NUL; let SQLite answer for these.
                return call(sql, a, p if fold else like_to_glob(p))
            if fold:
                a = a.translate(_ASCII_LOWER)
                p = p.translate(_ASCII_LOWER)
            rx = compiled.get(p)
            if rx is None:
                rx = compiled[p] = like_regex(p)
            return 1 if rx.fullmatch(a) else 0

        return run

    def _f_like(self, e: Func) -> Fn: return self._like(e, fold=False)
    def _f_ilike(self, e: Func) -> Fn: return self._like(e, fold=True)

    def _case(self, e: Func, table: dict[int, int]) -> Fn:
        (f,) = self._args(e)
        text = self.fn.text

        def run(tree: Any) -> Any:
            s = text(f(tree))
            return None if s is None else s.translate(table)

        return run

    def _f_upper(self, e: Func) -> Fn: return self._case(e, _ASCII_UPPER)
    def _f_lower(self, e: Func) -> Fn: return self._case(e, _ASCII_LOWER)

    def _f_length(self, e: Func) -> Fn:
        (f,) = self._args(e)
        text = self.fn.text
        call = self.fn.call

        def run(tree: Any) -> Any:
            v = f(tree)
            if v is None:
                return None
            s = text(v)
            return call("length(?)", s) if "\x00" in s else len(s)

        return run

    def _f_concat(self, e: Func) -> Fn:
        fs = self._args(e)
        text = self.fn.text

        def run(tree: Any) -> Any:
            parts = []
            for f in fs:
                v = f(tree)
                if v is None:
                    return None
                parts.append(text(v))
            return "".join(parts)

        return run

    def _f_coalesce(self, e: Func) -> Fn:
        fs = self._args(e)

        def run(tree: Any) -> Any:
            for f in fs:
                v = f(tree)
                if v is not None:
                    return v
            return None

        return run

    def _arith(self, e: Func) -> Fn:
        fa, fb = self._args(e)
        op = ARITHMETIC[e.name]
        sql = f"? {op} ?"
        call = self.fn.call

        def run(tree: Any) -> Any:
            a = fa(tree)
            b = fb(tree)
            if a is None or b is None:
                return None
            if type(a) is int and type(b) is int and op != "/":
                r = a + b if op == "+" else a - b if op == "-" else a * b
                if _INT64[0] <= r <= _INT64[1]:
                    return r
            # Overflow to REAL, integer division, text operands, x/0 and NaN
            # results (NULL) are SQLite's call.
            return call(sql, a, b)

        return run

    _f_add = _f_subtract = _f_multiply = _f_divide = _arith

    def _date(self, e: Func) -> Fn:
        fs = self._args(e)
        sql = f"{e.name}({', '.join('?' * len(fs))})"
        call = self.fn.call
        return lambda tree: call(sql, *[f(tree) for f in fs])

    _f_date = _f_datetime = _f_strftime = _date

    # -- ordering ----------------------------------------------------------------
    def sort_key(self, order_by: Sequence[OrderBy]) -> Callable[[Any, str], tuple[Any, ...]]:
        """A key for ``sorted`` equal to SQL's ``ORDER BY <clauses>, key ASC``."""
        parts = [(self.compile(c.expr), c.direction == "desc", c.nulls == "first") for c in order_by]

        def key(tree: Any, encoded_key: str) -> tuple[Any, ...]:
            out: list[Any] = []
            for f, descending, nulls_first in parts:
                out.extend(clause_key(f(tree), descending, nulls_first))
            out.append(encoded_key)
            return tuple(out)

        return key


def clause_key(v: Any, descending: bool, nulls_first: bool) -> tuple[Any, Any]:
    if v is None:
        return (0 if nulls_first else 1, None)
    comparable = (type(v) is str, v)
    return (1 if nulls_first else 0, _Desc(comparable) if descending else comparable)


@functools.total_ordering
class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    __hash__ = None  # type: ignore[assignment]


def _ref_getter(path: tuple[str | int, ...]) -> Fn:
    def get(tree: Any) -> Any:
        node = tree
        for segment in path:
            if type(segment) is str:
                if type(node) is not dict:
                    return None
                node = node.get(segment)
            else:
                index = cast(int, segment)
                if type(node) is not list or index >= len(node):
                    return None
                node = node[index]
        return project(node)

    return get


def like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


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
