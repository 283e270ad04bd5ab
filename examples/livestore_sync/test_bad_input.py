"""Bad input gets the errors Effect RPC and LiveStore give, and changes nothing."""

from __future__ import annotations

import json

import pytest
from conftest import STORE, event, none

PULL = {"storeId": STORE, "live": True, "cursor": none()}


def request(tag="SyncWsRpc.Push", payload=None, request_id="7"):
    body = {"storeId": STORE, "batch": [event(1)], "backendId": none()} if payload is None else payload
    return json.dumps({"_tag": "Request", "id": request_id, "tag": tag, "payload": body, "headers": []})


async def state(dohost):
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)

    def read(instance, ctx):
        log = instance._open(STORE)
        attachments = [ws.deserializeAttachment() for ws in ctx.getWebSockets()]
        return log.head, log.count_after(None), attachments

    return await dohost.run_in_durable_object(stub, read)


BAD_FRAMES = [
    ("{not json", {"_tag": "Defect", "defect": {"name": "SyntaxError"}}),
    ('["Request"]', {"_tag": "Defect", "defect": "Unknown request tag: undefined"}),
    ('{"_tag":"Shout"}', {"_tag": "Defect", "defect": "Unknown request tag: Shout"}),
    (request(tag="SyncWsRpc.Reset"), {"_tag": "Defect", "defect": "Unknown request tag: SyncWsRpc.Reset"}),
    (request(tag="SyncHttpRpc.Ping"), {"_tag": "Defect", "defect": "Unknown request tag: SyncHttpRpc.Ping"}),
    (request(request_id=7), {"_tag": "Defect", "defect": "Invalid request id: 7"}),
    (request(request_id="seven"), {"_tag": "Defect", "defect": "Invalid request id: seven"}),
    ('{"_tag":"Interrupt"}', {"_tag": "Defect", "defect": "Invalid request id: undefined"}),
]


@pytest.mark.parametrize("frame, reply", BAD_FRAMES, ids=[f[:24] for f, _ in BAD_FRAMES])
async def test_malformed_envelopes_and_unknown_tags_get_a_defect_and_change_nothing(dohost, connect, frame, reply):
    client = await connect()
    live_id, _ = await client.pull_live()
    before = await state(dohost)
    await client.ws.send(frame)
    answer = await client.frame()
    if isinstance(reply["defect"], dict):
        assert answer["_tag"] == "Defect" and answer["defect"]["name"] == reply["defect"]["name"]
        assert answer["defect"]["message"].startswith("Invalid JSON")
    else:
        assert answer == reply
    assert await state(dohost) == before
    assert (await client.push([event(1)]))["_tag"] == "Success"  # the socket still works
    assert await client.live_values(live_id, 1) == [event(1)]


BAD_PAYLOADS = [
    ("SyncWsRpc.Push", {"storeId": STORE, "batch": [event(1)]}, '["backendId"]'),
    ("SyncWsRpc.Push", {"storeId": STORE, "batch": [{**event(1), "seqNum": "1"}], "backendId": none()}, '["batch"][0]["seqNum"]'),
    ("SyncWsRpc.Push", {"storeId": STORE, "batch": [{**event(1), "seqNum": 1.5}], "backendId": none()}, '["batch"][0]["seqNum"]'),
    ("SyncWsRpc.Push", {"storeId": STORE, "batch": [{k: v for k, v in event(1).items() if k != "clientId"}], "backendId": none()}, '["clientId"]'),
    ("SyncWsRpc.Push", {"storeId": 5, "batch": [], "backendId": none()}, '["storeId"]'),
    ("SyncWsRpc.Push", [], "expected an object"),
    ("SyncWsRpc.Pull", {"storeId": STORE, "cursor": none()}, '["live"]'),
    ("SyncWsRpc.Pull", {"storeId": STORE, "live": True, "cursor": {"_tag": "Some", "value": {"backendId": "b"}}}, '["eventSequenceNumber"]'),
    ("SyncWsRpc.Pull", {"storeId": STORE, "live": True, "cursor": None}, '["cursor"]'),
]


@pytest.mark.parametrize("tag, payload, where", BAD_PAYLOADS)
async def test_a_payload_failing_the_schema_gets_a_dying_exit_and_changes_nothing(dohost, connect, tag, payload, where):
    client = await connect()
    await client.pull()
    before = await state(dohost)
    await client.ws.send(request(tag=tag, payload=payload))
    answer = await client.frame()
    assert answer["_tag"] == "Exit" and answer["requestId"] == "7"
    cause = answer["exit"]["cause"]
    assert cause["_tag"] == "Die" and cause["defect"].startswith(f"{tag} payload: ") and where in cause["defect"]
    assert await state(dohost) == before


async def test_a_wrong_store_id_gets_unknown_error_and_writes_nowhere(dohost, connect):
    client = await connect()
    live_id, _ = await client.pull_live()
    before = await state(dohost)
    await client.ws.send(request(payload={"storeId": "someone-else", "batch": [event(1)], "backendId": none()}))
    error = (await client.frame())["exit"]["cause"]["error"]
    assert error["_tag"] == "UnknownError" and error["note"] == "wrong storeId"
    await client.ws.send(request(tag="SyncWsRpc.Pull", payload={**PULL, "storeId": "someone-else"}, request_id="8"))
    assert (await client.frame())["exit"]["cause"]["error"]["note"] == "wrong storeId"
    assert await state(dohost) == before
    assert dohost.list_object_ids("SYNC_BACKEND_DO") == [dohost.env.SYNC_BACKEND_DO.idFromName(STORE)]


async def test_an_oversized_frame_is_refused_whole(dohost, connect):
    client = await connect()
    before = await state(dohost)
    batch = [event(seq, args={"blob": "y" * 300_000}) for seq in range(1, 5)]  # 1.2 MB, the last event too big together
    batch[3]["args"] = {"blob": "z" * 950_000}
    assert (await client.push(batch))["cause"]["error"]["cause"]["name"] == "OversizeChunkItemError"
    assert await state(dohost) == before


async def test_a_batch_whose_sequence_numbers_do_not_increase_is_refused_whole(dohost, connect):
    client = await connect()
    before = await state(dohost)
    error = (await client.push([event(1), event(3, 1), event(2, 1)]))["cause"]["error"]
    assert error["_tag"] == "UnknownError" and error["note"] == "bad batch"
    assert await state(dohost) == before


async def test_ack_and_eof_need_no_answer_and_change_nothing(dohost, connect):
    client = await connect()
    await client.pull_live()
    before = await state(dohost)
    await client.ws.send('{"_tag":"Ack","requestId":"0"}')
    await client.ws.send('{"_tag":"Eof"}')
    await client.ws.send('{"_tag":"Ping"}')
    assert await client.frame() == {"_tag": "Pong"}
    assert client.ws.receive_nowait() is None
    assert await state(dohost) == before


async def test_bad_http_bodies_get_the_same_errors_in_a_json_array(dohost):
    url = f"http://sync.example/sync?storeId={STORE}&transport=http"
    for body, expected in [
        ("", "SyntaxError"),
        ('{"_tag":"Request","id":"1","tag":"SyncWsRpc.Push","payload":{},"headers":[]}', "Unknown request tag: SyncWsRpc.Push"),
    ]:
        response = await dohost.fetch(url, method="POST", body=body)
        (answer,) = await response.json()
        assert answer["_tag"] == "Defect"
        assert expected in json.dumps(answer["defect"])


async def test_a_storage_failure_fails_the_request_with_unknown_error_and_the_socket_lives_on(dohost, connect):
    client = await connect()
    await client.pull()
    stub = dohost.env.SYNC_BACKEND_DO.getByName(STORE)
    await dohost.run_in_durable_object(stub, lambda instance, ctx: ctx.storage.sql.exec('DROP TABLE "eventlog_7_store_1"'))
    error = (await client.push([event(1)]))["cause"]["error"]
    assert error["_tag"] == "UnknownError" and "no such table" in error["cause"]["message"]
    assert error["payload"] == {"dbName": "eventlog_7_store_1", "stage": "insert"}
    _, exit_ = await client.pull()
    assert exit_["cause"]["error"]["_tag"] == "UnknownError"
    await client.ws.send('{"_tag":"Ping"}')
    assert await client.frame() == {"_tag": "Pong"}


async def test_a_numeric_request_id_in_an_interrupt_is_read_as_effect_reads_it(dohost, connect):
    client = await connect()
    live_id, _ = await client.pull_live()
    await client.ws.send(json.dumps({"_tag": "Interrupt", "requestId": int(live_id)}))
    assert (await client.frame())["requestId"] == live_id
    assert (await state(dohost))[2] == [json.dumps({"storeId": STORE, "pullRequestIds": []}, separators=(",", ":"))]
