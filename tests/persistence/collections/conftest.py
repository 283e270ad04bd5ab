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

from collections_support import DRIVER_KINDS, FakeClock, Harness
from persistence.collections import CollectionAdapter, SQLiteDriver


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
