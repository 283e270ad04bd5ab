"""D1: ``env.<NAME>`` for a ``d1_databases`` entry.

Each database is one SQLite file (``bindings/d1/<digest>.sqlite``) opened
through persistence's :class:`~persistence.ObjectDatabase` -- the same
connection set-up, authorizer and limits as a Durable Object's SQL storage,
which are also D1's (100 bound parameters, 100 KB statements, ~2 MB rows,
``_cf_`` names reserved, no ``BEGIN``) -- with the durability of the
runtime's object files.

* Each statement call (``first``/``all``/``run``/``raw``) is its own
  transaction, committed before the call returns; a failing statement
  changes nothing.
* ``batch([...])`` runs its statements in one transaction: all or nothing.
* ``exec(sql)`` runs one statement per line, as D1 does, each committed.
* Results have D1's shapes: ``{results, success, meta}`` with ``meta``'s
  ``changes``, ``last_row_id``, ``rows_read``, ``rows_written``,
  ``duration``, ``changed_db``, ``size_after``; rows are dicts that also
  answer attribute access. Values are typed as a Python Worker sees them
  (JS numbers: whole numbers come back as ``int``).
* Errors carry D1's prefixes: ``D1_ERROR: no such table: t: SQLITE_ERROR``,
  ``D1_TYPE_ERROR: ...``, ``D1_EXEC_ERROR: Error in line N: ...``,
  ``D1_COLUMN_NOTFOUND: Column not found (x)``.

Not provided: ``dump()`` (deprecated by Cloudflare), read replication
(``withSession`` runs everything on the one local copy).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Sequence

from persistence import Durability, ObjectDatabase, PersistenceError, cf_names

from ._common import JsBinding, JsObject, checkpoint, options
from ._store import StoreHost
from .errors import D1Error

__all__ = ["D1Database", "D1PreparedStatement", "D1DatabaseSession"]


def _open(path: Path, durability: Durability) -> ObjectDatabase:
    # No lock file: a database is not an actor; SQLite arbitrates its writers.
    return ObjectDatabase(path, durability=durability, binding="cloudflare", lock=False)


def _bind_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, float, bytes)):
        return value
    if isinstance(value, bool):
        return 1 if value else 0  # D1 stores JS booleans as 1 and 0
    if isinstance(value, int):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    kind = "object"
    # CF: workerd src/cloudflare/internal/d1-api.ts (D1_TYPE_ERROR)
    raise D1Error(f"D1_TYPE_ERROR: Type '{kind}' not supported for value '{value!r}'")


@cf_names("getBookmark")
class D1DatabaseSession:
    """What ``withSession()`` returns: the same database (dohost has one local copy)."""

    def __init__(self, db: D1Database, bookmark: str | None) -> None:
        self._db = db
        self._bookmark = bookmark
        self._seen = db._statements_run

    def prepare(self, query: str) -> D1PreparedStatement:
        return self._db.prepare(query)

    async def batch(self, statements: Sequence[D1PreparedStatement]) -> list[JsObject]:
        return await self._db.batch(statements)

    def get_bookmark(self) -> str | None:
        """The bookmark given to ``withSession``, or of the latest query since; ``None`` before any.

        dohost keeps one copy of the database, so every bookmark names the
        latest state; it has D1's shape (four hex groups).
        """
        if self._db._statements_run != self._seen:
            digest = hashlib.sha256(self._db._key.encode()).hexdigest()[:32]
            return f"{self._db._statements_run:08x}-00000000-00000000-{digest}"
        return self._bookmark


@cf_names("withSession")
class D1Database(JsBinding):
    """``env.<NAME>`` for a D1 database; see the module docstring."""

    js_name = "D1Database"

    def __init__(self, binding: str, database_key: str, host: StoreHost) -> None:
        self._binding = binding
        self._key = database_key
        self._host = host
        #: Statements run through this binding (sessions' bookmarks count them).
        self._statements_run = 0

    def __repr__(self) -> str:
        return f"<D1Database {self._binding} database={self._key!r}>"

    def _db(self) -> ObjectDatabase:
        return self._host.database("d1", self._key, _open)  # type: ignore[no-any-return]

    def prepare(self, query: str) -> D1PreparedStatement:
        if not isinstance(query, str):
            raise TypeError(f"D1 prepare: expected a SQL string, got {type(query).__name__}")
        return D1PreparedStatement(self, query, ())

    def with_session(self, constraint_or_bookmark: str | None = None) -> D1DatabaseSession:
        # CF: "first-primary"/"first-unconstrained" are constraints, not bookmarks
        constraint = constraint_or_bookmark in (None, "first-primary", "first-unconstrained")
        return D1DatabaseSession(self, None if constraint else constraint_or_bookmark)

    async def batch(self, statements: Sequence[D1PreparedStatement]) -> list[JsObject]:
        await checkpoint()
        statements = list(statements)
        for i, st in enumerate(statements):
            if not isinstance(st, D1PreparedStatement):
                raise TypeError(f"D1 batch: statements[{i}]: expected a prepared statement, got {type(st).__name__}")
        db = self._db()
        try:
            results = [self._run(db, st.query, st.params)[0] for st in statements]
            db.commit()
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
        return results

    async def exec(self, query: str) -> JsObject:
        await checkpoint()
        started = time.perf_counter()
        db = self._db()
        count = 0
        for n, line in enumerate(query.strip().split("\n"), start=1):
            if not line.strip():
                continue
            self._statements_run += 1
            try:
                db.sql.exec(line).toArray()
                db.commit()
            except PersistenceError as exc:
                if db.in_transaction:
                    db.rollback()
                # CF: workerd src/cloudflare/internal/d1-api.ts (exec)
                raise D1Error(f"D1_EXEC_ERROR: Error in line {n}: {line}: {exc}") from None
            count += 1
        return JsObject(count=count, duration=(time.perf_counter() - started) * 1000.0)

    async def dump(self) -> bytes:
        raise D1Error("D1_DUMP_ERROR: dump() is deprecated by Cloudflare and not provided by dohost")

    # ------------------------------------------------------------- internals
    def _statement(self, query: str, params: tuple[Any, ...]) -> tuple[JsObject, list[str], list[list[Any]]]:
        """Run one statement in its own transaction."""
        db = self._db()
        try:
            out = self._run(db, query, params)
            db.commit()
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
        return out

    def _run(self, db: ObjectDatabase, query: str, params: tuple[Any, ...]) -> tuple[JsObject, list[str], list[list[Any]]]:
        started = time.perf_counter()
        self._statements_run += 1
        try:
            cursor = db.sql.exec(query, *params)
            raw = list(cursor.raw())
            names = cursor.columnNames
            read, written = cursor.rowsRead, cursor.rowsWritten
            if written:
                stats = db.sql.exec("SELECT changes() AS c, last_insert_rowid() AS r").one()
                changes, last_row_id = int(stats["c"]), int(stats["r"])
            else:
                changes, last_row_id = 0, 0
            # A read leaves the size as it was: ask SQLite only after writes (and DDL).
            sizes = self._host.sizes
            size = sizes.get(("d1", self._key)) if not written and not _is_ddl(query) else None
            if size is None:
                size = sizes[("d1", self._key)] = db.database_size()
        except PersistenceError as exc:
            raise D1Error(f"D1_ERROR: {exc}") from None  # CF: workerd src/cloudflare/internal/d1-api.ts
        rows = [JsObject(zip(names, r)) for r in raw]
        meta = JsObject(
            served_by="dohost",
            duration=(time.perf_counter() - started) * 1000.0,
            changes=changes,
            last_row_id=last_row_id,
            changed_db=written > 0,
            size_after=size,
            rows_read=read,
            rows_written=written,
        )
        return JsObject(results=rows, success=True, meta=meta), names, raw


def _is_ddl(query: str) -> bool:
    head = query.lstrip()[:8].upper()
    return head.startswith(("CREATE", "DROP", "ALTER", "VACUUM"))


class D1PreparedStatement(JsBinding):
    """``db.prepare(sql)``, and ``.bind(...)`` of it (a new statement; this one is unchanged)."""

    js_name = "D1PreparedStatement"

    __slots__ = ("_db", "query", "params")

    def __init__(self, db: D1Database, query: str, params: tuple[Any, ...]) -> None:
        self._db = db
        self.query = query
        self.params = params

    def __repr__(self) -> str:
        return f"<D1PreparedStatement {self.query!r} params={self.params!r}>"

    def bind(self, *values: Any) -> D1PreparedStatement:
        return D1PreparedStatement(self._db, self.query, tuple(_bind_value(v) for v in values))

    async def first(self, column: str | None = None) -> Any:
        await checkpoint()
        result, _names, _raw = self._db._statement(self.query, self.params)
        rows = result["results"]
        if not rows:
            return None
        row = rows[0]
        if column is None:
            return row
        if column not in row:
            # CF: workerd src/cloudflare/internal/d1-api.ts (first)
            raise D1Error(f"D1_COLUMN_NOTFOUND: Column not found ({column})")
        return row[column]

    async def all(self) -> JsObject:
        await checkpoint()
        return self._db._statement(self.query, self.params)[0]

    async def run(self) -> JsObject:
        await checkpoint()
        return self._db._statement(self.query, self.params)[0]

    async def raw(self, options_: Any = None, **kwargs: Any) -> list[list[Any]]:
        await checkpoint()
        opts = options(options_, kwargs, where="D1 raw")
        _result, names, raw = self._db._statement(self.query, self.params)
        if opts.get("columnNames") or opts.get("column_names"):
            return [list(names), *raw]
        return raw
