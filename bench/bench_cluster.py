"""Three ``dohost serve --cluster`` nodes on a 3-member etcd, against 1 and 3 processes and workerd, side by side.

The user's path, as ``bench_processes.py`` measures it (its Worker, its
``wrk`` Lua script and its server start-up are imported, not copied):
``/hello/<name>`` (the object returns a constant) and ``/incr/<name>`` (a SQL
upsert and read, fsynced) over 1,000 objects picked at random per request.

Servers, all started before any timing and measured in interleaved rounds
(best of the rounds), so a burst of load from another job on this shared
machine hits every server alike:

* ``dohost, 1 process``: plain ``dohost serve``;
* ``dohost --processes 3``: one machine, three processes, hash-partitioned;
* ``3 nodes (etcd x3)``: a real 3-member etcd (Debian's ``etcd``, installed by
  ``tests/e2e/_cluster_support.find_etcd`` if missing) and three
  ``dohost serve --cluster`` nodes on loopback sharing one data directory;
  the load is split over the three nodes (three ``wrk``s, 16 connections in
  all), so on average 2/3 of the requests land on a node that does not own
  the object and are forwarded;
* ``workerd``: the same Worker in JS (``bench/_workerd.py``).

Besides requests/s, the CPU time the server's processes used during the timed
run (``/proc/<pid>/stat``, so ``wrk`` and other jobs don't count) is divided
by the requests answered: CPU per request, split into dohost's processes and
etcd's. That is the figure to trust on a loaded 2-core machine.

Run: ``python bench cluster`` (``python bench/bench_cluster.py --quick``: one
short round). ``--compare DIR`` adds a "(before)" row for ``--processes 3``
and the cluster run from an older checkout in ``DIR`` (``git archive`` it
there), measured in the same rounds. Never asserts; a server that can't start is reported and the
others still run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Awaitable, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE), str(ROOT / "tests" / "e2e")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import bench_processes  # noqa: E402  (its Worker, wrk script and server start-up)
import httpx  # noqa: E402
import trio  # noqa: E402
from _hotpaths_apps import JS_WORKER  # noqa: E402
from _table import print_table  # noqa: E402

QUICK = "--quick" in sys.argv
COMPARE = Path(sys.argv[sys.argv.index("--compare") + 1]).resolve() if "--compare" in sys.argv else None
ROUNDS = 1 if QUICK else 2
SECONDS = 3 if QUICK else 4
WARM_SECONDS = 1 if QUICK else 2
IDLE_SECONDS = 2
CONNECTIONS = 16
KINDS = ("hello", "incr")
TTL = 3  # the nodes' --lease-ttl (the default)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the live processes ``pids`` and their descendants have used."""
    return sum(bench_processes._cpu_seconds(pid) for pid in pids)


class Server:
    """One server under test: the URLs wrk is pointed at, and its dohost and etcd processes."""

    def __init__(self, label: str, urls: list[str], pids: Callable[[], dict[str, list[int]]]) -> None:
        self.label = label
        self.urls = urls
        self.pids = pids


async def _wrk(url: str, kind: str, seconds: float, connections: int) -> tuple[int, float, int]:
    """(2xx answers, 2xx answers/s, other answers) of one ``wrk`` run with ``bench_processes``' script."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(bench_processes.LUA % (kind, bench_processes.OBJECTS))
    try:
        threads = min(2, connections)
        done = await trio.run_process(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_stdout=True, capture_stderr=True, check=True,
        )
    finally:
        Path(script.name).unlink()
    out = done.stdout.decode()
    count = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if count is None:
        raise RuntimeError(f"wrk against {url}: {out}")
    errors = int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    good = int(count[1]) - errors
    elapsed = float(count[2]) / (1000 if count[3] == "ms" else 1)
    return good, good / elapsed, errors


async def _load(server: Server, kind: str, seconds: float) -> tuple[float, dict[str, float], int]:
    """2xx answers/s over all the server's URLs at once, CPU seconds per answer by process kind, and errors."""
    share = [CONNECTIONS // len(server.urls) + (i < CONNECTIONS % len(server.urls)) for i in range(len(server.urls))]
    pids = server.pids()
    before = {k: _cpu_seconds(v) for k, v in pids.items()}
    results: list[tuple[int, float, int]] = []

    async def one(url: str, connections: int) -> None:
        results.append(await _wrk(url, kind, seconds, connections))

    async with trio.open_nursery() as nursery:
        for url, connections in zip(server.urls, share):
            nursery.start_soon(one, url, connections)
    requests = sum(r[0] for r in results)
    cpu = {k: (_cpu_seconds(v) - before[k]) / max(requests, 1) for k, v in pids.items()}
    return sum(r[1] for r in results), cpu, sum(r[2] for r in results)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _wait_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    async with httpx.AsyncClient(timeout=2.0) as http:
        with trio.fail_after(timeout):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{url}: the node exited with {proc.returncode}")
                try:
                    if (await http.get(url + "/__dohost/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.1)


async def _start_cluster(stack: AsyncExitStack, folder: Path, code: Path = ROOT, label: str = "3 nodes (etcd ×3)") -> Server:
    """A 3-member etcd and three dohost nodes (run from ``code``) sharing ``folder/data``; stopped by ``stack``."""
    from _cluster_support import EtcdCluster, find_etcd, free_ports, node_argv, wait_placed
    from _e2e_support import resolve_command

    etcd = EtcdCluster(find_etcd(), folder / "etcd", 3)
    etcd.root.mkdir(parents=True)
    stack.push_async_callback(etcd.stop_all)
    await etcd.start_all()
    project = bench_processes._write_project(folder)
    ports = free_ports(3)
    nodes: list[subprocess.Popen[bytes]] = []
    for i, port in enumerate(ports):
        argv = node_argv(etcd, folder / "data", f"n{i}", port, TTL, project, extra=["--idle-timeout", "600"])
        # From ``code`` (python -m with that working directory imports its packages first).
        command = resolve_command(argv) if code == ROOT else [sys.executable, "-m", "wrangler_compat.cli", *argv[1:]]
        with open(folder / f"n{i}.log", "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=code)
        stack.callback(_stop, proc)
        nodes.append(proc)
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    for url, proc in zip(urls, nodes):
        await _wait_health(url, proc)
    await wait_placed(etcd, {"n0", "n1", "n2"}, timeout=60)

    def pids() -> dict[str, list[int]]:
        return {"dohost": [p.pid for p in nodes], "etcd": [p.pid for p in etcd.procs.values()]}

    return Server(label, urls, pids)


async def _start_processes(stack: AsyncExitStack, folder: Path, count: int, code: Path = ROOT, suffix: str = "") -> Server:
    proc, url = bench_processes._start_dohost(folder, count, code)
    stack.callback(_stop, proc)
    label = ("dohost, 1 process" if count == 1 else f"dohost --processes {count}") + suffix
    return Server(label, [url], lambda: {"dohost": [proc.pid]})


async def _start_workerd(stack: AsyncExitStack, folder: Path) -> Server:
    from _workerd import start_workerd

    proc, url = start_workerd(JS_WORKER, folder)
    stack.callback(_stop, proc)
    return Server("workerd", [url], lambda: {"workerd": [proc.pid]})


def _progress(what: str, since: float) -> None:
    print(f"bench_cluster: {what} ({time.monotonic() - since:.0f} s)", file=sys.stderr, flush=True)


async def _measure() -> None:
    t0 = time.monotonic()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="dohost-bench-cluster-") as tmp:
        async with AsyncExitStack() as stack:
            starts: list[tuple[str, Callable[[Path], Awaitable[Server]]]] = [
                ("dohost, 1 process", lambda f: _start_processes(stack, f, 1)),
                ("dohost --processes 3", lambda f: _start_processes(stack, f, 3)),
                ("3 nodes (etcd ×3)", lambda f: _start_cluster(stack, f)),
                ("workerd", lambda f: _start_workerd(stack, f)),
            ]
            if COMPARE is not None:
                old = COMPARE
                starts[2:2] = [("dohost --processes 3 (before)", lambda f: _start_processes(stack, f, 3, old, " (before)"))]
                starts[4:4] = [("3 nodes (before)", lambda f: _start_cluster(stack, f, old, "3 nodes (before)"))]
            for i, (label, start) in enumerate(starts):
                folder = Path(tmp) / f"s{i}"
                folder.mkdir()
                try:
                    servers.append(await start(folder))
                except Exception as exc:  # workerd or etcd may not install here: say so, keep the rest
                    print(f"{label}: not measured ({type(exc).__name__}: {str(exc)[-500:]})")
            _progress(f"{len(servers)} servers started", t0)
            # etcd's own CPU with no requests at all (raft heartbeats, the nodes' lease
            # keepalives and watches): compared below with its CPU under load.
            etcd_idle = None
            for server in servers:
                if "etcd" in server.pids():
                    before = _cpu_seconds(server.pids()["etcd"])
                    await trio.sleep(IDLE_SECONDS)
                    etcd_idle = (_cpu_seconds(server.pids()["etcd"]) - before) / IDLE_SECONDS
            # Warm up: most objects created and resident everywhere before timing.
            best: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}
            for rounds, seconds in ((1, WARM_SECONDS), (ROUNDS, SECONDS)):
                for _ in range(rounds):
                    for server in servers:
                        for kind in KINDS:
                            try:
                                rate, cpu, errors = await _load(server, kind, seconds)
                            except Exception as exc:  # one failed run is a gap in the table, not the end
                                print(f"{server.label} {kind}: a run failed ({type(exc).__name__}: {str(exc)[-300:]})")
                                continue
                            if errors:
                                print(f"{server.label} {kind}: {errors} answers were not 2xx (not counted)")
                            key = (server.label, kind)
                            if seconds == SECONDS and (key not in best or rate > best[key][0]):
                                best[key] = (rate, cpu)
                _progress("warmed up" if seconds == WARM_SECONDS else "measured", t0)
            _report(servers, best, etcd_idle)  # before the clean-up: deleting 3,000 object files can take a while


def _report(servers: list[Server], best: dict[tuple[str, str], tuple[float, dict[str, float]]], etcd_idle: float | None) -> None:
    def ratio(label: str, base: str, kind: str) -> str:
        if (base, kind) not in best or (label, kind) not in best:
            return "–"
        return f"{best[(label, kind)][0] / best[(base, kind)][0]:.2f}×"

    rows: list[list[object]] = []
    for s in servers:
        row: list[object] = [s.label]
        for kind in KINDS:
            rate = best[(s.label, kind)][0] if (s.label, kind) in best else None
            row += [rate, ratio(s.label, "dohost, 1 process", kind), ratio(s.label, "workerd", kind)]
        rows.append(row)
    title = (f"HTTP requests/s over {bench_processes.OBJECTS:,} objects (wrk, {CONNECTIONS} connections, "
             f"best of {ROUNDS} × {SECONDS} s; 2-core shared machine)")
    print_table(title, ["server", "hello req/s", "vs 1 process", "vs workerd",
                        "incr req/s", "vs 1 process", "vs workerd"], rows)
    cpu_rows: list[list[object]] = []
    for s in servers:
        row = [s.label]
        for kind in KINDS:
            if (s.label, kind) not in best:
                row += [None, None]
                continue
            cpu = best[(s.label, kind)][1]
            server_ms = sum(v for k, v in cpu.items() if k != "etcd") * 1e3
            row += [server_ms, cpu["etcd"] * 1e3 if "etcd" in cpu else None]
        cpu_rows.append(row)
    print_table("CPU ms per request, in the server's own processes (the same runs)",
                ["server", "hello: dohost/workerd", "hello: etcd", "incr: dohost/workerd", "incr: etcd"], cpu_rows)
    for s in servers:
        if etcd_idle is not None and all((s.label, k) in best and "etcd" in best[(s.label, k)][1] for k in KINDS):
            loaded = {kind: best[(s.label, kind)][1]["etcd"] * best[(s.label, kind)][0] for kind in KINDS}
            print(f"\n{s.label}: etcd (3 members) CPU: {etcd_idle * 1e3:.0f} ms/s idle; under load {loaded['hello'] * 1e3:.0f} ms/s (hello),"
                  f" {loaded['incr'] * 1e3:.0f} ms/s (incr)", flush=True)


def main() -> None:
    if shutil.which("wrk") is None:
        print("bench_cluster: `wrk` is not installed (apt-get install wrk); skipped")
        return
    trio.run(_measure)


if __name__ == "__main__":
    main()
