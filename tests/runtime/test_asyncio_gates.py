"""asyncio under Cloudflare's gates, and the lifetime of an object's asyncio tasks."""

from __future__ import annotations

import asyncio
import logging

import pytest
import trio

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import open_runtime


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.lock = asyncio.Lock()
        self.log: list[str] = []

    async def slow_increment(self, tag, locked):
        async def body():
            value = (await self.ctx.storage.get("n")) or 0
            self.log.append(f"{tag} read {value}")
            await asyncio.sleep(1)  # a timer: other events may run here
            await self.ctx.storage.put("n", value + 1)
            self.log.append(f"{tag} wrote {value + 1}")

        if locked:
            async with self.lock:
                await body()
        else:
            await body()
        return self.log

    async def storage_only(self, tag):
        self.log.append(f"{tag} in")
        for i in range(30):
            await self.ctx.storage.put(f"{tag}{i}", i)
            assert await self.ctx.storage.get(f"{tag}{i}") == i
        self.log.append(f"{tag} out")
        return self.log

    def mark(self, tag):
        self.log.append(tag)
        return self.log

    async def write_then_sleep(self):
        self.ctx.storage.kv.put("written", True)
        await asyncio.sleep(1)
        return "replied"

    def started(self):
        return self.log

    async def start_forever(self):
        async def forever():
            self.log.append("task started")
            try:
                while True:
                    await asyncio.sleep(60)
            finally:
                self.env.OUTSIDE.append("task cancelled")

        asyncio.create_task(forever())
        asyncio.get_running_loop().call_later(3600, self.env.OUTSIDE.append, "timer fired")
        await asyncio.sleep(0)
        return "started"

    async def start_short(self):
        async def short():
            await asyncio.sleep(30)
            self.env.OUTSIDE.append("short done")

        asyncio.create_task(short())
        return "started"

    def abort(self):
        self.ctx.abort("stop")


def _open(**kw):
    outside: list[str] = []
    return open_runtime(bindings={"C": Counter}, vars={"OUTSIDE": outside}, **kw), outside


async def test_an_asyncio_sleep_lets_another_event_in(autojump_clock) -> None:
    opener, _ = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.slow_increment, "A", False)
            await trio.sleep(0.5)
            await stub.mark("B arrived")
        log = await stub.started()
        assert log == ["A read 0", "B arrived", "A wrote 1"]


async def test_without_a_lock_interleaved_read_await_write_loses_an_update(autojump_clock) -> None:
    opener, _ = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.slow_increment, "A", False)
            nursery.start_soon(stub.slow_increment, "B", False)
        log = await stub.started()
        assert log[:2] == ["A read 0", "B read 0"]  # B got in while A slept
        assert sorted(log[2:]) == ["A wrote 1", "B wrote 1"]  # so one update is lost


async def test_an_asyncio_lock_serialises_read_await_write(autojump_clock) -> None:
    opener, _ = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.slow_increment, "A", True)
            nursery.start_soon(stub.slow_increment, "B", True)
        assert await stub.started() == ["A read 0", "A wrote 1", "B read 1", "B wrote 2"]


async def test_storage_awaits_never_let_another_event_in(autojump_clock) -> None:
    opener, _ = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.storage_only, "A")
            nursery.start_soon(stub.mark, "B")
        assert await stub.started() == ["A in", "A out", "B"]


async def test_a_reply_after_an_asyncio_sleep_waits_for_the_writes_before_it(autojump_clock, call_log) -> None:
    opener, _ = _open(observer=call_log)
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        await stub.started()
        call_log.fail_next_commits = 1
        with pytest.raises(Exception, match="injected commit failure") as info:
            await stub.write_then_sleep()
        assert info.value.durableObjectReset is True
        assert await stub.write_then_sleep() == "replied"
        assert ("commit", "C") in call_log.calls


async def test_reset_cancels_the_objects_asyncio_tasks_and_timers(autojump_clock) -> None:
    opener, outside = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        assert await stub.start_forever() == "started"
        with pytest.raises(Exception, match="stop"):
            await stub.abort()
        await trio.sleep(7200)
        assert outside == ["task cancelled"]


async def test_eviction_cancels_the_objects_asyncio_tasks(autojump_clock) -> None:
    opener, outside = _open()
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        await stub.start_forever()
        assert await rt.evict("C", stub.id) is True
        await trio.sleep(7200)
        assert outside == ["task cancelled"]
        assert await stub.started() == []  # a fresh instance


async def test_a_pending_asyncio_task_keeps_the_object_from_idle_eviction(autojump_clock) -> None:
    opener, outside = _open(idle_timeout=10)
    async with opener as rt:
        stub = rt.env.C.getByName("a")
        await stub.start_short()
        await trio.sleep(25)  # past the idle timeout, the task still sleeping
        assert rt.live_activation("C", stub.id) is not None
        await trio.sleep(20)  # the task finished at 30 s; then 10 s idle
        assert outside == ["short done"]
        assert rt.live_activation("C", stub.id) is None


async def test_no_task_or_timer_outlives_the_runtime(autojump_clock, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    opener, outside = _open()
    with trio.fail_after(60):
        async with opener as rt:
            await rt.env.C.getByName("a").start_forever()
            await rt.env.C.getByName("b").start_forever()
            loop = asyncio.get_running_loop()
            assert len(asyncio.all_tasks(loop)) == 2
    assert outside == ["task cancelled", "task cancelled"]
    assert asyncio.all_tasks(loop) == set()
    await trio.sleep(7200)
    assert "timer fired" not in outside
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]


class Spawner(WorkerEntrypoint):
    async def fetch(self, request):
        async def forever():
            try:
                await asyncio.Event().wait()
            finally:
                self.env.OUTSIDE.append("worker task cancelled")

        async def finishes():
            await asyncio.sleep(30)
            self.env.OUTSIDE.append("wait-until task done")

        asyncio.create_task(forever())
        self.ctx.waitUntil(asyncio.create_task(finishes()))
        return Response("spawned")


async def test_worker_tasks_end_with_the_runtime_after_its_wait_until_work(autojump_clock) -> None:
    outside: list[str] = []
    with trio.fail_after(120):
        async with open_runtime(entrypoint=Spawner, vars={"OUTSIDE": outside}) as rt:
            assert await (await rt.fetch("http://w/")).text() == "spawned"
            loop = asyncio.get_running_loop()
    assert outside == ["wait-until task done", "worker task cancelled"]
    assert asyncio.all_tasks(loop) == set()
