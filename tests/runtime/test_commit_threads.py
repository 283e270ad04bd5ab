"""Under durability "full" every commit and name record — the last ones at eviction and shutdown too — fsyncs in a worker thread.

The observer's ``before_commit`` runs inside ``ObjectDatabase.commit``, so the
thread it runs on is the thread that commits (and fsyncs).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio

from objects import DurableObject
from persistence import ObjectDatabase
from runtime import open_runtime


class ThreadLog:
    def __init__(self) -> None:
        self.threads: list[bool] = []  # True: the commit ran on the event loop's thread

    def before_commit(self, key: tuple[str, str]) -> None:
        self.threads.append(threading.current_thread() is threading.main_thread())

    def on_activate(self, key: tuple[str, str]) -> None:
        pass

    def on_evict(self, key: tuple[str, str]) -> None:
        pass

    def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
        pass


class Quiet(DurableObject):
    """Never writes: its only commit is the one storing its name when it closes."""

    def ping(self) -> int:
        return 1

    def stored_name(self) -> Any:
        return self.ctx.id.name


class Writer(DurableObject):
    def put(self, value: int) -> None:
        self.ctx.storage.kv.put("v", value)

    def get(self) -> Any:
        return self.ctx.storage.kv.get("v")


def record_name_threads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Log, per ``record_name`` call, whether it ran on the event loop's thread (it fsyncs)."""
    threads: list[bool] = []
    original = ObjectDatabase.record_name

    def record_name(self: ObjectDatabase, name: str) -> None:
        threads.append(threading.current_thread() is threading.main_thread())
        original(self, name)

    monkeypatch.setattr(ObjectDatabase, "record_name", record_name)
    return threads


async def test_the_name_of_an_object_that_never_wrote_is_stored_off_the_event_loop_at_shutdown(tmp_path, monkeypatch):
    threads = record_name_threads(monkeypatch)
    async with open_runtime(bindings={"Q": Quiet}, data_dir=tmp_path, durability="full") as rt:
        assert await rt.env.Q.getByName("quiet").ping() == 1
        assert threads == []
    assert threads == [False]
    async with open_runtime(bindings={"Q": Quiet}, data_dir=tmp_path, durability="full") as rt:
        by_id = rt.env.Q.idFromString(rt.env.Q.idFromName("quiet").toString())
        assert await rt.env.Q.get(by_id).stored_name() == "quiet"  # the thread's commit reached the file


async def test_the_name_of_an_object_that_never_wrote_is_stored_off_the_event_loop_at_eviction(tmp_path, monkeypatch):
    threads = record_name_threads(monkeypatch)
    async with open_runtime(bindings={"Q": Quiet}, data_dir=tmp_path, durability="full") as rt:
        stub = rt.env.Q.getByName("quiet")
        await stub.ping()
        assert await rt.evict("Q", stub.id) is True
        assert threads == [False]
        assert await stub.stored_name() == "quiet"


async def test_every_full_durability_commit_runs_off_the_event_loop_and_persists(tmp_path):
    log = ThreadLog()
    async with open_runtime(bindings={"W": Writer}, data_dir=tmp_path, durability="full", observer=log) as rt:
        stub = rt.env.W.getByName("w")
        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(stub.put, i)
        await stub.put(99)
    assert log.threads and not any(log.threads)
    async with open_runtime(bindings={"W": Writer}, data_dir=tmp_path, durability="full") as rt:
        assert await rt.env.W.getByName("w").get() == 99
