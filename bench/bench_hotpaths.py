"""Issue #11's table in one run: hot paths through a live object, with the baseline beside each.

Run: ``python bench/bench_hotpaths.py [--quick] [--only=PART,...] [--repeats=N] [--rounds=N]``
(``--only=http --repeats=3 --before=…`` about five minutes; ``--quick`` halves the durations). Prints one markdown
table: what, dohost's figure, the baseline's figure, the ratio, the target.
Never asserts. ``--only`` runs some parts and prints their rows: ``storage``,
``http`` (every HTTP scenario), ``new`` (only the new-object scenario:
dohost and workerd taking turns, plus ``fsyncs`` per new object counted by
``strace`` in a separate run), ``footprint``, ``group``, ``plugin``;
``--repeats`` sets how many turns the HTTP throughput scenarios take (best
of them), ``--rounds`` how many paired rounds the HTTP CPU rows take (12);
The new-object scenario also runs ``dohost serve --processes 2`` (the CLI,
this checkout; CPU summed over its processes) as an extra row beside the
headline: what a user of a 2-core machine would run, where workerd's local
runtime is one process. ``--before=CHECKOUT`` adds a third server to every HTTP scenario and the
fsync count: dohost run from another checkout (older code), for before/after
figures side by side in one run; the plugin row then runs its DO suite from
that checkout too (``PYTHONPATH``), in turn; in the storage rows both checkouts' objects
then run in worker processes of their own (``_storage_worker.py``), taking
turns with the raw loops, each row followed by the other checkout's.

Rows and how each is measured (all on loopback, bounded counts or durations):

* **Storage calls in a live object** — an RPC method of a live object loops
  ``n`` calls (``sql.exec(...).one()``, an upsert, ``kv.get``/``kv.put``,
  ``await storage.get``/``put``, ``await storage.list(limit=100)``) and returns
  the time its loop took, measured inside the object; the baseline is raw apsw
  running the same SQL (values already encoded) inside one ``BEGIN … COMMIT``
  on a file in the same directory. Best of interleaved batches; ratio =
  dohost / raw (target ≤ 1.3×). The three writes are also run on a second
  runtime with point-in-time history off (``pitr_retention_ms=0``): SQLite's
  session extension, which records each written row, is the part of a write
  the raw side does not do. ``storage.list`` reads its page with one
  aggregate query (``persistence/_kv.py``); the raw side runs the plain
  ``SELECT key, value … LIMIT 100`` and does not decode the values.
* **HTTP** — servers in their own processes: a bare ASGI app on
  dohost's hypercorn set-up (``runtime._http.serve_http``), dohost serving a
  generated Python Worker + ``Counter`` object (``durability="full"``, as
  ``dohost serve``), and workerd (:mod:`_workerd`, pinned npm release) serving
  the same Worker and object in JavaScript. Load: ``wrk`` (Debian's package),
  one thread, 16 keep-alive connections; its Lua scripts pick the paths.
  Scenarios: ``hello`` (the object returns a constant) and ``incr`` (a SQL
  upsert + read) on one hot object; each spread over 1,000 objects touched
  beforehand; and a new object per request (its constructor creates a table,
  so storage is created and fsynced: dohost ``durability="full"``). dohost's
  server process sets the GC thresholds ``dohost serve`` sets
  (``runtime._http.tune_gc_for_serving``); the bare app keeps CPython's
  defaults, as any ASGI app on hypercorn would. Two passes:

  - *Throughput* (req/s vs workerd, and CPU per new object): dohost and
    workerd (and ``--before``'s dohost) side by side, unpinned, taking turns
    per scenario for a fixed duration, ``--repeats`` times (best rate, least
    CPU); server CPU from ``/proc/<pid>/stat`` around each run; storage in
    the temporary directory (disk).
  - *CPU per request vs the bare app* (the four ``server CPU µs per
    request`` rows): ``bench_http_split.paired_rounds``, the method of
    ``bench_http_split.py --paired``. Servers pinned to the last core and
    ``wrk`` to the first (``taskset``); each server (bare, dohost, and
    ``--before``'s) runs as 2 processes alternating round by round; ``--rounds``
    1-s rounds per scenario take turns server by server (the bare app answers
    ``hello`` in each scenario's turn); CPU per request is the server
    process's own getrusage (``_serve_probe.py``). The figure is the mean of
    each server's quietest quarter of rounds, the ratio bare ÷ dohost of
    those; the median and quartiles of the per-round ratios (bare's round ÷
    the adjacent dohost round) are printed beside it as its spread. Storage is
    on ``/dev/shm``, so ``incr`` over 1,000 objects (a commit per request)
    counts the commit's CPU without the disk's wait.
* **Footprint** — each server touches 10,000 objects (``hello``, 16
  connections, the trio client of ``bench_http``) with storage on ``/dev/shm``;
  RSS growth over the idle server and open files (peak while touching, and
  at the end) from ``/proc``. workerd holds three files per object, so under
  a 20,000 fd limit it touches :data:`WORKERD_FOOTPRINT` objects and its RSS
  growth is scaled linearly to 10,000 (the row says so).
* **Group commit** — ``bench_runtime``'s 64 callers on one object with fsync
  vs raw apsw committing each write (with ``--before``, both checkouts in
  worker processes of ``bench_commit.py``, taking turns with raw apsw).
* **pytest plugin** — ``bench_plugin``'s 200 generated DO tests vs 200 empty
  pytest-trio tests, best of 4 runs each: the CPU time of pytest's test loop
  (steady; interpreter start-up and collection excluded), session wall beside.

The apps (Python and JS Workers, the storage object, the raw loops) are in
``_hotpaths_apps.py``. The machine may be shared; read the ratios, and expect noise.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import apsw  # noqa: E402
import trio  # noqa: E402

from _hotpaths_apps import JS_WORKER, KEYS, PY_WORKER, WRANGLER, raw_ops, store_class  # noqa: E402
from _table import print_table  # noqa: E402

QUICK = "--quick" in sys.argv
PARTS = ("storage", "http", "new", "footprint", "group", "plugin")


def _option(name: str) -> str | None:
    for arg in sys.argv[1:]:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


_only = (_option("only") or (sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv[:-1] else None)
         or ("http" if "--http" in sys.argv else None))  # --http: the HTTP rows only
#: The parts to run (``--only=new,plugin``); every part by default ("http" includes "new").
ONLY = set(PARTS) if _only is None else {p.strip() for p in _only.split(",") if p.strip()}
if ONLY - set(PARTS):
    raise SystemExit(f"--only: unknown part(s) {sorted(ONLY - set(PARTS))}; have: {', '.join(PARTS)}")
HTTP_SECONDS = 2.0 if QUICK else 3.0
HTTP_REPEATS = int(_option("repeats") or (1 if QUICK else 2))
#: The CPU rows (bench_http_split's paired method): rounds per scenario, seconds per round,
#: processes per server taking turns.
CPU_ROUNDS = int(_option("rounds") or (6 if QUICK else 12))
CPU_SECONDS = 1.0
CPU_PROCESSES = 2
CPU_SCENARIOS = ("hello_hot", "hello_spread", "incr_hot", "incr_spread")
#: Another dohost checkout to serve beside this one in the new-object rows (``--before=PATH``).
BEFORE = _option("before")
#: The extra server of the new-object scenario: ``dohost serve --processes 2`` (this checkout).
SERVE2 = "serve2"
CONNECTIONS = 16
SPREAD = 1_000
FOOTPRINT = 10_000
#: workerd keeps three files open per object and never lets go of them while
#: objects are this fresh, so under this machine's hard fd limit (20,000) it
#: cannot reach 10,000 objects: it touches this many and its growth is scaled.
WORKERD_FOOTPRINT = 5_000
STORAGE_N = 400
PLUGIN_REPEATS = 2 if QUICK else 4
#: Storage rows also measured with point-in-time history off (suffix of their key).
WRITE_OPS = ("sql_write", "kv_put", "async_put")
NO_HISTORY = "_no_history"
STORAGE_REPEATS = 15 if QUICK else 40


def _fmt(v: Any, unit: str = "") -> Any:
    if isinstance(v, float):
        return f"{v:,.2f}{unit}" if v < 100 else f"{v:,.0f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return v


def _ratio(a: Any, b: Any) -> str | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}×"
    return None


def _failure(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}".replace("|", "/").replace("\n", " ")
    return "failed: " + text[:120]


# ===================================================== storage in a live object
def bench_storage(root: Path) -> dict[str, tuple[float, float]]:
    """op -> (dohost µs/op, raw µs/op)."""
    from runtime import open_runtime

    Store = store_class()
    raw = apsw.Connection(str(root / "raw.sqlite"))
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE t(k TEXT PRIMARY KEY, v REAL)")
    raw.execute("CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
    with raw:
        for i in range(KEYS):
            raw.execute("INSERT INTO t VALUES (?, ?)", (f"k{i:04d}", float(i)))
            raw.execute("INSERT INTO _cf_KV VALUES (?, ?)", (f"k{i:04d}", Store.encoded(i)))
    raw_ops_ = raw_ops(raw, Store.encoded)
    ops = list(raw_ops_)
    best: dict[str, list[float]] = {op: [float("inf"), float("inf")] for op in ops}
    best.update({f"{op}{NO_HISTORY}": [float("inf"), float("inf")] for op in WRITE_OPS})

    async def run() -> None:
        # The same object twice: as dohost runs it (point-in-time history on, as on
        # Cloudflare) and with history off, which shows what the history costs a write.
        async with open_runtime(bindings={"STORE": Store}, data_dir=root / "dohost", durability="full") as rt, \
                open_runtime(bindings={"STORE": Store}, data_dir=root / "dohost-nohist", durability="full",
                             pitr_retention_ms=0) as rt_off:
            stub = rt.env["STORE"].getByName("store")
            stub_off = rt_off.env["STORE"].getByName("store")
            await stub.setup()
            await stub_off.setup()
            for _ in range(STORAGE_REPEATS):
                for op in ops:
                    gc.disable()
                    try:
                        mine = await getattr(stub, op)(STORAGE_N)
                        theirs = raw_ops_[op](STORAGE_N)
                        off = await getattr(stub_off, op)(STORAGE_N) if op in WRITE_OPS else None
                    finally:
                        gc.enable()
                    best[op][0] = min(best[op][0], mine / STORAGE_N * 1e6)
                    best[op][1] = min(best[op][1], theirs / STORAGE_N * 1e6)
                    if off is not None:
                        cell = best[f"{op}{NO_HISTORY}"]
                        cell[0] = min(cell[0], off / STORAGE_N * 1e6)
                        cell[1] = best[op][1]

    try:
        if BEFORE:
            _storage_side_by_side(root, ops, raw_ops_, best)
        else:
            trio.run(run)
    finally:
        raw.close()
    return {op: (a, b) for op, (a, b) in best.items()}


class _StorageWorker:
    """A checkout's storage object in a process of its own (``_storage_worker.py``)."""

    def __init__(self, checkout: Path, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_storage_worker.py"), str(checkout), str(folder)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError(f"storage worker for {checkout} did not start")

    def time(self, op: str, n: int, history: bool) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{op} {n} {int(history)}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _storage_side_by_side(root: Path, ops: list[str], raw_ops_: dict[str, Callable[[int], float]],
                          best: dict[str, list[float]]) -> None:
    """``--before``: this checkout and BEFORE each in a worker process, taking turns with raw apsw.

    Rows keyed ``op`` are this checkout's, ``op@before`` the other's; both run
    the same object in the same kind of process, so the pair compares code.
    """
    assert BEFORE is not None
    sides = {"": _StorageWorker(ROOT, root / "after"), "@before": _StorageWorker(Path(BEFORE), root / "before")}
    try:
        for key in [k for k in best]:
            best[f"{key}@before"] = [float("inf"), float("inf")]
        for _ in range(STORAGE_REPEATS):
            for op in ops:
                gc.disable()
                try:
                    theirs = raw_ops_[op](STORAGE_N) / STORAGE_N * 1e6
                finally:
                    gc.enable()
                for tag, worker in sides.items():
                    for history in (True, False) if op in WRITE_OPS else (True,):
                        cell = best[f"{op}{'' if history else NO_HISTORY}{tag}"]
                        cell[0] = min(cell[0], worker.time(op, STORAGE_N, history) / STORAGE_N * 1e6)
                        cell[1] = min(cell[1], theirs)
    finally:
        for worker in sides.values():
            worker.close()


# ============================================================== HTTP servers
async def _serve(mode: str, data_dir: str) -> None:
    from bench_http import bare_app
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
    tune_gc_for_serving()  # as `dohost serve` does (wrangler_compat/_front.py)
    async with open_runtime(config=Path(data_dir) / "project" / "wrangler.toml", data_dir=Path(data_dir) / "storage",
                            durability="full", idle_timeout=120.0) as rt:
        await announce(build_app(lambda: rt))


class Server:
    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        folder.mkdir(parents=True, exist_ok=True)
        if kind == SERVE2:
            # What a user on this 2-core machine would run: `dohost serve --processes 2`
            # (the CLI, fsync on commit; requests forwarded to the process owning the object).
            from bench_processes import _start_dohost

            self.proc, self.url = _start_dohost(folder, 2)  # type: ignore[assignment]
            return
        if kind == "workerd":
            from _workerd import start_workerd

            self.proc, self.url = start_workerd(JS_WORKER, folder)
            return
        script = __file__
        if kind == "before":
            assert BEFORE is not None
            script = str(Path(BEFORE).resolve() / "bench" / "bench_hotpaths.py")
        if kind in ("dohost", "before"):
            (folder / "project" / "src").mkdir(parents=True)
            (folder / "project" / "wrangler.toml").write_text(WRANGLER)
            (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
        log = open(folder / "server.log", "w")
        self.proc = subprocess.Popen([sys.executable, script, "--serve", "dohost" if kind == "before" else kind, str(folder)],
                                     stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"{kind} did not start: {(folder / 'server.log').read_text()[-2000:]}")
        self.url = line.split()[1]

    def cpu(self) -> float:
        if self.kind == SERVE2:
            from bench_processes import _cpu_seconds

            return _cpu_seconds(self.proc.pid)  # the supervisor and its server processes
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LUA_SPREAD = """\
math.randomseed({seed})
request = function()
  return wrk.format("GET", "/{op}/o-" .. math.random(0, {n} - 1))
end
"""

_LUA_NEW = """\
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/incr/new-{tag}-" .. counter)
end
"""


def wrk(server: Server, path: str, seconds: float, folder: Path, lua: str | None = None) -> dict[str, float]:
    """requests/s and server CPU µs per request for one scenario."""
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s"]
    if lua is not None:
        script = folder / f"s{time.monotonic_ns()}.lua"
        script.write_text(lua)
        cmd += ["-s", str(script)]
    cpu0 = server.cpu()
    out = subprocess.run(cmd + [server.url + path], capture_output=True, text=True, timeout=seconds + 60)
    cpu = server.cpu() - cpu0
    m = re.search(r"(\d+) requests in ([0-9.]+)(m?s)", out.stdout)
    if out.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if errors:
        raise RuntimeError(f"{server.kind} {path}: {errors.group(1)} error responses")
    count = int(m.group(1))
    return {"rate": count / (float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)),
            "cpu_us": cpu / max(count, 1) * 1e6, "count": count}


def touch(server: Server, paths: list[str]) -> int:
    """Request each path once over CONNECTIONS connections; returns the peak open files seen."""
    from bench_http import _touch_each

    host, port = server.url.split("//")[1].split(":")
    peak = [server.fds()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            try:
                peak[0] = max(peak[0], server.fds())
            except OSError:
                return

    sampler = threading.Thread(target=sample)
    sampler.start()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            for c in range(CONNECTIONS):
                mine = [p.encode() for p in paths[c::CONNECTIONS]]
                if mine:
                    nursery.start_soon(_touch_each, host, int(port), mine)

    try:
        trio.run(run)
    finally:
        done.set()
        sampler.join()
    return max(peak[0], server.fds())


def bench_http(root: Path) -> dict[str, Any]:
    """Every scenario on every server, interleaved and repeated (best of HTTP_REPEATS).

    All three servers run at once and take turns, scenario by scenario, so a
    busy spell of the shared machine (or its disk) hits dohost and workerd alike.
    """
    servers: dict[str, Server] = {}
    out: dict[str, Any] = {}
    every = "http" in ONLY  # else only the new-object scenario (--only=new)
    try:
        kinds = ("dohost", "workerd")
        for kind in kinds + (("before",) if BEFORE else ()) + (SERVE2,):
            try:
                servers[kind] = Server(kind, root / kind)
                out[kind] = {}
            except Exception as exc:
                out[kind] = _failure(exc)
        objects = [k for k in ("dohost", "workerd") if k in servers]
        for kind in objects + (["before"] if "before" in servers else []) if every else ():
            touch(servers[kind], [f"/hello/o-{i}" for i in range(SPREAD)])
        for rep in range(HTTP_REPEATS):
            plan: list[tuple[str, str, str, str | None]] = []
            for kind in objects + (["before"] if "before" in servers else []):
                plan.append((kind, "new", "/", _LUA_NEW.format(tag=f"{kind}{rep}")))
                if every:
                    plan += [
                        (kind, "hello_hot", "/hello/hot", None),
                        (kind, "incr_hot", "/incr/hot", None),
                        (kind, "hello_spread", "/", _LUA_SPREAD.format(seed=rep, op="hello", n=SPREAD)),
                    ]
            if SERVE2 in servers:
                plan.append((SERVE2, "new", "/", _LUA_NEW.format(tag=f"{SERVE2}{rep}")))
            # Odd turns run the servers in reverse order: the one running second in a
            # scenario measured slower (the disk still busy with the first one's burst).
            for kind, key, path, lua in sorted(plan, key=lambda p: (p[1], p[0]), reverse=rep % 2 == 1):
                if kind not in servers or not isinstance(out[kind], dict):
                    continue
                try:
                    r = wrk(servers[kind], path, HTTP_SECONDS, root, lua)
                except Exception as exc:
                    out[kind] = _failure(exc)
                    continue
                old = out[kind].get(key)
                if old is None:
                    out[kind][key] = r
                else:
                    old["rate"] = max(old["rate"], r["rate"])
                    old["cpu_us"] = min(old["cpu_us"], r["cpu_us"])
    finally:
        for server in servers.values():
            server.stop()
    if every:
        try:
            out["cpu"] = bench_http_cpu()
        except Exception as exc:
            out["cpu"] = _failure(exc)
    return out


def bench_http_cpu() -> Any:
    """The CPU rows: ``bench_http_split``'s paired method (see the module docstring), every
    scenario, this checkout (and BEFORE) against the bare app; storage on ``/dev/shm``."""
    import bench_http_split as split

    checkouts = [("dohost", ROOT)] + ([("before", Path(BEFORE).resolve())] if BEFORE else [])
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="dohost-hotpaths-cpu-", dir=shm if shm.is_dir() else None) as tmp:
        run = split.paired_rounds(Path(tmp), checkouts, list(CPU_SCENARIOS), CPU_ROUNDS, CPU_SECONDS,
                                  CPU_PROCESSES)
    print(f"  HTTP CPU rows: {CPU_ROUNDS} rounds × {CPU_SECONDS:g} s per scenario, {CPU_PROCESSES} processes per"
          f" server taking turns, {run.pin}; load average {os.getloadavg()[0]:.1f}"
          + (f"; {run.dropped} rounds dropped (a server answered nothing)" if run.dropped else ""), flush=True)
    return run


def bench_fsyncs(root: Path, n: int = 200) -> dict[str, Any]:
    """Syscalls that sync to disk per new object, per server: ``strace -f -c`` attached while
    ``n`` new objects are created (a separate run: tracing slows the server down)."""
    out: dict[str, Any] = {}
    if shutil.which("strace") is None:
        return {"dohost": "no strace", "workerd": "no strace"}
    for kind in ("dohost", "workerd") + (("before",) if BEFORE else ()):
        try:
            server = Server(kind, root / f"fsyncs-{kind}")
        except Exception as exc:
            out[kind] = _failure(exc)
            continue
        try:
            touch(server, ["/incr/warm-up"])
            log = root / f"fsyncs-{kind}.txt"
            tracer = subprocess.Popen(["strace", "-f", "-c", "-o", str(log), "-e",
                                       "trace=fsync,fdatasync,sync_file_range,syncfs,msync",
                                       "-p", str(server.proc.pid)], stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # let strace attach to every thread
            touch(server, [f"/incr/fsync-{i}" for i in range(n)])
            time.sleep(0.5)
            tracer.send_signal(2)
            tracer.wait(timeout=30)
            calls: dict[str, int] = {}
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[-1] in ("fsync", "fdatasync", "sync_file_range", "syncfs", "msync"):
                    calls[parts[-1]] = int(parts[3])
            out[kind] = {"per_object": sum(calls.values()) / n, "calls": calls}
        except Exception as exc:
            out[kind] = _failure(exc)
        finally:
            server.stop()
    return out


def bench_footprint(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="dohost-hotpaths-", dir=shm if shm.is_dir() else None))
    try:
        for kind in ("dohost", "workerd"):
            try:
                server = Server(kind, base / kind)
            except Exception as exc:
                out[kind] = _failure(exc)
                continue
            try:
                touch(server, ["/hello/warm-up"])
                rss0, fds0 = server.rss(), server.fds()
                n = FOOTPRINT if kind == "dohost" else min(FOOTPRINT, WORKERD_FOOTPRINT)
                peak = touch(server, [f"/hello/f-{i}" for i in range(n)])
                growth = (server.rss() - rss0) * FOOTPRINT // n
                out[kind] = {"rss": rss0 + growth, "rss0": rss0, "growth": growth, "touched": n,
                             "fds": server.fds(), "fds0": fds0, "peak_fds": peak}
            except Exception as exc:
                out[kind] = _failure(exc)
            finally:
                server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


# ========================================================= reused benchmarks
def bench_group(root: Path) -> tuple[float, ...] | str:
    """(this checkout's increments/s, raw apsw's commits/s[, BEFORE's increments/s]).

    Without ``--before`` this checkout runs in this process (``bench_runtime.hot_object``);
    with it both checkouts run the same loop in worker processes of their own
    (``bench_commit.py``'s ``group_rate``), taking turns with raw apsw, best of
    ``max(2, --repeats)`` turns each."""
    import bench_runtime as br

    best_group, best_raw, best_before = 0.0, 0.0, 0.0
    try:
        for rep in range(max(2, HTTP_REPEATS) if BEFORE else 2):
            d = root / f"group{rep}"
            d.mkdir()
            if BEFORE:
                import bench_commit as bc

                best_group = max(best_group, bc._spawn(ROOT, "group_rate", 0, d, False)["rate"])
                best_before = max(best_before, bc._spawn(Path(BEFORE).resolve(), "group_rate", 0, d, False)["rate"])
            else:
                best_group = max(best_group, br.hot_object(d / "group", durability="full")[0])
            best_raw = max(best_raw, br.raw_apsw(d / "raw.sqlite"))
    except Exception as exc:
        return _failure(exc)
    return (best_group, best_raw, best_before) if BEFORE else (best_group, best_raw)


def bench_plugin(root: Path) -> tuple[float, ...] | str:
    """(CPU ms of pytest's test loop per DO test over an empty test, session wall ms) from
    bench_plugin's suites, best of PLUGIN_REPEATS runs each (see bench_plugin: loop CPU is
    the steady figure); with ``--before``, the same two figures for that checkout follow,
    its DO suite run in turn with this one's (dohost imported from the checkout)."""
    import bench_plugin as bp

    n = 200
    try:
        empty = bp.write_suite(root, "empty", n, "auto")
        do = bp.write_suite(root, "dohost", n, "auto")
        e_runs, d_runs, b_runs = [], [], []
        for _ in range(PLUGIN_REPEATS):
            e_runs.append(bp.run_suite(empty, n))
            d_runs.append(bp.run_suite(do, n))
            if BEFORE:
                b_runs.append(bp.run_suite(do, n, Path(BEFORE)))
        e, d = bp.best(e_runs), bp.best(d_runs)
    except SystemExit as exc:
        return f"failed: {str(exc)[:200]}"
    except Exception as exc:
        return _failure(exc)
    figures = ((d.loop_cpu - e.loop_cpu) / n * 1000.0, (d.session - e.session) / n * 1000.0)
    if b_runs:
        b = bp.best(b_runs)
        figures += ((b.loop_cpu - e.loop_cpu) / n * 1000.0, (b.session - e.session) / n * 1000.0)
    return figures


# ====================================================================== main
def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return d
        d = d.get(k)
    return d


_STORAGE_LABELS = {
    "sql_read": "`sql.exec(...).one()` point read, µs",
    "sql_write": "`sql.exec` point write (upsert), µs",
    "kv_get": "`kv.get`, µs",
    "kv_put": "`kv.put`, µs",
    "async_get": "`await storage.get`, µs",
    "async_put": "`await storage.put`, µs",
    "list100": "`await storage.list(limit=100)`, µs",
}


def storage_rows(storage: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    labels = dict(_STORAGE_LABELS)
    for op in WRITE_OPS:
        labels[f"{op}{NO_HISTORY}"] = labels[op].replace(", µs", " with point-in-time history off, µs")
    for op, label in labels.items():
        v = storage.get(op) if isinstance(storage, dict) else storage
        target = "(report)" if op.endswith(NO_HISTORY) else "≤ 1.3×"
        if isinstance(v, tuple):
            rows.append([f"{label}, live object vs raw apsw in one txn", _fmt(v[0]), _fmt(v[1]), _ratio(v[0], v[1]), target])
        else:
            rows.append([label, v, None, None, target])
        before = storage.get(f"{op}@before") if isinstance(storage, dict) else None
        if isinstance(before, tuple):
            rows.append([f"  the same, dohost from {BEFORE} (before)", _fmt(before[0]), _fmt(before[1]),
                         _ratio(before[0], before[1]), target])
    return rows


def main() -> list[list[Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="dohost-bench-hotpaths-"))
    print(f"bench_hotpaths: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"data in {tmp}; HTTP load: wrk -t1 -c{CONNECTIONS} -d{HTTP_SECONDS:g}s", flush=True)
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        except Exception as exc:
            return _failure(exc)
        finally:
            timings[name] = time.perf_counter() - t0
            print(f"  {name}: {timings[name]:.0f} s", file=sys.stderr, flush=True)

    storage: Any = None
    http: Any = None
    fsyncs: Any = None
    footprint: Any = None
    group: Any = None
    plugin: Any = None
    try:
        for part in ("storage", "http", "fsyncs", "footprint", "group", "plugin"):
            (tmp / part).mkdir()
        if "storage" in ONLY:
            storage = timed("storage", lambda: bench_storage(tmp / "storage"))
        if ONLY & {"http", "new"}:
            http = timed("http", lambda: bench_http(tmp / "http"))
        if "new" in ONLY:
            fsyncs = timed("fsyncs", lambda: bench_fsyncs(tmp / "fsyncs"))
        if "footprint" in ONLY:
            footprint = timed("footprint", lambda: bench_footprint(tmp))
        if "group" in ONLY:
            group = timed("group commit", lambda: bench_group(tmp / "group"))
        if "plugin" in ONLY:
            plugin = timed("plugin", lambda: bench_plugin(tmp / "plugin"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = _rows(storage, http, fsyncs, footprint, group, plugin)
    print_table(
        f"issue #11 hot paths ({sum(timings.values()):.0f} s)",
        ["what", "dohost", "baseline", "ratio", "target"],
        rows,
    )
    return rows


def _rows(storage: Any, http: Any, fsyncs: Any, footprint: Any, group: Any, plugin: Any) -> list[list[Any]]:
    """The table's rows for the parts that ran (``None``: not run, no row)."""
    rows: list[list[Any]] = []
    if storage is not None:
        rows.extend(storage_rows(storage))

    d_http, w_http = _get(http, "dohost"), _get(http, "workerd")

    def http_row(label: str, key: str, target: str) -> None:
        a, b = _get(d_http, key, "rate"), _get(w_http, key, "rate")
        rows.append([label, _fmt(a), _fmt(b), _ratio(a, b), target])

    if http is not None:
        http_row("new objects/s over HTTP (first request creates storage; fsync on) vs workerd", "new", "≥ 5×")
        if BEFORE:
            a, b = _get(http, "before", "new", "rate"), _get(w_http, "new", "rate")
            rows.append([f"  the same, dohost from {BEFORE} (before)", _fmt(a), _fmt(b), _ratio(a, b), "≥ 5×"])
        # Not the headline row: workerd's local runtime is one process; this is what a user
        # of this 2-core machine would run (extra row, issue #11 round 8).
        a, b = _get(http, SERVE2, "new", "rate"), _get(w_http, "new", "rate")
        rows.append(["  extra: `dohost serve --processes 2` (CLI, forwarding), new objects/s vs workerd",
                     _fmt(a), _fmt(b), _ratio(a, b), "(report)"])
    if fsyncs is not None:
        d_fs, w_fs = _get(fsyncs, "dohost"), _get(fsyncs, "workerd")
        rows.append(["fsync/fdatasync calls per new object (strace -f -c, 200 new objects)",
                     _fmt(_get(d_fs, "per_object")), _fmt(_get(w_fs, "per_object")), None, "(report)"])
        if BEFORE:
            rows.append(["  the same, before", _fmt(_get(fsyncs, "before", "per_object")), None, None, "(report)"])
    if footprint is not None:
        _footprint_rows(rows, footprint)
    if plugin is not None:
        _plugin_row(rows, plugin)
    if group is not None:
        _group_row(rows, group)
    if http is not None and "http" in ONLY:
        _http_rows(rows, http)
    if http is not None:
        a, b = _get(d_http, "new", "cpu_us"), _get(w_http, "new", "cpu_us")
        rows.append(["server CPU per new object's first request (activation), µs, vs workerd", _fmt(a), _fmt(b),
                     _ratio(a, b), "(report)"])
        if BEFORE:
            a = _get(http, "before", "new", "cpu_us")
            rows.append(["  the same, before", _fmt(a), _fmt(b), _ratio(a, b), "(report)"])
        a = _get(http, SERVE2, "new", "cpu_us")
        rows.append(["  extra: the same, `dohost serve --processes 2` (all its processes)", _fmt(a), _fmt(b),
                     _ratio(a, b), "(report)"])
    return rows


def _footprint_rows(rows: list[list[Any]], footprint: Any) -> None:
    d_fp, w_fp = _get(footprint, "dohost"), _get(footprint, "workerd")
    dg, wg = _get(d_fp, "growth"), _get(w_fp, "growth")
    rows.append([
        f"RSS growth after touching {FOOTPRINT:,} objects, MiB (total after), vs workerd (scaled from {WORKERD_FOOTPRINT:,})",
        f"{dg / 2**20:,.0f} ({_get(d_fp, 'rss') / 2**20:,.0f})" if isinstance(dg, int) else d_fp,
        f"{wg / 2**20:,.0f} ({_get(w_fp, 'rss') / 2**20:,.0f})" if isinstance(wg, int) else w_fp,
        _ratio(dg, wg), "≤ 0.25×",
    ])
    rows.append([
        f"open files, peak while touching {FOOTPRINT:,} objects / at the end (workerd beside)",
        f"{_get(d_fp, 'peak_fds')} / {_get(d_fp, 'fds')}" if isinstance(d_fp, dict) else d_fp,
        f"{_get(w_fp, 'peak_fds')} / {_get(w_fp, 'fds')} after {_get(w_fp, 'touched'):,}" if isinstance(w_fp, dict) else w_fp,
        None, "< 1,024",
    ])


def _plugin_row(rows: list[list[Any]], plugin: Any) -> None:
    if isinstance(plugin, tuple):
        rows.append([f"one DO test under the pytest plugin over an empty test, ms: CPU of the test loop, best of {PLUGIN_REPEATS} (session wall)",
                     f"{plugin[0]:.2f} ({plugin[1]:.2f} wall)", None, None, "≤ 5 ms"])
        if len(plugin) == 4:
            rows.append([f"  the same, dohost from {BEFORE} (before)", f"{plugin[2]:.2f} ({plugin[3]:.2f} wall)",
                         None, None, "≤ 5 ms"])
    else:
        rows.append(["one DO test under the pytest plugin", plugin, None, None, "≤ 5 ms"])


def _group_row(rows: list[list[Any]], group: Any) -> None:
    if isinstance(group, tuple):
        rows.append(["group commit: increments/s, 64 callers, fsync on, vs raw apsw one commit per write",
                     _fmt(group[0]), _fmt(group[1]), _ratio(group[0], group[1]), "≥ 4×"])
        if len(group) == 3:
            rows.append([f"  the same, dohost from {BEFORE} (before)", _fmt(group[2]), _fmt(group[1]),
                         _ratio(group[2], group[1]), "≥ 4×"])
    else:
        rows.append(["group commit", group, None, None, "≥ 4×"])


def _http_rows(rows: list[list[Any]], http: Any) -> None:
    for side in ("before", "dohost") if BEFORE else ("dohost",):
        if BEFORE:
            rows.append([f"**{'before (' + BEFORE + ')' if side == 'before' else 'after (this checkout)'}**",
                         None, None, None, None])
        _http_side_rows(rows, http, side)


def _http_side_rows(rows: list[list[Any]], http: Any, side: str) -> None:
    d_http, w_http = _get(http, side), _get(http, "workerd")

    def http_row(label: str, key: str, target: str) -> None:
        a, b = _get(d_http, key, "rate"), _get(w_http, key, "rate")
        rows.append([label, _fmt(a), _fmt(b), _ratio(a, b), target])

    http_row("HTTP hello, one hot object, req/s vs workerd", "hello_hot", "(report)")
    http_row("HTTP incr, one hot object, req/s vs workerd", "incr_hot", "(report)")
    http_row(f"HTTP hello over {SPREAD:,} objects, req/s vs workerd", "hello_spread", "(report)")
    if side == "before" and not BEFORE:
        return
    cpu = _get(http, "cpu")
    for key, label in (("hello_hot", "hello, hot object"), ("hello_spread", f"hello, {SPREAD:,} objects"),
                       ("incr_hot", "incr, hot object"),
                       ("incr_spread", f"incr, {SPREAD:,} objects (a commit each, storage on /dev/shm)")):
        what = f"server CPU µs per request, dohost {label} / bare ASGI (paired, quietest quarter)"
        if not hasattr(cpu, "figures"):
            rows.append([what, cpu, None, None, "≥ 0.9×"])
            continue
        if (key, side) not in cpu.cpu:  # every round of it dropped (a server answered nothing)
            rows.append([what, "no rounds", None, None, "≥ 0.9×"])
            continue
        f = cpu.figures(key, side)
        bare = cpu.figures(key, "bare")
        lo, med, hi = f.round_ratios
        rows.append([what, _fmt(f.quiet), _fmt(bare.quiet),
                     f"{f.ratio:.2f}× (per-round median {med:.2f}×, quartiles {lo:.2f}–{hi:.2f})", "≥ 0.9×"])


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--serve":
        trio.run(_serve, sys.argv[2], sys.argv[3])
    elif {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
    else:
        # Options are read where they are used (above); a misspelt one must not run
        # the whole table silently without it.
        known = ("--quick", "--http", "--only", "--only=", "--repeats=", "--rounds=", "--before=")
        argv = sys.argv[1:]
        unknown = [a for i, a in enumerate(argv)
                   if not (a in known or a.startswith(known[3:]) or (i and argv[i - 1] == "--only"))]
        if unknown:
            raise SystemExit(f"bench_hotpaths: unknown argument(s) {unknown}; see --help")
        main()
