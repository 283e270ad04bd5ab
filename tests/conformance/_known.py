"""Differences from workerd that stock SQLite or Python cannot remove, with evidence.

Nothing else may differ. Each entry says why dohost cannot (or deliberately
does not) do what workerd does; the README's "Conformance with workerd"
section lists the same entries. A divergence is excused only by a rule here:

* ``COUNTERS`` — a cursor's ``rowsRead``/``rowsWritten`` step. workerd's
  SQLite carries a patch (derived from libSQL's ``LIBSQL_STMTSTATUS_ROWS_READ``
  / ``_ROWS_WRITTEN``) that counts every b-tree row the VDBE visits or
  writes: ``CREATE TABLE`` reads 1 row of ``sqlite_schema`` and writes 2,
  index entries count as writes, a full scan counts every row it passes.
  Stock SQLite has no such counter and apsw exposes no
  ``sqlite3_stmt_status``/``scanstatus`` (apsw 3.54.1.0: neither API; its
  SQLite is built without ``SQLITE_ENABLE_STMT_SCANSTATUS``; the extension
  exports no ``sqlite3_*`` symbol ctypes could reach). dohost matches where the
  count follows from the statement: no cursor → 0 read, CREATE statements.
  Both sides must still answer with a non-negative integer.
* ``invalid-utf8-text`` — workerd shows U+FFFD where dohost raises
  ``UnicodeDecodeError`` (see ``STEP_REASONS``); recognised wherever it appears.
* A case step may name one of ``STEP_REASONS`` in its case's ``"known"`` map
  (``{"<op index>": "<reason>"}``); the reason's text is the evidence.
"""

from __future__ import annotations

import json
from typing import Any

from ._corpus import Divergence, compare

__all__ = ["STEP_REASONS", "unexplained", "excused"]

STEP_REASONS: dict[str, str] = {
    "printf-precision": (
        "workerd's SQLite is compiled with SQLITE_PRINTF_PRECISION_LIMIT=100000: "
        "printf('%.*c', 2200000, 'x') yields 100000 characters there (observed), "
        "a compile-time option stock SQLite (apsw) does not set."
    ),
    "internal-error-reference": (
        "INSERT OR ROLLBACK ends the implicit transaction; workerd then breaks the object "
        "with 'internal error; reference = <random id>' (observed), which no host can "
        "reproduce; dohost resets the object with a message that says what happened."
    ),
    "reserved-dohost-prefix": (
        "dohost keeps its own bookkeeping in tables named _dohost_*, so user SQL may not "
        "create or touch such names (a host-level reservation workerd does not need)."
    ),
    "python-object-binding": (
        "workerd stringifies a JS object bound to SQL ('[object Object]', '1,2'); from Python "
        "a dict/list reaches workerd as a PyProxy whose text is Python's str(). dohost refuses "
        "the binding with a TypeError naming the type instead of storing that text."
    ),
    "row-key-order": (
        "A result row crosses to Python as a JS object, whose integer-like keys enumerate "
        "first ({'1': 2, 'b': 1}); dohost's rows keep column order. Reordering every row would "
        "tax the row hot path for column names no real schema uses; KV values do follow JS order."
    ),
    "data-version-base": (
        "PRAGMA data_version's absolute value is unspecified (SQLite docs: only changes are "
        "meaningful); workerd's first read is 2, dohost's 1, and both stay constant within an object."
    ),
    "returning-unread": (
        "workerd fails the whole request with 'internal error; reference = <random id>' when a "
        "RETURNING cursor is left unread (the implicit commit then finds a statement in "
        "progress); dohost reads RETURNING rows eagerly (persistence/_sql.py) and the write commits."
    ),
    "invalid-utf8-text": (
        "TEXT holding bytes that are not UTF-8 (x'80' || 'x'): workerd hands JavaScript a string "
        "with U+FFFD in their place; apsw decodes strictly and raises UnicodeDecodeError, and "
        "exposes no raw-bytes access to the row, so dohost reports the error (a ValueError)."
    ),
    "python-object-key": (
        "A list/dict/bytes storage key reaches workerd as a PyProxy and becomes its str(); "
        "dohost refuses such keys with a TypeError (the JS String() of a JS array or object, "
        "which the oracle Worker produces, is not what Python code would get)."
    ),
}


def _steps(result: Any) -> list[Any] | None:
    if isinstance(result, list) and len(result) == 2 and result[0] == "ok":
        inner = result[1]
        if isinstance(inner, list) and len(inner) == 2 and inner[0] == "steps":
            return list(inner[1])
    return None


def _counter_only(op: dict[str, Any], w: Any, d: Any) -> bool:
    """True if two results of ``op`` differ only in rowsRead/rowsWritten integers."""
    if w == d:
        return True
    kind = op.get("op")
    if kind in ("transaction", "transactionSync"):
        if not (isinstance(w, list) and isinstance(d, list) and w[:1] == d[:1] == ["ok"]):
            return False
        wt, dt = w[1], d[1]
        if not (wt[0] == dt[0] == "txn" and wt[2] == dt[2] and len(wt[1]) == len(dt[1])):
            return False
        return all(_counter_only(o, a, b) for o, a, b in zip(op["ops"], wt[1], dt[1]))
    if kind != "exec":
        return False
    ws, ds = _steps(w), _steps(d)
    if ws is None or ds is None or len(ws) != len(ds):
        return False
    for name, a, b in zip(op.get("steps", []), ws, ds):
        if a == b:
            continue
        if name not in ("rowsRead", "rowsWritten"):
            return False
        if not (a[0] == b[0] == "ok" and type(a[1]) is int and type(b[1]) is int and a[1] >= 0 and b[1] >= 0):
            return False
    return True


def excused(div: Divergence) -> str | None:
    """The documented reason for a divergence, or ``None``."""
    case, i = div.case, div.index
    reason = case.get("known", {}).get(str(i))
    if reason is not None:
        assert reason in STEP_REASONS, f"{case['id']}: unknown reason {reason!r}"
        return reason
    ops = case["ops"]
    if 0 <= i < len(ops) and _counter_only(ops[i], div.workerd, div.dohost):
        return "counters"
    w, d = json.dumps(div.workerd, ensure_ascii=False), json.dumps(div.dohost)
    if "\ufffd" in w and "codec can't decode" in d:
        return "invalid-utf8-text"
    return None


def unexplained(case: dict[str, Any], workerd: list[Any], dohost: list[Any]) -> list[Divergence]:
    return [d for d in compare(case, workerd, dohost) if excused(d) is None]
