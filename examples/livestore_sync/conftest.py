"""A small LiveStore sync client for the tests: the frames ``@livestore/sync-cf`` 0.4.0 sends, in process.

``SyncClient`` speaks the Effect RPC envelope over ``dohost.connect_websocket``
(no network): ``push`` returns the request's ``Exit``, ``pull`` the
``PullResponse`` values of one request. Frames for other requests (live pull
chunks) are kept in ``client.live`` by request id, in arrival order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

STORE = "store-1"


def event(seq: int, parent: int | None = None, *, name: str = "todoCreated-v1", args: Any = None, client: str = "client-a") -> dict[str, Any]:
    return {
        "name": name,
        "args": {"id": f"todo-{seq}", "text": f"item {seq}"} if args is None else args,
        "seqNum": seq,
        "parentSeqNum": seq - 1 if parent is None else parent,
        "clientId": client,
        "sessionId": "session-1",
    }


def none() -> dict[str, Any]:
    return {"_tag": "None"}


def some(value: Any) -> dict[str, Any]:
    return {"_tag": "Some", "value": value}


class SyncClient:
    def __init__(self, ws: Any, store_id: str) -> None:
        self.ws = ws
        self.store_id = store_id
        self.next_id = 0
        self.backend_id: str | None = None
        self.live: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.other: list[dict[str, Any]] = []

    async def send_request(self, tag: str, payload: dict[str, Any]) -> str:
        request_id = str(self.next_id)
        self.next_id += 1
        await self.ws.send(json.dumps({"_tag": "Request", "id": request_id, "tag": tag, "payload": payload, "headers": []}))
        return request_id

    async def frame(self) -> dict[str, Any]:
        return json.loads(await self.ws.receive())  # type: ignore[no-any-return]

    async def until_exit(self, request_id: str) -> tuple[list[Any], dict[str, Any]]:
        """Values of ``request_id``'s chunks, and its Exit; other frames go to ``live`` / ``other``."""
        values: list[Any] = []
        while True:
            frame = await self.frame()
            if frame.get("requestId") != request_id:
                self._stash(frame)
            elif frame["_tag"] == "Chunk":
                values.extend(frame["values"])
            else:
                return values, frame["exit"]

    def _stash(self, frame: dict[str, Any]) -> None:
        if frame["_tag"] == "Chunk":
            self.live[frame["requestId"]].extend(frame["values"])
        else:
            self.other.append(frame)

    async def push(self, batch: list[dict[str, Any]], backend_id: dict[str, Any] | None = None) -> dict[str, Any]:
        if backend_id is None:
            backend_id = some(self.backend_id) if self.backend_id else none()
        payload = {"storeId": self.store_id, "batch": batch, "backendId": backend_id}
        request_id = await self.send_request("SyncWsRpc.Push", payload)
        return (await self.until_exit(request_id))[1]

    def cursor(self, seq: int | None) -> dict[str, Any]:
        if seq is None:
            return none()
        return some({"backendId": self.backend_id, "eventSequenceNumber": seq})

    async def pull(self, after: int | None = None, *, cursor: dict[str, Any] | None = None) -> tuple[list[Any], dict[str, Any]]:
        """A non-live pull: its PullResponses and its Exit."""
        payload = {"storeId": self.store_id, "live": False, "cursor": cursor or self.cursor(after)}
        values, exit_ = await self.until_exit(await self.send_request("SyncWsRpc.Pull", payload))
        if values:
            self.backend_id = values[0]["backendId"]
        return values, exit_

    async def pull_live(self, after: int | None = None) -> tuple[str, list[Any]]:
        """Start a live pull; returns its id and its phase-1 responses (up to the one with NoMore)."""
        payload = {"storeId": self.store_id, "live": True, "cursor": self.cursor(after)}
        request_id = await self.send_request("SyncWsRpc.Pull", payload)
        values: list[Any] = []
        while not values or values[-1]["pageInfo"]["_tag"] != "NoMore":
            frame = await self.frame()
            assert frame["_tag"] == "Chunk" and frame["requestId"] == request_id, frame
            values.extend(frame["values"])
        self.backend_id = values[0]["backendId"]
        return request_id, values

    async def live_values(self, request_id: str, count: int) -> list[dict[str, Any]]:
        """Events arriving on a live pull until ``count`` have come (already received ones included)."""
        while sum(len(v["batch"]) for v in self.live[request_id]) < count:
            self._stash(await self.frame())
        return [item["eventEncoded"] for v in self.live[request_id] for item in v["batch"]]


def events_of(values: list[Any]) -> list[dict[str, Any]]:
    return [item["eventEncoded"] for value in values for item in value["batch"]]


@pytest.fixture
def connect(dohost: Any) -> Any:
    async def open_client(store_id: str = STORE, query: str = "") -> SyncClient:
        ws = await dohost.connect_websocket(f"ws://sync.example/sync?storeId={store_id}&transport=ws{query}")
        return SyncClient(ws, store_id)

    return open_client
