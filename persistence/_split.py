"""Split SQL text into statements the way SQLite's own tokenizer would.

``sql.exec`` runs all statements but the last immediately and returns a
cursor over the last (workerd's rule), so we need statement boundaries before
any of them run. A ``;`` only ends a statement outside quotes, comments and
``CREATE TRIGGER ... BEGIN ... END`` bodies; ``apsw.complete`` (SQLite's
``sqlite3_complete``) decides the trigger case, we only find candidate
semicolons. Results are cached by text because the same SQL is run over and
over by an object (the prepared-statement cache already keys on the text).
"""

from __future__ import annotations

import apsw

__all__ = ["split_statements"]

_cache: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 512


def split_statements(sql: str) -> tuple[str, ...]:
    """Statements in ``sql`` with their text, empty ones (``;;``, comments) dropped."""
    hit = _cache.get(sql)
    if hit is not None:
        return hit
    if ";" not in sql:
        out: tuple[str, ...] = (sql,) if _has_content(sql) else ()
    else:
        out = tuple(_split(sql))
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[sql] = out
    return out


def _split(sql: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for pos in _candidate_semicolons(sql):
        chunk = sql[start : pos + 1]
        if apsw.complete(chunk):
            if _has_content(chunk):
                parts.append(chunk)
            start = pos + 1
    tail = sql[start:]
    if _has_content(tail):
        parts.append(tail)
    return parts


def _candidate_semicolons(sql: str) -> list[int]:
    """Positions of ``;`` outside string literals, quoted identifiers and comments."""
    out: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = sql.find(c, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == c:  # doubled quote escapes
                j = sql.find(c, j + 2)
            i = n if j == -1 else j + 1
        elif c == "[":
            j = sql.find("]", i + 1)
            i = n if j == -1 else j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j == -1 else j + 2
        else:
            if c == ";":
                out.append(i)
            i += 1
    return out


def _has_content(chunk: str) -> bool:
    """True when ``chunk`` holds more than whitespace, ``;`` and comments."""
    i, n = 0, len(chunk)
    while i < n:
        c = chunk[i]
        if c.isspace() or c == ";":
            i += 1
        elif chunk.startswith("--", i):
            j = chunk.find("\n", i)
            i = n if j == -1 else j + 1
        elif chunk.startswith("/*", i):
            j = chunk.find("*/", i + 2)
            i = n if j == -1 else j + 2
        else:
            return True
    return False
