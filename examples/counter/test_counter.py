"""Tests of the counter example, written as in any project using dohost's pytest plugin.

The ``dohost`` fixture builds a runtime from this folder's wrangler.toml
(pytest's rootdir), with fresh storage for every test.
"""

import trio


async def text(response):
    assert response.status == 200
    return await response.text()


async def test_each_name_is_its_own_counter(dohost):
    assert await text(await dohost.fetch("https://counter.example/a")) == "1"
    assert await text(await dohost.fetch("https://counter.example/a")) == "2"
    assert await text(await dohost.fetch("https://counter.example/b")) == "1"
    assert await text(await dohost.fetch("https://counter.example/a/get")) == "2"
    assert await text(await dohost.fetch("https://counter.example/never-touched/get")) == "0"


async def test_rpc_methods_are_called_on_a_stub(dohost):
    stub = dohost.env.COUNTER.getByName("rpc")
    assert await stub.increment(5) == 5
    assert await stub.increment() == 6
    assert await stub.get() == 6


async def test_concurrent_increments_are_all_counted(dohost):
    stub = dohost.env.COUNTER.getByName("busy")
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(stub.increment)
    assert await stub.get() == 50


async def test_the_count_survives_eviction(dohost):
    stub = dohost.env.COUNTER.getByName("a")
    await stub.increment(3)
    assert await dohost.evict(stub) is True
    assert dohost.statistics(stub).state == "evicted"
    assert await stub.increment() == 4  # a new instance, the same storage


async def test_storage_is_inspected_from_inside_the_object(dohost):
    stub = dohost.env.COUNTER.getByName("a")
    await stub.increment(7)

    def read(instance, ctx):
        return ctx.storage.sql.exec("SELECT name, value FROM counts").toArray()

    assert await dohost.run_in_durable_object(stub, read) == [{"name": "n", "value": 7}]
