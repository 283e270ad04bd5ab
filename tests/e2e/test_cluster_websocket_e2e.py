"""WebSocket upgrades to an object on another cluster node: 3 real nodes on a real 3-member etcd.

The Worker runs on the node that took the connection; its ``stub.fetch`` of
the upgrade goes to the owner over the wire (``runtime.cluster._forward``),
fenced by ``(shard, epoch)`` like any call, and the frames are relayed both
ways with close codes and reasons intact. Real processes on real sockets,
so waits are bounded on the real clock.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from _cluster_support import free_ports, open_etcd, open_node
from test_cluster_e2e import wait_placed, wait_until

pytestmark = pytest.mark.slow

TTL = 2

WRANGLER = """\
name = "wsnodes"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[durable_objects.bindings]]
name = "ECHO"
class_name = "Echo"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Echo"]
"""

ENTRY = '''\
import os
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint, WebSocketPair


class Echo(DurableObject):
    async def fetch(self, request):
        if urlparse(request.url).query == "refuse":
            return Response("not today", status=403)
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, [urlparse(request.url).query or "untagged"])
        return Response(None, status=101, web_socket=client)

    def webSocketMessage(self, ws, message):
        if isinstance(message, bytes):
            ws.send(message[::-1])
        elif message.startswith("close "):
            code, _, reason = message[6:].partition(" ")
            ws.close(int(code), reason)
        elif message.startswith("last "):
            ws.send(self.ctx.storage.kv.get("last:" + message[5:]) or "none")
        elif message == "pid":
            ws.send(str(os.getpid()))
        else:
            ws.send(message if message.startswith("echo") else f"echo {message}")

    def webSocketClose(self, ws, code, reason, was_clean):
        self.ctx.storage.kv.put("last:" + self.ctx.getTags(ws)[0], f"{code} {reason}")

    def pid(self):
        return os.getpid()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        kind, name = (urlparse(request.url).path.strip("/").split("/") + [""])[:2]
        stub = self.env.ECHO.getByName(name)
        if kind == "ws":
            if request.headers.get("upgrade", "").lower() != "websocket":
                return Response("expected a WebSocket upgrade", status=426)
            return await stub.fetch(request)
        return Response(f"{os.getpid()} {await stub.pid()}")
'''


def project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "wrangler.toml").write_text(WRANGLER)
    (root / "src" / "entry.py").write_text(ENTRY)
    return root


async def remote_name(http: httpx.AsyncClient, url: str, prefix: str, avoid: set[int] = frozenset()) -> tuple[str, int]:  # type: ignore[assignment]
    """A name whose object lives on another node than ``url``'s (and none of ``avoid``); its owner's pid."""
    for i in range(200):
        name = f"{prefix}{i}"
        ingress, owner = map(int, (await http.get(f"{url}/where/{name}")).text.split())
        if ingress != owner and owner not in avoid:
            return name, owner
    raise AssertionError("no object landed on another node")


async def test_a_websocket_to_an_object_on_another_node_relays_frames_and_close_codes_both_ways(tmp_path: Path) -> None:
    config = project(tmp_path / "app") / "wrangler.toml"
    async with open_etcd(tmp_path) as etcd:
        ports = free_ports(3)
        data = tmp_path / "data"
        async with open_node(etcd, data, "n0", ports[0], TTL, config) as a, \
                open_node(etcd, data, "n1", ports[1], TTL, config), open_node(etcd, data, "n2", ports[2], TTL, config):
            await wait_placed(etcd, {"n0", "n1", "n2"})
            url = f"http://127.0.0.1:{ports[0]}"
            async with httpx.AsyncClient(timeout=20) as http:
                name, owner = await remote_name(http, url, "ws")
            assert owner != a.process.pid
            await relay_checks(url, name, owner)


async def relay_checks(url: str, name: str, owner: int) -> None:
    with trio.fail_after(60):  # a frame that never comes fails the test instead of hanging it
        ws_url = url.replace("http://", "ws://")

        async with open_websocket_url(f"{ws_url}/ws/{name}") as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo hi"
            await ws.send_message(b"\x00\x01\xff")
            assert await ws.get_message() == b"\xff\x01\x00"  # binary frames stay binary
            await ws.send_message("pid")
            assert await ws.get_message() == str(owner)  # the object runs on the owner node
            await ws.send_message("close 4002 from the object")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            await ws._stream.aclose()  # trio-websocket 0.12 leaves it open after a close the server started
        assert (closed.value.reason.code, closed.value.reason.reason) == (4002, "from the object")

        async with open_websocket_url(f"{ws_url}/ws/{name}?second") as ws:
            await ws.aclose(4001, "from the client")
        last = ""
        with trio.move_on_after(10):  # the close reaches the object after the client's handshake ended
            while last != "4001 from the client":
                async with open_websocket_url(f"{ws_url}/ws/{name}?probe") as ws:
                    await ws.send_message("last second")
                    last = await ws.get_message()
        assert last == "4001 from the client"

        # The object's answer other than 101 to an upgrade comes back as that HTTP response.
        # (httpx, not trio-websocket: its client leaves the socket of a rejected upgrade open.)
        upgrade = {"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13",
                   "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
        async with httpx.AsyncClient(timeout=20) as http:
            rejected = await http.get(f"{url}/ws/{name}?refuse", headers=upgrade)
        assert (rejected.status_code, rejected.text) == (403, "not today")




async def test_an_upgrade_while_the_owner_is_paused_past_its_lease_opens_on_the_new_owner(tmp_path: Path) -> None:
    config = project(tmp_path / "app") / "wrangler.toml"
    async with open_etcd(tmp_path) as etcd:
        ports = free_ports(3)
        data = tmp_path / "data"
        async with open_node(etcd, data, "n0", ports[0], TTL, config) as a, \
                open_node(etcd, data, "n1", ports[1], TTL, config) as b, \
                open_node(etcd, data, "n2", ports[2], TTL, config) as c:
            await wait_placed(etcd, {"n0", "n1", "n2"})
            url = f"http://127.0.0.1:{ports[0]}"
            ws_url = url.replace("http://", "ws://")
            nodes = {n.process.pid: n for n in (a, b, c)}
            async with httpx.AsyncClient(timeout=20) as http:
                # A connection to the future zombie's object first: node 0 keeps a link to it.
                name, owner = await remote_name(http, url, "first")
                async with open_websocket_url(f"{ws_url}/ws/{name}") as ws:
                    await ws.send_message("pid")
                    assert await ws.get_message() == str(owner)
                zombie = nodes[owner]
            # Objects never opened before the pause (a paused node keeps the files it holds
            # locked: those come back only when it resumes; docs/cluster.md). About a third of
            # them belonged to the zombie's shards.
            fresh_names = [f"fresh{i}" for i in range(24)]
            seen = len(zombie.lines)  # what it logged before the pause does not count below
            zombie.process.send_signal(signal.SIGSTOP)
            try:
                await trio.sleep(2 * TTL + 1)  # its lease expired; its shards moved (or are moving)
                # Every upgrade opens on a live node: a call refused, unanswered or withheld by
                # the zombie follows the shard to its new owner.
                opened: dict[str, int] = {}
                with trio.fail_after(30):
                    for fresh in fresh_names:
                        async with open_websocket_url(f"{ws_url}/ws/{fresh}") as ws:
                            await ws.send_message("pid")
                            opened[fresh] = int(await ws.get_message())
                            await ws.send_message("echo still here")
                            assert await ws.get_message() == "echo still here"
                assert owner not in opened.values()
                assert set(opened.values()) <= set(nodes)
            finally:
                zombie.process.send_signal(signal.SIGCONT)
            # The zombie fences itself and rejoins; the cluster serves every object again.
            # (A node already fenced when paused logs no second fence: its rejoin counts.)
            await wait_until(lambda: any("cluster-fenced" in line or "cluster-joined" in line
                                         for line in zombie.lines[seen:]), 20, "the zombie to fence itself")
            # Once its shards have moved back: a call caught on its way by that move is
            # refused (in doubt, never sent twice), so ask through a plain call until one
            # is answered, then upgrade.
            await wait_placed(etcd, {"n0", "n1", "n2"}, settled=True)
            async with httpx.AsyncClient(timeout=20) as http:
                with trio.fail_after(20):
                    while (await http.get(f"{url}/where/{name}")).status_code != 200:
                        await trio.sleep(0.1)
            async with open_websocket_url(f"{ws_url}/ws/{name}?after") as ws:
                await ws.send_message("hello again")
                assert await ws.get_message() == "echo hello again"
