"""Where an HTTP request's server CPU goes: user/system time, the cyclic GC, syscalls, instructions.

    python bench/bench_http_split.py [--seconds 3] [--repeats 3] [--objects 1000] [--strace] [--mixed] [CHECKOUT ...]
    python bench/bench_http_split.py --paired ROUNDS [--seconds 3] [--processes 2] [--scenarios hello_hot] [--no-pin]
                                      [--same-client] [--objects N] [--raw FILE] [CHECKOUT ...]
    python bench/bench_http_split.py --callgrind N [--cache-sim [--ll SIZE,ASSOC,LINE]] [--connections 16]
                                      [--objects 1000] [--mixed] [--scenarios a,b] [--keep DIR] [CHECKOUT ...]

Serves the hot-paths Worker (``_hotpaths_apps.PY_WORKER``) from this
checkout and from each ``CHECKOUT`` given (older code, served by its own
``bench/bench_hotpaths.py --serve``), beside the bare ASGI app, all at once,
each with 1,000 objects touched first. Then, ``--repeats`` times, every
server takes its turn at each scenario (``hello`` on one hot object,
``hello`` over the 1,000 objects, ``incr`` on one hot object; ``wrk -t1
-c16``), and for each run prints per request: server CPU split into user and
system time, the cyclic GC's collections and the CPU they took (measured in
the server by ``bench/_serve_probe.py``), and context switches. Ratios are
bare ÷ dohost per repetition (the bare app's run of the same repetition),
given as a range.

``--mixed`` adds a server of this checkout that also answers ``/`` with the
bare app from the same process (``bare_in_dohost``): the bare path with
dohost's heap and objects around it.

``--strace`` adds one pass per scenario and server with ``strace -f -c``
attached: syscalls per request (tracing slows the server; its CPU figures
are not used). ``--callgrind N`` instead runs every server under valgrind's
callgrind and counts user-space instructions over N requests of each
scenario (counters zeroed after the objects are touched and
dumped after the load; a Python client with 16 connections): what the
machine's load cannot blur — and what it leaves out (the kernel's work for
the syscalls, cache misses). ``--cache-sim`` adds callgrind's simulated
cache misses (I1/D1 per request) and callgrind's estimate of cycles from
them (instructions + 10 per L1 miss + 100 per last-level miss): with
``--ll 1048576,8,64`` a deterministic stand-in for CPU time that counts
the memory a request reaches, which instructions alone miss. Under
valgrind's slow-down objects sit idle for minutes, so the servers' idle
timeout and long park delay are raised (``CALLGRIND_IDLE_TIMEOUT``, through
the probe) and counting starts once the parks after the touch pass have
settled; each scenario prints the objects live, parked and with files open
before and after it and whether the same activations served it (no object
evicted and re-created), so a count that includes parks or re-creations
shows. The spread scenario's requests each meet a different object.
``--keep DIR`` copies each scenario's dump (``DIR/<scenario>-<server>.cg``,
for a per-function comparison); ``--url-cache N`` raises the servers'
``urlsplit`` cache to N URLs (an experiment: the benchmark Worker's own
``urlparse`` misses CPython's 128-URL cache over 1,000 objects).

``--paired ROUNDS`` measures the CPU-time ratio as steadily as this shared
machine allows (see the README's round 8 HTTP section for its spread on
unchanged code): every server is pinned to the last core and ``wrk`` to
the first (``taskset``; ``--no-pin`` keeps the scheduler's choice), then
ROUNDS short runs (``--seconds``: 3 s by default, 1 s from ``bench_hotpaths``) take turns server by
server, round by round. A round's CPU per request is the server process's own (getrusage in the server, via
the probe: user + system, threads included). Other processes on the two
cores don't slow every round alike: they come in bursts, and a round they
hit costs up to 2–5× a quiet one (cache refills after each preemption,
contended caches). So the headline is the mean of each server's quietest
quarter of rounds and the ratio of those (a best-of-N that averages several
rounds), beside the ratio of the minima; the median of all rounds and the
median per-round ratio (the bare app's round ÷ this server's adjacent one)
show how busy the machine was. ``--scenarios`` picks from ``hello_hot``,
``hello_spread``, ``incr_hot`` and ``incr_spread`` (a committed write to
one of the objects per request; under ``--callgrind`` only when named); the bare app always answers ``hello``,
under the hot ``hello``'s plain ``wrk`` unless ``--same-client`` gives it
each scenario's own client (the spread ones' Lua script and paths).
``bench_hotpaths.py`` runs its HTTP CPU rows through :func:`paired_rounds`.
Each server runs as ``--processes``
processes (2 by default) that take turns round by round: how a process's
heap and code fall into the caches changes from one start to the next, and
a few percent either way with it.

The benchmark decides nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import trio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _hotpaths_apps import PY_WORKER, WRANGLER  # noqa: E402
from bench_http import _http_connection  # noqa: E402

SPREAD = 1_000  # --objects
CONNECTIONS = 16
PROBE = HERE / "_serve_probe.py"
LUA_SPREAD = """\
math.randomseed({seed})
request = function()
  return wrk.format("GET", "/{op}/o-" .. math.random(0, {n} - 1))
end
"""
#: With --callgrind --keep DIR: where each scenario's and server's callgrind dump is copied.
KEEP: Path | None = None
#: With --callgrind: the servers' idle (eviction) timeout, seconds (set through the probe).
CALLGRIND_IDLE_TIMEOUT = 86_400.0
SCENARIOS = ("hello_hot", "hello_spread", "incr_hot")
#: Scenarios ``wrk`` can run (``incr_spread``: a committed write to one of SPREAD objects each).
WRK_SCENARIOS = SCENARIOS + ("incr_spread",)
#: With --mixed: the bare app served from a process that also holds dohost and its objects.
MIXED = "bare_in_dohost"


class Server:
    def __init__(self, label: str, checkout: Path | None, folder: Path, callgrind: bool = False,
                 cache_sim: bool = False, mixed: bool = False, valgrind_args: tuple[str, ...] = (),
                 cpu: int | None = None) -> None:
        self.label = label
        self.folder = folder
        self.probe_out = folder / "probe.json"
        folder.mkdir(parents=True)
        mode = "bare" if checkout is None else "dohost"
        script = (checkout or ROOT) / "bench" / "bench_hotpaths.py"
        if checkout is not None:
            (folder / "project" / "src").mkdir(parents=True)
            (folder / "project" / "wrangler.toml").write_text(WRANGLER)
            (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
        cmd = [sys.executable, str(PROBE), str(script), "--serve", mode, str(folder)]
        if mixed:  # this checkout's dohost, and the bare app at "/" in the same process
            cmd = [sys.executable, str(PROBE), __file__, "--serve-mixed", str(folder)]
        if callgrind:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/cg.out",
                   *(["--cache-sim=yes"] if cache_sim else []), *valgrind_args, *cmd]
        if cpu is not None:  # the whole process (every thread it starts) on that core
            cmd = ["taskset", "-c", str(cpu), *cmd]
        log = open(folder / "server.log", "w")
        env = {**os.environ, "DOHOST_PROBE_OUT": str(self.probe_out)}
        if callgrind:
            # Under valgrind the objects touched first would sit idle past the bench
            # server's 120 s eviction timeout before the last scenario ends: evicted,
            # half the spread requests re-created their object (round 7's figure).
            env["DOHOST_PROBE_IDLE_TIMEOUT"] = str(CALLGRIND_IDLE_TIMEOUT)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"{label} did not start: {(folder / 'server.log').read_text()[-2000:]}")
        self.url = line.split()[1]
        self.dumps = 0
        self.slow = callgrind

    def objects(self) -> dict[str, Any] | None:
        """The server's dohost objects (``_serve_probe``: live, parked, open files, events); None for bare."""
        return self.probe(heap=True)["runtime"]  # type: ignore[no-any-return]

    def probe(self, heap: bool = False) -> dict[str, Any]:
        self.probe_out.unlink(missing_ok=True)
        os.kill(self.proc.pid, signal.SIGUSR2 if heap else signal.SIGUSR1)
        for _ in range(2000 if not self.slow else 24000):
            if self.probe_out.exists():
                return json.loads(self.probe_out.read_text())  # type: ignore[no-any-return]
            time.sleep(0.005)
        raise RuntimeError(f"{self.label}: no probe answer")

    def callgrind(self, command: str) -> dict[str, int]:
        subprocess.run(["callgrind_control", command, str(self.proc.pid)], check=True, capture_output=True)
        if command != "-d":
            return {}
        self.dumps += 1
        dump = self.folder / f"cg.out.{self.dumps}"
        for _ in range(600):
            if dump.exists() and "totals:" in dump.read_text()[-4000:]:
                break
            time.sleep(0.1)
        text = dump.read_text()
        events = re.findall(r"^events: (.*)$", text, re.M)[-1].split()
        totals = re.findall(r"^(?:totals|summary): (.*)$", text, re.M)[-1].split()
        return dict(zip(events, map(int, totals)))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def serve_mixed(folder: str) -> None:
    """dohost with its objects, and the bare app answering ``/`` in the same process."""
    from bench_http import bare_app
    from runtime import open_runtime
    from runtime._http import build_app, serve_http, tune_gc_for_serving

    tune_gc_for_serving()
    async with open_runtime(config=Path(folder) / "project" / "wrangler.toml", data_dir=Path(folder) / "storage",
                            durability="full", idle_timeout=120.0) as rt:
        dohost = build_app(lambda: rt)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/":
                await bare_app(scope, receive, send)
            else:
                await dohost(scope, receive, send)

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(lambda task_status: serve_http(app, host="127.0.0.1", port=0,
                                                                      task_status=task_status))
            print(f"READY {binds[0]}", flush=True)


def requests(server: Server, paths: list[str], count: int) -> int:
    """About ``count`` requests over CONNECTIONS keep-alive connections (a Python client, for callgrind
    runs); returns how many were made (a multiple of CONNECTIONS)."""
    host, port = server.url.split("//")[1].split(":")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            for c in range(CONNECTIONS):
                mine = [p.encode() for p in paths[c::CONNECTIONS]] or [paths[0].encode()]
                share = count // CONNECTIONS
                done: list[float] = []  # the client's latencies, one per answered request
                nursery.start_soon(_http_connection, host, int(port), mine,
                                   (lambda d=done, s=share: len(d) >= s), done)

    trio.run(run)
    return count // CONNECTIONS * CONNECTIONS


#: With --paired: the core wrk runs on (None: anywhere).
CLIENT_CPU: int | None = None


def wrk(server: Server, scenario: str, seconds: float, folder: Path, seed: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s"]
    if CLIENT_CPU is not None:
        cmd = ["taskset", "-c", str(CLIENT_CPU), *cmd]
    path = {"hello_hot": "/hello/hot", "incr_hot": "/incr/hot"}.get(scenario, "/")
    if scenario in ("hello_spread", "incr_spread"):
        lua = folder / f"{scenario}-{seed}.lua"
        lua.write_text(LUA_SPREAD.format(seed=seed, n=SPREAD, op=scenario.split("_")[0]))
        cmd += ["-s", str(lua)]
        path = "/"
    before = server.probe()
    out = subprocess.run(cmd + [server.url + path], capture_output=True, text=True, timeout=seconds + 60)
    after = server.probe()
    m = re.search(r"(\d+) requests in", out.stdout)
    if out.returncode != 0 or m is None or "Non-2xx" in out.stdout:
        raise RuntimeError(f"wrk failed on {server.label}: {out.stdout[-500:]} {out.stderr[-500:]}")
    n = int(m.group(1))
    if n == 0:
        return {"count": 0}
    per = lambda key: (after[key] - before[key]) / n  # noqa: E731
    return {
        "count": n,
        "user_us": per("utime") * 1e6, "sys_us": per("stime") * 1e6,
        "cpu_us": (per("utime") + per("stime")) * 1e6,
        "gc_us": sum(after["gc_ns"][g] - before["gc_ns"][g] for g in range(3)) / n / 1e3,
        "gc2_us": (after["gc_ns"][2] - before["gc_ns"][2]) / n / 1e3,
        "gc_per_kreq": [(after["runs"][g] - before["runs"][g]) / n * 1000 for g in range(3)],
        "csw": per("nvcsw") + per("nivcsw"), "vcsw": per("nvcsw"), "minflt": per("minflt"),
    }


def strace_pass(server: Server, scenario: str, seconds: float, folder: Path) -> dict[str, float]:
    log = folder / f"strace-{server.label}-{scenario}.txt"
    tracer = subprocess.Popen(["strace", "-f", "-c", "-o", str(log), "-p", str(server.proc.pid)],
                              stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    r = wrk(server, scenario, seconds, folder, 99)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=30)
    calls: dict[str, float] = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3]) / r["count"]
    return calls


def touch(server: Server) -> None:
    requests(server, [f"/hello/o-{i}" for i in range(SPREAD)] + ["/hello/hot", "/incr/hot"],
             SPREAD + 2 * CONNECTIONS)


def main() -> None:
    global SPREAD, CONNECTIONS, KEEP
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", help="other checkouts whose dohost also serves")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--callgrind", type=int, default=0, help="count instructions over N requests instead")
    parser.add_argument("--cache-sim", action="store_true", help="with --callgrind: simulated cache misses too")
    parser.add_argument("--ll", help="with --cache-sim: the simulated last-level cache as SIZE,ASSOC,LINE"
                        " (e.g. 1048576,8,64 for an L2-sized one; valgrind's default is the machine's L3)")
    parser.add_argument("--url-cache", type=int, default=0, metavar="N",
                        help="raise the servers' urlsplit cache to N URLs (the benchmark Worker's urlparse)")
    parser.add_argument("--keep", help="with --callgrind: copy each dump to DIR/<scenario>-<server>.cg")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help="with --callgrind: client connections (1: requests one at a time, no batching)")
    parser.add_argument("--scenarios", default="", help="with --callgrind or --paired: only these (comma-separated)")
    parser.add_argument("--objects", type=int, default=SPREAD, help="objects in the spread scenario")
    parser.add_argument("--mixed", action="store_true",
                        help="also serve the bare app from a process holding dohost and its objects")
    parser.add_argument("--serve-mixed", help=argparse.SUPPRESS)
    parser.add_argument("--strace", action="store_true", help="also count syscalls per request")
    parser.add_argument("--paired", type=int, default=0, metavar="ROUNDS",
                        help="the CPU ratio: ROUNDS short interleaved runs, pinned, median of per-round ratios")
    parser.add_argument("--raw", help="with --paired: write every round's figures to this JSON file")
    parser.add_argument("--processes", type=int, default=2,
                        help="with --paired: processes per server, taking turns (default 2)")
    parser.add_argument("--same-client", action="store_true",
                        help="with --paired: the bare app gets each scenario's own wrk (spread: its Lua script)")
    parser.add_argument("--no-pin", action="store_true", help="with --paired: don't pin servers and wrk to cores")
    args = parser.parse_args()
    if args.serve_mixed:
        trio.run(serve_mixed, args.serve_mixed)
        return
    SPREAD = args.objects
    CONNECTIONS = args.connections
    KEEP = Path(args.keep).resolve() if args.keep else None
    if args.url_cache:
        os.environ["DOHOST_PROBE_URL_CACHE"] = str(args.url_cache)  # the servers inherit it
    if args.paired:
        return paired(args)
    extra = (f"--LL={args.ll}",) if args.ll else ()
    checkouts = [("this", ROOT)] + [(Path(c).name, Path(c).resolve()) for c in args.checkouts]
    with tempfile.TemporaryDirectory(prefix="dohost-split-", dir="/dev/shm") as tmp_name:
        tmp = Path(tmp_name)
        servers: list[Server] = []
        try:
            servers.append(Server("bare", None, tmp / "bare", bool(args.callgrind), args.cache_sim,
                                  valgrind_args=extra))
            for label, checkout in checkouts:
                servers.append(Server(label, checkout, tmp / label, bool(args.callgrind), args.cache_sim,
                                      valgrind_args=extra))
            if args.mixed:
                servers.append(Server("mixed", ROOT, tmp / "mixed", bool(args.callgrind), args.cache_sim,
                                      mixed=True, valgrind_args=extra))
            for s in servers[1:]:
                if args.callgrind:
                    s.objects()  # sets the idle timeout (CALLGRIND_IDLE_TIMEOUT) before any object exists
                touch(s)
            if args.callgrind:
                return callgrind_table(servers, args.callgrind, set(filter(None, args.scenarios.split(","))))
            heap = {s.label: s.probe(heap=True)["tracked"] for s in servers}
            print(f"# tracked objects per GC generation after touching {SPREAD:,} objects: {heap}")
            results: dict[tuple[str, str], list[dict[str, float]]] = {}
            for rep in range(args.repeats):
                order = servers[rep % len(servers):] + servers[:rep % len(servers)]
                for scenario in SCENARIOS + (MIXED,):
                    for s in order:
                        if scenario in runs(s.label):
                            results.setdefault((scenario, s.label), []).append(wrk(s, scenario, args.seconds, tmp, rep))
            table(servers, results)
            if args.strace and shutil.which("strace"):
                print("\n# syscalls per request (strace -f -c attached; one pass)")
                for scenario in SCENARIOS + (MIXED,):
                    for s in servers:
                        if scenario not in runs(s.label):
                            continue
                        calls = strace_pass(s, scenario, args.seconds, tmp)
                        top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
                        print(f"{scenario:13} {s.label:10} total {sum(calls.values()):5.2f}: "
                              + ", ".join(f"{k} {v:.2f}" for k, v in top), flush=True)
        finally:
            for s in servers:
                s.stop()


def paired(args: argparse.Namespace) -> None:
    """``--paired``: per-round bare ÷ dohost CPU ratios, servers pinned to one core, wrk to another."""
    scenarios = [s for s in (args.scenarios.split(",") if args.scenarios else ["hello_hot"]) if s]
    checkouts = [("this", ROOT)] + [(Path(c).name, Path(c).resolve()) for c in args.checkouts]
    with tempfile.TemporaryDirectory(prefix="dohost-split-", dir="/dev/shm") as tmp_name:
        run = paired_rounds(Path(tmp_name), checkouts, scenarios, args.paired, args.seconds, args.processes,
                            pin=not args.no_pin, same_client=args.same_client)
    if args.raw:
        Path(args.raw).write_text(json.dumps({"cpu": {f"{k[0]} {k[1]}": v for k, v in run.cpu.items()},
                                              "nivcsw": {f"{k[0]} {k[1]}": v for k, v in run.nivcsw.items()}}))
    print(f"# {args.paired} rounds × {args.seconds:g} s, {args.processes} processes per server taking turns,"
          f" {run.pin}; the bare app's client: "
          + ("each scenario's own" if args.same_client else "the hot hello's (plain wrk)")
          + f"; load average {os.getloadavg()[0]:.1f}"
          + (f"; {run.dropped} rounds dropped (a server answered nothing)" if run.dropped else ""))
    print("| scenario | server | CPU µs/req: quietest quarter of rounds (min) | bare ÷ this, quietest quarter"
          " (min) | all rounds: median (quartiles) | per-round bare ÷ this: median (quartiles) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for scenario in scenarios:
        for label in run.labels:
            f = run.figures(scenario, label)
            line = (f"| {scenario} | {label} | {f.quiet:.0f} ({f.least:.0f}) | "
                    + (f"**{f.ratio:.3f}×** ({f.ratio_min:.3f}×)" if label != "bare" else "")
                    + f" | {f.median:.0f} ({f.quartiles[0]:.0f}–{f.quartiles[2]:.0f}) |")
            if label != "bare":
                rq = f.round_ratios
                line += f" {rq[1]:.3f}× ({rq[0]:.3f}–{rq[2]:.3f}) |"
            else:
                line += " |"
            print(line, flush=True)


class PairedFigures(NamedTuple):
    """One server's figures in one scenario of a paired run (CPU µs per request; ratios bare ÷ it)."""

    quiet: float  #: mean of its quietest quarter of rounds
    least: float  #: its least round
    ratio: float  #: bare's quietest quarter ÷ this one's: the headline
    ratio_min: float  #: bare's least round ÷ this one's
    median: float  #: median of all its rounds
    quartiles: tuple[float, float, float]
    round_ratios: tuple[float, float, float]  #: quartiles of per-round bare ÷ this (the spread)


class PairedRun(NamedTuple):
    cpu: dict[tuple[str, str], list[float]]  #: (scenario, label) -> CPU µs/req per kept round
    nivcsw: dict[tuple[str, str], list[float]]
    labels: list[str]  #: "bare" first, then the checkouts' labels
    dropped: int
    pin: str

    def figures(self, scenario: str, label: str) -> PairedFigures:
        base, mine = self.cpu[(scenario, "bare")], self.cpu[(scenario, label)]
        return PairedFigures(_quiet(mine), min(mine), _quiet(base) / _quiet(mine), min(base) / min(mine),
                             _quartiles(mine)[1], _quartiles(mine),
                             _quartiles([b / m for b, m in zip(base, mine)]))


def paired_rounds(tmp: Path, checkouts: list[tuple[str, Path]], scenarios: list[str], rounds: int,
                  seconds: float = 1.0, processes: int = 2, pin: bool = True,
                  same_client: bool = False) -> PairedRun:
    """ROUNDS short ``wrk`` runs per scenario taking turns: the bare app (``hello_hot``) and each
    checkout's dohost (labelled as given), each as ``processes`` processes alternating round by
    round; servers pinned to the last core, wrk to the first (unless ``pin`` is false or there is
    one core). The spread scenarios touch SPREAD objects first. Servers live under ``tmp``.
    ``same_client``: the bare app's turn in a scenario runs that scenario's own ``wrk`` (its
    paths, and for the spread ones its Lua script), not the hot ``hello``'s plain one."""
    global CLIENT_CPU
    cores = sorted(os.sched_getaffinity(0))
    server_cpu = None if not pin or len(cores) < 2 else cores[-1]
    CLIENT_CPU = None if server_cpu is None else cores[0]
    servers: list[Server] = []
    # Each variant runs in several processes, taking turns round by round: where a
    # process's heap and code land in the caches differs from one start to the next.
    variants: list[list[Server]] = []
    try:
        for label, checkout in [("bare", None)] + checkouts:
            variants.append([Server(label, checkout, tmp / f"{label}-{k}", cpu=server_cpu)
                             for k in range(processes)])
            servers += variants[-1]
        for s in servers:
            if SPREAD and s.label != "bare":
                touch(s)
        for s in servers:  # warm up: the first requests of a connection pay for imports and caches
            wrk(s, scenarios[0] if s.label != "bare" else "hello_hot", min(seconds, 1.0), tmp, 0)
        cpu: dict[tuple[str, str], list[float]] = {}
        nivcsw: dict[tuple[str, str], list[float]] = {}
        dropped = 0
        for rep in range(rounds):
            turn = [v[rep % len(v)] for v in variants]
            order = turn[rep % len(turn):] + turn[:rep % len(turn)]
            for scenario in scenarios:
                got = {s.label: wrk(s, scenario if s.label != "bare" or same_client else "hello_hot",
                                    seconds, tmp, rep)
                       for s in order}
                if any(r["count"] == 0 for r in got.values()):
                    dropped += 1  # a server answered nothing in that second (starved): no pair
                    continue
                for label, r in got.items():
                    cpu.setdefault((scenario, label), []).append(r["cpu_us"])
                    nivcsw.setdefault((scenario, label), []).append(r["csw"] - r["vcsw"])
    finally:
        for s in servers:
            s.stop()
    pin_text = "unpinned" if server_cpu is None else f"servers on cpu {server_cpu}, wrk on cpu {CLIENT_CPU}"
    return PairedRun(cpu, nivcsw, [v[0].label for v in variants], dropped, pin_text)


def _quiet(values: list[float]) -> float:
    """The mean of the lowest quarter: the rounds the rest of the machine disturbed least."""
    v = sorted(values)[:max(1, len(values) // 4)]
    return sum(v) / len(v)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)

    def at(f: float) -> float:
        i = f * (len(v) - 1)
        lo = int(i)
        return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (i - lo)

    return at(0.25), at(0.5), at(0.75)


def runs(label: str) -> tuple[str, ...]:
    """The scenarios a server takes part in."""
    return {"bare": ("hello_hot",), "mixed": ("hello_hot", MIXED)}.get(label, SCENARIOS)


def table(servers: list[Server], results: dict[tuple[str, str], list[dict[str, float]]]) -> None:
    print("| scenario | server | CPU µs/req (runs) | user / sys µs | GC µs/req (gen2) | gen0/1/2 per 1k req"
          " | ctx sw/req | page faults/req | bare ÷ this (runs) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scenario in SCENARIOS + (MIXED,):
        for s in servers:
            if (scenario, s.label) not in results:
                continue
            rs = results[(scenario, s.label)]
            best = min(rs, key=lambda r: r["cpu_us"])
            ratios = [b["cpu_us"] / r["cpu_us"] for b, r in zip(results[("hello_hot", "bare")], rs)]
            cpu = ", ".join(f"{r['cpu_us']:.0f}" for r in rs)
            gen = "/".join(f"{sum(r['gc_per_kreq'][g] for r in rs) / len(rs):.1f}" for g in range(3))
            mean = lambda k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
            print(f"| {scenario} | {s.label} | {cpu} | {best['user_us']:.0f} / {best['sys_us']:.0f}"
                  f" | {mean('gc_us'):.1f} ({mean('gc2_us'):.1f}) | {gen} | {mean('csw'):.2f} ({mean('vcsw'):.2f} vol) | {mean('minflt'):.2f}"
                  f" | {min(ratios):.2f}×–{max(ratios):.2f}× |", flush=True)


def callgrind_table(servers: list[Server], n: int, only: set[str]) -> None:
    print(f"| scenario | server | instructions per request (callgrind, {n:,} requests) | bare ÷ this"
          " | other events per request |")
    print("| --- | --- | ---: | ---: | --- |")
    base: float | None = None
    base_cycles = 0.0
    # Let the parks the touch pass started (the file budget, the 1-s idle park) finish before
    # counting: wait until no server's count of parked objects moves for a few seconds.
    states: dict[str, Any] = {}
    for _ in range(60):
        time.sleep(3.0)
        now = {s.label: s.objects() for s in servers if s.label != "bare"}
        if now == states:
            break
        states = now
    for label, state in states.items():
        print(f"# {label} before counting: {_objects_text(state)}")
    for scenario, paths in (("hello_hot", ["/hello/hot"]),
                            ("hello_spread", [f"/hello/o-{(i * 7919) % SPREAD}" for i in range(SPREAD)]),
                            ("incr_hot", ["/incr/hot"]),
                            ("incr_spread", [f"/incr/o-{(i * 7919) % SPREAD}" for i in range(SPREAD)]),
                            (MIXED, ["/"])):
        if only and scenario not in only:
            continue
        for s in servers:
            # incr_spread only when asked for (``--scenarios``): a commit per request over SPREAD objects.
            ran = runs(s.label) + (("incr_spread",) if s.label != "bare" else ())
            if scenario not in ran and not (s.label == "bare" and base is None):
                continue  # the bare app answers once, in the first scenario counted
            before = s.objects() if s.label != "bare" else None
            s.callgrind("-z")
            made = requests(s, paths if s.label != "bare" else ["/"], n)
            events = s.callgrind("-d")
            if KEEP is not None:  # for callgrind_annotate
                KEEP.mkdir(parents=True, exist_ok=True)
                shutil.copy(s.folder / f"cg.out.{s.dumps}", KEEP / f"{scenario}-{s.label}.cg")
            if before is not None:
                after = s.objects()
                assert after is not None
                same = "same activations" if after["fingerprint"] == before["fingerprint"] else "ACTIVATIONS CHANGED"
                print(f"# {scenario} {s.label}: {same}; events +{after['events'] - before['events']:,} for"
                      f" {made:,} requests; before {_objects_text(before)}; after {_objects_text(after)}")
            count = events.pop("Ir") / made
            if s.label == "bare":
                base = count
            assert base is not None
            other = ", ".join(f"{k} {v / made:,.0f}" for k, v in events.items())
            cycles = _cycles(count, events, made)
            if cycles is not None:
                if s.label == "bare":
                    base_cycles = cycles
                other += f"; estimated cycles {cycles:,.0f} = {base_cycles / cycles:.3f}×"
            print(f"| {scenario} | {s.label} | {count:,.0f} | {base / count:.3f}× | {other} |", flush=True)


def _objects_text(state: dict[str, Any] | None) -> str:
    if state is None:
        return "no runtime found"
    return (f"{state['live']:,} live, {state['parked']:,} parked, {state['open_files']:,} files open"
            f" (idle timeout {state['idle_timeout']:g} s)")


def _cycles(instructions: float, events: dict[str, int], made: int) -> float | None:
    """Callgrind's own cycle estimate per request (its ``--cache-sim`` summary's formula):
    instructions + 10 per L1 miss + 100 per last-level miss; None without the cache simulation."""
    if "I1mr" not in events:
        return None
    l1 = events["I1mr"] + events["D1mr"] + events["D1mw"]
    ll = events["ILmr"] + events["DLmr"] + events["DLmw"]
    return instructions + (10 * l1 + 100 * ll) / made


if __name__ == "__main__":
    main()
