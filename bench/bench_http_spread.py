"""A request to one of many resident objects against one to a hot object, in-process, same heap.

Run: ``python bench/bench_http_spread.py [--url-cache] [--rounds N] [CHECKOUT ...]``
(~15 s per checkout and round). Builds the app of ``runtime._http.build_app``
over a runtime serving ``_hotpaths_apps.PY_WORKER`` (as
``bench_http_inprocess.py`` does), touches 1,000 objects and the hot one,
waits for the budget's parks, then has 16 trio tasks call the ASGI app for
``/hello/hot`` and for ``/hello/o-<n>`` (n random over the 1,000) in turns.
Unlike ``bench_http_inprocess.py`` both scenarios run with the same 1,000
objects resident, so the difference is what a request pays for meeting a
different object each time, not a larger heap. Prints CPU µs per request
(``time.process_time``), best of 6 batches of 3,200 per scenario; with
checkouts (older code), each runs in its own interpreter, taking turns,
``--rounds`` times (default 3), best per checkout.

``--url-cache`` raises CPython's ``urlsplit`` cache (128 URLs) to 4,096 in
the measured process: an experiment that takes the benchmark Worker's own
``urlparse(request.url)`` (which misses that cache on 1,000 distinct URLs)
out of the difference, leaving dohost's share. Prints; decides nothing.
"""

from __future__ import annotations

import functools
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _asgi_get import discard, get_scope, receive_empty  # this checkout's bench/ (plain ASGI, same for every checkout)

SPREAD = 1_000
CALLERS = 16
PER_CALLER = 200
BATCHES = 6


async def _measure(root: Path) -> dict[str, float]:
    import trio

    from _hotpaths_apps import PY_WORKER, WRANGLER
    from runtime import open_runtime
    from runtime._http import build_app, tune_gc_for_serving

    tune_gc_for_serving()
    folder = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    (folder / "project" / "src").mkdir(parents=True)
    (folder / "project" / "wrangler.toml").write_text(WRANGLER)
    (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
    best = {"hot": float("inf"), "spread": float("inf")}
    try:
        async with open_runtime(config=folder / "project" / "wrangler.toml", data_dir=folder / "storage",
                                durability="full", idle_timeout=120.0) as rt:
            app = build_app(lambda: rt)
            spread = [f"/hello/o-{i}" for i in range(SPREAD)]

            async def touch(mine: list[str]) -> None:
                for p in mine:
                    await app(get_scope(p), receive_empty, discard)

            async with trio.open_nursery() as nursery:
                for c in range(CALLERS):
                    nursery.start_soon(touch, (spread + ["/hello/hot"])[c::CALLERS])
            await trio.sleep(3)  # the budget parks what it parks after a second idle
            rnd = random.Random(1)

            async def batch(paths: list[str]) -> float:
                async def caller() -> None:
                    for _ in range(PER_CALLER):
                        await app(get_scope(paths[rnd.randrange(len(paths))]), receive_empty, discard)

                started = time.process_time()
                async with trio.open_nursery() as nursery:
                    for _ in range(CALLERS):
                        nursery.start_soon(caller)
                return (time.process_time() - started) / (CALLERS * PER_CALLER) * 1e6

            for _ in range(BATCHES):
                best["hot"] = min(best["hot"], await batch(["/hello/hot"]))
                best["spread"] = min(best["spread"], await batch(spread))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return best


def _one(root: Path, url_cache: bool) -> None:
    for p in (str(root), str(root / "bench")):
        sys.path.insert(0, p)
    import trio

    if url_cache:
        import urllib.parse

        urllib.parse.urlsplit = functools.lru_cache(4096, typed=True)(urllib.parse.urlsplit.__wrapped__)  # type: ignore[attr-defined]
    best = trio.run(_measure, root)
    print(f"{best['hot']:.1f} {best['spread']:.1f}", flush=True)


def main() -> None:
    args = sys.argv[1:]
    url_cache = "--url-cache" in args
    rounds = 3
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
        del args[args.index("--rounds"):args.index("--rounds") + 2]
    checkouts = [Path(__file__).resolve().parent.parent] + [Path(a).resolve() for a in args if a != "--url-cache"]
    results: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for _ in range(rounds):
        for c in checkouts:
            out = subprocess.run([sys.executable, __file__, "--one", str(c), "1" if url_cache else "0"],
                                 capture_output=True, text=True, check=True)
            hot, spread = map(float, out.stdout.split())
            results[c].append((hot, spread))
    note = " (urlsplit cache raised to 4,096)" if url_cache else ""
    print(f"| checkout | hello, hot object, µs{note} | hello over {SPREAD:,} resident objects, µs | difference |")
    print("| --- | ---: | ---: | ---: |")
    for c, rs in results.items():
        hot, spread = min(r[0] for r in rs), min(r[1] for r in rs)
        print(f"| {c} | {hot:.1f} | {spread:.1f} | {spread - hot:+.1f} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        _one(Path(sys.argv[2]), sys.argv[3] == "1")
    else:
        main()
