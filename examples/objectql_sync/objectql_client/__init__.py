"""A Python client for ObjectQL's offline-first sync protocol (``POST /api/sync``, version 1).

Mutations are recorded locally (a SQLite file), pushed in batches, and the
server's changes merged back; conflicts are resolved by each object's
strategy (``last-write-wins``, ``crdt``, ``manual``). See ``_engine.py``.
"""

from ._engine import (
    Clock as Clock,
    FakeClock as FakeClock,
    SyncEngine as SyncEngine,
    SyncRefused as SyncRefused,
    SyncResult as SyncResult,
    SystemClock as SystemClock,
)
from ._log import ClientStore as ClientStore
from ._resolvers import DROP as DROP, KEEP as KEEP, resolve as resolve

__all__ = ["Clock", "FakeClock", "SyncEngine", "SyncRefused", "SyncResult", "SystemClock", "ClientStore",
           "DROP", "KEEP", "resolve"]
