"""The LiveStore sync example over real WebSockets: push throughput and live fan-out latency.

    python bench/bench_livestore.py [--duration 5] [--listeners 100] [--bursts 10]

Each server is its own process on loopback (``--serve``): dohost serving
``examples/livestore_sync`` through the same hypercorn front as ``dohost
dev``, or the bare ASGI WebSocket echo of ``bench_http.py``; this process is
the client, speaking the frames ``@livestore/sync-cf`` 0.4.0 sends.

Measured side by side in one run (the machine is shared: only ratios mean much):

* push throughput: one client pushes batches of 1 and of 100 events, each
  waiting for its acknowledgement (stored, committed, broadcast, acked), as
  events/s and round trips/s; the baseline is one round trip through the
  bare echo on the same hypercorn;
* live fan-out: ``--listeners`` clients hold a live pull on one store; one
  push per burst; latency from sending the push to each listener receiving
  the event (p50/p99 over every listener and burst). Once with the object
  warm (bursts back to back: the baseline) and once hibernating between
  bursts (idle timeout 0.3 s, 0.8 s between bursts; the instance probe
  confirms each burst woke a new instance).

The benchmark decides nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _table import print_table  # noqa: E402

EXAMPLE = REPO / "examples" / "livestore_sync"
HIBERNATE_IDLE_S = 0.3
HIBERNATE_GAP_S = 0.8


# --- servers -------------------------------------------------------------------------


async def serve(mode: str, data_dir: str, idle_timeout: float) -> None:
    from runtime import open_runtime
    from runtime._http import build_app, serve_http

    import bench_http

    if mode == "bare":
        await bench_http.serve("bare", data_dir)
        return
    async with open_runtime(config=EXAMPLE, data_dir=data_dir, idle_timeout=idle_timeout) as rt:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(lambda task_status: serve_http(build_app(lambda: rt), host="127.0.0.1",
                                                                      port=0, task_status=task_status))
            print(f"READY {binds[0]}", flush=True)


def start_server(mode: str, data_dir: Path, idle_timeout: float = 10.0) -> tuple[subprocess.Popen[str], str]:
    data_dir.mkdir(parents=True)
    log = open(data_dir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--data-dir", str(data_dir),
                             "--idle-timeout", str(idle_timeout)], stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    log.close()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"server {mode} did not start:\n{(data_dir / 'server.log').read_text()}")
    return proc, line.split()[1]


# --- clients -------------------------------------------------------------------------


def event(seq: int) -> dict[str, Any]:
    return {"name": "todoCreated-v1", "args": {"id": f"todo-{seq}", "text": "buy milk"}, "seqNum": seq,
            "parentSeqNum": seq - 1, "clientId": "bench", "sessionId": "bench"}


def request(request_id: int, tag: str, payload: dict[str, Any]) -> str:
    return json.dumps({"_tag": "Request", "id": str(request_id), "tag": tag, "payload": payload, "headers": []})


async def push(ws: Any, request_id: int, store: str, batch: list[dict[str, Any]]) -> None:
    """Push and wait for this request's Exit (skipping live chunks)."""
    await ws.send_message(request(request_id, "SyncWsRpc.Push", {"storeId": store, "batch": batch,
                                                                   "backendId": {"_tag": "None"}}))
    while True:
        frame = json.loads(await ws.get_message())
        if frame["_tag"] == "Exit" and frame["requestId"] == str(request_id):
            assert frame["exit"]["_tag"] == "Success", frame
            return


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure_echo(url: str, duration: float) -> dict[str, float]:
    from trio_websocket import open_websocket_url

    count = 0
    async with open_websocket_url(url.replace("http://", "ws://") + "/") as ws:
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            await ws.send_message("m")
            await ws.get_message()
            count += 1
    return {"round_trips": count / duration, "events": float("nan")}


async def measure_push(url: str, duration: float, batch_size: int) -> dict[str, float]:
    from trio_websocket import open_websocket_url

    store = f"push-{batch_size}"
    ws_url = url.replace("http://", "ws://") + f"/sync?storeId={store}&transport=ws"
    seq, round_trips = 0, 0
    async with open_websocket_url(ws_url, max_message_size=2**24) as ws:
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            batch = [event(s) for s in range(seq + 1, seq + batch_size + 1)]
            await push(ws, round_trips, store, batch)
            seq += batch_size
            round_trips += 1
    return {"round_trips": round_trips / duration, "events": seq / duration}


async def measure_fan_out(url: str, listeners: int, bursts: int, gap: float) -> dict[str, Any]:
    """Latencies (ms) from a push to each live puller; instance changes seen between bursts."""
    import httpx
    from trio_websocket import connect_websocket_url

    store = f"fan-out-{gap:g}"
    ws_url = url.replace("http://", "ws://") + f"/sync?storeId={store}&transport=ws"
    latencies: list[float] = []
    sent_at: dict[int, float] = {}
    received = [0] * listeners
    changes = 0

    async def listen(index: int, ws: Any) -> None:
        while received[index] < bursts:
            frame = json.loads(await ws.get_message())
            if frame["_tag"] == "Chunk":
                for item in frame["values"][0]["batch"]:
                    latencies.append((time.perf_counter() - sent_at[item["eventEncoded"]["seqNum"]]) * 1000.0)
                    received[index] += 1

    async with trio.open_nursery() as nursery, httpx.AsyncClient() as http:
        sockets = []
        for index in range(listeners):
            ws = await connect_websocket_url(nursery, ws_url)
            await ws.send_message(request(0, "SyncWsRpc.Pull", {"storeId": store, "live": True, "cursor": {"_tag": "None"}}))
            json.loads(await ws.get_message())  # phase 1: one empty NoMore
            sockets.append(ws)
            nursery.start_soon(listen, index, ws)
        pusher = await connect_websocket_url(nursery, ws_url)
        probe = f"{url}/instance/sync?storeId={store}"
        instance = (await http.get(probe)).json()["instanceId"]
        for burst in range(1, bursts + 1):
            await trio.sleep(gap)
            sent_at[burst] = time.perf_counter()
            await push(pusher, burst, store, [event(burst)])
            while sum(received) < burst * listeners:
                await trio.sleep(0.001)
            now = (await http.get(probe)).json()["instanceId"]
            changes += now != instance
            instance = now
        for ws in [*sockets, pusher]:
            await ws.aclose()
    return {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "samples": len(latencies),
            "woke_new_instance": changes}


# --- the driver ------------------------------------------------------------------------


def run_against(mode: str, tmp: Path, idle_timeout: float, fn: Any, *args: Any) -> Any:
    proc, url = start_server(mode, tmp / f"{mode}-{idle_timeout:g}-{time.monotonic_ns()}", idle_timeout)
    try:
        return trio.run(fn, url, *args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per push scenario")
    parser.add_argument("--listeners", type=int, default=100, help="live pullers in the fan-out")
    parser.add_argument("--bursts", type=int, default=10, help="pushes in each fan-out scenario")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--idle-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve, args.data_dir, args.idle_timeout)
        return

    with tempfile.TemporaryDirectory(prefix="dohost-bench-livestore-") as tmp_name:
        tmp = Path(tmp_name)
        echo = run_against("bare", tmp, 10.0, measure_echo, args.duration)
        one = run_against("livestore", tmp, 10.0, measure_push, args.duration, 1)
        hundred = run_against("livestore", tmp, 10.0, measure_push, args.duration, 100)
        rows = [
            ["bare ASGI WebSocket echo (baseline)", echo["round_trips"], None, 1.0],
            ["push, 1 event per batch", one["round_trips"], one["events"], one["round_trips"] / echo["round_trips"]],
            ["push, 100 events per batch", hundred["round_trips"], hundred["events"],
             hundred["round_trips"] / echo["round_trips"]],
        ]
        print_table("Push throughput (one client, each push waits for its ack)",
                    ["scenario", "round trips/s", "events/s", "round trips vs echo"], rows)

        warm = run_against("livestore", tmp, 10.0, measure_fan_out, args.listeners, args.bursts, 0.05)
        cold = run_against("livestore", tmp, HIBERNATE_IDLE_S, measure_fan_out, args.listeners, args.bursts,
                           HIBERNATE_GAP_S)
        rows = [
            ["object warm between bursts (baseline)", warm["p50"], warm["p99"], 1.0, warm["samples"],
             f"{warm['woke_new_instance']}/{args.bursts}"],
            ["object hibernating between bursts", cold["p50"], cold["p99"], cold["p50"] / warm["p50"],
             cold["samples"], f"{cold['woke_new_instance']}/{args.bursts}"],
        ]
        print_table(f"Live fan-out of one push to {args.listeners} WebSocket clients",
                    ["scenario", "p50 ms", "p99 ms", "p50 vs warm", "samples", "new instance per burst"], rows)
    print("# shared 2-core machine with other jobs running: figures are noisy; compare the ratios")


if __name__ == "__main__":
    main()
