"""``ApswDriver``: the :class:`SQLiteDriver` contract over a plain apsw connection.

For collections outside a Durable Object (tools, tests, a plain program) and as
the second implementation the conformance suites run against, so nothing in the
adapter can lean on a quirk of the DO storage.

Guarantees (beyond :mod:`._driver`'s):

* Parameters bind natively (``int`` as INTEGER, ``bool`` as 0/1), unlike the DO
  storage, which binds numbers as doubles; the adapter is written to give the
  same results under both bindings.
* A top-level transaction is ``BEGIN IMMEDIATE`` … ``COMMIT``: the write lock is
  taken up front, so two connections to one file never deadlock upgrading a
  read lock (they wait on the busy timeout instead). If the connection is
  already inside a transaction someone else began, the transaction becomes a
  savepoint of it. Nested transactions are savepoints.
* :meth:`ApswDriver.open` makes a connection with a busy timeout and WAL
  (fsync per commit unless ``durability="normal"``); a connection passed in
  is used as it is (the caller owns its settings).
* ``limits=`` optionally applies SQLite limits (e.g. Cloudflare's 100 bound
  parameters) to the connection, to rehearse DO behaviour locally.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Literal, Mapping, Sequence, TypeVar

import apsw

from ._driver import GatedDriver
from .errors import ConfigError

__all__ = ["ApswDriver"]

T = TypeVar("T")

_LIMIT_IDS = {
    "variable_number": apsw.SQLITE_LIMIT_VARIABLE_NUMBER,
    "like_pattern_length": apsw.SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
    "expr_depth": apsw.SQLITE_LIMIT_EXPR_DEPTH,
    "compound_select": apsw.SQLITE_LIMIT_COMPOUND_SELECT,
    "sql_length": apsw.SQLITE_LIMIT_SQL_LENGTH,
    "column": apsw.SQLITE_LIMIT_COLUMN,
}


class ApswDriver(GatedDriver):
    """A :class:`SQLiteDriver` over one ``apsw.Connection``."""

    def __init__(self, connection: apsw.Connection, *, limits: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.connection = connection
        self._savepoints = itertools.count(1)
        for name, value in (limits or {}).items():
            connection.limit(_LIMIT_IDS[name], value)

    @classmethod
    def open(
        cls,
        path: str,
        *,
        busy_timeout_ms: int = 5_000,
        durability: Literal["full", "normal"] = "full",
        limits: Mapping[str, int] | None = None,
    ) -> ApswDriver:
        """Open ``path`` with a busy timeout and WAL journaling.

        ``durability="full"`` fsyncs every commit; ``"normal"`` (the engine's
        default too) survives a process crash but not a power cut.
        """
        if durability not in ("full", "normal"):
            raise ConfigError(f"durability must be 'full' or 'normal', got {durability!r}")
        connection = apsw.Connection(str(path))
        connection.set_busy_timeout(busy_timeout_ms)
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
        connection.execute(f"PRAGMA synchronous={durability.upper()}")
        return cls(connection, limits=limits)

    def close(self) -> None:
        self.connection.close()

    # -- primitives -------------------------------------------------------------
    def _raw_exec(self, sql: str) -> None:
        self.connection.execute(sql).fetchall()

    def _raw_query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self.connection.execute(sql, tuple(params))
        try:
            names = [column[0] for column in cursor.description]
        except apsw.ExecutionCompleteError:  # finished without producing a row
            return []
        return [dict(zip(names, row)) for row in cursor]

    def _raw_run(self, sql: str, params: Sequence[Any]) -> None:
        self.connection.execute(sql, tuple(params)).fetchall()

    def _raw_transaction(self, thunk: Callable[[], T]) -> T:
        if self.connection.in_transaction:
            # Someone began a transaction on this connection outside the driver:
            # nest inside it rather than fail on a second BEGIN.
            return self._raw_savepoint(thunk)
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            result = thunk()
        except BaseException:
            self._rollback_quietly("ROLLBACK")
            raise
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            self._rollback_quietly("ROLLBACK")
            raise
        return result

    def _raw_savepoint(self, thunk: Callable[[], T]) -> T:
        name = f"dohost_collections_sp_{next(self._savepoints)}"
        self.connection.execute(f"SAVEPOINT {name}")
        try:
            result = thunk()
        except BaseException:
            self._rollback_quietly(f"ROLLBACK TO {name}")
            self._rollback_quietly(f"RELEASE {name}")
            raise
        self.connection.execute(f"RELEASE {name}")
        return result

    def _rollback_quietly(self, sql: str) -> None:
        # The callback's exception is the one the caller needs; a failing
        # rollback (e.g. SQLite already rolled back on a fatal error) must not
        # replace it.
        try:
            self.connection.execute(sql)
        except apsw.Error:
            pass
