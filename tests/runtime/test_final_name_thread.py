"""An object that never wrote stores its name at eviction in a worker thread that owns its connection."""

from __future__ import annotations

import threading

import pytest
import trio

from objects import DurableObject, ObjectResetError
from persistence import ObjectDatabase
from runtime import open_runtime


class Reader(DurableObject):
    def count(self):
        return self.ctx.storage.sql.exec("SELECT 1 AS n").one().n


@pytest.mark.parametrize("meanwhile", ["park", "reset"])
async def test_an_object_storing_its_name_at_eviction_is_not_parked_or_closed_under_the_thread(
    tmp_path, autojump_clock, monkeypatch, meanwhile
):
    # The name's fsync runs in a worker thread (durability "full"). The thread
    # must own the connection as a commit's does: a file of an older dohost
    # reads its stored name from the database, which a park or a reset's close
    # would pull from under the thread.
    entered, release = threading.Event(), threading.Event()
    record_name = ObjectDatabase.record_name

    def held(db, name):
        if threading.current_thread() is not threading.main_thread() and not entered.is_set():
            entered.set()
            release.wait(10)
        return record_name(db, name)

    monkeypatch.setattr(ObjectDatabase, "record_name", held)
    async with open_runtime(bindings={"R": Reader}, data_dir=tmp_path, durability="full") as rt:
        object_id = rt.env.R.idFromName("a")
        assert await rt.env.R.get(object_id).count() == 1
        act = rt.live_activation("R", object_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.evict, "R", object_id)
            await trio.to_thread.run_sync(entered.wait, 10)
            try:
                if meanwhile == "park":
                    assert not act.park()
                else:
                    act._reset(ObjectResetError("reset while storing the name"))
                assert not act.db.closed and not act.db.parked  # the thread still has the connection
            finally:
                release.set()
        assert act.db.closed
        assert await rt.env.R.get(object_id).count() == 1
    [path] = tmp_path.rglob(f"{object_id.toString()}.sqlite")
    again = ObjectDatabase(path)
    try:
        assert again.stored_name == "a"  # the name reached the file
    finally:
        again.close()
