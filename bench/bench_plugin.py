"""What the ``dohost`` pytest fixture costs per test.

Generates, in a temporary folder, a small wrangler project and two suites of
N tests each (default 200):

* ``empty``: ``async def test_i(): pass`` under pytest-trio — the baseline;
* ``dohost``: each test gets a fresh runtime and fresh storage from the
  ``dohost`` fixture and makes three RPC calls to one object that run SQL
  statements (create table in the constructor, two upserts, selects), plus
  one request through the Worker to the same object.

Each suite runs in its own ``pytest`` process, a few times (``--repeat``); the
fastest run of each is kept (machines are noisy, and the minimum is the run
least disturbed). Prints the wall times and the per-test overhead of the
dohost suite over the empty one, which includes the session's one-time
project load spread over the N tests. Target: ≤ 5 ms per test.

The steady figure is **loop CPU**: a ``conftest.py`` in each suite reads the
process's CPU time (user + system, every thread) around pytest's test loop —
every test's setup, call and teardown, the session fixtures' first set-up
included, but not interpreter start-up, plugin imports or collection, which
are the same for both suites and only add noise. Wall times on a shared
machine follow whatever else runs; CPU time much less so.

``--storage-dir tmp_path`` (or ``all``) also measures with storage in pytest's
``tmp_path`` instead of the default RAM folder, to show what fsync costs on
this machine's disk. A benchmark never decides pass/fail.

Run: ``python bench/bench_plugin.py [--tests 200] [--repeat 3] [--storage-dir auto|tmp_path|all]``
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WRANGLER = """\
name = "bench"
main = "src/worker.py"
compatibility_date = "2026-11-01"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"""

WORKER = """\
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

    def increment(self, by=1):
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO c VALUES ('n', ?) ON CONFLICT(k) DO UPDATE SET v = v + ?", by, by)
        return sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"]

    def get(self):
        rows = self.ctx.storage.sql.exec("SELECT v FROM c WHERE k = 'n'").toArray()
        return rows[0]["v"] if rows else 0


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        name = urlparse(request.url).path.strip("/")
        return Response(str(await self.env.COUNTER.getByName(name).increment()))
"""

DOHOST_TEST = """\
async def test_{i}(dohost):
    stub = dohost.env.COUNTER.getByName("c{i}")
    assert await stub.increment() == 1
    assert await stub.increment(2) == 3
    assert await stub.get() == 3
    response = await dohost.fetch("http://bench.example/c{i}")
    assert await response.text() == "4"
"""

EMPTY_TEST = """\
async def test_{i}():
    pass
"""


#: Records the CPU and wall time of pytest's test loop in the file $DOHOST_BENCH_LOOP.
LOOP_TIMER = """\
import os
import time

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out = os.environ.get("DOHOST_BENCH_LOOP")
    if out:
        with open(out, "w") as f:
            f.write(f"{cpu} {wall}")
"""


def write_suite(root: Path, kind: str, n: int, storage_dir: str) -> Path:
    folder = root / f"{kind}-{storage_dir}"
    (folder / "src").mkdir(parents=True)
    (folder / "conftest.py").write_text(LOOP_TIMER)
    (folder / "wrangler.toml").write_text(WRANGLER)
    (folder / "src" / "worker.py").write_text(WORKER)
    (folder / "pytest.ini").write_text(
        textwrap.dedent(
            f"""\
            [pytest]
            trio_mode = true
            filterwarnings = error
            dohost_storage_dir = {storage_dir}
            """
        )
    )
    template = DOHOST_TEST if kind == "dohost" else EMPTY_TEST
    per_file = 50  # a realistic layout: several modules, not one huge file
    for start in range(0, n, per_file):
        body = "\n\n".join(template.format(i=i) for i in range(start, min(n, start + per_file)))
        (folder / f"test_{kind}_{start // per_file}.py").write_text(body)
    return folder


class Run:
    """One pytest process: wall time, pytest's own session time, CPU time, and the test loop's CPU and wall."""

    def __init__(self, wall: float, session: float, cpu: float, loop_cpu: float = 0.0, loop_wall: float = 0.0) -> None:
        self.wall, self.session, self.cpu = wall, session, cpu
        self.loop_cpu, self.loop_wall = loop_cpu, loop_wall


def run_suite(folder: Path, n: int, checkout: Path | None = None) -> Run:
    """Run one suite in a pytest process; ``checkout``: import dohost from that source tree instead."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(folder / ".tmp")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # pytest caches assert-rewritten test modules as .pyc files, as a developer's
    # machine does; allow it even where PYTHONDONTWRITEBYTECODE is set, but keep
    # every .pyc under the suite's temporary folder (the first run fills it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder.parent / "pycache")
    loop_file = folder / ".loop-time"
    loop_file.unlink(missing_ok=True)
    env["DOHOST_BENCH_LOOP"] = str(loop_file)
    if checkout is not None:
        # Ahead of the installed (editable) dohost: its packages, the pytest11 entry
        # point's module included, are imported from this checkout.
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = re.search(rf"{n} passed in ([0-9.]+)s", proc.stdout)
    if proc.returncode != 0 or summary is None:
        sys.exit(f"suite {folder.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loop_cpu, loop_wall = (float(v) for v in loop_file.read_text().split())
    return Run(wall, float(summary.group(1)), cpu, loop_cpu, loop_wall)


def best(runs: list[Run]) -> Run:
    """The least disturbed run of each measure (the machines are noisy)."""
    return Run(
        min(r.wall for r in runs), min(r.session for r in runs), min(r.cpu for r in runs),
        min(r.loop_cpu for r in runs), min(r.loop_wall for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage-dir", choices=("auto", "tmp_path", "all"), default="all")
    args = parser.parse_args()
    n = args.tests
    storage_dirs = ["auto", "tmp_path"] if args.storage_dir == "all" else [args.storage_dir]
    with tempfile.TemporaryDirectory(prefix="dohost-bench-plugin-") as tmp:
        root = Path(tmp)
        suites = {"empty": write_suite(root, "empty", n, "auto")}
        suites.update({s: write_suite(root, "dohost", n, s) for s in storage_dirs})
        runs: dict[str, list[Run]] = {name: [] for name in suites}
        for _ in range(args.repeat):  # interleaved, so a slow spell hits every suite alike
            for name, folder in suites.items():
                runs[name].append(run_suite(folder, n))
        empty = best(runs["empty"])
        print(f"{n} tests per suite, best of {args.repeat} runs each (wall = the whole pytest process;")
        print("session = pytest's own timer, without interpreter start-up; cpu = user + system time)")
        print(f"  {'suite':22s} {'wall s':>8s} {'session s':>10s} {'cpu s':>8s} {'loop cpu s':>11s}")
        print(f"  {'empty pytest-trio':22s} {empty.wall:8.3f} {empty.session:10.3f} {empty.cpu:8.3f} {empty.loop_cpu:11.3f}")
        for storage_dir in storage_dirs:
            r = best(runs[storage_dir])
            print(f"  {'dohost, storage ' + storage_dir:22s} {r.wall:8.3f} {r.session:10.3f} {r.cpu:8.3f} {r.loop_cpu:11.3f}")
        for storage_dir in storage_dirs:
            r = best(runs[storage_dir])
            per = {k: (getattr(r, k) - getattr(empty, k)) / n * 1000.0 for k in ("wall", "session", "cpu", "loop_cpu")}
            print(
                f"per-test overhead of dohost (storage {storage_dir}) over the empty test:"
                f" loop cpu {per['loop_cpu']:.2f} ms (the steady figure), wall {per['wall']:.2f} ms,"
                f" session {per['session']:.2f} ms, process cpu {per['cpu']:.2f} ms  (target <= 5 ms)"
            )


if __name__ == "__main__":
    main()
