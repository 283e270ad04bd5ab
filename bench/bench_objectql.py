"""ObjectQL offline-first sync (``examples/objectql_sync``): 1,000 mutations and three clients, over HTTP.

    python bench/bench_objectql.py [--runs 5]

Starts ``dohost dev`` on the example (a subprocess, loopback, a free port,
state in a temporary folder) and measures, median of ``--runs``:

* **1,000 creates as 10 pushes of 100** (raw ``SyncPushRequest`` JSON with
  httpx, one request at a time), and the same pushes **in process**
  (``open_runtime`` + ``rt.fetch``: no sockets, no HTTP) — the baseline the
  HTTP figure is a ratio of;
* **1,000 mutations through the Python client**: ``SyncEngine`` records them
  (its SQLite log), then ``sync_until_idle()`` pushes 20 batches of 50 and
  applies the echoed changes (debounce on a fake clock, so it costs nothing);
* **three clients, one server**: each client records 334 mutations (creates
  of its own records and updates of 20 shared tasks, so stale updates
  conflict and are resolved last-write-wins), then they sync in turn until
  nothing is pending; the table checks they converged.

The seed's target is 5 s for 1,000 mutations; the issue's is 0.5 s over HTTP
on this machine. The machine is shared and noisy: compare the ratio, not the
absolute numbers. The benchmark decides nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "examples" / "objectql_sync"
for _p in (str(REPO), str(PROJECT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _table import print_table  # noqa: E402

HEADERS = {"X-ObjectQL-Sync-Version": "1"}


def pushes(space_tag: str, total: int = 1000, per_push: int = 100) -> list[bytes]:
    bodies = []
    for start in range(0, total, per_push):
        mutations = [{"id": f"{space_tag}-m{i}", "objectName": "task", "recordId": f"t{i}", "operation": "create",
                      "data": {"title": f"task {i}", "status": "todo", "priority": i % 4},
                      "timestamp": "2026-01-01T00:00:00.000Z", "clientId": "bench", "sequence": i + 1,
                      "baseVersion": None} for i in range(start, min(total, start + per_push))]
        bodies.append(json.dumps({"clientId": "bench", "mutations": mutations, "lastCheckpoint": str(start)}).encode())
    return bodies


async def raw_http(url: str, space: str) -> float:
    bodies = pushes(space)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        t0 = time.perf_counter()
        for body in bodies:
            response = await http.post("/api/sync", params={"space": space}, content=body, headers=HEADERS)
            assert response.status_code == 200 and all(r["status"] == "applied" for r in response.json()["results"])
        return time.perf_counter() - t0


async def in_process(rt: Any, space: str) -> float:
    bodies = pushes(space)
    t0 = time.perf_counter()
    for body in bodies:
        response = await rt.fetch(f"http://bench/api/sync?space={space}", method="POST", headers=HEADERS, body=body)
        assert response.status == 200
        await response.bytes()
    return time.perf_counter() - t0


async def through_client(url: str, space: str, folder: Path) -> tuple[float, float, int]:
    from objectql_client import FakeClock, SyncEngine

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        engine = SyncEngine(http, folder / f"{space}.sqlite3", client_id="bench", space=space, clock=FakeClock(),
                            strategies={"task": "last-write-wins"})
        t0 = time.perf_counter()
        for i in range(1000):
            engine.create("task", f"t{i}", {"title": f"task {i}", "priority": i % 4})
        recorded = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = await engine.sync_until_idle()
        synced = time.perf_counter() - t1
        assert not engine.pending() and sum(r.applied for r in results) == 1000
        engine.store.close()
        return recorded, synced, len(results)


async def three_clients(url: str, space: str, folder: Path) -> dict[str, Any]:
    from objectql_client import FakeClock, SyncEngine

    clock = FakeClock()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        engines = [SyncEngine(http, folder / f"{space}-{n}.sqlite3", client_id=f"c{n}", space=space, clock=clock,
                              strategies={"task": "last-write-wins"}) for n in range(3)]
        engines[0].create("task", "shared-seed", {"title": "seed"})
        for s in range(20):
            engines[0].create("task", f"shared{s}", {"title": "shared"})
        await engines[0].sync_until_idle()
        for e in engines[1:]:
            await e.sync()
        t0 = time.perf_counter()
        for n, e in enumerate(engines):
            for i in range(334):
                if i % 2:
                    e.update("task", f"shared{i % 20}", {"title": f"c{n} edit {i}", "status": "doing"})
                else:
                    e.create("task", f"c{n}-{i}", {"title": f"own {i}"})
                clock.advance(0.001)
        requests = conflicts = 0
        for _ in range(100):
            for e in engines:
                result = await e.sync()
                requests += 1
                conflicts += len(result.conflicts) if result else 0
            if not any(e.pending() for e in engines):
                break
        for e in engines:  # a last pull each
            await e.sync()
            requests += 1
        elapsed = time.perf_counter() - t0
        state = (await http.get("/api/sync/state", params={"space": space})).json()
        server = {rid: r["data"] for rid, r in state["records"]["task"].items()}
        converged = all(e.view("task") == server for e in engines)
        for e in engines:
            e.store.close()
    return {"seconds": elapsed, "requests": requests, "conflicts": conflicts, "converged": converged,
            "mutations": 3 * 334}


async def start_dev(folder: Path) -> tuple[trio.Process, str]:
    script = Path(sys.executable).parent / "dohost"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOHOST_")}, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(
        [*command, "dev", "--config", str(PROJECT), "--ip", "127.0.0.1", "--port", "0",
         "--persist-to", str(folder / "state"), "--var", "OBJECTQL_RATE_LIMIT:100000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = b""
    try:
        with trio.fail_after(60):
            while (ready := re.search(rb"Ready on (http://\S+)", output)) is None:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"dohost dev exited: {output.decode()}")
                output += chunk
    except BaseException:
        process.kill()  # never leave the server behind
        with trio.CancelScope(shield=True):
            await process.wait()
        raise
    return process, ready[1].decode()


async def run(runs: int) -> None:
    from runtime import open_runtime

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        process, url = await start_dev(folder)
        try:
            async with trio.open_nursery() as nursery:
                async def drain() -> None:
                    async for _ in process.stdout:
                        pass
                nursery.start_soon(drain)
                http_s, local_s, client_s, multi = [], [], [], []
                # Interleaved, so the baseline and the HTTP figures see the same machine load.
                async with open_runtime(config=PROJECT, data_dir=folder / "inproc",
                                        vars={"OBJECTQL_RATE_LIMIT": "100000"}) as rt:
                    for i in range(runs):
                        local_s.append(await in_process(rt, f"local{i}"))
                        http_s.append(await raw_http(url, f"raw{i}"))
                        client_s.append(await through_client(url, f"client{i}", folder))
                        multi.append(await three_clients(url, f"three{i}", folder))
                nursery.cancel_scope.cancel()
        finally:
            process.kill()
            await process.wait()

    med = statistics.median
    http_med, local_med = med(http_s), med(local_s)
    sync_med = med(c[1] for c in client_s)
    three = sorted(multi, key=lambda m: m["seconds"])[len(multi) // 2]
    rows = [
        ["1,000 creates, 10 pushes of 100, in process (baseline)", local_med * 1000, "1.00×", 1000 / local_med],
        ["1,000 creates, 10 pushes of 100, over HTTP (`dohost dev`)", http_med * 1000,
         f"{http_med / local_med:.2f}×", 1000 / http_med],
        ["1,000 mutations through `SyncEngine` (20 pushes of 50)", sync_med * 1000,
         f"{sync_med / local_med:.2f}×", 1000 / sync_med],
        ["… recording them in the client's log (no network)", med(c[0] for c in client_s) * 1000, "–",
         1000 / med(c[0] for c in client_s)],
        [f"3 clients × 334 mutations, {three['requests']} pushes, {three['conflicts']} conflicts resolved, "
         f"converged: {'yes' if all(m['converged'] for m in multi) else 'NO'}", three["seconds"] * 1000,
         f"{three['seconds'] / local_med:.2f}×", three["mutations"] / three["seconds"]],
    ]
    print_table(f"ObjectQL sync (median of {runs}; seed target 5 s, issue target 0.5 s over HTTP)",
                ["measure", "ms", "vs in process", "mutations/s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trio.run(run, args.runs)


if __name__ == "__main__":
    main()
