"""``storage.sql``: ``exec`` and its cursor, as workerd implements them.

Guarantees (each checked by a contract test):

* ``exec(query, *bindings)`` splits ``query`` into statements; all but the last
  run to completion immediately and may not take bindings; the returned cursor
  is the last statement's. That statement is stepped once inside ``exec`` — its
  writes have happened when ``exec`` returns — and the cursor stays one row
  ahead of the reader, exactly like the apsw cursor underneath.
* Prepared statements are cached by SQL text (apsw's statement cache).
* ``raw()`` and row iteration share one position; ``rowsRead`` counts rows
  handed out, ``rowsWritten`` the rows the statement changed (triggers
  included), both growing as the cursor is consumed. workerd counts rows its
  patched SQLite *touched*; stock SQLite cannot report that, so ``rowsRead``
  here is rows returned — documented in the README.
* Errors read ``<sqlite message>[ at offset N]: SQLITE_<CODE>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import apsw

from . import _cf
from ._names import cf_names
from ._split import split_statements
from .errors import SqlError, StorageError, StorageTypeError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

__all__ = ["Row", "SqlCursor", "SqlStorage", "format_sqlite_error"]


class Row(dict):  # type: ignore[type-arg]
    """A result row: a dict that also allows ``row.column`` access."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def format_sqlite_error(exc: apsw.Error) -> SqlError:
    """Cloudflare's rendering of a SQLite error (workerd ``sqlite.c++``)."""
    code = apsw.mapping_result_codes.get(getattr(exc, "result", 1) & 0xFF, "SQLITE_ERROR")
    message = str(exc)
    offset = getattr(exc, "error_offset", -1)
    if offset is not None and offset >= 0:
        message = f"{message} at offset {offset}"
    return SqlError(f"{message}: {code}", code)  # CF: workerd src/workerd/util/sqlite.c++


@cf_names("toArray", "columnNames", "rowsRead", "rowsWritten")
class SqlCursor:
    """The cursor ``sql.exec`` returns: iterate rows, or ``toArray``/``one``/``raw``/``next``."""

    __slots__ = ("_cur", "_db", "_sql", "_args", "_conv", "_names", "_read", "_written", "_base", "_done")

    def __init__(
        self,
        cur: apsw.Cursor | None,
        db: ObjectDatabase,
        sql: str,
        args: tuple[Any, ...],
        conv: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None,
        base_changes: int,
    ) -> None:
        self._cur = cur
        self._db = db
        self._sql = sql
        self._args = args
        self._conv = conv
        self._names: list[str] | None = None
        self._read = 0
        self._base = base_changes
        self._written = db._conn.total_changes() - base_changes
        self._done = cur is None

    # -- consumption -------------------------------------------------------
    def _next_tuple(self) -> tuple[Any, ...] | None:
        if self._done:
            return None
        cur = self._cur
        assert cur is not None
        if self._names is None:
            try:
                self._names = [d[0] for d in cur.description]
            except apsw.ExecutionCompleteError:
                self._finish()
                return None
        try:
            row = next(cur)
        except StopIteration:
            self._finish()
            return None
        except apsw.Error as exc:
            self._finish()
            raise self._db._translate(exc) from None
        self._read += 1
        conv = self._conv
        return conv(row) if conv is not None else row

    def _finish(self) -> None:
        self._done = True
        self._written = self._db._conn.total_changes() - self._base

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        row = self._next_tuple()
        if row is None:
            raise StopIteration
        return Row(zip(self._names, row))  # type: ignore[arg-type]

    def next(self) -> dict[str, Any]:
        """JS iterator protocol: ``{"done": False, "value": row}`` or ``{"done": True}``."""
        row = self._next_tuple()
        if row is None:
            return {"done": True}
        return {"done": False, "value": Row(zip(self._names, row))}  # type: ignore[arg-type]

    def toArray(self) -> list[Row]:
        return list(self)

    def one(self) -> Row:
        first = self._next_tuple()
        if first is None:
            raise StorageError(_cf.CURSOR_ONE_NO_RESULTS_MESSAGE)
        names = self._names
        if self._next_tuple() is not None:
            raise StorageError(_cf.CURSOR_ONE_MULTIPLE_RESULTS_MESSAGE)
        return Row(zip(names, first))  # type: ignore[arg-type]

    def raw(self) -> Iterator[list[Any]]:
        """Rows as lists (duplicate column names kept), sharing this cursor's position."""
        while True:
            row = self._next_tuple()
            if row is None:
                return
            yield list(row)

    # -- metadata ----------------------------------------------------------
    @property
    def columnNames(self) -> list[str]:
        if self._names is None:
            if self._cur is not None and not self._done:
                try:
                    self._names = [d[0] for d in self._cur.description]
                except apsw.ExecutionCompleteError:
                    self._names = self._db._column_names(self._sql, self._args)
            else:
                self._names = self._db._column_names(self._sql, self._args) if self._cur is not None else []
        return list(self._names)

    @property
    def rowsRead(self) -> int:
        return self._read

    @property
    def rowsWritten(self) -> int:
        if not self._done:
            self._written = self._db._conn.total_changes() - self._base
        return self._written


@cf_names("databaseSize")
class SqlStorage:
    """``ctx.storage.sql``."""

    __slots__ = ("_db",)

    def __init__(self, db: ObjectDatabase) -> None:
        self._db = db

    def exec(self, query: str, *bindings: Any) -> SqlCursor:
        db = self._db
        if type(query) is not str:
            raise StorageTypeError(f"sql.exec: query must be a str, got {type(query).__name__}")
        if db._sql_blocked:
            db._require_sql()
        stmts = split_statements(query)
        if not stmts:
            raise SqlError(_cf.EMPTY_STATEMENT_MESSAGE)
        bind = db._bind
        if bind is not None and bindings:
            bindings = tuple([bind(b, i) for i, b in enumerate(bindings)])
        if not db._txn_open:
            db._begin()
        conn = db._conn
        base = conn.total_changes()
        cur = conn.cursor()
        if len(stmts) > 1:
            for i, stmt in enumerate(stmts[:-1]):
                db._run_leading(cur, stmt, i)
            base = conn.total_changes()
        last = stmts[-1]
        try:
            cur.execute(last, bindings)
        except apsw.BindingsError:
            raise SqlError(_cf.WRONG_BINDINGS_MESSAGE) from None
        except apsw.Error as exc:
            raise db._translate(exc) from None
        except TypeError as exc:  # native mode: apsw rejects the Python type
            raise StorageTypeError(f"sql.exec: {exc}") from None
        if not db._wrote:
            db._check_wrote()
        return SqlCursor(cur, db, last, bindings, db._conv, base)

    @property
    def databaseSize(self) -> int:
        return self._db.database_size()
