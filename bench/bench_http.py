"""HTTP and WebSocket throughput of dohost's front, against a bare ASGI app on the same hypercorn.

    python bench/bench_http.py [--duration 5] [--connections 32] [--objects 1000] [--before CHECKOUT] [--http-only]

Prints one table, measured in one run (the machines are noisy, so only ratios
taken side by side mean anything):

* requests/s, p50 and p99 latency of a bare ASGI app (plain ``"1"`` answers)
  on ``runtime._http.serve_http`` -- the same hypercorn trio worker, config
  and bind as dohost;
* the same for dohost serving ``examples/counter``: every request runs the
  Worker, which calls ``increment()`` over RPC on one hot object (a SQL
  upsert, group-committed), and then spread over 1,000 objects;
* WebSocket messages/s (one message out, its echo back) against a bare ASGI
  echo, and through ``examples/chat``'s hibernatable room (each message is
  stored in SQL and broadcast).

``--before CHECKOUT`` also runs the dohost HTTP scenarios on another checkout
(older code, served by that checkout's own ``bench/bench_http.py --serve``),
each right after this checkout's, for before/after rows from one run;
``--http-only`` skips the WebSocket rows.

Fairness: both servers go through ``runtime._http.serve_http`` (the same
hypercorn trio worker, ``Config``, bind and no access log). dohost's server
process sets the GC threshold ``dohost serve`` sets
(``tune_gc_for_serving``); the bare app keeps CPython's defaults, as any ASGI
app would -- measured under callgrind, the bare app runs the same number of
instructions per request either way (1,855k vs 1,856k: it allocates too little
for the GC to matter).

Each server runs in its own process (``--serve``), and so does the load
generator (``--load``): raw HTTP/1.1 over keep-alive loopback connections, one
request in flight per connection, bounded by a duration and a request cap.
The benchmark decides nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

EXAMPLES = REPO / "examples"


# --- servers ------------------------------------------------------------------


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: the least an ASGI app can do per request (and a WebSocket echo)."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"1")]})
        await send({"type": "http.response.body", "body": b"1"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


async def serve(mode: str, data_dir: str) -> None:
    from runtime import open_runtime
    from runtime._http import build_app, serve_http, tune_gc_for_serving

    async def announce(app: Any) -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(lambda task_status: serve_http(app, host="127.0.0.1", port=0,
                                                                      task_status=task_status))
            print(f"READY {binds[0]}", flush=True)

    if mode == "bare":
        await announce(bare_app)
        return
    # Objects stay resident through the slow first touch of 1,000 of them (the
    # default 10 s idle timeout would evict the first ones before measuring).
    tune_gc_for_serving()  # as `dohost serve` does (wrangler_compat/_front.py)
    async with open_runtime(config=EXAMPLES / mode, data_dir=data_dir, idle_timeout=120.0) as rt:
        await announce(build_app(lambda: rt))


# --- load generators -----------------------------------------------------------


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def _http_connection(host: str, port: int, paths: list[bytes], stop: Any, lat: list[float]) -> None:
    stream = await trio.open_tcp_stream(host, port)
    buffer = b""
    i = 0
    async with stream:
        while not stop():
            request = b"GET " + paths[i % len(paths)] + b" HTTP/1.1\r\nHost: bench\r\n\r\n"
            i += 1
            started = time.perf_counter()
            await stream.send_all(request)
            while b"\r\n\r\n" not in buffer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            if head[9:12] != b"200":
                raise RuntimeError(f"unexpected response: {head[:200]!r}")
            at = head.lower().index(b"content-length:") + 15
            length = int(head[at:head.index(b"\r\n", at) if b"\r\n" in head[at:] else len(head)])
            while len(rest) < length:
                rest += await stream.receive_some(65536)
            buffer = rest[length:]
            lat.append(time.perf_counter() - started)


async def _ws_connection(url: str, stop: Any, lat: list[float]) -> None:
    from trio_websocket import open_websocket_url

    async with open_websocket_url(url) as ws:
        while not stop():
            started = time.perf_counter()
            await ws.send_message("m")
            await ws.get_message()
            lat.append(time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc; NaN elsewhere).

    CPU per request is what survives a busy machine: throughput depends on
    the share of a core the server gets, CPU time per request does not.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement; returns counts and latencies (printed as JSON)."""
    lat: list[float] = []
    cap = spec["max_requests"]
    deadline = 0.0
    stop = lambda: len(lat) >= cap or time.perf_counter() >= deadline  # noqa: E731
    url: str = spec["url"]
    host, port = url.split("//")[1].split(":")
    conns = spec["connections"]
    paths = [p.encode() for p in spec.get("paths", ["/"])]
    pid = spec["server_pid"]
    first_touch: dict[str, Any] = {}
    if spec.get("warm_all"):  # touch every object once first: activation, measured apart
        started, cpu = time.perf_counter(), _cpu_seconds(pid)
        async with trio.open_nursery() as nursery:
            for c in range(conns):
                if paths[c::conns]:
                    nursery.start_soon(_touch_each, host, int(port), paths[c::conns])
        elapsed = time.perf_counter() - started
        first_touch = {"count": len(paths), "seconds": elapsed, "rate": len(paths) / elapsed,
                       "cpu_us": (_cpu_seconds(pid) - cpu) / len(paths) * 1e6}
    for phase, seconds in (("warmup", spec["warmup"]), ("measure", spec["duration"])):
        lat.clear()
        deadline = time.perf_counter() + seconds
        started, cpu = time.perf_counter(), _cpu_seconds(pid)
        async with trio.open_nursery() as nursery:
            for c in range(conns):
                if spec["kind"] == "ws":
                    nursery.start_soon(_ws_connection, f"{url.replace('http', 'ws')}/r{c}-{phase}?name=b", stop, lat)
                else:
                    mine = paths[:]
                    random.Random(c).shuffle(mine)
                    nursery.start_soon(_http_connection, host, int(port), mine, stop, lat)
        elapsed = time.perf_counter() - started
        cpu_us = (_cpu_seconds(pid) - cpu) / max(1, len(lat)) * 1e6
    return {"count": len(lat), "seconds": elapsed, "rate": len(lat) / elapsed, **_percentiles(lat),
            "cpu_us": cpu_us, "first_touch": first_touch}


async def _touch_each(host: str, port: int, paths: list[bytes]) -> None:
    lat: list[float] = []
    await _http_connection(host, port, paths, lambda: len(lat) >= len(paths), lat)


# --- the driver -----------------------------------------------------------------


def _start_server(mode: str, data_dir: str, script: str = __file__) -> tuple[subprocess.Popen[str], str]:
    # The server's log (e.g. the chat example's webSocketClose complaints when
    # the load generator hangs up) goes to a file, shown only if it fails.
    Path(data_dir).mkdir(parents=True)
    log = open(Path(data_dir) / "server.log", "w")
    proc = subprocess.Popen([sys.executable, script, "--serve", mode, "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    log.close()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"server {mode} did not start:\n{(Path(data_dir) / 'server.log').read_text()}")
    return proc, line.split()[1]


def _run_load(spec: dict[str, Any]) -> dict[str, Any]:
    # Creating 1,000 objects first (fsync'd) can take minutes on a busy disk.
    slack = 900 if spec.get("warm_all") else 120
    out = subprocess.run([sys.executable, __file__, "--load", json.dumps(spec)],
                         capture_output=True, text=True, timeout=spec["warmup"] + spec["duration"] + slack)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{out.stderr}")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (HTTP)")
    parser.add_argument("--ws-connections", type=int, default=16, help="WebSocket clients")
    parser.add_argument("--objects", type=int, default=1000, help="objects in the spread scenario")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="cap per scenario")
    parser.add_argument("--before", help="another checkout whose dohost also serves the HTTP scenarios")
    parser.add_argument("--http-only", action="store_true", help="skip the WebSocket scenarios")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, args.serve, args.data_dir)
        return
    if args.load:
        print(json.dumps(trio.run(load, json.loads(args.load))))
        return

    base = {"duration": args.duration, "warmup": args.warmup, "max_requests": args.max_requests}
    http = {**base, "kind": "http", "connections": args.connections}
    ws = {**base, "kind": "ws", "connections": args.ws_connections}
    script = __file__
    before = str(Path(args.before).resolve() / "bench" / "bench_http.py") if args.before else None
    hot = ("dohost: hot-object increment", "counter", {**http, "paths": ["/hot"]}, 0, script)
    spread = (f"dohost: increment over {args.objects:,} objects", "counter",
              {**http, "paths": [f"/obj-{i}" for i in range(args.objects)], "warm_all": True}, 0, script)
    scenarios = [("bare ASGI app, GET /", "bare", {**http, "paths": ["/"]}, None, script), hot]
    if before is not None:
        scenarios.append(("  the same, before (--before)", *hot[1:4], before))
    scenarios.append(spread)
    if before is not None:
        scenarios.append(("  the same, before (--before)", *spread[1:4], before))
    if not args.http_only:
        ws_base = len(scenarios)
        scenarios += [("bare ASGI WebSocket echo", "bare", ws, None, script),
                      ("dohost: chat room (hibernatable WS)", "chat", ws, ws_base, script)]
    print(f"# {os.cpu_count()} CPUs; server and load generator are separate processes;"
          f" {args.connections} HTTP connections, {args.ws_connections} WebSocket clients,"
          f" {args.duration:g} s each after {args.warmup:g} s warm-up", flush=True)
    header = (f"{'scenario':40} {'rate/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>7}"
              f" {'CPU us/req':>10} {'per-CPU vs bare':>15}")
    print(header)
    print("-" * len(header))
    results: list[dict[str, Any]] = []

    def row(label: str, r: dict[str, Any], base: dict[str, Any] | None, unit: str) -> None:
        base = base or r
        p50 = f"{r['p50_ms']:>7.2f}" if "p50_ms" in r else f"{'':>7}"
        p99 = f"{r['p99_ms']:>7.2f}" if "p99_ms" in r else f"{'':>7}"
        print(f"{label:40} {r['rate']:>8,.0f} {p50} {p99} {r['rate'] / base['rate']:>6.2f}x"
              f" {r['cpu_us']:>10,.0f} {base['cpu_us'] / r['cpu_us']:>14.2f}x{unit}", flush=True)

    with tempfile.TemporaryDirectory(prefix="dohost-bench-") as tmp:
        for i, (label, mode, spec, baseline, serve_script) in enumerate(scenarios):
            proc, url = _start_server(mode, str(Path(tmp) / f"{mode}-{i}"), serve_script)
            try:
                result = _run_load({**spec, "url": url, "server_pid": proc.pid})
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            results.append(result)
            base = results[baseline] if baseline is not None else None
            unit = " (msgs)" if spec["kind"] == "ws" else ""
            if result["first_touch"]:
                row("  first touch of each (activation)", result["first_touch"], base, "")
            row(label, result, base, unit)
    print("# 'vs bare' compares throughput (depends on the CPU share the server got on a shared machine);")
    print("# 'per-CPU vs bare' compares server CPU time per request (bare / this): the robust ratio.")
    print("# target: dohost hot-object increment >= 0.9x the bare ASGI app (DESIGN.md, performance contract)")


if __name__ == "__main__":
    main()
