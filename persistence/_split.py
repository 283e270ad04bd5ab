"""Split SQL text into statements exactly where workerd's prepare loop would.

``sql.exec`` runs all statements but the last immediately and returns a
cursor over the last (workerd's rule), so we need statement boundaries before
any of them run. workerd (``SqliteDatabase::prepareSql``) does::

    loop:
        prepare(text) -> statement, tail      # SQLite skips leading ';' and comments
        no statement -> "SQL code did not contain a statement."
        skip ' ', \\t, \\n, \\r, \\v, \\f in tail
        tail empty -> this is the last statement
        else run this one now, text = tail

We reproduce the boundaries without preparing: a statement ends at the first
``;`` outside quotes and comments whose prefix holds real content and that
SQLite's own ``sqlite3_complete`` accepts (so ``CREATE TRIGGER ... BEGIN ...;
END;`` stays whole). Consequences, all as on Cloudflare:

* the text handed to SQLite for the next statement starts after the skipped
  whitespace, so error offsets are relative to it (workerd prepares the tail);
* ``"SELECT 1;;"`` and ``"SELECT 1; -- note"`` end with a piece holding no
  statement: every real statement before it runs, then
  ``SQL code did not contain a statement.`` is raised (``trailing_empty``);
* only ASCII whitespace is skipped: ``"SELECT 1;\\u00a0"`` hands ``\\u00a0`` to
  SQLite, which rejects it.

One check the authorizer cannot make is done here: SQLite authorizes
``ALTER TABLE t RENAME TO x`` with the *old* name only, so renaming a table
into the reserved ``_cf_`` (or dohost's ``_dohost_``) namespace would slip
through — workerd has that hole; we close it (``renames_into_reserved``).

``runs_alike_in_a_transaction`` tells ``sql.exec`` which statements must be
prepared with no transaction open (``PRAGMA``, ``VACUUM``...): it ends the
read transaction a run of known reads shares before them (``_engine``).

Results are cached by text because an object runs the same SQL over and over
(the prepared-statement cache already keys on the text).
"""

from __future__ import annotations

import re

import apsw

__all__ = ["split_statements", "renames_into_reserved", "runs_alike_in_a_transaction", "Split"]

#: CF: src/workerd/util/sqlite.c++ (prepareSql) — and SQLite's own sqlite3Isspace.
_WS = frozenset(" \t\n\r\v\f")

#: ``(simple, statements, trailing_empty, utf8_length, returning)``. When
#: ``trailing_empty`` is true every statement is a "leading" one and the call ends with
#: the empty-statement error. ``simple`` is the one statement of a single-statement text
#: that needs no special handling (the hot path of ``sql.exec``), else ``None``.
#: ``returning`` says the last statement may be a write that returns rows (``RETURNING``):
#: its rows are read at once so that no write statement is left in progress at commit.
Split = tuple["str | None", tuple[str, ...], bool, int, bool]

#: CF: sqlite3_limit(SQLITE_LIMIT_SQL_LENGTH) in src/workerd/util/sqlite.c++ (setupSecurity)
MAX_SQL_BYTES = 100_000

_cache: dict[str, Split] = {}
_CACHE_MAX = 1024


def split_statements(sql: str) -> Split:
    """The statements of ``sql`` as workerd would prepare them, in order."""
    hit = _cache.get(sql)
    if hit is not None:
        return hit
    if ";" not in sql:
        stmts: tuple[str, ...] = (sql,) if _has_content(sql, 0, len(sql)) else ()
        trailing_empty = not stmts
    else:
        stmts, trailing_empty = _split(sql)
    nbytes = len(sql.encode("utf-8", "surrogatepass"))
    returning = bool(stmts) and not trailing_empty and _RETURNING.search(stmts[-1]) is not None
    simple = (
        stmts[0]
        if len(stmts) == 1
        and not trailing_empty
        and not returning
        and nbytes <= MAX_SQL_BYTES
        and not renames_into_reserved(stmts[0])
        else None
    )
    out: Split = (simple, stmts, trailing_empty, nbytes, returning)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[sql] = out
    return out


_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_ALTER = re.compile(r"ALTER\s+TABLE\b", re.IGNORECASE)
_RENAME_RESERVED = re.compile(r"\bRENAME\s+TO\s*[\"'`\[]?\s*(?:_cf_|_dohost_)", re.IGNORECASE)


#: First keywords of statements that behave the same inside a transaction as in
#: autocommit mode (a write among them starts the transaction's writing part).
_TXN_NEUTRAL = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "VALUES", "CREATE", "DROP", "ALTER"})
_WORD = re.compile(r"[A-Za-z]+")
_neutral_cache: dict[str, bool] = {}


def runs_alike_in_a_transaction(stmt: str) -> bool:
    """Does ``stmt`` do the same inside a transaction as outside one?

    Not so for ``PRAGMA foreign_keys`` (a no-op inside one, decided when the
    statement is prepared), ``VACUUM`` (refused inside one) and other
    statements that are not plain queries, writes or schema changes; those
    run with no transaction open. Cached by text.
    """
    hit = _neutral_cache.get(stmt)
    if hit is None:
        m = _WORD.match(stmt, _skip_blank(stmt, 0, len(stmt)))
        hit = m is not None and m.group().upper() in _TXN_NEUTRAL
        if len(_neutral_cache) >= _CACHE_MAX:
            _neutral_cache.clear()
        _neutral_cache[stmt] = hit
    return hit


def _skip_blank(sql: str, i: int, n: int) -> int:
    """Where ``sql[i:n]``'s first token starts (``n`` if none): past whitespace, ``;`` and
    comments, what SQLite skips before a statement."""
    while i < n:
        c = sql[i]
        if c in _WS or c == ";":
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i, n)
            i = n if j == -1 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2, n)
            i = n if j == -1 else j + 2
        else:
            break
    return i


def renames_into_reserved(stmt: str) -> bool:
    """Is ``stmt`` an ``ALTER TABLE ... RENAME TO`` a reserved name (any case)?"""
    i = _skip_blank(stmt, 0, len(stmt))
    return bool(_ALTER.match(stmt, i)) and bool(_RENAME_RESERVED.search(stmt, i))


def _split(sql: str) -> tuple[tuple[str, ...], bool]:
    parts: list[str] = []
    n = len(sql)
    start = 0
    content_seen = False  # does sql[start:pos] hold anything but ';', comments, space?
    scan_from = 0
    for pos in _candidate_semicolons(sql):
        if not content_seen:
            content_seen = _has_content(sql, scan_from, pos)
            scan_from = pos + 1
        if not content_seen:
            continue  # SQLite skips empty statements inside one prepare call
        chunk = sql[start : pos + 1]
        if not apsw.complete(chunk):
            continue  # inside CREATE TRIGGER ... END
        parts.append(chunk)
        start = pos + 1
        while start < n and sql[start] in _WS:
            start += 1
        if start == n:
            return tuple(parts), False
        content_seen = False
        scan_from = start
    if _has_content(sql, start, n):
        parts.append(sql[start:])
        return tuple(parts), False
    return tuple(parts), True


def _candidate_semicolons(sql: str) -> list[int]:
    """Positions of ``;`` outside string literals, quoted identifiers and comments."""
    out: list[int] = []
    i, n = 0, len(sql)
    find = sql.find
    while i < n:
        c = sql[i]
        if c == "'" or c == '"' or c == "`":
            j = find(c, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == c:  # doubled quote escapes
                j = find(c, j + 2)
            i = n if j == -1 else j + 1
        elif c == "[":
            j = find("]", i + 1)
            i = n if j == -1 else j + 1
        elif c == "-" and sql.startswith("--", i):
            j = find("\n", i)
            i = n if j == -1 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            j = find("*/", i + 2)
            i = n if j == -1 else j + 2
        else:
            if c == ";":
                out.append(i)
            i += 1
    return out


def _has_content(sql: str, i: int, n: int) -> bool:
    """True when ``sql[i:n]`` holds more than whitespace, ``;`` and comments."""
    return _skip_blank(sql, i, n) < n
