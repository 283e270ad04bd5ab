"""``dohost serve --processes N``: real processes, a child killed under load, forwarded WebSockets.

Checkers of the kill test (as the scale-out note asks): no counter value is
returned twice (two live instances would return one twice), none goes
backwards for a client, every acknowledged increment is in the final value
and the final value counts no more than were attempted, no object's file is
open in two live processes (``/proc/<pid>/fd``), the killed child's
objects answer again (failover completes), and alarms that fell due while
their process was dead still fire.
"""

from __future__ import annotations

import os
import random
import re
import signal
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from _cluster_support import open_sqlite_files
from _e2e_support import run_dohost

pytestmark = pytest.mark.slow

WRANGLER = """\
name = "lab"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[durable_objects.bindings]]
name = "ECHO"
class_name = "Echo"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter", "Echo"]
"""

ENTRY = '''\
import os
import time
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint, WebSocketPair


class Counter(DurableObject):
    def increment(self):
        n = (self.ctx.storage.kv.get("n") or 0) + 1
        self.ctx.storage.kv.put("n", n)
        return n

    def get(self):
        return self.ctx.storage.kv.get("n") or 0

    def pid(self):
        return os.getpid()

    async def arm(self, ms):
        await self.ctx.storage.setAlarm(time.time() * 1000 + ms)

    def fired(self):
        return self.ctx.storage.kv.get("fired") or 0

    async def alarm(self):
        self.ctx.storage.kv.put("fired", (self.ctx.storage.kv.get("fired") or 0) + 1)


class Echo(DurableObject):
    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, [urlparse(request.url).query or "untagged"])
        return Response(None, status=101, web_socket=client)

    def webSocketMessage(self, ws, message):
        if message.startswith("close "):
            code, _, reason = message[6:].partition(" ")
            ws.close(int(code), reason)
        elif message.startswith("last "):
            ws.send(self.ctx.storage.kv.get("last:" + message[5:]) or "none")
        else:
            ws.send(f"echo {message}")

    def pid(self):
        return os.getpid()

    def webSocketClose(self, ws, code, reason, was_clean):
        # Keyed by the connection's tag: an earlier connection's close may land later.
        self.ctx.storage.kv.put("last:" + self.ctx.getTags(ws)[0], f"{code} {reason}")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        kind, name, action = (urlparse(request.url).path.strip("/").split("/") + ["", ""])[:3]
        if kind == "ws":
            return await self.env.ECHO.getByName(name).fetch(request)
        if kind == "echo-pid":
            return Response(f"{os.getpid()} {await self.env.ECHO.getByName(name).pid()}")
        name, action = kind, name  # /<counter>/<action>
        stub = self.env.COUNTER.getByName(name)
        if action == "get":
            return Response(str(await stub.get()))
        if action == "pid":
            return Response(f"{os.getpid()} {await stub.pid()}")
        if action == "arm":
            await stub.arm(int(urlparse(request.url).query or "500"))
            return Response("armed")
        if action == "fired":
            return Response(str(await stub.fired()))
        return Response(str(await stub.increment()))
'''


def lab_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "wrangler.toml").write_text(WRANGLER)
    (root / "src" / "entry.py").write_text(ENTRY)
    return root


def child_pids(parent: int) -> list[int]:
    """The live child processes of ``parent`` (the supervisor spawns them from worker threads)."""
    pids = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return sorted(pids)


async def serve_processes(tmp_path: Path, count: int):  # type: ignore[no-untyped-def]
    project = lab_project(tmp_path / "lab")
    argv = ["dohost", "serve", "--processes", str(count), "--data-dir", str(tmp_path / "data"),
            "--listen", "127.0.0.1:0", "-c", str(project)]
    return run_dohost(argv)


async def wait_ready(proc, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The supervisor's URL line; returns every child's internal URL, by process number."""
    await proc.wait_for(r"dohost.processes.*Ready on")
    internal = {}
    for line in proc.lines:
        m = re.search(r"process (\d+) of \d+; internal (http://[\d.:]+)", line)
        if m:
            internal[int(m[1])] = m[2]
    assert len(internal) == count
    return [internal[i + 1] for i in range(count)]


def public_url(proc) -> str:  # type: ignore[no-untyped-def]
    m = proc.find(r"dohost.processes.*Ready on (http://[\d.:]+)")
    assert m is not None
    return m[1]


async def test_counters_survive_a_child_killed_under_load(tmp_path: Path) -> None:
    async with await serve_processes(tmp_path, 2) as proc:
        await wait_ready(proc, 2)
        url = public_url(proc)
        names = [f"c{i}" for i in range(40)]
        acked: dict[str, list[int]] = defaultdict(list)
        attempts: dict[str, int] = defaultdict(int)
        errors = 0
        backwards: list[tuple[str, int, int]] = []
        stop = trio.Event()
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:

            async def hammer(seed: int) -> None:
                nonlocal errors
                rng = random.Random(seed)
                seen: dict[str, int] = {}
                for _ in range(400):
                    if stop.is_set():
                        return
                    name = rng.choice(names)
                    attempts[name] += 1
                    try:
                        reply = await client.get(f"/{name}")
                    except httpx.TransportError:
                        errors += 1
                        continue
                    if reply.status_code != 200:
                        errors += 1
                        continue
                    value = int(reply.text)
                    acked[name].append(value)
                    if value <= seen.get(name, 0):
                        backwards.append((name, seen[name], value))
                    seen[name] = value

            double_open: list[tuple[str, list[int]]] = []
            files_seen: set[int] = set()

            async def watch_files() -> None:
                """No object's file open in two live processes (polled from /proc/<pid>/fd)."""
                while not stop.is_set():
                    holders: dict[str, list[int]] = defaultdict(list)
                    for pid in child_pids(proc.process.pid):
                        for path in open_sqlite_files(pid):
                            holders[path].append(pid)
                            files_seen.add(pid)
                    double_open.extend((p, h) for p, h in holders.items() if len(h) > 1)
                    await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_files)
                for seed in range(6):
                    nursery.start_soon(hammer, seed)
                while sum(map(len, acked.values())) < 150:
                    await trio.sleep(0.01)
                victim = child_pids(proc.process.pid)[0]
                # Alarms that fall due while their process is dead: armed on the victim's
                # objects 300 ms ahead, right before the kill (a restart takes longer).
                armed = [n for n in names if (await client.get(f"/{n}/pid")).text.split()[1] == str(victim)][:6]
                for name in armed:
                    assert (await client.get(f"/{name}/arm?300")).text == "armed"
                os.kill(victim, signal.SIGKILL)
                mark = proc.mark()
                await proc.wait_for(r"process \d exited with status -9", after=mark)
                await proc.wait_for(r"dohost.serve.*Ready on", after=mark)
                acked_at_restart = sum(map(len, acked.values()))
                with trio.fail_after(30):
                    while sum(map(len, acked.values())) < acked_at_restart + 150:
                        await trio.sleep(0.01)
                stop.set()

            assert backwards == []
            assert double_open == [], f"object files open in two live processes: {double_open[:5]}"
            assert len(files_seen) >= 2, "the file watcher saw no object files (it would check nothing)"
            for name in names:
                values = acked[name]
                assert len(values) == len(set(values)), f"{name}: a value returned twice: {sorted(values)}"
                final = int((await client.get(f"/{name}/get")).text)
                assert final >= max(values, default=0)
                assert final >= len(values)
                assert final <= attempts[name]
            # Every child answers (failover completed) and every armed alarm fired.
            pids = {int((await client.get(f"/{name}/pid")).text.split()[1]) for name in names}
            assert pids == set(child_pids(proc.process.pid))
            assert armed
            with trio.fail_after(20):
                for name in armed:
                    while int((await client.get(f"/{name}/fired")).text) < 1:
                        await trio.sleep(0.1)
        assert await proc.terminate() == 0


async def test_websocket_through_a_non_owner_keeps_its_close_codes(tmp_path: Path) -> None:
    async with await serve_processes(tmp_path, 2) as proc:
        first, _ = await wait_ready(proc, 2)
        # A name whose object lives in the other process, reached through process 1.
        async with httpx.AsyncClient(base_url=first, timeout=20) as client:
            for i in range(40):
                ingress, owner = (await client.get(f"/echo-pid/ws{i}")).text.split()
                if ingress != owner:
                    name = f"ws{i}"
                    break
            else:
                pytest.fail("no object landed on the other process")
        ws_url = first.replace("http://", "ws://")
        async with open_websocket_url(f"{ws_url}/ws/{name}") as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "echo hi"
            await ws.send_message("close 4002 from the object")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            # trio-websocket 0.12 leaves its TCP stream open after a close the server started.
            await ws._stream.aclose()
        assert (closed.value.reason.code, closed.value.reason.reason) == (4002, "from the object")
        # The client's close code reaches the object as sent.
        async with open_websocket_url(f"{ws_url}/ws/{name}?second") as ws:
            await ws.aclose(4001, "from the client")
        # It arrives after the client's close handshake completed: ask until it is there.
        last = ""
        with trio.move_on_after(10):
            while last != "4001 from the client":
                async with open_websocket_url(f"{ws_url}/ws/{name}?probe") as ws:
                    await ws.send_message("last second")
                    last = await ws.get_message()
        assert last == "4001 from the client"
        assert await proc.terminate() == 0


def test_an_object_lock_held_by_another_process_refuses_until_the_kernel_drops_it_with_that_process(
    tmp_path: Path,
) -> None:
    """The fence of ``--processes``: the byte-range lock table in ``dohost-objects.lock`` works across processes."""
    import subprocess
    import sys

    from persistence import LockTable, ofd_locks_available

    if not ofd_locks_available():
        pytest.skip("no OFD locks on this OS (a flock'd file per object is used instead)")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from persistence import LockTable;"
         f" t = LockTable(Path({str(tmp_path)!r})); print(t.try_acquire('obj') is not None, flush=True);"
         " sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        table = LockTable(tmp_path)
        assert table.try_acquire("obj") is None
        assert table.try_acquire("another") is not None  # one byte per object: others are free
        holder.kill()
        holder.wait()
        assert table.try_acquire("obj") is not None
        table.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdin is not None:
            holder.stdin.close()
        if holder.stdout is not None:
            holder.stdout.close()
