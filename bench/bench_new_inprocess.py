"""CPU per new object's first request, without a server: the ASGI app called directly.

Run: ``python bench/bench_new_inprocess.py [--instructions [--window] [--keep=DIR]] [--stages] [--profile]
[--durability=full,none] [--shm] [--callers=16] [CHECKOUT ...]``.

Builds the app of ``runtime._http.build_app`` over a runtime serving
``_hotpaths_apps.PY_WORKER`` (``bench_hotpaths.py``'s ``new`` scenario: a new
object per request, ``GET /incr/<new name>``; the object's constructor creates
a table, ``increment`` upserts and reads a row, so the first request creates
the object's file and commits once). ``--callers`` trio tasks (16, as ``wrk``'s
connections) call it with ready-made ASGI scopes; storage in a temporary folder
on the disk (``--shm``: ``/dev/shm``), ``durability="full"`` (as ``dohost
serve``) and ``"none"`` (no fsync, no WAL sync: the I/O-free part).

Prints, per new object: the process's CPU µs (``time.process_time``), the
event loop thread's own (``time.thread_time`` in the trio thread) and the rest
(worker threads: the first commit's), best of 5 batches of 200 after 64 warm-up
objects; each checkout in its own interpreter, taking turns twice.

``--instructions`` counts instead user-space instructions per new object under
valgrind's callgrind (runs of 100 and 300 objects, subtracted, so start-up
cancels out; the objects' closes at the runtime's exit are counted), the
figure the machine's load cannot blur (the kernel's work — file creation,
fsync — is not counted). ``--window`` counts only while the requests run (no
closes); ``--keep=DIR`` keeps the callgrind files for ``callgrind_annotate``.
``--stages`` prints the CPU µs per new object of each step of
:data:`STAGES` (thread CPU time of the calls, on the thread that runs them),
three batches of 200 of this checkout. ``--profile`` prints a cProfile of the
event loop's thread (thread CPU time) for this checkout: where its share goes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _asgi_get import get_scope, receive_empty  # this checkout's bench/ (plain ASGI, same for every checkout)

WARM = 64
BATCH = 200
BATCHES = 5


async def _measure(durability: str, n: int, batches: int, callers: int, shm: bool, profile: bool) -> list[str]:
    from _hotpaths_apps import PY_WORKER, WRANGLER
    from runtime import open_runtime
    from runtime._http import build_app, tune_gc_for_serving

    tune_gc_for_serving()
    base = "/dev/shm" if shm and Path("/dev/shm").is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix="dohost-newcpu-", dir=base))
    (folder / "project" / "src").mkdir(parents=True)
    (folder / "project" / "wrangler.toml").write_text(WRANGLER)
    (folder / "project" / "src" / "worker.py").write_text(PY_WORKER)
    try:
        return await _run(folder, durability, n, batches, callers, profile, open_runtime, build_app)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _run(folder: Path, durability: str, n: int, batches: int, callers: int, profile: bool,
               open_runtime: Any, build_app: Any) -> list[str]:
    import trio

    async with open_runtime(config=folder / "project" / "wrangler.toml", data_dir=folder / "storage",
                            durability=durability, idle_timeout=600.0) as rt:
        app = build_app(lambda: rt)
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def batch(tag: str, count: int) -> None:
            paths = [f"/incr/new-{tag}-{i}" for i in range(count)]

            async def caller(mine: list[str]) -> None:
                for p in mine:
                    await app(get_scope(p), receive_empty, send)

            async with trio.open_nursery() as nursery:
                for c in range(callers):
                    nursery.start_soon(caller, paths[c::callers])

        await batch("warm", WARM)
        spent = _time_stages() if os.environ.get("_NEWCPU_STAGES") == "1" else None
        lines = []
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile(time.thread_time_ns, 1e-9)
        window = os.environ.get("_NEWCPU_WINDOW") == "1"
        for b in range(batches):
            if window:
                _callgrind("on")
            cpu0, loop0 = time.process_time(), time.thread_time()
            if prof is not None:
                prof.enable()
            await batch(f"b{b}", n)
            if prof is not None:
                prof.disable()
            if window:
                _callgrind("off")
            cpu, loop = time.process_time() - cpu0, time.thread_time() - loop0
            lines.append(f"{cpu / n * 1e6:.1f} {loop / n * 1e6:.1f} {(cpu - loop) / n * 1e6:.1f}")
        if spent is not None:
            for _, _, _, label in STAGES:
                lines.append(f"stage {spent[label] / (n * batches) / 1000:.1f} {label}")
        if any(s != 200 for s in statuses):
            raise RuntimeError(f"error responses: {sorted(set(statuses))}")
        if prof is not None:
            import pstats

            pstats.Stats(prof, stream=sys.stderr).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(int(os.environ.get("TOP", "60")))
        return lines


#: ``--stages``: (module, class or None, function, label) timed on the thread that runs them.
STAGES = [
    ("runtime._activation", "Activation", "__init__", "loop: Activation()"),
    ("persistence._engine", "ObjectDatabase", "__init__", "loop: ObjectDatabase() (the open), of which:"),
    ("persistence._open", None, "_is_new_file", "loop:   _is_new_file (stat)"),
    ("persistence._open", None, "_write_first_page", "loop:   _write_first_page (creates the file)"),
    ("persistence._open", None, "_new_connection", "loop:   apsw.Connection + limits"),
    ("persistence._pitr", "History", "__init__", "loop:   History()"),
    ("runtime._activation", "Activation", "_open", "loop: Activation._open (ctx, storage)"),
    ("runtime._activation", "Activation", "_construct", "loop: the user's constructor (CREATE TABLE)"),
    ("runtime._activation", "Activation", "_deliver", "loop: the RPC method (upsert + read)"),
    ("runtime._commits", "CommitsMixin", "_record_name_and_commit", "first commit (its thread under full), of which:"),
    ("persistence._metadata", "Metadata", "write_name", "  name attribute (+ fsync of the file under full)"),
    ("persistence._engine", "ObjectDatabase", "_commit_new_wal", "  COMMIT + WAL and folder sync (new file, full)"),
]


def _time_stages() -> Any:
    """Wrap :data:`STAGES` to sum the CPU time of their calls on the thread that runs them."""
    import collections
    import functools
    import importlib

    spent: collections.Counter[str] = collections.Counter()
    for module, cls, name, label in STAGES:
        owner = importlib.import_module(module)
        if cls is not None:
            owner = getattr(owner, cls)
        fn = getattr(owner, name)

        def timed(*args: Any, _fn: Any = fn, _label: str = label, **kw: Any) -> Any:
            t = time.thread_time_ns()
            try:
                return _fn(*args, **kw)
            finally:
                spent[_label] += time.thread_time_ns() - t

        setattr(owner, name, functools.wraps(fn)(timed))
    return spent


def _callgrind(state: str) -> None:
    """Switch callgrind's counting on or off for this process (``--window``)."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def _one(root: Path, durability: str, n: int, batches: int, callers: int, shm: bool, profile: bool) -> None:
    for p in (str(root), str(root / "bench")):
        sys.path.insert(0, p)
    import trio

    for line in trio.run(_measure, durability, n, batches, callers, shm, profile):
        print(line, flush=True)


def _child(checkout: Path, durability: str, n: int, batches: int, callers: int, shm: bool,
           profile: bool = False, valgrind: Path | None = None, window: bool = False,
           stages: bool = False) -> list[str]:
    cmd = [sys.executable, __file__, "--one", str(checkout), durability, str(n), str(batches), str(callers),
           "shm" if shm else "disk", "profile" if profile else "-"]
    if valgrind is not None:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={valgrind}"] + (
            ["--instr-atstart=no"] if window else []) + cmd
    env = {**os.environ, "_NEWCPU_WINDOW": "1" if window else "0", "_NEWCPU_STAGES": "1" if stages else "0"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{checkout}: {out.stderr[-2000:]}")
    if profile:
        print(out.stderr)
    return [line for line in out.stdout.splitlines() if line.strip()]


def _instructions(checkout: Path, durability: str, callers: int, shm: bool, window: bool = False,
                  keep: Path | None = None) -> float:
    """User-space instructions per new object under callgrind: runs of 300 and 100 objects, subtracted.

    ``window``: only while the requests run (no start-up, no shutdown: not the
    objects' closes); ``keep``: the callgrind files go there (for ``callgrind_annotate``).
    """
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 300):
            out = (keep or Path(tmp)) / f"callgrind.{durability}.{'window' if window else 'all'}.{n}"
            _child(checkout, durability, n, 1, callers, shm, valgrind=out, window=window)
            totals.append(next(int(line.split()[1]) for line in out.read_text().splitlines()
                               if line.startswith("totals:")))
    return (totals[1] - totals[0]) / 200


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    args = sys.argv[1:]
    flags = {a for a in args if a.startswith("--")}
    opts = dict(a[2:].split("=", 1) for a in flags if "=" in a)
    unknown = {f.split("=")[0] for f in flags} - {"--instructions", "--window", "--keep", "--stages", "--profile", "--shm", "--durability", "--callers"}
    if unknown or "--help" in args:
        raise SystemExit(__doc__ if not unknown else f"unknown option(s): {sorted(unknown)}")
    checkouts = [here] + [Path(p).resolve() for p in args if not p.startswith("--")]
    durabilities = opts.get("durability", "full,none").split(",")
    callers = int(opts.get("callers", 16))
    shm = "--shm" in flags
    where = "/dev/shm" if shm else "disk"
    if "--stages" in flags:
        print(f"| stage ({callers} callers, {where}) | " + " | ".join(durabilities) + " |")
        print("| --- |" + " ---: |" * len(durabilities))
        got = {d: [ln.split(None, 2)[1:] for ln in _child(here, d, BATCH, 3, callers, shm, stages=True)
                   if ln.startswith("stage ")] for d in durabilities}
        for i, (_, _, _, label) in enumerate(STAGES):
            print(f"| {label} | " + " | ".join(got[d][i][0] for d in durabilities) + " |")
        return
    if "--profile" in flags:
        _child(here, durabilities[0], BATCH, 1, callers, shm, profile=True)
        return
    if "--instructions" in flags:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind")
        window = "--window" in flags
        keep = Path(opts["keep"]) if "keep" in opts else None
        what = "while the requests run" if window else "start-up cancelled, the objects' closes included"
        print(f"| checkout | durability | user-space instructions per new object ({callers} callers, {where};"
              f" {what}) |")
        print("| --- | --- | ---: |")
        for d in durabilities:
            for c in checkouts:
                print(f"| {c} | {d} | {_instructions(c, d, callers, shm, window, keep):,.0f} |", flush=True)
        return
    best: dict[tuple[Path, str], list[float]] = {}
    for _ in range(2):
        for d in durabilities:
            for c in checkouts:
                for line in _child(c, d, BATCH, BATCHES, callers, shm):
                    got = [float(x) for x in line.split()]
                    old = best.get((c, d))
                    best[c, d] = got if old is None or got[0] < old[0] else old
    print(f"| checkout | durability | CPU µs per new object: process / event loop thread / other threads"
          f" ({callers} callers, {where}, best batch) |")
    print("| --- | --- | ---: |")
    for (c, d), (cpu, loop, rest) in best.items():
        print(f"| {c} | {d} | {cpu:,.0f} / {loop:,.0f} / {rest:,.0f} |")


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "--one":
        a = sys.argv
        _one(Path(a[2]), a[3], int(a[4]), int(a[5]), int(a[6]), a[7] == "shm", a[8] == "profile")
    else:
        main()
