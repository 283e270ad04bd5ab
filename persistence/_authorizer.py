"""The SQLite authorizer: what user SQL may do, by workerd's rules.

SQLite consults the authorizer while *preparing* a statement, so a cached
statement is never re-checked. Internal statements (KV, metadata, savepoints)
are prepared with ``SQLITE_PREPARE_PERSISTENT`` and apsw keys its statement
cache on the flags as well as the text, so user SQL can never reuse a
statement that was authorized as internal.

Rules (``_cf.py`` has the lists and their sources):

* BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE → Cloudflare's message pointing to
  ``transaction()``/``transactionSync()`` (stashed here, raised by the caller
  instead of SQLite's ``not authorized``).
* ATTACH/DETACH, any ``CREATE TEMP``, other databases than ``main`` → denied
  (``temp`` may only be read, as workerd allows).
* Virtual tables: only ``fts5``, ``fts5vocab``, ``rtree`` and ``rtree_i32``
  (what workerd 1.20261117.1 accepts).
* Names starting ``_cf_`` (any case) and dohost's own ``_dohost_`` prefix are
  denied to user SQL; reading ``_cf_KV`` gives SQLite's
  ``access to _cf_KV.key is prohibited``.
* PRAGMAs and SQL functions from workerd's allow-lists only. PRAGMA names are
  matched case-insensitively (workerd 1.20261117.1 runs ``PRAGMA FOREIGN_KEYS``).
* Functions and eponymous tables workerd's SQLite build lacks (geopoly,
  FTS3 helpers, percentile, ``dbstat``) are denied with workerd's "no such
  function"/"no such table" message (stashed for ``_engine`` to raise).
* ANALYZE is allowed for every table: ``PRAGMA optimize`` analyzes ``_cf_KV``
  too (workerd allows it for the same reason).

The authorizer also tells the engine when a statement that changes the schema
is being prepared (``on_ddl``), so cached column names can be dropped.

``Authorizer.by_rules`` applies the rules above in order; ``Authorizer.__call__``
(what SQLite calls, once per table, column and function of every statement it
prepares — again after each reopen of a parked object) answers the common
actions first with the same answers: ``SELECT``, row actions on ``main`` names
no rule singles out, functions, and dohost's own SQL that changes no schema.
The answer depends on the call's arguments only (no schema is read, no state
kept), so no verdict is ever reused across prepares: each prepare asks again.
"""

from __future__ import annotations

from typing import Callable

import apsw

from . import _cf

__all__ = ["Authorizer", "ddl_row_counts", "is_reserved_name", "INTERNAL_PREFIX"]

#: dohost's own reserved prefix (distinct from Cloudflare's ``_cf_``).
INTERNAL_PREFIX = "_dohost_"

_OK = apsw.SQLITE_OK
_DENY = apsw.SQLITE_DENY

_ALWAYS_DENIED = frozenset(
    getattr(apsw, f"SQLITE_{name}") for name in _cf.AUTHORIZER_DENIED_ACTIONS if hasattr(apsw, f"SQLITE_{name}")
)
_TXN_OPS = frozenset({apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT})
_TEMP_OK = frozenset({apsw.SQLITE_READ, apsw.SQLITE_UPDATE})
_NO_NAME_OPS = frozenset({apsw.SQLITE_SELECT, apsw.SQLITE_RECURSIVE})
_ANALYZE = apsw.SQLITE_ANALYZE
_ALTER_TABLE = apsw.SQLITE_ALTER_TABLE
_DDL_OPS = frozenset(
    getattr(apsw, f"SQLITE_{name}")
    for name in (
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TRIGGER", "CREATE_VIEW", "CREATE_VTABLE",
        "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER", "CREATE_TEMP_VIEW",
        "DROP_INDEX", "DROP_TABLE", "DROP_TRIGGER", "DROP_VIEW", "DROP_VTABLE",
        "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW",
        "ALTER_TABLE",
    )
)


_UPDATE = apsw.SQLITE_UPDATE
_SELECT = apsw.SQLITE_SELECT
_FUNCTION = apsw.SQLITE_FUNCTION
#: Row and column actions the fast path of ``Authorizer.__call__`` decides.
_ROW_OPS = frozenset({apsw.SQLITE_READ, apsw.SQLITE_INSERT, _UPDATE, apsw.SQLITE_DELETE})
#: Tables whose row actions a rule singles out: ``dbstat`` (workerd lacks it) and
#: ``sqlite_master`` (an UPDATE of it is a schema write, logged for DDL row counts).
_SINGLED_OUT_TABLES = _cf.MISSING_TABLES | {"sqlite_master"}
_DDL_LOG_OPS = frozenset(
    {
        apsw.SQLITE_CREATE_TABLE, apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_CREATE_VTABLE,
        apsw.SQLITE_CREATE_TRIGGER, apsw.SQLITE_CREATE_VIEW, _UPDATE,
    }
)


def ddl_row_counts(log: list[tuple[int, str | None]], sql: str) -> tuple[int, int] | None:
    """(rowsRead, rowsWritten) workerd reports for a CREATE statement, from its authorizer log.

    workerd's patched SQLite counts the rows of ``sqlite_schema`` the statement
    touches (observed on 1.20261117.1): ``CREATE TABLE`` inserts its row, one
    per automatic index (not the primary key of a WITHOUT ROWID table, which
    is the table itself) and updates its own row once (1 read, 2 + n writes);
    ``CREATE VIEW`` and ``CREATE VIRTUAL TABLE`` read 1 and write 2 (a virtual
    table's shadow tables are made by nested statements, not counted);
    ``CREATE TRIGGER`` writes 1. A
    ``CREATE ... IF NOT EXISTS`` that finds the object never updates
    ``sqlite_schema`` and counts nothing. ``None``: not modelled.
    """
    ops = [op for op, _ in log]
    if apsw.SQLITE_CREATE_VTABLE in ops or apsw.SQLITE_CREATE_VIEW in ops:
        return (1, 2) if _UPDATE in ops else None
    if apsw.SQLITE_CREATE_TRIGGER in ops:
        return 0, 1
    if apsw.SQLITE_CREATE_TABLE in ops and _UPDATE in ops and ops.count(apsw.SQLITE_CREATE_TABLE) == 1:
        if " AS " in sql.upper() and "SELECT" in sql.upper():
            return None  # CREATE TABLE ... AS SELECT also counts the rows it copies
        autos = sum(1 for op, name in log if op == apsw.SQLITE_CREATE_INDEX and (name or "").startswith("sqlite_autoindex_"))
        if autos and "WITHOUT ROWID" in sql.upper():
            autos -= 1
        return 1, 2 + autos
    return None


assert _cf.RESERVED_NAME_PREFIX[0] == INTERNAL_PREFIX[0] == "_"  # is_reserved_name's first test


def is_reserved_name(name: str | None) -> bool:
    # Both reserved prefixes start with "_": most names are decided by their first
    # character (this runs for nearly every authorizer call while SQL is prepared).
    if not name or name[0] != "_":
        return False
    low = name[:8].lower()
    return low.startswith(_cf.RESERVED_NAME_PREFIX) or low.startswith(INTERNAL_PREFIX)


_HEX = frozenset("0123456789abcdefABCDEF")


def _is_int(text: str, *, unsigned: bool) -> bool:
    """kj's ``tryParseAs<int32_t>`` / ``tryParseAs<uint>``: decimal or ``0x`` hex, whole text."""
    t = text.lstrip(" \t\n\r\v\f")  # strtoll skips leading space
    sign = 1
    if t[:1] in ("+", "-"):
        if t[0] == "-":
            if unsigned:
                return False
            sign = -1
        t = t[1:]
    if t[:2] in ("0x", "0X") and len(t) > 2 and all(c in _HEX for c in t[2:]):
        value = int(t[2:], 16)
    elif t.isascii() and t.isdigit():
        value = int(t)
    else:
        return False
    value *= sign
    return 0 <= value < 2**32 if unsigned else -(2**31) <= value < 2**31


def _boolean_ok(arg: str) -> bool:
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\"":
        arg = arg[1:-1]
    low = arg.lower()
    # workerd compares with strncasecmp over the literal's length: a *prefix* match.
    return any(low.startswith(v) for v in _cf.PRAGMA_BOOLEAN_VALUES)


def _pragma_ok(name: str, arg: str | None) -> bool:
    rule = _cf.PRAGMA_RULES.get(name.lower())  # CF: workerd 1.20261117.1 (observed): any case
    if rule is None:
        return False
    if rule == "any":
        return True
    if rule == "no_arg":
        return arg is None
    if rule == "boolean":
        return arg is None or _boolean_ok(arg)
    if rule in ("object_name", "table_name"):
        return arg is not None and not is_reserved_name(arg)
    if rule == "optional_object_name":
        return arg is None or not is_reserved_name(arg)
    if rule == "null_or_number":
        return arg is None or _is_int(arg, unsigned=False)
    if rule == "null_number_or_object_name":
        return arg is None or _is_int(arg, unsigned=True) or not is_reserved_name(arg)
    return False  # pragma: no cover - every rule is listed above


def _no_ddl() -> None:
    pass


class Authorizer:
    """apsw authorizer callback with an ``internal`` bypass for dohost's own SQL."""

    __slots__ = ("internal", "stashed", "missing", "on_ddl", "ddl_log", "settings")

    def __init__(self, on_ddl: Callable[[], None] = _no_ddl) -> None:
        self.internal = False
        #: A Cloudflare message to raise instead of SQLite's ``not authorized``.
        self.stashed: str | None = None
        #: "no such function: f" for a function workerd's SQLite lacks; replaces
        #: SQLite's "not authorized to use function: f" keeping its offset.
        self.missing: str | None = None
        #: Called while a schema-changing statement is prepared (user or internal).
        self.on_ddl = on_ddl
        #: (action, name) of the schema writes user SQL prepared since the last
        #: ``take_ddl_log()``: what ``rowsRead``/``rowsWritten`` of DDL are modelled from.
        self.ddl_log: list[tuple[int, str | None]] = []
        #: Connection settings (``_cf.CONNECTION_SETTINGS``) user SQL set, by lower-case
        #: name: 0 or 1 as a park read it (``None`` until one does). Kept here because
        #: the authorizer outlives a parked connection: the reopen sets them again
        #: (``_parking.py``).
        self.settings: dict[str, int | None] = {}

    def __call__(self, op: int, p1: str | None, p2: str | None, dbname: str | None, trigger: str | None) -> int:
        # The actions nearly every statement is made of come first, each answered as the
        # rules below answer it: SQLite calls this for every table, column and function
        # a statement touches, whenever it prepares one (a parked object's reopen prepares
        # its statements again). A row action (read, insert, update, delete) on a ``main``
        # name that no rule below singles out — not ``dbstat`` or ``sqlite_master``, no
        # reserved prefix (both start with "_") — is allowed, internal or not; a function
        # is decided by the allow-list unless dohost's own SQL runs. None of these
        # changes the schema (``on_ddl``) or is logged; dohost's own SQL is allowed
        # anything but a schema change, which ``on_ddl`` must hear of (``by_rules``).
        if op == _SELECT:
            return _OK
        if op in _ROW_OPS and dbname == "main" and (not p1 or p1[0] != "_") and (not p2 or p2[0] != "_"):
            if p1 not in _SINGLED_OUT_TABLES:
                return _OK
        elif op == _FUNCTION and not self.internal:
            return self._function(p2)
        elif self.internal and op not in _DDL_OPS:
            return _OK
        return self.by_rules(op, p1, p2, dbname, trigger)

    def _function(self, name: str | None) -> int:
        """A function of user SQL: workerd's allow-list; one its SQLite lacks says so."""
        fn = (name or "").lower()
        if fn in _cf.ALLOWED_FUNCTIONS:
            return _OK
        if fn in _cf.MISSING_FUNCTIONS:
            self.missing = f"no such function: {fn}"
        return _DENY

    def by_rules(self, op: int, p1: str | None, p2: str | None, dbname: str | None, trigger: str | None) -> int:
        """Every rule, in order: what ``__call__`` answers (its fast path gives the same answers sooner)."""
        if op in _DDL_OPS:
            self.on_ddl()
        if self.internal:
            return _OK
        if op in _DDL_LOG_OPS and (op != _UPDATE or p1 == "sqlite_master"):
            self.ddl_log.append((op, p1))
        if op in _TXN_OPS:
            self.stashed = _cf.TRANSACTION_STATEMENT_MESSAGE  # CF: src/workerd/api/sql.c++
            return _DENY
        if op in _ALWAYS_DENIED or op == apsw.SQLITE_ATTACH or op == apsw.SQLITE_DETACH:
            return _DENY
        if op in _NO_NAME_OPS:
            return _OK
        if op == _ALTER_TABLE:
            # CF: sqlite.c++ swaps the arguments: SQLite passes (db, table, column) here.
            if p1 != "main":
                return _DENY
            return _DENY if is_reserved_name(p2) else _OK
        if op == apsw.SQLITE_FUNCTION:
            return self._function(p2)
        if op == apsw.SQLITE_READ and p1 in _cf.MISSING_TABLES:
            self.stashed = f"no such table: {p1}: SQLITE_ERROR"
            return _DENY
        if dbname is not None and dbname != "main":
            if dbname != "temp" or op not in _TEMP_OK:
                return _DENY
        if op == _ANALYZE:
            return _OK  # CF: sqlite.c++ allows ANALYZE for all names (PRAGMA optimize)
        if op == apsw.SQLITE_PRAGMA:
            if not _pragma_ok(p1 or "", p2):
                return _DENY
            if p2 is not None:
                name = (p1 or "").lower()
                if name in _cf.CONNECTION_SETTINGS:
                    self.settings[name] = None  # its value is read at a park, as SQLite took it
            return _OK
        if op in (apsw.SQLITE_CREATE_VTABLE, apsw.SQLITE_DROP_VTABLE):
            if (p2 or "").lower() not in _cf.ALLOWED_VTABLE_MODULES:
                return _DENY
        if is_reserved_name(p1) or is_reserved_name(p2):
            return _DENY
        return _OK
