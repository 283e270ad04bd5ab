"""Cloudflare's messages for storage misuse inside a live object: transactions and put().

The checks run inside the object through ``rt.run_in_object`` so that the
exception is the one user code sees (over RPC it would arrive as a remote copy).
"""

from __future__ import annotations

import re

import pytest

from objects import DurableObject
from persistence import StorageError, TransactionError
from runtime import open_runtime


def _inside(rt, method, *args):
    stub = rt.env.T.getByName("a")
    return rt.run_in_object("T", stub.id, lambda instance, ctx: getattr(instance, method)(*args))


class Txn(DurableObject):
    async def use_after(self, how, op):
        kept = {}

        async def body(txn):
            kept["txn"] = txn
            await txn.put("k", 1)
            if how == "rollback":
                txn.rollback()
                await _call(txn, op)

        await self.ctx.storage.transaction(body)
        if how == "commit":
            await _call(kept["txn"], op)

    async def delete_all_inside(self, via):
        async def body(txn):
            await txn.put("k", 1)
            target = txn if via == "txn" else self.ctx.storage
            await target.deleteAll()

        await self.ctx.storage.transaction(body)

    async def get(self, key):
        return await self.ctx.storage.get(key)

    def put_without_value(self):
        self.ctx.storage.put("k")

    def put_entries_with_value(self):
        self.ctx.storage.put({"a": 1}, 2)

    def transaction_needs_callable(self):
        return self.ctx.storage.transaction("not callable")

    async def alarm(self, info):
        pass


async def _call(txn, op):
    args = {"get": ("k",), "put": ("k", 2), "delete": ("k",), "list": (), "rollback": (),
            "getAlarm": (), "setAlarm": (4_102_444_800_000,), "deleteAlarm": ()}[op]  # fmt: skip
    result = getattr(txn, op)(*args)
    if result is not None:
        await result


def _exactly(text: str) -> str:
    return rf"^{re.escape(text)}$"


@pytest.mark.parametrize("op", ["get", "put", "delete", "list", "getAlarm", "setAlarm", "deleteAlarm"])
async def test_using_a_rolled_back_transaction_uses_cloudflares_message(op: str) -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(TransactionError, match=_exactly(f"Cannot {op}() on rolled back transaction")):
            await _inside(rt, "use_after", "rollback", op)
        assert await stub.get("k") is None


@pytest.mark.parametrize("op", ["get", "put", "delete", "list", "rollback"])
async def test_using_a_committed_transaction_uses_cloudflares_message(op: str) -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        stub = rt.env.T.getByName("a")
        message = (
            f"Cannot call {op}() on transaction that has already committed: "
            "did you move `txn` outside of the closure?"
        )
        with pytest.raises(TransactionError, match=_exactly(message)):
            await _inside(rt, "use_after", "commit", op)
        assert await stub.get("k") == 1


@pytest.mark.parametrize("via", ["txn", "storage"])
async def test_delete_all_inside_a_transaction_uses_cloudflares_message(via: str) -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(StorageError, match=_exactly("Cannot call deleteAll() within a transaction")):
            await _inside(rt, "delete_all_inside", via)
        assert await stub.get("k") is None  # the transaction rolled back


async def test_put_without_a_value_uses_cloudflares_message() -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        with pytest.raises(TypeError, match=_exactly("put() called with undefined value.")):
            await _inside(rt, "put_without_value")


async def test_put_of_entries_with_a_value_uses_cloudflares_message() -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        message = (
            "put() may only be called with a single key-value pair and optional options as "
            "put(key, value, options) or with multiple key-value pairs and optional options as "
            "put(entries, options)"
        )
        with pytest.raises(TypeError, match=_exactly(message)):
            await _inside(rt, "put_entries_with_value")


async def test_transaction_needs_a_callable() -> None:
    async with open_runtime(bindings={"T": Txn}) as rt:
        with pytest.raises(TypeError, match=_exactly("transaction(): expected a callable, got str")):
            await _inside(rt, "transaction_needs_callable")
