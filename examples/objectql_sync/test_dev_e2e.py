"""End to end over real HTTP: the example under ``dohost dev`` and the Python client with httpx.

Each test starts its own ``dohost dev`` (loopback, a free port, its state
in the test's temporary folder; about half a second) and uses its own spaces. The client's
transport wraps httpx's real one: it can be offline (connection refused
before anything is sent) or cut the connection after the server answered
(the response is lost, as in a network cut in the middle of a push).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from objectql_client import FakeClock, SyncEngine

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parent
STARTUP_S = 30


class Network(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.offline = False
        self.cut_after_send = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("connection refused (offline)", request=request)
        response = await self.real.handle_async_request(request)
        await response.aread()
        if self.cut_after_send:
            self.cut_after_send -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


@pytest.fixture
async def server(tmp_path):
    """The URL of ``dohost dev`` serving this example (killed afterwards)."""
    script = Path(sys.executable).parent / "dohost"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOHOST_", "PYTEST_"))}
    process = await trio.lowlevel.open_process(
        [*command, "dev", "--config", str(PROJECT), "--ip", "127.0.0.1", "--port", "0",
         "--persist-to", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"})
    output = b""
    try:
        with trio.fail_after(STARTUP_S):
            while (ready := re.search(rb"Ready on (http://\S+)", output)) is None:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
        async with trio.open_nursery() as nursery:
            async def drain():  # keep the pipe from filling up
                async for _ in process.stdout:
                    pass
            nursery.start_soon(drain)
            yield ready[1].decode()
            nursery.cancel_scope.cancel()
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


_ENGINES: list[SyncEngine] = []


@pytest.fixture(autouse=True)
def _close_engines():
    yield
    while _ENGINES:
        _ENGINES.pop().store.close()


def client(server, tmp_path, name, space, clock, **options):
    net = Network()
    http = httpx.AsyncClient(transport=net, base_url=server)
    engine = SyncEngine(http, tmp_path / f"{name}.sqlite3", client_id=name, space=space, clock=clock, **options)
    _ENGINES.append(engine)
    return engine, net


async def state(server, space):
    async with httpx.AsyncClient(base_url=server) as http:
        return (await http.get("/api/sync/state", params={"space": space})).json()


async def test_offline_create_then_reconnect_reaches_the_server(server, tmp_path):
    clock = FakeClock()
    phone, net = client(server, tmp_path, "phone", "offline", clock)
    net.offline = True
    phone.create("task", "t1", {"title": "written on the train"})
    assert await phone.sync() is None and len(phone.pending()) == 1
    net.offline = False
    result = await phone.sync()
    assert result.applied == 1 and phone.pending() == []
    assert (await state(server, "offline"))["records"]["task"]["t1"]["data"] == {"title": "written on the train"}
    await phone.http.aclose()


@pytest.mark.parametrize(("obj", "base", "first", "second", "expected"), [
    ("task", {"title": "base"}, {"title": "a"}, {"title": "b"}, {"title": "b"}),
    ("note", {"title": "t", "body": "x"}, {"title": "a's"}, {"body": "b's"}, {"title": "a's", "body": "b's"}),
    ("ticket", {"subject": "s", "assignee": "zed"}, {"assignee": "ann"}, {"assignee": "bob"},
     {"subject": "s", "assignee": "bob+ann"}),
])
async def test_concurrent_edits_from_two_clients_are_resolved_by_the_objects_strategy(
        server, tmp_path, obj, base, first, second, expected):
    clock, space = FakeClock(), f"edits-{obj}"

    def merge(conflict):
        return {"assignee": f"{conflict['serverRecord']['assignee']}+{conflict['clientMutation']['data']['assignee']}"}

    a, _ = client(server, tmp_path, "a", space, clock, on_conflict=merge)
    b, _ = client(server, tmp_path, "b", space, clock, on_conflict=merge)
    a.create(obj, "r1", base)
    await a.sync()
    await b.sync()
    a.update(obj, "r1", first)
    clock.advance(5)
    b.update(obj, "r1", second)
    await b.sync()
    result = await a.sync()
    assert len(result.conflicts) == 1  # a's edit was stale
    await a.sync()
    await b.sync()
    server_record = (await state(server, space))["records"][obj]["r1"]["data"]
    assert a.view(obj) == b.view(obj) == {"r1": expected} and server_record == expected
    await a.http.aclose()
    await b.http.aclose()


async def test_a_network_cut_in_the_middle_of_a_push_then_retry_applies_each_mutation_once(server, tmp_path):
    clock = FakeClock()
    laptop, net = client(server, tmp_path, "laptop", "cut", clock)
    for i in range(30):
        laptop.create("note", f"n{i}", {"title": f"note {i}"})
    net.cut_after_send = 2  # the server applies the push twice over; the client never hears
    result = await laptop.sync()
    assert result.applied == 30 and laptop.pending() == []
    after = await state(server, "cut")
    assert after["checkpoint"] == "30" and len(after["records"]["note"]) == 30
    assert all(r["version"] == 1 for r in after["records"]["note"].values())
    await laptop.http.aclose()
