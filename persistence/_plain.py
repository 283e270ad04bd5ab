"""A plain SQLite connection set up like an object's file, for stores that are not objects.

The bindings above the runtime (Workers KV, R2, the alarm index's kind of
bookkeeping) keep their data in SQLite files of their own: no authorizer, no
Cloudflare limits on row size, no implicit transaction. They still get the
same durability settings as object files, so ``durability="full"`` means an
fsync per commit everywhere and ``"none"`` means throwaway test storage.
"""

from __future__ import annotations

import os
from pathlib import Path

import apsw

from ._open import _SYNCHRONOUS, Durability

__all__ = ["open_connection"]


def open_connection(path: str | os.PathLike[str], *, durability: Durability = "normal") -> apsw.Connection:
    """An apsw connection to ``path`` (created with its folder) with ``durability``'s journal settings.

    Autocommit: each statement outside ``with conn:`` commits by itself; a
    ``with conn:`` block is one transaction. A second connection to the same
    file waits up to 5 s for a writer instead of failing at once.
    """
    if durability not in _SYNCHRONOUS:
        raise ValueError(f"durability: expected 'full', 'normal' or 'none', got {durability!r}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5_000)
    conn.execute("PRAGMA journal_mode=MEMORY" if durability == "none" else "PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")
    return conn
