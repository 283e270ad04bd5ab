"""ctx.storage's async API inside a live object: eager calls, options, transactions, sync()."""

from __future__ import annotations

import pytest
import trio

from objects import DurableObject
from runtime import open_runtime


class Store(DurableObject):
    def put_without_await(self, key, value):
        self.ctx.storage.put(key, value)  # never awaited: still done
        self.ctx.storage.put({"m1": 1, "m2": 2})
        self.ctx.storage.delete("gone")
        return "ok"

    async def put_awaited(self, key, value):
        await self.ctx.storage.put(key, value)

    async def get(self, key):
        return await self.ctx.storage.get(key)

    async def get_many(self, keys):
        return await self.ctx.storage.get(keys)

    async def with_options(self):
        s = self.ctx.storage
        await s.put("a1", 1, {"allowUnconfirmed": True})
        await s.put({"a2": 2, "b1": 3}, {"noCache": True})
        got = await s.get("a1", {"allowConcurrency": True})
        listed = await s.list({"prefix": "a"})
        listed_kw = await s.list(prefix="a", reverse=True, limit=1)
        deleted = await s.delete("b1", {"allowUnconfirmed": True})
        return [got, listed, listed_kw, deleted]

    async def delete_many(self, keys):
        return await self.ctx.storage.delete(keys)

    async def txn(self, mode):
        s = self.ctx.storage

        async def body(txn):
            await txn.put("t1", "in txn")
            s.sql.exec("CREATE TABLE IF NOT EXISTS t (v)")
            s.sql.exec("INSERT INTO t VALUES ('row')")
            await trio.sleep(0)  # an await inside transaction() keeps the gate
            await txn.put("t2", await txn.get("t1"))
            if mode == "raise":
                raise ValueError("txn body failed")
            if mode == "rollback":
                txn.rollback()
            return "body result"

        try:
            result = await s.transaction(body)
        except ValueError as exc:
            result = f"raised: {exc}"
        rows = s.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").one()["n"]
        return [result, await s.get("t1"), await s.get("t2"), rows]

    def txn_sync(self, fail):
        s = self.ctx.storage

        def body():
            s.kv.put("s1", 1)
            s.put("s2", 2)
            if fail:
                raise KeyError("sync body failed")
            return "sync result"

        try:
            result = s.transactionSync(body)
        except KeyError:
            result = "raised"
        return [result, s.kv.get("s1"), s.kv.get("s2")]

    async def fill_then_delete_all(self):
        s = self.ctx.storage
        await s.put("k", "v")
        s.sql.exec("CREATE TABLE IF NOT EXISTS stuff (v)")
        await s.setAlarm(4_102_444_800_000)
        await s.deleteAll()
        tables = s.sql.exec("SELECT name FROM sqlite_master WHERE name = 'stuff'").toArray()
        return [await s.get("k"), tables, await s.getAlarm(), await s.list()]

    async def write_then_sync(self):
        self.ctx.storage.kv.put("synced", True)
        self.env.LOG.append(("sync called", "S"))
        await self.ctx.storage.sync()
        self.env.LOG.append(("sync returned", "S"))

    async def alarm(self, info):
        pass


async def test_async_storage_methods_take_effect_without_await() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        stub = rt.env.S.getByName("a")
        await stub.put_awaited("gone", 1)
        assert await stub.put_without_await("k", [1, 2]) == "ok"
        assert await stub.get("k") == [1, 2]
        assert await stub.get("gone") is None
        assert await stub.get_many(["m1", "m2", "nope"]) == {"m1": 1, "m2": 2}


async def test_async_storage_methods_accept_an_options_dict() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        got, listed, listed_kw, deleted = await rt.env.S.getByName("a").with_options()
        assert got == 1
        assert listed == {"a1": 1, "a2": 2}
        assert listed_kw == {"a2": 2}
        assert deleted is True


async def test_delete_of_many_keys_returns_the_count_deleted() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        stub = rt.env.S.getByName("a")
        await stub.put_awaited("x", 1)
        await stub.put_awaited("y", 1)
        assert await stub.delete_many(["x", "y", "z"]) == 2


async def test_transaction_commits_when_its_callback_returns() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        assert await rt.env.S.getByName("a").txn("commit") == ["body result", "in txn", "in txn", 1]


async def test_transaction_rolls_back_kv_and_sql_when_its_callback_raises() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        assert await rt.env.S.getByName("a").txn("raise") == ["raised: txn body failed", None, None, 0]


async def test_txn_rollback_discards_the_transaction_and_returns_the_callbacks_value() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        assert await rt.env.S.getByName("a").txn("rollback") == ["body result", None, None, 0]


async def test_transaction_sync_commits_or_rolls_back() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        stub = rt.env.S.getByName("a")
        assert await stub.txn_sync(True) == ["raised", None, None]
        assert await stub.txn_sync(False) == ["sync result", 1, 2]


async def test_delete_all_wipes_kv_sql_and_the_alarm() -> None:
    async with open_runtime(bindings={"S": Store}) as rt:
        assert await rt.env.S.getByName("a").fill_then_delete_all() == [None, [], None, {}]


async def test_sync_returns_once_earlier_writes_are_committed(call_log) -> None:
    log = call_log.calls
    async with open_runtime(bindings={"S": Store}, vars={"LOG": log}, observer=call_log) as rt:
        stub = rt.env.S.getByName("a")
        await stub.get("warm")
        log.clear()
        await stub.write_then_sync()
        assert log == [("sync called", "S"), ("commit", "S"), ("sync returned", "S")]


async def test_writes_persist_across_a_restart(data_dir) -> None:
    async with open_runtime(bindings={"S": Store}, data_dir=data_dir) as rt:
        await rt.env.S.getByName("a").put_awaited("k", {"nested": [1, 2.5, None]})
    async with open_runtime(bindings={"S": Store}, data_dir=data_dir) as rt:
        assert await rt.env.S.getByName("a").get("k") == {"nested": [1, 2.5, None]}


@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_both_durabilities_store_the_same_data(durability: str, data_dir) -> None:
    async with open_runtime(bindings={"S": Store}, data_dir=data_dir, durability=durability) as rt:
        await rt.env.S.getByName("a").put_awaited("k", durability)
    async with open_runtime(bindings={"S": Store}, data_dir=data_dir) as rt:
        assert await rt.env.S.getByName("a").get("k") == durability
