"""How often a request finds its object parked: reopens and parks per request, and CPU per request.

Run: ``python bench/bench_parking.py [--cycles] [CHECKOUT ...]`` (about a minute per
checkout; ``--cycles``: the second table only). Builds the app of ``runtime._http.build_app`` over a runtime
serving ``_hotpaths_apps.PY_WORKER`` (``durability="full"``, storage on
``/dev/shm``), as ``bench_http_inprocess.py`` does, and has 16 trio tasks call
it for ``/incr/<name>`` and ``/hello/<name>``:

* ``1,000 objects``: 1,000 resident objects, unpaced (the open-file budget
  holds 400 of them);
* ``1,000 objects at 1,000 req/s``: each caller waits 16 ms between requests,
  on trio's fake clock (``MockClock(autojump_threshold=0)``), so every object
  is touched about once a second;
* ``150 objects, ~2 s apart``: each caller waits 200 ms, fake clock: objects
  under the budget, each touched every ~2 s.

Counts come from wrapping ``persistence._parking.Parking._unpark`` and
``park`` (the same wrapping works on older checkouts); the wrappers also
sum ``time.thread_time`` inside them: CPU µs per reopen (an unpark, which
includes the park of the least recently used object the open-file budget
asks for) and per park, and the ``apsw.Connection`` objects alive at the end
(open, or closed and still referenced). CPU per request is
``time.process_time`` (worker threads included), best of the batches. With
other checkouts as arguments each runs in its own interpreter,
alternating twice, for figures side by side. The fake clock jumps ahead when
every caller waits on a commit's worker thread, so a few idle timers fire
early there.

A second table times the reopen alone, in a compact process (``--cycles``):
``CYCLE_OBJECTS`` objects of the same schema opened through one
``LockTable`` (as the runtime opens them), then, round after round, each is
parked and used again with ``incr``'s two statements (its upsert and read)
and committed (``durability="full"``, ``/dev/shm``, history's clock held
still so that no cycle archives by age): the reopen, the
statements prepared again and the commit, with no event loop, no HTTP and
no other object in between. CPU per cycle is ``time.thread_time``, best of
``CYCLE_ROUNDS`` rounds; the same cycle without the park beside it (the
statements and the commit alone) gives the park and reopen's own share.
Each checkout runs it in its own interpreter, taking turns. Prints; decides
nothing.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _asgi_get import discard, get_scope, receive_empty  # this checkout's bench/ (plain ASGI, same for every checkout)

HOST_ONLY = [(b"host", b"127.0.0.1:8787")]  # the parking runs send only the host header

CALLERS = 16
SCENARIOS = (
    # name, objects, pause between a caller's requests (fake seconds, 0: unpaced), requests per caller
    ("1,000 objects", 1_000, 0.0, 200),
    ("1,000 objects at 1,000 req/s", 1_000, 0.016, 200),
    ("150 objects, ~2 s apart", 150, 0.2, 100),
)
BATCHES = 2
CYCLE_OBJECTS = 50
CYCLE_ROUNDS = 40
INC_SQL = "INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1"
GET_SQL = "SELECT v FROM c WHERE k = 'n'"


def _cycles(root: Path) -> None:
    """Print CPU µs per park + reopen + incr cycle, and per incr cycle without the park (see the docstring)."""
    sys.path.insert(0, str(root))
    from persistence import LockTable, ObjectDatabase

    folder = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    table = LockTable(folder)
    # A clock that stands still: history archives a parked object's WAL by the age of its
    # oldest commit, which would make the work of a cycle depend on how fast it runs.
    dbs = [ObjectDatabase(folder / f"o-{i}.sqlite", locks=table, durability="full", clock=lambda: 1.0e12)
           for i in range(CYCLE_OBJECTS)]
    try:
        for db in dbs:
            db.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")
            db.commit()

        def incr(db: Any) -> None:
            db.sql.exec(INC_SQL)
            db.sql.exec(GET_SQL).one()
            db.commit()

        best = {"reopen": float("inf"), "plain": float("inf")}
        for _ in range(CYCLE_ROUNDS):
            for kind in ("reopen", "plain"):
                started = time.thread_time()
                for db in dbs:
                    if kind == "reopen":
                        db.park()
                    incr(db)
                best[kind] = min(best[kind], (time.thread_time() - started) / len(dbs) * 1e6)
        print(f"{best['reopen']:.1f}\t{best['plain']:.1f}", flush=True)
    finally:
        for db in dbs:
            db.close()
        table.close()
        shutil.rmtree(folder, ignore_errors=True)


def _one(root: Path) -> None:
    for p in (str(root), str(root / "bench")):
        sys.path.insert(0, p)
    import gc

    import apsw
    import trio
    import trio.testing

    import persistence._parking as parking

    counts: dict[str, float] = {"reopen": 0, "park": 0, "reopen_s": 0.0, "park_s": 0.0}
    unpark, park = parking.Parking._unpark, parking.Parking.park

    def counted_unpark(self: Any) -> Any:
        counts["reopen"] += 1
        started = time.thread_time()
        try:
            return unpark(self)
        finally:
            counts["reopen_s"] += time.thread_time() - started

    def counted_park(self: Any) -> bool:
        started = time.thread_time()
        parked = park(self)
        if parked:
            counts["park"] += 1
            counts["park_s"] += time.thread_time() - started
        return parked

    parking.Parking._unpark = counted_unpark  # type: ignore[method-assign]
    parking.Parking.park = counted_park  # type: ignore[method-assign]

    async def measure(op: str, objects: int, pause: float, per_caller: int) -> tuple[float, ...]:
        from _hotpaths_apps import PY_WORKER, WRANGLER
        from runtime import open_runtime
        from runtime._http import build_app, tune_gc_for_serving

        tune_gc_for_serving()
        folder = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        (folder / "project" / "src").mkdir(parents=True)
        (folder / "project" / "wrangler.toml").write_text(WRANGLER)
        (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
        try:
            async with open_runtime(config=folder / "project" / "wrangler.toml", data_dir=folder / "storage",
                                    durability="full", idle_timeout=120.0) as rt:
                app = build_app(lambda: rt)
                paths = [f"/{op}/o-{i}" for i in range(objects)]
                for p in paths:
                    await app(get_scope(p, HOST_ONLY), receive_empty, discard)
                rnd = random.Random(1)

                async def caller() -> None:
                    for _ in range(per_caller):
                        await app(get_scope(paths[rnd.randrange(len(paths))], HOST_ONLY), receive_empty, discard)
                        if pause:
                            await trio.sleep(pause)

                before = dict(counts)
                best = float("inf")
                for _ in range(BATCHES):
                    started = time.process_time()
                    async with trio.open_nursery() as nursery:
                        for _ in range(CALLERS):
                            nursery.start_soon(caller)
                    best = min(best, (time.process_time() - started) / (CALLERS * per_caller) * 1e6)
                n = BATCHES * CALLERS * per_caller
                reopens, parks = counts["reopen"] - before["reopen"], counts["park"] - before["park"]
                per_reopen = (counts["reopen_s"] - before["reopen_s"]) / reopens * 1e6 if reopens else 0.0
                per_park = (counts["park_s"] - before["park_s"]) / parks * 1e6 if parks else 0.0
                gc.collect()
                alive = sum(isinstance(o, apsw.Connection) for o in gc.get_objects())
                return best, reopens / n, parks / n, per_reopen, per_park, alive
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    for name, objects, pause, per_caller in SCENARIOS:
        for op in ("incr", "hello"):
            clock = trio.testing.MockClock(autojump_threshold=0) if pause else None
            cpu, reopens, parks, per_reopen, per_park, alive = trio.run(measure, op, objects, pause, per_caller,
                                                                        clock=clock)
            print(f"{op}\t{name}\t{cpu:.1f}\t{reopens:.3f}\t{parks:.3f}\t{per_reopen:.1f}\t{per_park:.1f}\t{alive:.0f}",
                  flush=True)


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    cycles_only = "--cycles" in sys.argv[1:]
    checkouts = [here] + [Path(p).resolve() for p in sys.argv[1:] if p != "--cycles"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cycle_runs: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for _ in range(3):
        for c in checkouts:
            out = subprocess.run([sys.executable, __file__, "--cycles-one", str(c)], capture_output=True,
                                 text=True, check=True, env=env)
            reopen, plain = (float(v) for v in out.stdout.split())
            cycle_runs[c].append((reopen, plain))
    print("| checkout | park + reopen + `incr` + commit, CPU µs (best) | `incr` + commit alone | the park and reopen's share |")
    print("| --- | ---: | ---: | ---: |")
    for c, runs in cycle_runs.items():
        reopen, plain = min(r for r, _ in runs), min(p for _, p in runs)
        print(f"| {c} | {reopen:.1f} | {plain:.1f} | {reopen - plain:.1f} |")
    if cycles_only:
        return
    results: dict[Path, dict[tuple[str, str], list[list[float]]]] = {c: {} for c in checkouts}
    for _ in range(2 if len(checkouts) > 1 else 1):
        for c in checkouts:
            out = subprocess.run([sys.executable, __file__, "--one", str(c)], capture_output=True, text=True,
                                 check=True, env=env)
            for line in out.stdout.splitlines():
                op, name, *values = line.split("\t")
                results[c].setdefault((op, name), []).append([float(v) for v in values])
    print("| checkout | request | CPU µs per request (best) | reopens / parks per request "
          "| CPU µs per reopen / per park (best) | apsw connections alive |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for c, rows in results.items():
        for (op, name), runs in rows.items():
            cpus, reopens, parks, per_reopen, per_park, alive = zip(*runs)

            def best(values: tuple[float, ...]) -> str:
                return f"{min((v for v in values if v), default=0.0):.0f}"

            print(f"| {c} | `{op}`, {name} | {min(cpus):.0f} | "
                  f"{min(reopens):.2f}–{max(reopens):.2f} / {min(parks):.2f}–{max(parks):.2f} | "
                  f"{best(per_reopen)} / {best(per_park)} | {max(alive):.0f} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        _one(Path(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--cycles-one":
        _cycles(Path(sys.argv[2]))
    else:
        main()
