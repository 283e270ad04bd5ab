"""The input gate: what may run inside an object, and when other events get in."""

from __future__ import annotations

import trio
import trio.testing

from objects import DurableObject
from runtime import open_runtime


class Gated(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.log: list[str] = []

    def mark(self, tag):
        self.log.append(tag)

    def history(self):
        return self.log

    def sync_section(self, tag):
        self.log.append(f"{tag} in")
        for i in range(50):
            self.ctx.storage.kv.put(f"{tag}{i}", i)
        self.log.append(f"{tag} out")

    async def storage_section(self, tag):
        self.log.append(f"{tag} in")
        storage = self.ctx.storage
        for i in range(20):
            await storage.put(f"{tag}{i}", i)
            assert await storage.get(f"{tag}{i}") == i
            await storage.list({"prefix": tag})
        self.log.append(f"{tag} out")

    async def bcw_section(self, tag):
        async def critical():
            self.log.append(f"{tag} in")
            await trio.sleep(5)
            self.log.append(f"{tag} out")
            return tag

        return await self.ctx.blockConcurrencyWhile(critical)

    async def txn_section(self, tag):
        async def body(txn):
            self.log.append(f"{tag} in")
            await txn.put("k", tag)
            await trio.sleep(5)
            self.log.append(f"{tag} out")

        await self.ctx.storage.transaction(body)

    async def sleeper(self, tag):
        self.log.append(f"{tag} in")
        await trio.sleep(5)
        self.log.append(f"{tag} out")

    async def call_other(self, tag):
        self.log.append(f"{tag} in")
        await self.env.OTHER.getByName("other").slow()
        self.log.append(f"{tag} out")


class Other(DurableObject):
    async def slow(self):
        await trio.sleep(5)


def _no_interleaving(log: list[str]) -> bool:
    """Every "x in" is immediately followed by its "x out"."""
    for i, entry in enumerate(log):
        if entry.endswith(" in") and log[i + 1] != entry.replace(" in", " out"):
            return False
    return True


async def _concurrently(*calls) -> None:
    async with trio.open_nursery() as nursery:
        for fn, *args in calls:
            nursery.start_soon(fn, *args)


async def test_no_event_is_delivered_while_the_object_runs_synchronous_code() -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        await _concurrently(*[(stub.sync_section, t) for t in "abcdef"])
        log = await stub.history()
        assert len(log) == 12 and _no_interleaving(log)


async def test_no_event_is_delivered_while_awaiting_storage_calls() -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        await _concurrently(*[(stub.storage_section, t) for t in "abcdef"], *[(stub.mark, "m") for _ in range(5)])
        log = await stub.history()
        assert len(log) == 17 and _no_interleaving(log)


async def test_no_event_is_delivered_during_block_concurrency_while(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.bcw_section, "bcw")
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                nursery.start_soon(stub.mark, "m")
        assert await stub.history() == ["bcw in", "bcw out", "m", "m", "m"]


async def test_no_event_is_delivered_during_transaction(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.txn_section, "txn")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(stub.mark, "m")
            nursery.start_soon(stub.sleeper, "s")
        log = await stub.history()
        assert log[:2] == ["txn in", "txn out"]


async def test_no_event_is_delivered_while_the_constructor_runs(autojump_clock: trio.abc.Clock) -> None:
    class SlowStart(Gated):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.log.append("constructor in")
            for i in range(100):
                ctx.storage.kv.put(str(i), i)
            self.log.append("constructor out")

    async with open_runtime(bindings={"G": SlowStart}) as rt:
        stub = rt.env.G.getByName("a")
        await _concurrently(*[(stub.mark, f"m{i}") for i in range(5)])
        log = await stub.history()
        assert log[:2] == ["constructor in", "constructor out"] and len(log) == 7


async def test_events_are_delivered_in_the_order_they_arrive(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.bcw_section, "hold")  # queue up behind the gate
            await trio.testing.wait_all_tasks_blocked()
            for i in range(10):
                nursery.start_soon(stub.mark, str(i))
                await trio.testing.wait_all_tasks_blocked()  # fixes the arrival order
        assert await stub.history() == ["hold in", "hold out", *map(str, range(10))]


async def test_awaiting_a_timer_lets_other_events_in(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"G": Gated}) as rt:
        stub = rt.env.G.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.sleeper, "s")
            await trio.testing.wait_all_tasks_blocked()
            await stub.mark("m")
        assert await stub.history() == ["s in", "m", "s out"]


async def test_awaiting_another_object_lets_other_events_in(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"G": Gated, "OTHER": Other}) as rt:
        stub = rt.env.G.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.call_other, "c")
            await trio.testing.wait_all_tasks_blocked()
            await stub.mark("m")
        assert await stub.history() == ["c in", "m", "c out"]
