"""Hibernation: the sync object leaves memory while its sockets stay connected, and nothing is lost.

Time is fake (``autojump_clock``): the object's idle timeout (workerd's 10 s)
passes without waiting. LiveStore's own test idles 20 s and probes
``/instance/sync``; a store probed every 3 s must keep its instance.
"""

from __future__ import annotations

import json

import trio
from conftest import STORE, event

PROBE = f"http://sync.example/instance/sync?storeId={STORE}"


async def probe(dohost):
    return await (await dohost.fetch(PROBE)).json()


async def test_an_idle_store_is_rebuilt_while_its_pullers_stay_connected_and_still_get_pushes(dohost, connect, autojump_clock):
    idle, listener = await connect(), await connect()
    live_id, _ = await listener.pull_live()
    before = await probe(dohost)
    assert before["webSocketCount"] == 2

    await trio.sleep(20)  # LiveStore's idle window; the object evicts after ~10 s
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)
    assert dohost.statistics(stub).state == "hibernated"

    await idle.ws.send('{"_tag":"Ping"}')  # the auto-response answers; the object stays asleep
    assert await idle.ws.receive() == '{"_tag":"Pong"}'
    assert dohost.statistics(stub).state == "hibernated"

    after = await probe(dohost)
    assert after["instanceId"] != before["instanceId"]
    assert after["webSocketCount"] == 2

    pusher = await connect()
    assert (await pusher.push([event(1)]))["_tag"] == "Success"
    assert await listener.live_values(live_id, 1) == [event(1)]  # the live pull id survived in the attachment


async def test_a_store_probed_every_three_seconds_keeps_its_instance(dohost, connect, autojump_clock):
    await connect()
    first = await probe(dohost)
    for _ in range(8):
        await trio.sleep(3)
        assert (await probe(dohost))["instanceId"] == first["instanceId"]


async def test_only_live_pull_ids_are_kept_in_the_attachment_and_interrupt_removes_them(dohost, connect):
    client = await connect()
    await client.pull()  # not live: ends with an Exit, leaves no trace
    live_id, _ = await client.pull_live()
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)

    async def pull_ids():
        return await dohost.run_in_durable_object(
            stub, lambda instance, ctx: json.loads(ctx.getWebSockets()[0].deserializeAttachment())["pullRequestIds"]
        )

    assert await pull_ids() == [live_id]
    await client.ws.send(json.dumps({"_tag": "Interrupt", "requestId": live_id}))
    assert await client.frame() == {
        "_tag": "Exit", "requestId": live_id,
        "exit": {"_tag": "Failure", "cause": {"_tag": "Interrupt", "fiberId": {"_tag": "None"}}},
    }
    assert await pull_ids() == []
    assert (await client.push([event(1)]))["_tag"] == "Success"
    assert client.live == {}  # no chunk for the interrupted pull


async def test_the_attachment_stays_within_16_kib_and_a_refused_live_pull_leaves_the_socket_working(dohost, connect):
    client = await connect()
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)

    def fill(instance, ctx):  # live pulls that came before, up to a few bytes short of the limit
        ws = ctx.getWebSockets()[0]
        ids: list[str] = []
        while len(json.dumps({"storeId": STORE, "pullRequestIds": ids}, separators=(",", ":"))) < 16_300:
            ids.append(f"old-{len(ids):06d}")
        ws.serializeAttachment(json.dumps({"storeId": STORE, "pullRequestIds": ids[:-1]}, separators=(",", ":")))

    await dohost.run_in_durable_object(stub, fill)
    refused = None
    for _ in range(100):
        request_id = await client.send_request(
            "SyncWsRpc.Pull", {"storeId": STORE, "live": True, "cursor": {"_tag": "None"}}
        )
        frame = await client.frame()
        if frame["_tag"] == "Chunk":  # accepted: phase 1 (one empty NoMore), then the pull stays open
            continue
        refused = frame
        break
    assert refused is not None and refused["requestId"] == request_id
    error = refused["exit"]["cause"]["error"]
    assert error["_tag"] == "UnknownError" and "16384" in error["cause"]["message"]
    assert (await client.push([event(1)]))["_tag"] == "Success"


async def test_a_bad_attachment_closes_the_socket_with_1011(dohost, connect):
    client = await connect()
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)
    await dohost.run_in_durable_object(stub, lambda instance, ctx: ctx.getWebSockets()[0].serializeAttachment("{oops"))
    await client.ws.send(json.dumps({"_tag": "Request", "id": "1", "tag": "SyncWsRpc.Pull", "headers": [],
                                     "payload": {"storeId": STORE, "live": False, "cursor": {"_tag": "None"}}}))
    try:
        await client.ws.receive()
    except ConnectionError:
        pass
    assert (client.ws.close_code, client.ws.close_reason) == (1011, "invalid-attachment")
