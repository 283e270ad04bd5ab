"""One SQLite file per namespace, database or bucket, opened when first used.

A :class:`StoreHost` is what the binding objects of one runtime share: the
data directory, the durability the runtime's object files use, the clock,
and the open connections (one per file, however many bindings or Workers
name it). :meth:`StoreHost.close` closes them all; :meth:`StoreHost.reset`
deletes the files (the pytest plugin's per-test reset).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import apsw

from persistence import Durability, open_connection

from ._common import Clock, store_path

__all__ = ["StoreHost"]


class StoreHost:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.durability: Durability = "normal"
        self.clock = Clock()
        self._conns: dict[Path, Any] = {}
        #: (kind, key) -> open connection or database: the per-call lookup, without building a path.
        self._by_key: dict[tuple[str, str], Any] = {}
        #: (kind, key) -> the file's size as last measured (D1's ``size_after`` after a read).
        self.sizes: dict[tuple[str, str], int] = {}

    def attach(self, *, durability: Durability, now_ms: Callable[[], float]) -> None:
        self.durability = durability
        self.clock.attach(now_ms)

    def connection(self, kind: str, key: str, schema: str) -> apsw.Connection:
        """The connection to ``kind``/``key``'s file, created with ``schema`` on first use."""
        found = self._by_key.get((kind, key))
        if found is not None:
            return found  # type: ignore[no-any-return]
        path = store_path(self.data_dir, kind, key)
        conn = self._conns.get(path)
        if conn is None:
            conn = open_connection(path, durability=self.durability)
            with conn:
                conn.execute(schema)
            self._conns[path] = conn
        self._by_key[(kind, key)] = conn
        return conn

    def database(self, kind: str, key: str, factory: Callable[[Path, Durability], Any]) -> Any:
        """A store object built by ``factory(path, durability)`` (D1's object-style database)."""
        found = self._by_key.get((kind, key))
        if found is not None:
            return found
        path = store_path(self.data_dir, kind, key)
        db = self._conns.get(path)
        if db is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = factory(path, self.durability)
            self._conns[path] = db
        self._by_key[(kind, key)] = db
        return db

    def close(self) -> None:
        self._by_key = {}
        self.sizes = {}
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            conn.close()

    def reset(self) -> None:
        """Close every file and delete every binding's storage."""
        self.close()
        shutil.rmtree(self.data_dir / "bindings", ignore_errors=True)
