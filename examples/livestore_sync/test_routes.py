"""The Worker's answers, as LiveStore's ``makeWorker`` gives them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from entry import INFO_TEXT, Default
from workers import Request


async def test_get_root_answers_the_info_text(dohost):
    response = await dohost.fetch("http://sync.example/")
    assert response.status == 200
    assert await response.text() == INFO_TEXT
    assert response.headers.get("Content-Type") == "text/plain"


@pytest.mark.parametrize("url", ["http://sync.example/nope", "http://sync.example/sync?storeId=s", "http://sync.example/sync?storeId=s&transport=carrier-pigeon"])
async def test_other_paths_get_400_invalid_path(dohost, url):
    response = await dohost.fetch(url)
    assert (response.status, await response.text()) == (400, "Invalid path")


@pytest.mark.parametrize("payload", ["%7Bnot-json", "%E0%A4%A", "%zz"])
async def test_a_bad_payload_on_the_sync_path_gets_400_as_a_plain_request_and_as_a_handshake(dohost, payload):
    url = f"http://sync.example/sync?storeId=s&transport=http&payload={payload}"
    response = await dohost.fetch(url, method="POST", body="{}")
    assert (response.status, await response.text()) == (400, "Invalid path")
    handshake = await dohost.fetch(
        url.replace("transport=http", "transport=ws"), headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )
    assert (handshake.status, await handshake.text()) == (400, "Invalid path")
    assert dohost.list_object_ids("SYNC_BACKEND_DO") == []


async def test_transport_ws_without_upgrade_gets_426(dohost):
    response = await dohost.fetch("http://sync.example/sync?storeId=s&transport=ws")
    assert (response.status, await response.text()) == (426, "Durable Object expected Upgrade: websocket")


async def test_options_gets_204_with_cors_headers_when_the_example_enables_cors(dohost):
    response = await dohost.fetch(
        "http://sync.example/sync?storeId=s&transport=http", method="OPTIONS",
        headers={"Access-Control-Request-Headers": "x-livestore-store-id"},
    )
    assert response.status == 204
    assert response.headers.get("Access-Control-Allow-Origin") == "*"
    assert response.headers.get("Access-Control-Allow-Methods") == "GET, POST, OPTIONS"
    assert response.headers.get("Access-Control-Allow-Headers") == "x-livestore-store-id"


def worker(**env):
    return Default(SimpleNamespace(), SimpleNamespace(**env))


async def test_without_cors_options_gets_400_as_livestores_default_does():
    response = await worker(SYNC_BACKEND_DO=object()).fetch(Request("http://sync.example/", method="OPTIONS"))
    assert (response.status, await response.text()) == (400, "Invalid path")


async def test_a_missing_binding_gets_424():
    response = await worker().fetch(Request("http://sync.example/sync?storeId=s&transport=http", method="POST"))
    assert response.status == 424
    assert await response.text() == "Failed dependency: Required Durable Object binding 'SYNC_BACKEND_DO' not available"


async def test_the_instance_probe_names_the_instance_and_counts_its_sockets(dohost, connect):
    await connect("probe")
    await connect("probe")
    first = await (await dohost.fetch("http://sync.example/instance/sync?storeId=probe")).json()
    second = await (await dohost.fetch("http://sync.example/instance/sync?storeId=probe")).json()
    assert first["webSocketCount"] == 2
    assert first["instanceId"] == second["instanceId"]
    assert len(first["instanceId"]) == 36


async def test_http_transport_pings_pushes_and_pulls(dohost, connect):
    url = "http://sync.example/sync?storeId=h&transport=http"

    async def rpc(tag, payload, request_id="1"):
        body = json.dumps({"_tag": "Request", "id": request_id, "tag": tag, "payload": payload, "headers": []})
        response = await dohost.fetch(url, method="POST", body=body, headers={"x-livestore-store-id": "h"})
        assert response.status == 200
        assert response.headers.get("Content-Type") == "application/json"
        return await response.json()

    assert await rpc("SyncHttpRpc.Ping", {"storeId": "h"}) == [
        {"_tag": "Exit", "requestId": "1", "exit": {"_tag": "Success", "value": {"_tag": "SyncMessage.Pong"}}}
    ]
    live = await connect("h")
    live_id, _ = await live.pull_live()
    event = {"name": "e", "args": {"n": 1}, "seqNum": 1, "parentSeqNum": 0, "clientId": "c", "sessionId": "s"}
    pushed = await rpc("SyncHttpRpc.Push", {"storeId": "h", "batch": [event], "backendId": {"_tag": "None"}}, "2")
    assert pushed == [{"_tag": "Exit", "requestId": "2", "exit": {"_tag": "Success", "value": {}}}]
    assert await live.live_values(live_id, 1) == [event]  # an HTTP push reaches WebSocket pullers

    pulled = await rpc("SyncHttpRpc.Pull", {"storeId": "h", "cursor": {"_tag": "None"}}, "3")
    assert [m["_tag"] for m in pulled] == ["Chunk", "Exit"]
    assert pulled[0]["values"][0]["batch"][0]["eventEncoded"] == event
    assert pulled[1]["exit"] == {"_tag": "Success"}


async def test_the_payload_is_uri_encoded_json_inside_the_query_and_lands_in_the_attachment(dohost):
    from urllib.parse import quote

    payload = {"authToken": "a b/ü&=", "n": 1}
    # The client's SearchParamsSchema: encodeURIComponent(JSON), then URL query encoding.
    query = quote(quote(json.dumps(payload), safe=""), safe="")
    await dohost.connect_websocket(f"ws://sync.example/sync?storeId=p&transport=ws&payload={query}")
    stub = dohost.env.SYNC_BACKEND_DO.getByName("p")
    attachment = await dohost.run_in_durable_object(
        stub, lambda instance, ctx: json.loads(ctx.getWebSockets()[0].deserializeAttachment())
    )
    assert attachment == {"storeId": "p", "pullRequestIds": [], "payload": payload}
