"""Driver kinds, a fake clock and the :class:`Harness` the collections suites share.

In a module of its own, not in ``conftest``: a test importing ``from conftest``
got whichever ``conftest`` module pytest imported first, which depends on the
paths and order it was given (``tests/wrangler_compat/bindings`` has one too).
"""

from __future__ import annotations

import pathlib
from typing import Any

from collections_fake_do import FakeStorage
from persistence.collections import ApswDriver, DurableObjectDriver, SQLiteDriver

try:
    from persistence._engine import ObjectDatabase
except ImportError:  # the engine is being written alongside
    ObjectDatabase = None

DRIVER_KINDS = ["apsw", "do-fake"] + (["do"] if ObjectDatabase is not None else [])


class FakeClock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    def __init__(self, kind: str, path: pathlib.Path) -> None:
        self.kind = kind
        self.path = path
        self._open: list[tuple[SQLiteDriver, Any]] = []

    def open(self) -> SQLiteDriver:
        if self.kind == "apsw":
            driver: SQLiteDriver = ApswDriver.open(str(self.path), durability="normal")
            resource: Any = driver
        elif self.kind == "do-fake":
            resource = FakeStorage(str(self.path))
            driver = DurableObjectDriver(resource)
        else:
            resource = ObjectDatabase(str(self.path))
            driver = DurableObjectDriver(resource)
        self._open.append((driver, resource))
        return driver

    def close(self, driver: SQLiteDriver) -> None:
        for i, (d, resource) in enumerate(self._open):
            if d is driver:
                del self._open[i]
                if self.kind == "do":
                    # The host commits the implicit transaction at the end of each
                    # event; closing (eviction) comes after that commit.
                    resource.commit()
                resource.close()
                return

    def close_all(self) -> None:
        while self._open:
            self.close(self._open[-1][0])
