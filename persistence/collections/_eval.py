"""The in-memory evaluator of the expression language, and SQL ordering in Python.

:class:`Evaluator` compiles an ``_expr`` tree once into Python closures over a
stored JSON tree (the row value as ``_codec.parse_tree`` returns it, tags in
place), returning the scalars SQLite would compute: 1/0/None for predicates,
``_codec.project`` values for references. It models comparisons, three-valued
logic, ``IN``, ``LIKE``/``GLOB`` and ASCII case mapping in Python, and leaves
the intricate conversions (REAL to TEXT, text to number, integer overflow and
division, date parsing, strings containing NUL) to SQLite itself through
``_sqlfunc.SqlFunctions``. :meth:`Evaluator.sort_key` orders exactly as
``ORDER BY <clauses> NULLS FIRST|LAST, key ASC`` does.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Sequence, cast

from ._codec import literal, project
from ._expr import ARITHMETIC, ARITY, Expr, Func, OrderBy, Ref, Val, like_to_glob
from ._sqlfunc import SqlFunctions
from .errors import InvalidExpressionError

__all__ = ["Evaluator", "compare", "clause_key", "like_regex"]


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

    def _junction(self, e: Func, decisive: bool) -> Fn:
        """SQL's three-valued AND (``decisive=False``) and OR (``decisive=True``).

        One operand with the decisive truth value settles it; otherwise any
        unknown (NULL) operand makes the result unknown.
        """
        fs = self._args(e)
        truth = self.fn.truth
        settled, otherwise = (1, 0) if decisive else (0, 1)

        def run(tree: Any) -> Any:
            unknown = False
            for f in fs:
                t = truth(f(tree))
                if t is decisive:
                    return settled
                if t is None:
                    unknown = True
            return None if unknown else otherwise

        return run

    def _f_and(self, e: Func) -> Fn:
        return self._junction(e, False)

    def _f_or(self, e: Func) -> Fn:
        return self._junction(e, True)

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
