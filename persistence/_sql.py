"""``storage.sql``: ``exec`` and its cursor, as workerd implements them.

Guarantees (each checked by a contract test):

* ``exec(query, *bindings)`` splits ``query`` where workerd's prepare loop
  would (``_split.py``); all statements but the last run immediately (stepped
  once, rows dropped) and may not take bindings; the returned cursor is the
  last statement's. A text that ends in an empty statement (``"SELECT 1;;"``,
  ``"SELECT 1; -- note"``) runs every real statement, then raises
  ``SQL code did not contain a statement.``
* The last statement is stepped once inside ``exec`` — its writes have
  happened when ``exec`` returns — and the cursor stays one row ahead of the
  reader, exactly like the apsw cursor underneath.
* Prepared statements are cached by SQL text (apsw's statement cache); column
  names are cached by SQL text too and dropped whenever a statement that
  changes the schema is prepared (the authorizer reports it) or a
  transaction rolls back.
* ``raw()`` and row iteration share one position; ``columnNames`` keeps
  duplicates, is ``[]`` for statements without result columns and stays
  readable after the cursor is consumed (newest workerd).
* ``rowsRead`` counts rows handed out and grows as the cursor is consumed;
  ``rowsWritten`` is the rows the statement changed (triggers included), all
  of which SQLite changes in the first step. workerd counts rows its patched
  SQLite *touched*; stock SQLite cannot report that (README, "Conformance
  with workerd"), so dohost reproduces what it can: a statement whose
  bytecode opens no cursor reads 0 rows, and CREATE statements count the
  ``sqlite_schema`` rows they touch (``_authorizer.ddl_row_counts``).
* Errors read ``<sqlite message>[ at offset N]: SQLITE_<CODE>``; a text longer
  than ``SQLITE_LIMIT_SQL_LENGTH`` fails as SQLite fails workerd's first
  prepare of the whole text: ``statement too long: SQLITE_TOOBIG``.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any, Callable, Iterator

import apsw

from . import _cf
from ._authorizer import ddl_row_counts
from ._codec import MAX_SAFE_INTEGER, bind_cloudflare
from ._names import cf_names
from ._webidl import to_dom_string
from ._split import MAX_SQL_BYTES, renames_into_reserved, runs_alike_in_a_transaction, split_statements
from ._split import _cache as _split_cache
from .errors import SqlError, StorageError, StorageTypeError

if TYPE_CHECKING:
    from ._engine import ObjectDatabase

__all__ = ["RawCursor", "Row", "RowArray", "SqlCursor", "SqlStorage", "close_connection", "close_cursors", "format_sqlite_error"]

_PLAIN = frozenset({str, float, bytes, type(None)})  # bind as they are in Cloudflare mode
_NAMES_CACHE_MAX = 1024
_TXN_WRITE = apsw.SQLITE_TXN_WRITE
_M = MAX_SAFE_INTEGER
# Float bounds for float values: comparing a float with an int takes CPython's slow path.
# A safe-integer float becomes an int by ``v.__trunc__()``: the same int as ``int(v)``
# (in range, integral), without int's constructor call (~500 instructions less).
_MF, _NMF = float(MAX_SAFE_INTEGER), -float(MAX_SAFE_INTEGER)


class Row(dict):  # type: ignore[type-arg]
    """A result row: a dict that also allows ``row.column`` access.

    Attribute access falls back to the columns, so a column named like a dict
    method (``keys``, ``items``, ``values``, ``get``...) is read as ``row["keys"]``.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class RowArray(list):  # type: ignore[type-arg]
    """What ``toArray()`` returns: a list that also answers ``to_py()``.

    Before mid-2026 Pyodide handed ``toArray()``'s JS array over as a JsProxy,
    and code of that era (django-cf's Durable Object database backend)
    calls ``cursor.raw().toArray().to_py()``.
    """

    __slots__ = ()

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> list[Any]:
        """Plain Python rows: dicts for ``toArray()``, lists for ``raw().toArray()``."""
        return [dict(r) if isinstance(r, dict) else list(r) if isinstance(r, list) else r for r in self]


def format_sqlite_error(exc: apsw.Error) -> SqlError:
    """Cloudflare's rendering of a SQLite error (workerd ``sqlite.c++`` dbErrorMessage)."""
    result = getattr(exc, "result", 1)
    found = apsw.mapping_result_codes.get(result & 0xFF) if isinstance(result, int) else None
    code = found if isinstance(found, str) else _cf.SQLITE_UNKNOWN_CODE_TEMPLATE.format(code=result)
    message = str(exc)
    offset = getattr(exc, "error_offset", -1)
    if offset is not None and offset >= 0:
        message = f"{message} at offset {offset}"
    extended = getattr(exc, "extendedresult", None)
    if isinstance(extended, int) and extended != result:
        name = apsw.mapping_extended_result_codes.get(extended)
        if isinstance(name, str):
            # CF: workerd 1.20261117.1 (observed): "UNIQUE constraint failed: u.id:
            # SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)"
            return SqlError(f"{message}: {code} (extended: {name})", code)
    return SqlError(f"{message}: {code}", code)  # CF: workerd src/workerd/util/sqlite.c++


def close_connection(conn: apsw.Connection) -> None:
    """Close an object's connection, even while a user's cursor is left unfinished.

    ``sql.exec`` makes its apsw cursors by calling ``apsw.Cursor(conn)``
    rather than ``conn.cursor()``, which also registers a weak reference for
    ``close()`` to find (~1,000 instructions a call, a twentieth of a point
    read). A cursor the user keeps unfinished then makes the close fail with
    ``BusyError``; its statements are found through the garbage collector
    (apsw cursors refer to their connection) and closed. Only that rare case
    pays for the scan.
    """
    try:
        conn.close()
        return
    except apsw.BusyError:
        pass
    close_cursors(conn)
    conn.close()


def close_cursors(conn: apsw.Connection) -> None:
    """Close the apsw cursors made on ``conn`` (see :func:`close_connection`): their statements end.

    A scan of the collector's objects: callers make it only when a statement is
    known to be running (``conn.txn_state()`` still reads after the read
    transaction ended, or a close was refused).
    """
    for ref in gc.get_referrers(conn):
        if isinstance(ref, apsw.Cursor):
            ref.close(True)


def _bind_all(bindings: tuple[Any, ...]) -> tuple[Any, ...]:
    """Cloudflare-mode bindings: ints become doubles, bools text, buffers bytes."""
    for v in bindings:
        t = type(v)
        if t is not str and t is not float and t is not bytes and v is not None:
            break
    else:
        return bindings  # nothing to convert (the common str/float case)
    out = []
    for i, v in enumerate(bindings):
        t = type(v)
        if t is int and -_M <= v <= _M:
            out.append(float(v))
        else:
            out.append(bind_cloudflare(v, i))
    return tuple(out)


def _cf_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Numbers as Python sees them after crossing Pyodide (see ``_codec``)."""
    for v in row:
        t = type(v)
        if t is float or (t is int and not -_M <= v <= _M):
            break
    else:
        return row
    out = []
    for v in row:
        t = type(v)
        if t is float:
            out.append(v.__trunc__() if _NMF <= v <= _MF and v.is_integer() else v)
        elif t is int and not -_M <= v <= _M:
            out.append(float(v))
        else:
            out.append(v)
    return tuple(out)


@cf_names("toArray", "columnNames", "rowsRead", "rowsWritten")
class SqlCursor:
    """The cursor ``sql.exec`` returns: iterate rows, or ``toArray``/``one``/``raw``/``next``."""

    # Made by SqlStorage.exec only. _cur is None once the statement is done; _sql,
    # _bindings and _epoch (the schema epoch at exec) serve the column-name cache and
    # rowsRead (three slots: cheaper than building a tuple per exec).
    __slots__ = ("_cur", "_db", "_sql", "_bindings", "_epoch", "_names", "_read", "_written")
    _cur: apsw.Cursor | _Buffered | None
    _db: ObjectDatabase
    _sql: str
    _bindings: tuple[Any, ...]
    _epoch: int
    _names: list[str] | None
    _read: int
    _written: int

    # -- consumption -------------------------------------------------------
    def _load_names(self, cur: apsw.Cursor | _Buffered) -> list[str] | None:
        """Names from the statement itself while a row is pending; ``None`` if it is done."""
        try:
            description = cur.description
        except apsw.ExecutionCompleteError:
            self._cur = None  # no rows at all (or no result columns)
            return None
        names = [d[0] for d in description]
        db = self._db
        sql, epoch = self._sql, self._epoch
        if db._epoch == epoch:
            cache = db._names
            if len(cache) >= _NAMES_CACHE_MAX:  # dynamic SQL must not grow it without bound
                cache.clear()
                db._readonly.clear()
                db._fast_reads.clear()
            cache[sql] = names
            if cur.is_readonly:
                db._readonly.add(sql)
                split = _split_cache.get(sql)
                if split is not None and split[0] == sql:
                    db._fast_reads[sql] = names
        self._names = names
        return names

    def _fetch(self) -> tuple[Any, ...] | None:
        cur = self._cur
        if cur is None:
            return None
        if self._names is None and self._load_names(cur) is None:
            return None
        try:
            row = cur.fetchone()
        except apsw.Error as exc:
            self._cur = None
            raise self._db._translate(exc) from None
        if row is None:
            self._cur = None
            self._db.rows_read += self._read  # counted once, when the cursor is used up
            return None
        self._read += 1
        return row

    def __iter__(self) -> Iterator[Row]:
        # A generator, not ``self``: a ``for`` loop then ends without a StopIteration
        # raised from Python code. It shares the position with next(cursor) and raw().
        return self._iter_rows()

    def _iter_rows(self) -> Iterator[Row]:
        # _fetch and _row inlined: this loop is the hot path of `for row in sql.exec(...)`.
        cur = self._cur
        if cur is None:
            return
        names = self._names
        if names is None:
            names = self._load_names(cur)
            if names is None:
                return
        conv = self._db._cf_rows
        single = len(names) == 1
        while True:
            cur = self._cur  # next(), raw() or one() may have moved or ended it meanwhile
            if cur is None:
                return
            try:
                row = cur.fetchone()
            except apsw.Error as exc:
                self._cur = None
                raise self._db._translate(exc) from None
            if row is None:
                self._cur = None
                self._db.rows_read += self._read
                return
            self._read += 1
            if conv:
                for v in row:
                    t = type(v)
                    if t is float or (t is int and not -_M <= v <= _M):
                        row = _cf_row(row)
                        break
            if single:
                r = Row()
                r[names[0]] = row[0]
                yield r
            else:
                yield Row(zip(names, row))

    def __next__(self) -> Row:
        row = self._fetch()
        if row is None:
            raise StopIteration
        return self._row(self._names, row)  # type: ignore[arg-type]

    def next(self) -> dict[str, Any]:
        """JS iterator protocol: ``{"done": False, "value": row}`` or ``{"done": True}``.

        A :class:`Row`, so ``result.value``/``result.done`` work as on the JS
        iterator result Pyodide hands over, as well as ``result["value"]``.
        """
        row = self._fetch()
        if row is None:
            return Row(done=True)
        return Row(done=False, value=self._row(self._names, row))  # type: ignore[arg-type]

    def toArray(self) -> RowArray:
        return RowArray(self._iter_rows())

    def one(self) -> Row:
        cur = self._cur
        names = self._names
        if cur is None or names is None:
            cur, names = self._one_start(cur)
        self._cur = None  # CF: one() ends the query either way.
        try:
            row = cur.fetchone()
            if row is None:
                raise StorageError(_cf.CURSOR_ONE_NO_RESULTS_MESSAGE)
            if cur.fetchone() is not None:
                self._read += 1
                self._db.rows_read += 1
                cur.close()
                raise StorageError(_cf.CURSOR_ONE_MULTIPLE_RESULTS_MESSAGE)
        except apsw.Error as exc:
            raise self._db._translate(exc) from None
        db = self._db
        db._spare = cur  # used up: the next known read reuses it (a spare must be done)
        self._read += 1
        db.rows_read += 1
        if len(row) == 1:
            # The common one-column case, with _cf_row's number conversion inlined.
            v = row[0]
            t = type(v)
            if t is float:
                if db._cf_rows and _NMF <= v <= _MF and v.is_integer():
                    v = v.__trunc__()  # int(v) costs three times as much
            elif t is int and db._cf_rows and not -_M <= v <= _M:
                v = float(v)
            r = Row()
            r[names[0]] = v
            return r
        if db._cf_rows:
            for v in row:
                t = type(v)
                if t is float or (t is int and not -_M <= v <= _M):
                    row = _cf_row(row)
                    break
        return Row(zip(names, row))

    def _one_start(self, cur: apsw.Cursor | _Buffered | None) -> tuple[apsw.Cursor | _Buffered, list[str]]:
        """``one()`` on a cursor that is done, or whose column names are not known yet."""
        if cur is not None:
            names = self._load_names(cur)
            if names is not None:
                return cur, names
        raise StorageError(_cf.CURSOR_ONE_NO_RESULTS_MESSAGE)  # CF: sql.c++ Cursor::one

    def _row(self, names: list[str], row: tuple[Any, ...]) -> Row:
        if self._db._cf_rows:
            row = _cf_row(row)
        if len(row) == 1:
            r = Row()
            r[names[0]] = row[0]
            return r
        return Row(zip(names, row))

    def raw(self) -> RawCursor:
        """Rows as lists (duplicate column names kept), sharing this cursor's position."""
        return RawCursor(self._raw_rows())

    def _raw_rows(self) -> Iterator[list[Any]]:
        while True:
            row = self._fetch()
            if row is None:
                return
            yield list(_cf_row(row) if self._db._cf_rows else row)

    # -- metadata ----------------------------------------------------------
    @property
    def columnNames(self) -> list[str]:
        names = self._names
        if names is None:
            cur = self._cur
            if cur is not None:
                names = self._load_names(cur)
            if names is None:
                # Finished before any row was read: ask SQLite for the shape again.
                names = self._names = self._db._column_names(self._sql, self._bindings, self._epoch)
        return list(names)

    @property
    def rowsRead(self) -> int:
        # Rows handed out; 0 for a statement that reads no table, as workerd counts
        # (it counts rows its SQLite visits, see README "Conformance with workerd").
        if self._read and self._db.opens_no_cursor(self._sql, self._bindings):
            return 0
        return self._read

    @property
    def rowsWritten(self) -> int:
        return self._written


@cf_names("toArray")
class RawCursor:
    """What ``cursor.raw()`` returns: an iterator of row lists with ``toArray()``/``next()``.

    workerd's ``raw()`` is a cursor of its own (``sql.c++ Cursor::raw``);
    Python code calls ``toArray()`` and ``next()`` on it as on the row cursor.
    ``next()`` answers ``result.value`` as well as ``result["value"]`` (a
    :class:`Row`), as the JS iterator result Pyodide hands over does.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterator[list[Any]]) -> None:
        self._rows = rows

    def __iter__(self) -> RawCursor:
        return self

    def __next__(self) -> list[Any]:
        return next(self._rows)

    def next(self) -> Row:
        """JS iterator protocol: ``{"done": False, "value": row}`` or ``{"done": True}``."""
        for row in self._rows:
            return Row(done=False, value=row)
        return Row(done=True, value=None)

    def toArray(self) -> RowArray:
        return RowArray(self._rows)

    to_array: Callable[[], RowArray]  # installed by cf_names


_Cursor = apsw.Cursor
_execute = apsw.Cursor.execute


class _Buffered:
    """Rows already read from a statement, served like an apsw cursor (``fetchone``)."""

    __slots__ = ("_rows", "_next")

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._next = 0

    @property
    def description(self) -> Any:
        raise apsw.ExecutionCompleteError("rows were buffered")

    is_readonly = False
    connection = None  # never the connection: exec does not reuse it as a spare cursor

    def fetchone(self) -> tuple[Any, ...] | None:
        i = self._next
        if i >= len(self._rows):
            return None
        self._next = i + 1
        return self._rows[i]

    def close(self) -> None:
        self._rows = []


def _buffer(cur: apsw.Cursor, names: list[str] | None) -> tuple[Any, list[str] | None]:
    """Read a RETURNING statement to the end now.

    SQLite has already made every change and holds the returned rows in memory; a
    write statement left in progress would make the implicit COMMIT fail
    ("cannot commit transaction - SQL statements in progress").
    """
    try:
        names = [d[0] for d in cur.description]
    except apsw.ExecutionCompleteError:
        return _Buffered([]), names  # no rows: names come from the cache or a re-prepare
    return _Buffered(cur.fetchall()), names


def _check_rename(stmt: str) -> None:
    if renames_into_reserved(stmt):
        # The authorizer only sees the old name; see _split.renames_into_reserved.
        raise SqlError(f"{_cf.NOT_AUTHORIZED_MESSAGE}: SQLITE_AUTH", "SQLITE_AUTH")


@cf_names("databaseSize")
class SqlStorage:
    """``ctx.storage.sql``."""

    __slots__ = ("_db",)

    def __init__(self, db: ObjectDatabase) -> None:
        self._db = db

    def exec(self, query: str, *bindings: Any) -> SqlCursor:
        db = self._db
        try:
            names = db._fast_reads.get(query)
        except TypeError:
            names = None
        if names is None:
            # Not a known single-statement read: split, and learn whether it writes.
            returning = False
            try:
                simple = _split_cache[query][0]
            except (KeyError, TypeError):
                simple = None
            if db._reading and (simple is None or not runs_alike_in_a_transaction(simple)):
                db.end_read()  # before SQLite prepares it: PRAGMA foreign_keys decides then
            if simple is None or db._sql_blocked:
                last, returning = self._prepare_text(query)
            else:
                last = simple
            names = db._names.get(last)
            if names is None or last not in db._readonly:
                # A statement that may write: change counting, the implicit transaction.
                if bindings and db._cf_rows:
                    for v in bindings:
                        if type(v) not in _PLAIN:
                            bindings = _bind_all(bindings)
                            break
                conn = db._conn
                base = conn.total_changes()
                conn = db._conn  # a parked connection reopened at that call: use the real one
                cur = _Cursor(conn)
                traced = not db._txn_open
                if traced:
                    cur.exec_trace = db._autocommit_trace  # BEGIN just before it, if it writes
                try:
                    _execute(cur, last, bindings)
                except apsw.BindingsError:
                    raise SqlError(_cf.WRONG_BINDINGS_MESSAGE) from None  # CF: sqlite.c++
                except apsw.Error as exc:
                    if not db._wrote:
                        db._check_wrote()  # e.g. INSERT OR FAIL keeps the rows before the failure
                    raise db._translate(db._with_offset(exc, last, bindings)) from None
                except TypeError as exc:  # native mode: apsw rejects the Python type
                    raise StorageTypeError(f"sql.exec: {exc}") from None
                if traced:
                    cur.exec_trace = None  # it ran at the step: one() may hand the cursor on
                if not db._wrote and conn.txn_state() == _TXN_WRITE:
                    db._mark_wrote()
                if returning:
                    try:
                        cur, names = _buffer(cur, names)
                    except apsw.Error as exc:
                        raise db._translate(exc) from None
                c = SqlCursor()  # no __init__: the fields are set here
                c._cur = cur
                c._db = db
                c._sql = last
                c._bindings = bindings
                c._epoch = db._epoch
                c._names = names
                c._read = 0
                c._written = conn.total_changes() - base
                log = db._auth.ddl_log
                if log:  # a CREATE was prepared: count its rows as workerd does
                    counts = ddl_row_counts(log, last)
                    log.clear()
                    if counts is not None:
                        c._read, c._written = counts
                return c
            # A known read (SQLite said so the first time) in a text that is not its own
            # statement (several statements, a trailing ';'): the read path below.
            query = last
        # A read SQLite already reported read-only, its column names known: no change
        # counting, no write check, and no autocommit tracer on its cursor (a read never
        # begins the implicit transaction). A single-statement text comes straight here.
        if not db._reading and not db._txn_open:
            db.begin_read()  # one read transaction for this read and the ones after it
        if bindings and db._cf_rows:
            for v in bindings:
                if type(v) not in _PLAIN:
                    bindings = _bind_all(bindings)
                    break
        # The apsw cursor a finished one() gave back, if it is this connection's (a
        # park replaces the connection); else the cursor type called directly, cheaper
        # than conn.cursor(). begin_read (or the statements before) reopened a parked
        # connection: db._conn is the real one.
        conn = db._conn
        cur = db._spare
        if cur is None:
            cur = _Cursor(conn)
        else:
            db._spare = None
            try:
                if cur.connection is not conn:
                    cur = _Cursor(conn)
            except apsw.Error:  # its connection was closed (a park): it raises
                cur = _Cursor(conn)
        try:
            _execute(cur, query, bindings)
        except apsw.BindingsError:
            raise SqlError(_cf.WRONG_BINDINGS_MESSAGE) from None  # CF: sqlite.c++
        except apsw.Error as exc:
            raise db._translate(exc) from None
        except TypeError as exc:
            raise StorageTypeError(f"sql.exec: {exc}") from None
        c = SqlCursor()  # no __init__: the fields are set here
        c._cur = cur
        c._db = db
        c._sql = query
        c._bindings = bindings
        # No _epoch: it serves only a cursor whose names are not known yet (these are).
        c._names = names
        c._read = 0
        c._written = 0
        return c

    def _prepare_text(self, query: Any) -> tuple[str, bool]:
        """Checks, the statements before the last one, and the last one's text."""
        db = self._db
        if type(query) is not str:
            if not isinstance(query, (str, int, float)) and query is not None:
                raise StorageTypeError(f"sql.exec: query must be a str, got {type(query).__name__}")
            # CF: workerd 1.20261117.1 (observed): exec(123) runs "123", exec(None) "undefined".
            query = to_dom_string(query, "sql.exec: query")
        if db._sql_blocked:
            db._require_sql()
        simple, stmts, trailing_empty, nbytes, returning = split_statements(query)
        if simple is not None:
            return simple, False
        if nbytes > MAX_SQL_BYTES:
            # CF: workerd prepares the whole text first; SQLite refuses it (prepare.c).
            raise SqlError("statement too long: SQLITE_TOOBIG", "SQLITE_TOOBIG")
        for stmt in stmts if trailing_empty else stmts[:-1]:
            _check_rename(stmt)
            db._run_leading(stmt)
        if trailing_empty:
            raise SqlError(_cf.EMPTY_STATEMENT_MESSAGE)  # CF: sqlite.c++ prepareSql
        _check_rename(stmts[-1])
        return stmts[-1], returning

    @property
    def databaseSize(self) -> int:
        db = self._db
        if db._sql_blocked:
            db._require_sql()
        return db.database_size()

