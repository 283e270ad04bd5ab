"""``dohost serve --processes N``: requests/s with 1, 2 and 3 processes, and workerd, side by side.

The user's path: ``dohost serve`` started from the CLI (fsync on commit),
HTTP through the Worker to one of 1,000 objects picked at random per request
(``/hello/<name>``: the object returns a constant; ``/incr/<name>``: a SQL
upsert and read), measured with ``wrk`` (apt's; 2 threads, 16 connections, a
Lua script picking the object). "1 process" is plain ``dohost serve``; with N
processes a request lands on any process and is forwarded when another owns
the object (on average (N-1)/N of them). workerd runs the same Worker in JS
(``_hotpaths_apps.JS_WORKER``). A 2 s untimed run of each kind warms up first.

Run: ``python bench processes`` (``--quick``: shorter runs). The machine is
shared: compare the ratios of one run, not figures across runs.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE.parent), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _hotpaths_apps import JS_WORKER, PY_WORKER, WRANGLER  # noqa: E402
from _table import print_table  # noqa: E402

QUICK = "--quick" in sys.argv
SECONDS = 3 if QUICK else 6
OBJECTS = 1_000
LUA = """\
math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/%s/o" .. math.random(%d))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _start_dohost(folder: Path, processes: int) -> tuple[subprocess.Popen[bytes], str]:
    project = folder / "project"
    (project / "src").mkdir(parents=True)
    (project / "wrangler.toml").write_text(WRANGLER)
    (project / "src" / "worker.py").write_text(PY_WORKER)
    port = _free_port()
    argv = [sys.executable, "-m", "wrangler_compat.cli", "serve", "--data-dir", str(folder / "data"),
            "--listen", f"127.0.0.1:{port}", "-c", str(project), "--idle-timeout", "600"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent)
    log.close()
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/__dohost/health", proc)
    return proc, url


def _wrk(url: str, kind: str, seconds: float) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (kind, OBJECTS))
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m is None or errors is not None:
        raise RuntimeError(f"wrk: {out}")
    return float(m[1])


def _warm_up(url: str) -> None:
    """A short untimed run of each kind, so most objects exist and are resident before timing."""
    for kind in ("hello", "incr"):
        _wrk(url, kind, 2)


def main() -> None:
    if shutil.which("wrk") is None:
        print("bench_processes: `wrk` is not installed (apt-get install wrk); skipped")
        return
    servers: list[tuple[str, int | None]] = [("dohost, 1 process", 1), ("dohost --processes 2", 2),
                                             ("dohost --processes 3", 3), ("workerd", None)]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dohost-bench-procs-") as tmp:
        for label, processes in servers:
            folder = Path(tmp) / label.replace(" ", "_").replace(",", "")
            folder.mkdir()
            try:
                if processes is None:
                    from _workerd import start_workerd

                    proc, url = start_workerd(JS_WORKER, folder)  # type: ignore[assignment]
                else:
                    proc, url = _start_dohost(folder, processes)
            except Exception as exc:  # workerd may not install here: say so, keep the rest
                print(f"{label}: not measured ({exc})")
                continue
            try:
                _warm_up(url)
                results[label] = {kind: _wrk(url, kind, SECONDS) for kind in ("hello", "incr")}
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    base = results.get("dohost, 1 process")
    rows = []
    for label, r in results.items():
        row: list[object] = [label]
        for kind in ("hello", "incr"):
            row += [r[kind], f"{r[kind] / base[kind]:.2f}×" if base else "–"]
        rows.append(row)
    print_table(f"HTTP requests/s over {OBJECTS:,} objects (wrk -t2 -c16, {SECONDS} s; 2-core shared machine)",
                ["server", "hello req/s", "vs 1 process", "incr req/s", "vs 1 process"], rows)


if __name__ == "__main__":
    main()
