"""Push and pull semantics, and LiveStore's own sync-provider expectations translated to Python.

Clients are in process (``dohost.connect_websocket``) and speak the frames
the released client sends; see ``conftest.py``.
"""

from __future__ import annotations

import json

import trio
from conftest import STORE, event, events_of, none, some

SERVER_AHEAD = "ServerAheadError"


def failure(exit_):
    assert exit_["_tag"] == "Failure", exit_
    return exit_["cause"]["error"]


async def head_and_count(dohost, store=STORE):
    stub = dohost.env.SYNC_BACKEND_DO.getByName(store)

    def read(instance, ctx):
        log = instance._open(store)
        return log.head, log.count_after(None)

    return await dohost.run_in_durable_object(stub, read)


async def test_a_pull_on_a_fresh_store_is_exactly_one_empty_no_more(connect):
    client = await connect()
    values, exit_ = await client.pull()
    assert exit_ == {"_tag": "Success"}
    assert len(values) == 1
    assert values[0]["batch"] == [] and values[0]["pageInfo"] == {"_tag": "NoMore"}
    assert isinstance(values[0]["backendId"], str) and len(values[0]["backendId"]) == 21


async def test_a_pull_from_the_head_is_exactly_one_empty_no_more(connect):
    client = await connect()
    await client.pull()
    assert await client.push([event(1)]) == {"_tag": "Success", "value": {}}
    values, _ = await client.pull(1)
    assert [(v["batch"], v["pageInfo"]) for v in values] == [([], {"_tag": "NoMore"})]


async def test_a_live_pull_gets_a_push_as_one_batch_and_the_pusher_its_echo_before_its_ack(connect):
    listener, pusher = await connect(), await connect()
    live_id, phase1 = await listener.pull_live()
    assert [(v["batch"], v["pageInfo"]) for v in phase1] == [([], {"_tag": "NoMore"})]
    echo_id, _ = await pusher.pull_live()

    request_id = await pusher.send_request(
        "SyncWsRpc.Push", {"storeId": STORE, "batch": [event(1)], "backendId": none()}
    )
    echo = await pusher.frame()
    ack = await pusher.frame()
    assert echo["_tag"] == "Chunk" and echo["requestId"] == echo_id
    assert ack == {"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Success", "value": {}}}

    assert await listener.live_values(live_id, 1) == [event(1)]
    (response,) = listener.live[live_id]
    assert response["pageInfo"] == {"_tag": "NoMore"}
    metadata = response["batch"][0]["metadata"]
    assert metadata["_tag"] == "Some" and metadata["value"]["_tag"] == "SyncMessage.SyncMetadata"
    assert metadata["value"]["createdAt"].endswith("Z")


async def test_a_stale_push_gets_server_ahead_and_stores_nothing(dohost, connect):
    client = await connect()
    await client.push([event(1), event(2)])
    error = failure(await client.push([event(1, 0, client="other")]))
    assert error == {"_tag": SERVER_AHEAD, "minimumExpectedNum": 2, "providedNum": 0}
    error = failure(await client.push([event(5, 4)]))
    assert error == {"_tag": SERVER_AHEAD, "minimumExpectedNum": 2, "providedNum": 4}
    assert await head_and_count(dohost) == (2, 2)


async def test_an_empty_push_is_acknowledged_and_changes_nothing(dohost, connect):
    client = await connect()
    assert await client.push([]) == {"_tag": "Success", "value": {}}
    assert await head_and_count(dohost) == (0, 0)


async def test_eight_racing_pushes_on_one_parent_give_one_success_and_seven_server_ahead(dohost, connect):
    clients = [await connect() for _ in range(8)]
    results = []

    async def push(i):
        results.append(await clients[i].push([event(1, 0, client=f"client-{i}")]))

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(push, i)
    successes = [r for r in results if r["_tag"] == "Success"]
    errors = [failure(r) for r in results if r["_tag"] == "Failure"]
    assert len(successes) == 1
    assert errors == [{"_tag": SERVER_AHEAD, "minimumExpectedNum": 1, "providedNum": 0}] * 7
    values, _ = await clients[0].pull()
    assert len(events_of(values)) == 1


async def test_ten_thousand_events_in_batches_of_a_hundred_come_back_in_order_in_pages(connect):
    client = await connect()
    first = 20000  # gaps are allowed: LiveStore's test starts at 20000 on the root
    parent = 0
    for start in range(first, first + 10_000, 100):
        batch = [event(seq, parent if seq == start else seq - 1, args={"i": seq}) for seq in range(start, start + 100)]
        parent = batch[-1]["seqNum"]
        assert (await client.push(batch))["_tag"] == "Success"

    values, _ = await client.pull()
    assert [e["seqNum"] for e in events_of(values)] == list(range(first, first + 10_000))
    assert all(len(v["batch"]) <= 100 for v in values)
    # Pages of 256 rows are cut into messages of 100, 100 and 56.
    assert [len(v["batch"]) for v in values[:4]] == [100, 100, 56, 100]
    remaining = [v["pageInfo"].get("remaining", 0) for v in values]
    assert remaining[0] == 9_900 and remaining[-1] == 0 and values[-1]["pageInfo"] == {"_tag": "NoMore"}
    assert all(v["pageInfo"]["_tag"] == "MoreKnown" for v in values[:-1])

    middle = first + 4_999
    values, _ = await client.pull(middle)
    assert [e["seqNum"] for e in events_of(values)] == list(range(middle + 1, first + 10_000))


async def test_large_and_many_small_events_arrive_with_zero_loss_in_messages_under_900_kb(connect):
    for store, count, size, per_push in (("few-large", 60, 120_000, 6), ("many-small", 1_800, 1_024, 90)):
        client = await connect(store)
        for start in range(1, count + 1, per_push):
            batch = [event(seq, args={"blob": "x" * size}) for seq in range(start, start + per_push)]
            assert (await client.push(batch))["_tag"] == "Success"
        values, _ = await client.pull()
        assert [e["seqNum"] for e in events_of(values)] == list(range(1, count + 1))
        assert all(len(e["args"]["blob"]) == size for e in events_of(values))
        assert all(len(json.dumps(v, separators=(",", ":")).encode()) <= 900_000 for v in values)
        assert len([v for v in values if v["batch"]]) > 1


async def test_an_event_over_900_kb_is_refused_and_nothing_is_stored(dohost, connect):
    client = await connect()
    await client.push([event(1)])
    error = failure(await client.push([event(2, args={"blob": "x" * 900_000}), event(3)]))
    assert error["_tag"] == "UnknownError"
    assert error["cause"]["name"] == "OversizeChunkItemError"
    assert await head_and_count(dohost) == (1, 1)
    assert (await client.push([event(2)]))["_tag"] == "Success"


async def test_concurrent_pulls_during_sequential_pushes_each_see_an_ordered_prefix(connect):
    pusher = await connect()
    pullers = [await connect() for _ in range(4)]
    seen: list[list[int]] = []

    async def pull_repeatedly(client):
        for _ in range(10):
            values, exit_ = await client.pull()
            assert exit_ == {"_tag": "Success"}
            seen.append([e["seqNum"] for e in events_of(values)])
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for client in pullers:
            nursery.start_soon(pull_repeatedly, client)
        for seq in range(1, 41):
            assert (await pusher.push([event(seq)]))["_tag"] == "Success"
            await trio.sleep(0)
    assert all(s == list(range(1, len(s) + 1)) for s in seen)
    final, _ = await pullers[0].pull()
    assert [e["seqNum"] for e in events_of(final)] == list(range(1, 41))


async def test_a_hundred_websocket_clients_on_one_store_each_receive_every_event(connect):
    listeners = [await connect() for _ in range(100)]
    live_ids = [(await c.pull_live())[0] for c in listeners]
    pusher = await connect()
    for seq in range(1, 11):
        assert (await pusher.push([event(seq)]))["_tag"] == "Success"
    for client, live_id in zip(listeners, live_ids):
        assert [e["seqNum"] for e in await client.live_values(live_id, 10)] == list(range(1, 11))


async def test_backend_id_mismatch_keeps_its_fields_for_a_foreign_cursor_and_a_foreign_push(dohost, connect):
    client = await connect()
    await client.pull()
    foreign = some({"backendId": "not-this-backend", "eventSequenceNumber": 0})
    _, exit_ = await client.pull(cursor=foreign)
    assert failure(exit_) == {"_tag": "BackendIdMismatchError", "expected": client.backend_id, "received": "not-this-backend"}
    error = failure(await client.push([event(1)], backend_id=some("not-this-backend")))
    assert error == {"_tag": "BackendIdMismatchError", "expected": client.backend_id, "received": "not-this-backend"}
    assert await head_and_count(dohost) == (0, 0)


async def test_a_client_whose_ack_was_lost_re_pulls_retries_and_carries_on(dohost, connect):
    # LiveStore issue #1462: the push was stored, but the client never saw the ack.
    client = await connect()
    await client.pull()
    await client.ws.send(json.dumps({"_tag": "Request", "id": "9", "tag": "SyncWsRpc.Push", "headers": [],
                                     "payload": {"storeId": STORE, "batch": [event(1), event(2)], "backendId": none()}}))
    await client.ws.close(1006, "connection lost")

    again = await connect()
    again.backend_id = client.backend_id
    values, _ = await again.pull(None)  # the re-pull brings its own events back
    assert [e["seqNum"] for e in events_of(values)] == [1, 2]
    assert await again.push([event(1), event(2)]) == {"_tag": "Success", "value": {}}  # the retry is recognised
    assert await again.push([event(3)]) == {"_tag": "Success", "value": {}}
    assert await head_and_count(dohost) == (3, 3)


async def test_a_dohost_restart_between_push_and_pull_loses_nothing(tmp_path):
    from pathlib import Path

    from runtime import open_runtime
    from workers import Request

    config = Path(__file__).with_name("wrangler.toml")
    url = "http://sync.example/sync?storeId=r&transport=http"

    async def rpc(rt, tag, payload):
        body = json.dumps({"_tag": "Request", "id": "1", "tag": tag, "payload": payload, "headers": []})
        return await (await rt.fetch(Request(url, method="POST", body=body))).json()

    async with open_runtime(config=config, data_dir=tmp_path) as rt:
        batch = [event(1), event(2)]
        assert (await rpc(rt, "SyncHttpRpc.Push", {"storeId": "r", "batch": batch, "backendId": none()}))[0]["exit"]["_tag"] == "Success"
    async with open_runtime(config=config, data_dir=tmp_path) as rt:
        pulled = await rpc(rt, "SyncHttpRpc.Pull", {"storeId": "r", "cursor": none()})
    assert [item["eventEncoded"] for item in pulled[0]["values"][0]["batch"]] == batch
