"""A test-only stand-in for ``ctx.storage`` with Cloudflare's SQLite quirks.

Used until (and alongside) the real engine, so the DO driver and the adapter
are exercised under the behaviours that break naive code on real objects:

* numbers bind as doubles: ``int`` -> REAL (``TypeError`` beyond 2**53),
  ``bool`` -> TEXT ``'true'``/``'false'``; integral REAL results read back as int;
* workerd's limits: 100 bound parameters, 50-byte LIKE/GLOB patterns, 5
  compound SELECT terms, expression depth 100, 100 KB statements, 100 columns;
* ``BEGIN``/``COMMIT``/``SAVEPOINT``/``RELEASE``/``ROLLBACK`` refused in ``exec``;
  transactions only through ``transactionSync`` (savepoints, nestable);
* ``_cf_``-prefixed names refused; functions outside workerd's allow-list refused.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator

import apsw

try:  # the lead's transcription of workerd's allow-list, when present
    from persistence._cf import ALLOWED_FUNCTIONS as _ALLOWED_FUNCTIONS
except ImportError:  # pragma: no cover - depends on the checkout
    _ALLOWED_FUNCTIONS = None

_LIMITS = {
    apsw.SQLITE_LIMIT_VARIABLE_NUMBER: 100,
    apsw.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 50,
    apsw.SQLITE_LIMIT_COMPOUND_SELECT: 5,
    apsw.SQLITE_LIMIT_EXPR_DEPTH: 100,
    apsw.SQLITE_LIMIT_SQL_LENGTH: 100_000,
    apsw.SQLITE_LIMIT_COLUMN: 100,
}
_NAMED_ACTIONS = {
    apsw.SQLITE_CREATE_TABLE, apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_DROP_TABLE, apsw.SQLITE_DROP_INDEX,
    apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE, apsw.SQLITE_READ,
}


class FakeCursor:
    def __init__(self, names: list[str], rows: list[tuple[Any, ...]], rows_written: int) -> None:
        self.columnNames = names
        self._rows = rows
        self.rowsWritten = rows_written
        self.rowsRead = len(rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self._rows:
            yield dict(zip(self.columnNames, row))

    def toArray(self) -> list[dict[str, Any]]:
        return list(self)

    to_array = toArray

    def one(self) -> dict[str, Any]:
        if len(self._rows) != 1:
            raise RuntimeError(f"Expected exactly one result from SQL query, but got {len(self._rows)}.")
        return next(iter(self))

    def raw(self) -> Iterator[list[Any]]:
        return (list(r) for r in self._rows)


def _bind(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise TypeError(f"Cannot bind integer {value} (beyond 2**53) as a JavaScript number")
        return float(value)
    return value


def _read(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, int) and abs(value) > 2**53:
        return float(value)
    return value


class FakeSql:
    def __init__(self, storage: FakeStorage) -> None:
        self._storage = storage

    def exec(self, query: str, *bindings: Any) -> FakeCursor:
        conn = self._storage.connection
        before = conn.total_changes()
        cursor = conn.execute(query, tuple(_bind(b) for b in bindings))
        try:
            names = [c[0] for c in cursor.description]
        except apsw.ExecutionCompleteError:
            names = []
        rows = [tuple(_read(v) for v in row) for row in cursor] if names else []
        return FakeCursor(names, rows, conn.total_changes() - before)

    @property
    def databaseSize(self) -> int:
        conn = self._storage.connection
        return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(
            conn.execute("PRAGMA page_size").fetchone()[0])


class FakeStorage:
    """``ctx.storage`` over one apsw connection, with the quirks listed above."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.connection = apsw.Connection(str(path))
        # Durability is the engine's business; the fake only needs speed.
        self.connection.execute("PRAGMA journal_mode=WAL").fetchall()
        self.connection.execute("PRAGMA synchronous=OFF")
        for limit, value in _LIMITS.items():
            self.connection.limit(limit, value)
        self._internal = False
        self._savepoints = itertools.count(1)
        self.connection.authorizer = self._authorize
        self.sql = FakeSql(self)
        self.transaction_calls = 0

    def _authorize(self, action: int, one: str | None, two: str | None, db: str | None,
                   trigger: str | None) -> int:
        if action in (apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT) and not self._internal:
            return apsw.SQLITE_DENY
        if action in _NAMED_ACTIONS and one and one.lower().startswith("_cf_"):
            return apsw.SQLITE_DENY
        if action == apsw.SQLITE_FUNCTION and _ALLOWED_FUNCTIONS is not None and two not in _ALLOWED_FUNCTIONS:
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK

    def _control(self, sql: str) -> None:
        self._internal = True
        try:
            self.connection.execute(sql)
        finally:
            self._internal = False

    def transactionSync(self, fn: Callable[[], Any]) -> Any:
        self.transaction_calls += 1
        name = f"_fake_sp_{next(self._savepoints)}"
        self._control(f"SAVEPOINT {name}")
        try:
            result = fn()
        except BaseException:
            self._control(f"ROLLBACK TO {name}")
            self._control(f"RELEASE {name}")
            raise
        self._control(f"RELEASE {name}")
        return result

    transaction_sync = transactionSync

    def close(self) -> None:
        self.connection.close()
