"""Shared helpers for the example's tests: an in-process HTTP transport and client factories.

pytest puts this folder on ``sys.path`` (rootdir conftest), so tests import
``objectql_client``. :class:`InProcessTransport` is an ``httpx`` transport that
hands each request to the Worker through ``dohost.fetch`` (or a runtime's
``fetch``): real HTTP semantics, no sockets. It can go offline (connection
refused) or cut the connection after the server answered (the response is
lost), which is how a network cut in the middle of a push looks to a client.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from objectql_client import FakeClock, SyncEngine

BASE = "http://sync.example"
HEADERS = {"X-ObjectQL-Sync-Version": "1"}


class InProcessTransport(httpx.AsyncBaseTransport):
    def __init__(self, target: Any) -> None:
        self.target = target
        self.offline = False
        self.cut_after_send = 0  # this many next requests reach the server, then their response is lost
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("connection refused (offline)", request=request)
        body = await request.aread()
        self.sent += 1
        response = await self.target.fetch(str(request.url), method=request.method,
                                           headers=list(request.headers.items()), body=body or None)
        content = bytes(await response.bytes())
        if self.cut_after_send:
            self.cut_after_send -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(response.status, headers=response.headers.items(), content=content)


async def push(target: Any, body: Any, *, headers: dict[str, str] | None = None, path: str = "/api/sync") -> tuple[int, Any]:
    """``(status, JSON)`` of a raw push; ``body`` is JSON-encoded unless it is already bytes/str."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = await target.fetch(BASE + path, method="POST", headers=HEADERS if headers is None else headers, body=data)
    return response.status, json.loads(await response.text())


async def server_state(target: Any, space: str = "default") -> dict[str, Any]:
    response = await target.fetch(f"{BASE}/api/sync/state?space={space}")
    return json.loads(await response.text())  # type: ignore[no-any-return]


def mutation(mid: str, obj: str, rid: Any, op: str, data: Any = None, *, client: str = "a", seq: int = 1,
             base: int | None = None, ts: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    entry = {"id": mid, "objectName": obj, "recordId": rid, "operation": op, "timestamp": ts,
             "clientId": client, "sequence": seq, "baseVersion": base}
    if data is not None:
        entry["data"] = data
    return entry


def request(*mutations: dict[str, Any], client: str = "a", checkpoint: str | None = None) -> dict[str, Any]:
    return {"clientId": client, "mutations": list(mutations), "lastCheckpoint": checkpoint}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(dohost: Any, tmp_path: Any, clock: FakeClock) -> Any:
    """``make_client("a", **engine_options)`` → ``(engine, transport)`` talking to this test's server in process."""
    opened: list[httpx.AsyncClient] = []

    def make(name: str, **options: Any) -> tuple[SyncEngine, InProcessTransport]:
        transport = InProcessTransport(options.pop("target", dohost))
        http = httpx.AsyncClient(transport=transport, base_url=BASE)
        opened.append(http)
        options.setdefault("clock", clock)
        engine = SyncEngine(http, options.pop("path_", tmp_path / f"{name}.sqlite3"), client_id=name, **options)
        engines.append(engine)
        return engine, transport

    engines: list[SyncEngine] = []
    yield make
    for engine in engines:
        engine.store.close()  # (closing twice is harmless)
