"""SQLite's scalar functions, callable from Python, for the in-memory evaluator.

The expression language has SQLite's semantics (see ``_expr``). Comparisons,
logic, ``IN`` and ``LIKE`` are modelled in Python; functions whose exact
SQLite behaviour is intricate — REAL-to-TEXT rendering, text-to-number
conversion, integer overflow and division, ``date``/``datetime``/``strftime``
parsing — are *computed by SQLite itself* on a private in-memory connection,
so the in-memory re-check can never disagree with pushed-down SQL about them.

Each adapter owns one :class:`SqlFunctions` (no module-level connection: two
hosts may live in one process). Results are memoised (bounded), and none of
these functions depend on the database, only on their arguments; ``'now'`` is
replaced by the adapter's clock before evaluation (see ``_expr.normalize``),
so SQL and memory see the same instant.
"""

from __future__ import annotations

from typing import Any

import apsw

__all__ = ["SqlFunctions"]

_CACHE_LIMIT = 8192


class SqlFunctions:
    """Evaluate ``SELECT <expr>`` with bound scalars on a private connection."""

    def __init__(self) -> None:
        self._connection = apsw.Connection(":memory:")
        self._cache: dict[tuple[Any, ...], Any] = {}

    def call(self, expression: str, *args: Any) -> Any:
        # The type is part of the key: 1, 1.0 and True hash alike but render
        # differently (upper(1) = '1', upper(1.0) = '1.0').
        key = (expression, *[(type(a), a) for a in args])
        try:
            return self._cache[key]
        except KeyError:
            pass
        row = self._connection.execute("SELECT " + expression, args).fetchone()
        result = None if row is None else row[0]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result

    def text(self, value: Any) -> Any:
        """SQLite's text form of a scalar (what ``||``, ``upper``, ``LIKE`` see)."""
        if value is None or type(value) is str:
            return value
        if type(value) is int or type(value) is bool:
            return str(int(value))
        return self.call("CAST(? AS TEXT)", value)

    def truth(self, value: Any) -> bool | None:
        """SQLite's truth value of a scalar in a WHERE / AND / OR / NOT position."""
        if value is None:
            return None
        if type(value) is str:
            return bool(self.call("CASE WHEN ? THEN 1 ELSE 0 END", value))
        return bool(value != 0)

    def close(self) -> None:
        self._connection.close()
