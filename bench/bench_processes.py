"""``dohost serve --processes N``: requests/s with 1, 2 and 3 processes, and workerd, side by side.

The user's path: ``dohost serve`` started from the CLI (fsync on commit),
HTTP through the Worker to one of 1,000 objects picked at random per request
(``/hello/<name>``: the object returns a constant; ``/incr/<name>``: a SQL
upsert and read), measured with ``wrk`` (apt's; 2 threads, 16 connections, a
Lua script picking the object). "1 process" is plain ``dohost serve``; with N
processes a request lands on any process and is forwarded when another owns
the object (on average (N-1)/N of them). workerd runs the same Worker in JS
(``_hotpaths_apps.JS_WORKER``). Every server is started first and stays up;
a 2 s untimed run of each kind warms each up; then three rounds go over all
of them in turn, and each figure is the best of its rounds.

Besides requests/s (wall clock: other work on the machine moves it), the
servers' CPU time per request is reported (user + system of the server
process and its children, from ``/proc``), which load from elsewhere barely
moves: forwarding's cost shows there first.

Run: ``python bench processes`` (``--quick``: shorter runs). ``--compare DIR``
also runs every dohost row with the code checked out in ``DIR`` (e.g. ``git
archive`` of an older commit), interleaved, for before/after figures of one
run. The machine is shared: compare the ratios of one run, not figures
across runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
import os
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE.parent), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _hotpaths_apps import JS_WORKER, PY_WORKER, WRANGLER  # noqa: E402
from _table import print_table  # noqa: E402
from _workerd import free_port  # noqa: E402

QUICK = "--quick" in sys.argv
COMPARE = Path(sys.argv[sys.argv.index("--compare") + 1]).resolve() if "--compare" in sys.argv else None
_TICK = os.sysconf("SC_CLK_TCK")
SECONDS = 3 if QUICK else 6
#: Timed runs per server and kind; the best req/s and the least CPU per request are reported.
ROUNDS = 1 if QUICK else 3
OBJECTS = 1_000
LUA = """\
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/%s/o" .. math.random(%d))
end
"""


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (the supervisor's children), from /proc."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def _write_project(folder: Path) -> Path:
    """The bench Worker's project (``folder/project``)."""
    project = folder / "project"
    (project / "src").mkdir(parents=True)
    (project / "wrangler.toml").write_text(WRANGLER)
    (project / "src" / "worker.py").write_text(PY_WORKER)
    return project


def _start_dohost(folder: Path, processes: int, code: Path = HERE.parent) -> tuple[subprocess.Popen[bytes], str]:
    project = _write_project(folder)
    port = free_port()
    argv = [sys.executable, "-m", "wrangler_compat.cli", "serve", "--data-dir", str(folder / "data"),
            "--listen", f"127.0.0.1:{port}", "-c", str(project), "--idle-timeout", "600"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=code)
    log.close()
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/__dohost/health", proc)
    return proc, url


def _wrk(url: str, kind: str, seconds: float, strict: bool = True) -> tuple[float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (kind, OBJECTS))
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m is None or done is None or (errors is not None and strict):
        raise RuntimeError(f"wrk: {out}")
    if errors is not None:
        print(f"  warm-up {kind}: {errors[1]} non-2xx answers of {done[1]}", file=sys.stderr)
    return float(m[1]), int(done[1])


def _measure(url: str, kind: str, pid: int | None) -> tuple[float, float | None]:
    """``(requests/s, server CPU ms per request)`` of one timed run."""
    before = _cpu_seconds(pid) if pid is not None else 0.0
    rate, count = _wrk(url, kind, SECONDS)
    if pid is None:
        return rate, None
    return rate, (_cpu_seconds(pid) - before) * 1000 / max(count, 1)


def _warm_up(url: str) -> None:
    """A short untimed run of each kind, so most objects exist and are resident before timing."""
    for kind in ("hello", "incr"):
        _wrk(url, kind, 2, strict=False)


def main() -> None:
    if shutil.which("wrk") is None:
        print("bench_processes: `wrk` is not installed (apt-get install wrk); skipped")
        return
    servers: list[tuple[str, int | None, Path]] = []
    for name, count in (("1 process", 1), ("--processes 2", 2), ("--processes 3", 3)):
        if COMPARE is not None:
            servers.append((f"dohost {name} (before)", count, COMPARE))
        servers.append((f"dohost {name}", count, HERE.parent))
    servers.append(("workerd", None, HERE.parent))
    results: dict[str, dict[str, tuple[float, float | None]]] = {}
    running: dict[str, tuple[subprocess.Popen[bytes], str, int | None]] = {}
    with tempfile.TemporaryDirectory(prefix="dohost-bench-procs-") as tmp:
        try:
            # Every server stays up for the whole run (idle ones cost nearly nothing), and the
            # rounds interleave them, so a burst of load from elsewhere hits all of them alike.
            for label, processes, code in servers:
                folder = Path(tmp) / re.sub(r"[^\w-]+", "_", label)
                folder.mkdir()
                try:
                    if processes is None:
                        from _workerd import start_workerd

                        proc, url = start_workerd(JS_WORKER, folder)  # type: ignore[assignment]
                    else:
                        proc, url = _start_dohost(folder, processes, code)
                except Exception as exc:  # workerd may not install here: say so, keep the rest
                    print(f"{label}: not measured ({exc})")
                    continue
                running[label] = (proc, url, proc.pid if processes is not None else None)
                _warm_up(url)
            for round_ in range(ROUNDS):
                for label, (proc, url, pid) in running.items():
                    print(f"round {round_ + 1}/{ROUNDS}: {label}", file=sys.stderr)
                    for kind in ("hello", "incr"):
                        rate, cpu = _measure(url, kind, pid)
                        best = results.setdefault(label, {}).get(kind)
                        if best is None or rate > best[0]:
                            best = (rate, best[1] if best is not None else None)
                        if cpu is not None and (best[1] is None or cpu < best[1]):
                            best = (best[0], cpu)
                        results[label][kind] = best
        finally:
            for proc, _, _ in running.values():
                proc.terminate()
            for proc, _, _ in running.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    base = results.get("dohost 1 process")
    rows = []
    for label, r in results.items():
        row: list[object] = [label]
        for kind in ("hello", "incr"):
            rate, cpu = r[kind]
            row += [rate, f"{rate / base[kind][0]:.2f}×" if base else "–", f"{cpu:.2f}" if cpu is not None else "–"]
        rows.append(row)
    print_table(f"HTTP requests/s over {OBJECTS:,} objects (wrk -t2 -c16, {SECONDS} s, best of {ROUNDS} interleaved"
                " rounds; 2-core shared machine); CPU: the server's CPU ms per request (least of the rounds)",
                ["server", "hello req/s", "vs 1 process", "hello CPU ms", "incr req/s", "vs 1 process", "incr CPU ms"],
                rows)


if __name__ == "__main__":
    main()
