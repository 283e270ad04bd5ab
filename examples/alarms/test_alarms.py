"""Tests of the alarm batcher example; time is fake (pytest-trio's ``autojump_clock``).

Under ``autojump_clock`` the runtime's clock (``Date.now()``, alarm times)
is trio's virtual clock: ``trio.sleep(11)`` lets the 10-second window pass
at once, and the alarm scheduler fires the alarm as it would in production.
"""

import trio
from js import Date

from entry import WINDOW_MS


async def queue(dohost, body):
    response = await dohost.fetch("https://batcher.example/", method="POST", body=body)
    assert response.status == 200
    return (await response.json())["queued"]


async def get_alarm(instance, ctx):
    return await ctx.storage.getAlarm()


async def alarm_and_now(instance, ctx):
    return await ctx.storage.getAlarm(), Date.now()


async def test_the_batch_flushes_when_the_alarm_fires(dohost, autojump_clock):
    stub = dohost.env.BATCHER.getByName("foo")
    assert [await queue(dohost, b) for b in ["a", "b", "c"]] == [1, 2, 3]

    alarm, now = await dohost.run_in_durable_object(stub, alarm_and_now)
    assert now < alarm <= now + WINDOW_MS  # set by the first request of the window
    await trio.sleep((alarm - now) / 1000 - 0.5)
    assert await stub.batches() == []  # half a second before the alarm: still queued

    await trio.sleep(1)
    assert await stub.batches() == [["a", "b", "c"]]

    # The next request opens a new window with a new alarm.
    assert await queue(dohost, "d") == 4
    await trio.sleep(WINDOW_MS / 1000 + 1)
    assert await stub.batches() == [["a", "b", "c"], ["d"]]


async def test_run_alarm_flushes_now_and_deletes_the_alarm(dohost, autojump_clock):
    stub = dohost.env.BATCHER.getByName("foo")
    await queue(dohost, "x")
    await queue(dohost, "y")

    assert await dohost.run_alarm(stub) is True
    assert await stub.batches() == [["x", "y"]]
    assert await dohost.run_in_durable_object(stub, get_alarm) is None
    assert await dohost.run_alarm(stub) is False  # nothing pending any more


async def test_the_queue_and_its_alarm_survive_eviction(dohost, autojump_clock):
    stub = dohost.env.BATCHER.getByName("foo")
    await queue(dohost, "before")
    assert await dohost.evict(stub) is True

    assert await queue(dohost, "after") == 2  # the constructor reloaded the count
    await trio.sleep(WINDOW_MS / 1000 + 1)  # the stored alarm fires for the new instance
    assert await stub.batches() == [["before", "after"]]
