"""Conflict resolvers, one per ObjectQL ``SyncStrategy``; the engine runs the object's own.

A resolver gets the ``SyncConflict`` the server sent and returns what to push
again: a dict of fields (sent as an update based on the server's current
version), :data:`DROP` (the server's state stands; the mutation is
discarded), or :data:`KEEP` (leave it pending; it is re-sent and conflicts
again — what ObjectQL does for an unresolved manual conflict).

* ``last-write-wins``: ObjectQL's rule — the client wins when its mutation's
  ``timestamp`` is at or after the server record's ``updated_at`` (missing
  counts as the epoch); a winner re-sends its whole change.
* ``crdt``: a last-writer-wins register per field — each field the client
  changed is kept when its timestamp is at or after that field's last write
  on the server (``serverFieldTimestamps``, a dohost addition to the
  conflict), and fields not in ``conflictingFields`` are kept as they are.
* ``manual``: the application's ``on_conflict(conflict)`` returns the record
  fields to push, or ``None`` to leave it unresolved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Final

DROP: Final = "drop"
KEEP: Final = "keep"
Resolution = dict[str, Any] | str
OnConflict = Callable[[dict[str, Any]], "dict[str, Any] | None"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        return EPOCH
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def last_write_wins(conflict: dict[str, Any]) -> Resolution:
    mutation = conflict["clientMutation"]
    if parse_time(mutation["timestamp"]) >= parse_time(conflict["serverRecord"].get("updated_at")):
        return dict(mutation.get("data") or {})
    return DROP


def crdt(conflict: dict[str, Any]) -> Resolution:
    mutation = conflict["clientMutation"]
    stamps = conflict.get("serverFieldTimestamps") or {}
    conflicting = set(conflict["conflictingFields"])
    when = parse_time(mutation["timestamp"])
    kept = {f: v for f, v in (mutation.get("data") or {}).items()
            if f not in conflicting or when >= parse_time(stamps.get(f))}
    return kept or DROP


def manual(conflict: dict[str, Any], on_conflict: OnConflict | None) -> Resolution:
    if on_conflict is None:
        return KEEP
    chosen = on_conflict(conflict)
    return KEEP if chosen is None else dict(chosen)


def resolve(strategy: str, conflict: dict[str, Any], on_conflict: OnConflict | None = None) -> Resolution:
    if strategy == "crdt":
        return crdt(conflict)
    if strategy == "manual":
        return manual(conflict, on_conflict)
    return last_write_wins(conflict)
