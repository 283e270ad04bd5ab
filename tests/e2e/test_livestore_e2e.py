"""The LiveStore sync example under ``dohost dev``, driven by LiveStore's released client.

``@livestore/sync-cf`` 0.4.0 and its peers are installed from the npm
registry into ``~/.cache/dohost-tests/livestore-0.4.0`` (once; later runs
reuse it), next to a copy of ``examples/livestore_sync/client/livestore_client.mjs``.
Node clients then sync through a real ``dohost dev`` on loopback: one
listens live, one pushes, a stale push gets ``ServerAheadError``, a third
pulls everything, over WebSocket and over HTTP, across an eviction of the
sync object and a restart of dohost (the listener reconnects and pulls on
from its last event, as LiveStore's sync processor does).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from _e2e_support import EXAMPLES, run_dohost

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("DOHOST_TEST_CACHE", Path.home() / ".cache" / "dohost-tests")) / "livestore-0.4.0"
# npm needs @opentelemetry/api pinned to settle a peer conflict among LiveStore's Effect peers.
PACKAGES = ["@livestore/sync-cf@0.4.0", "@opentelemetry/api@1.9.0"]
CLIENT = EXAMPLES / "livestore_sync" / "client" / "livestore_client.mjs"
NODE_TIMEOUT = 60.0


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        # Never skipped silently: CI must run the real client.
        pytest.fail("node and npm are needed for LiveStore's client: install them (apt-get install nodejs npm)")
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()[1:].split(".")[0])
    # Node 20 has no global WebSocket unless asked (it has one from Node 22 on).
    return [node, "--experimental-websocket"] if major < 22 else [node]


@pytest.fixture(scope="module")
def livestore_client() -> list[str]:
    node = node_command()
    installed = CACHE / "node_modules" / "@livestore" / "sync-cf" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != "0.4.0":
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"private": true, "type": "module"}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
            cwd=CACHE, check=True, capture_output=True, timeout=600,
        )
    script = CACHE / CLIENT.name
    if not script.exists() or script.read_bytes() != CLIENT.read_bytes():
        shutil.copyfile(CLIENT, script)
    return [*node, str(script)]


async def run_client(client: list[str], *args: str) -> list[dict[str, Any]]:
    with trio.fail_after(NODE_TIMEOUT):
        done = await trio.run_process([*client, *args], capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


class Listener:
    """A live-pulling Node client; its JSON lines, as they come."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._buffer = b""

    async def wait_for(self, predicate: Any, timeout: float = NODE_TIMEOUT) -> None:
        assert self.process.stdout is not None
        with trio.fail_after(timeout):
            while not predicate(self.lines):
                data = await self.process.stdout.receive_some()
                assert data, f"the listener exited early: {self.lines}"
                self._buffer += data
                *complete, self._buffer = self._buffer.split(b"\n")
                self.lines += [json.loads(line) for line in complete if line.strip()]

    def events(self) -> list[dict[str, Any]]:
        return [line["event"] for line in self.lines if "event" in line]


def seq_nums(events: list[dict[str, Any]]) -> list[int]:
    return [e["seqNum"] for e in events]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def events_seen(lines: list[dict[str, Any]]) -> int:
    return len([line for line in lines if "event" in line])


async def test_node_clients_sync_live_through_dohost_dev_across_an_eviction_and_a_restart(
    livestore_client: list[str], tmp_path: Path
) -> None:
    # A fixed port, so the listener can reconnect to the restarted server.
    argv = ["dohost", "dev", "--config", str(EXAMPLES / "livestore_sync"), "--port", str(free_port()),
            "--persist-to", str(tmp_path / "state"), "--idle-timeout", "1"]
    listener_process = None
    try:
        async with run_dohost(argv) as proc:
            http_url = proc.url
            ws_url = http_url.replace("http://", "ws://")
            listener_process = await trio.lowlevel.open_process(
                [*livestore_client, "listen", ws_url, "store-e2e", "7"], stdout=subprocess.PIPE
            )
            listener = Listener(listener_process)
            await listener.wait_for(lambda lines: {"ready": True} in lines)

            pushed = await run_client(livestore_client, "push", ws_url, "store-e2e", "1", "3")
            assert pushed == [
                {"pushed": [1, 2, 3]},
                {"stale": {"_tag": "ServerAheadError", "minimumExpectedNum": 3, "providedNum": 0}},
            ]
            await listener.wait_for(lambda lines: events_seen(lines) >= 3)
            assert seq_nums(listener.events()) == [1, 2, 3]

            # The object goes idle and is evicted while the listener stays connected
            # (its pings are answered by the auto-response); a push still reaches it.
            mark = proc.mark()
            await proc.wait_for(r"evicted SYNC_BACKEND_DO 'store-e2e'", after=mark)
            pushed = await run_client(livestore_client, "push", ws_url, "store-e2e", "4", "2")
            assert pushed[0] == {"pushed": [4, 5]}
            await listener.wait_for(lambda lines: events_seen(lines) >= 5)

        # dohost restarts: the listener's socket closes (1001), it reconnects and
        # pulls on from its last event; nothing pushed before is lost or repeated.
        async with run_dohost(argv) as proc:
            pushed = await run_client(livestore_client, "push", ws_url, "store-e2e", "6", "2")
            assert pushed == [
                {"pushed": [6, 7]},
                {"stale": {"_tag": "ServerAheadError", "minimumExpectedNum": 7, "providedNum": 0}},
            ]
            await listener.wait_for(lambda lines: events_seen(lines) >= 7)
            assert seq_nums(listener.events()) == [1, 2, 3, 4, 5, 6, 7]
            assert {"reconnecting": True} in listener.lines
            with trio.fail_after(NODE_TIMEOUT):
                assert await listener_process.wait() == 0

            # A third client pulls everything, over WebSocket and over HTTP.
            over_ws = (await run_client(livestore_client, "pull", ws_url, "store-e2e"))[0]["events"]
            over_http = (await run_client(livestore_client, "pull", http_url, "store-e2e", "http"))[0]["events"]
            assert over_ws == listener.events()
            assert over_http == over_ws
            assert all(e["args"]["id"] != "stale" for e in over_ws)
    finally:
        if listener_process is not None and listener_process.returncode is None:
            listener_process.kill()
            await listener_process.wait()


# --- every kind of frame, decoded by the released client's schemas ----------------------------

CHECKER = EXAMPLES / "livestore_sync" / "client" / "check_frames.mjs"


def ev(seq: int, parent: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "e", "args": {"n": seq, **extra}, "seqNum": seq,
            "parentSeqNum": seq - 1 if parent is None else parent, "clientId": "c", "sessionId": "s"}


async def record_frames() -> list[tuple[str, dict[str, Any]]]:
    """Drive the example in process through every reply it can give; return (RPC tag, frame) pairs."""
    from runtime import open_runtime
    from workers import Request

    none = {"_tag": "None"}
    frames: list[tuple[str, dict[str, Any]]] = []
    async with open_runtime(config=EXAMPLES / "livestore_sync") as rt:
        url = "ws://sync.example/sync?storeId=frames&transport=ws"
        a, b = await rt.connect_websocket(url, None), await rt.connect_websocket(url, None)
        ids = iter(range(1, 1000))

        async def call(ws: Any, tag: str, payload: Any, replies: int, raw: str | None = None) -> str:
            request_id = str(next(ids))
            await ws.send(raw or json.dumps({"_tag": "Request", "id": request_id, "tag": tag, "payload": payload, "headers": []}))
            for _ in range(replies):
                frames.append((tag, json.loads(await ws.receive())))
            return request_id

        pull = {"storeId": "frames", "live": False, "cursor": none}
        await call(a, "SyncWsRpc.Pull", pull, 2)  # empty NoMore, Exit
        backend_id = frames[-2][1]["values"][0]["backendId"]
        await call(a, "SyncWsRpc.Push", {"storeId": "frames", "batch": [ev(s) for s in range(1, 251)], "backendId": none}, 1)
        await call(a, "SyncWsRpc.Pull", pull, 4)  # 100 + 100 + 50 events (MoreKnown, MoreKnown, NoMore), Exit
        await call(a, "SyncWsRpc.Push", {"storeId": "frames", "batch": [ev(1, 0, x=1)], "backendId": none}, 1)
        await call(a, "SyncWsRpc.Push", {"storeId": "frames", "batch": [ev(251)], "backendId": {"_tag": "Some", "value": "other"}}, 1)
        await call(a, "SyncWsRpc.Pull", {**pull, "cursor": {"_tag": "Some", "value": {"backendId": "other", "eventSequenceNumber": 3}}}, 1)
        await call(a, "SyncWsRpc.Push", {"storeId": "frames", "batch": [ev(251, blob="x" * 900_000)], "backendId": none}, 1)
        await call(a, "SyncWsRpc.Push", {"storeId": "elsewhere", "batch": [ev(251)], "backendId": none}, 1)
        await call(a, "SyncWsRpc.Push", {"storeId": "frames"}, 1)  # fails the schema: dies
        await call(a, "SyncWsRpc.Push", None, 1, raw="{not json")
        await call(a, "SyncWsRpc.Push", None, 1, raw='{ "_tag": "Ping" }')  # not the auto-response's exact text
        live = await call(a, "SyncWsRpc.Pull", {**pull, "live": True,
                                                "cursor": {"_tag": "Some", "value": {"backendId": backend_id, "eventSequenceNumber": 250}}}, 1)
        await call(b, "SyncWsRpc.Push", {"storeId": "frames", "batch": [ev(251)], "backendId": none}, 1)
        frames.append(("SyncWsRpc.Pull", json.loads(await a.receive())))  # the live chunk
        await call(a, "SyncWsRpc.Pull", None, 1, raw=json.dumps({"_tag": "Interrupt", "requestId": live}))

        async def http(tag: str, payload: Any) -> None:
            body = json.dumps({"_tag": "Request", "id": "1", "tag": tag, "payload": payload, "headers": []})
            response = await rt.fetch(Request(url.replace("ws://", "http://").replace("ws", "http"), method="POST", body=body))
            frames.extend((tag, frame) for frame in await response.json())

        await http("SyncHttpRpc.Ping", {"storeId": "frames"})
        await http("SyncHttpRpc.Push", {"storeId": "frames", "batch": [ev(252)], "backendId": none})
        await http("SyncHttpRpc.Pull", {"storeId": "frames", "cursor": {"_tag": "Some", "value": {"backendId": backend_id, "eventSequenceNumber": 251}}})
        await http("SyncHttpRpc.Push", {"storeId": "frames", "batch": [ev(1, 0, y=1)], "backendId": none})
    return frames


async def test_every_kind_of_frame_decodes_with_the_released_clients_schemas(livestore_client: list[str]) -> None:
    frames = await record_frames()
    checker = CACHE / CHECKER.name
    if not checker.exists() or checker.read_bytes() != CHECKER.read_bytes():
        shutil.copyfile(CHECKER, checker)
    lines = "".join(json.dumps({"tag": tag, "frame": frame}) + "\n" for tag, frame in frames)
    with trio.fail_after(NODE_TIMEOUT):
        done = await trio.run_process([*livestore_client[:-1], str(checker)], stdin=lines.encode(), capture_stdout=True)
    results = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["ok"] for r in results] == [True] * len(frames), [r for r in results if not r["ok"]]
    decoded = [r["decoded"] for r in results]

    def fail(error: str) -> dict[str, Any]:
        return {"exit": "Fail", "error": error}

    summary = [{k: v for k, v in d.items() if k != "fields"} for d in decoded]
    assert summary == [
        {"chunk": [{"events": 0, "pageInfo": "NoMore"}]}, {"exit": "Success"},
        {"exit": "Success"},
        {"chunk": [{"events": 100, "pageInfo": "MoreKnown"}]}, {"chunk": [{"events": 100, "pageInfo": "MoreKnown"}]},
        {"chunk": [{"events": 50, "pageInfo": "NoMore"}]}, {"exit": "Success"},
        fail("ServerAheadError"),
        fail("BackendIdMismatchError"),
        fail("BackendIdMismatchError"),
        fail("UnknownError"),
        fail("UnknownError"),
        {"exit": "Die"},
        {"defect": {"name": "SyntaxError", "message": decoded[13]["defect"]["message"]}},
        {"pong": True},
        {"chunk": [{"events": 0, "pageInfo": "NoMore"}]},
        {"exit": "Success"},
        {"chunk": [{"events": 1, "pageInfo": "NoMore"}]},
        {"exit": "Interrupt"},
        {"exit": "Success"},
        {"exit": "Success"},
        {"chunk": [{"events": 1, "pageInfo": "NoMore"}]}, {"exit": "Success"},
        fail("ServerAheadError"),
    ]
    assert decoded[7]["fields"] == {"minimumExpectedNum": 250, "providedNum": 0, "_tag": "ServerAheadError"}
