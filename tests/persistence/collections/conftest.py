"""Fixtures for the collections suites: every conformance test runs once per driver.

Driver kinds:

* ``apsw``    — :class:`ApswDriver` over a plain apsw connection (native binding).
* ``do-fake`` — :class:`DurableObjectDriver` over ``collections_fake_do.FakeStorage``,
  an apsw wrapper with Cloudflare's binding, limits and forbidden statements.
* ``do``      — :class:`DurableObjectDriver` over the engine's ``ObjectDatabase``,
  when ``persistence._engine`` exists in this checkout.

A :class:`Harness` opens drivers on one file, so tests can close and reopen
(restart / eviction) and see what was durable.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Iterator

import pytest

from collections_fake_do import FakeStorage
from persistence.collections import ApswDriver, CollectionAdapter, DurableObjectDriver, SQLiteDriver

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


@pytest.fixture(params=DRIVER_KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Harness]:
    h = Harness(request.param, tmp_path / "object.sqlite")
    yield h
    h.close_all()


@pytest.fixture
def driver(harness: Harness) -> SQLiteDriver:
    return harness.open()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_adapter(driver: SQLiteDriver, clock: FakeClock) -> Iterator[Callable[..., CollectionAdapter]]:
    made: list[CollectionAdapter] = []

    def make(d: SQLiteDriver | None = None, **options: Any) -> CollectionAdapter:
        options.setdefault("clock", clock)
        adapter = CollectionAdapter(d if d is not None else driver, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def adapter(make_adapter: Callable[..., CollectionAdapter]) -> CollectionAdapter:
    return make_adapter()
