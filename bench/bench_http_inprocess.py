"""dohost's own CPU per HTTP request, without a server: the ASGI app called directly.

Run: ``python bench/bench_http_inprocess.py [--instructions [--incr]] [CHECKOUT ...]`` (a
few seconds per checkout). Builds the app of ``runtime._http.build_app`` over a
runtime serving ``_hotpaths_apps.PY_WORKER`` (as the HTTP rows of
``bench_hotpaths.py`` do), then 16 trio tasks call it with ready-made ASGI
scopes (GET, no body; ``send`` discards) for ``/hello/hot`` and for
``/hello/o-<n>`` over 1,000 resident objects (touched first, 16 at a time).
Prints CPU µs per request (``time.process_time``), best of 7 batches of
3,200. With other checkouts as arguments (older code), each is run in its own
interpreter after this one, alternating twice, for figures side by side.

``--instructions`` counts instead what the machine's load cannot blur: CPU
instructions per request under valgrind's callgrind (the difference between
runs of 1 and 3 batches, so start-up cancels out; a minute or two per
checkout), for the hot object only (``--incr``: ``/incr/hot``, its SQL
upsert and read and its commit, instead of ``/hello/hot``): under valgrind's ~50× slow-down the
1,000 objects go idle for a second between their requests, so objects park
and unpark (``runtime/_parking.py``) as they never would at full speed.

Over HTTP the same work sits on top of hypercorn's ~300 µs per request and
costs more there (colder caches); this is the steadier figure to compare
changes to the front, the Worker call and the object event with.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _asgi_get import discard, get_scope, receive_empty  # this checkout's bench/ (plain ASGI, same for every checkout)

SPREAD = 1_000
CALLERS = 16
PER_CALLER = 200


async def _measure(which: str, batches: int) -> float:
    import trio

    from _hotpaths_apps import PY_WORKER, WRANGLER
    from runtime import open_runtime
    from runtime._http import build_app, tune_gc_for_serving

    tune_gc_for_serving()
    folder = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    (folder / "project" / "src").mkdir(parents=True)
    (folder / "project" / "wrangler.toml").write_text(WRANGLER)
    (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
    try:
        return await _run(folder, which, batches, open_runtime, build_app)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _run(folder: Path, which: str, batches: int, open_runtime: Any, build_app: Any) -> float:
    import trio

    async with open_runtime(config=folder / "project" / "wrangler.toml", data_dir=folder / "storage",
                            durability="full", idle_timeout=120.0) as rt:
        app = build_app(lambda: rt)
        paths = {"hot": ["/hello/hot"], "incr": ["/incr/hot"]}.get(which) or [f"/hello/o-{i}" for i in range(SPREAD)]

        async def touch(mine: list[str]) -> None:
            for p in mine:
                await app(get_scope(p), receive_empty, discard)

        # First touches 16 at a time, as a server's clients would: one by one,
        # each new object's fsync'd first commit waits alone (minutes for 1,000).
        async with trio.open_nursery() as nursery:
            for c in range(CALLERS):
                nursery.start_soon(touch, paths[c::CALLERS])
        rnd = random.Random(1)

        async def caller() -> None:
            for _ in range(PER_CALLER):
                await app(get_scope(paths[rnd.randrange(len(paths))]), receive_empty, discard)

        best = float("inf")
        for _ in range(batches):
            started = time.process_time()
            async with trio.open_nursery() as nursery:
                for _ in range(CALLERS):
                    nursery.start_soon(caller)
            best = min(best, (time.process_time() - started) / (CALLERS * PER_CALLER) * 1e6)
        return best


def _one(root: Path, which: list[str], batches: int) -> None:
    for p in (str(root), str(root / "bench")):
        sys.path.insert(0, p)
    import trio

    for w in which:
        print(f"{w} {trio.run(_measure, w, batches):.1f}", flush=True)


def _instructions(checkout: Path, which: str) -> float:
    """Instructions per request under callgrind: runs of 3 and 1 batches, subtracted."""
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for batches in (1, 3):
            out = Path(tmp) / f"callgrind.{batches}"
            run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                                  "--one", str(checkout), which, str(batches)], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"{checkout} ({batches} batches) failed:\n{run.stderr[-3000:]}")
            totals.append(next(int(line.split()[1]) for line in out.read_text().splitlines()
                               if line.startswith("totals:")))
    return (totals[1] - totals[0]) / (2 * CALLERS * PER_CALLER)


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    args = sys.argv[1:]
    count = "--instructions" in args
    incr = "--incr" in args
    checkouts = [here] + [Path(p).resolve() for p in args if p not in ("--instructions", "--incr")]
    if count:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind")
        what = "incr" if incr else "hello"
        print(f"| checkout | {what}, one hot object (instructions per request) |")
        print("| --- | ---: |")
        for c in checkouts:
            print(f"| {c} | {_instructions(c, 'incr' if incr else 'hot'):,.0f} |", flush=True)
        return
    results: dict[Path, dict[str, float]] = {c: {} for c in checkouts}
    for _ in range(2 if len(checkouts) > 1 else 1):
        for c in checkouts:
            out = subprocess.run([sys.executable, __file__, "--one", str(c), "hot,spread", "7"],
                                 capture_output=True, text=True, check=True)
            for line in out.stdout.split("\n"):
                if line.strip():
                    which, us = line.split()
                    results[c][which] = min(results[c].get(which, float("inf")), float(us))
    print("| checkout | hello, one hot object (µs) | hello over 1,000 objects (µs) |")
    print("| --- | ---: | ---: |")
    for c, r in results.items():
        print(f"| {c} | {r['hot']:.1f} | {r['spread']:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        _one(Path(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]))
    else:
        main()
