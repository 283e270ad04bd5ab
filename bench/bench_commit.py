"""The CPU of a fsync'd commit through a live object, split, in-process (issue #11, round 9).

    python bench/bench_commit.py [--n 3000] [--repeats 5] [--disk] [--modes a,b] [CHECKOUT ...]
    python bench/bench_commit.py --callgrind [--n 2000] [--modes a,b] [CHECKOUT ...]

Each mode runs in a fresh worker process (``--worker``) that imports dohost
from this checkout or from each ``CHECKOUT`` given (older code), the
checkouts taking turns, best of ``--repeats``. Storage lives on ``/dev/shm``
unless ``--disk`` (then ``/tmp``): in memory an ``fdatasync`` returns at
once, so what is left is CPU — the figure this benchmark is about. Modes:

``serial_full``
    one caller awaiting ``increment()`` (the DESIGN counter's upsert and
    read) on one object, ``durability="full"``: every call is its own commit
    in a worker thread. Process CPU (every thread) and the event loop
    thread's own CPU per call.
``serial_normal``
    the same with ``durability="normal"``: the commit runs on the event loop,
    no thread, no fsync — the object call and dohost's commit work alone.
``group64``
    64 callers on one object, ``"full"``: writes group into commits. CPU per
    write, writes per commit, writes per second (the group-commit row's
    shape, here CPU-bound: the fsync is free in memory).
``hop``
    ``await trio.to_thread.run_sync(noop)`` in a loop: trio's thread hop alone.
``pool_hop``
    the same through the runtime's commit threads (``runtime._commit_threads``,
    round 9; "n/a" in a checkout without them).
``raw_full`` / ``raw_normal``
    raw apsw, the same SQL in ``BEGIN … COMMIT`` per call, ``synchronous``
    FULL (``fdatasync`` per commit) / NORMAL (none).

So ``serial_full − serial_normal`` is what the thread and the fsync'd commit
add per commit, of which ``hop`` is trio's hand-off and ``raw_full −
raw_normal`` SQLite's sync. ``--callgrind`` instead counts user-space
instructions per call (valgrind's callgrind, all threads): each mode runs
twice, with ``--n`` and with ``--n``/5 calls, and the difference is divided
by the calls between — start-up and warm-up cancel out. Instructions leave
out the kernel's side (the futex and the wake-ups of a hand-off, the
fsync), which the CPU figures include.

The benchmark decides nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = ("serial_full", "serial_normal", "group64", "hop", "pool_hop", "raw_full", "raw_normal")
#: Modes a worker runs that the table does not list (``group_rate``: ``bench_hotpaths.py --only=group --before``).
WORKER_MODES = MODES + ("group_rate",)
#: group_rate's duration, as bench_runtime.hot_object's.
GROUP_SECONDS = 1.5
SCHEMA = "CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)"
INC_SQL = "INSERT INTO c VALUES ('n', ?) ON CONFLICT(k) DO UPDATE SET v = v + ?"
GET_SQL = "SELECT v FROM c WHERE k = 'n'"
CALLERS = 64


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(checkout: str, mode: str, n: int, folder: str) -> dict[str, Any]:
    """One mode's figures, dohost imported from ``checkout``."""
    sys.path.insert(0, checkout)
    import apsw
    import trio

    from objects import DurableObject
    from runtime import open_runtime

    class Counter(DurableObject):
        def __init__(self, ctx: Any, env: Any) -> None:
            super().__init__(ctx, env)
            ctx.storage.sql.exec(SCHEMA)

        def increment(self, by: int = 1) -> int:
            sql = self.ctx.storage.sql
            sql.exec(INC_SQL, by, by)
            return sql.exec(GET_SQL).one()["v"]  # type: ignore[no-any-return]

    out: dict[str, Any] = {}

    if mode.startswith("raw_"):
        conn = apsw.Connection(os.path.join(folder, "raw.sqlite"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if mode == 'raw_full' else 'NORMAL'}")
        conn.execute(SCHEMA)
        for _ in range(200):
            with conn:
                conn.execute(INC_SQL, (1, 1))
        c0, t0 = _cpu(), time.perf_counter()
        for _ in range(n):
            with conn:
                conn.execute(INC_SQL, (1, 1))
                conn.execute(GET_SQL).fetchall()
        out["cpu_us"] = (_cpu() - c0) / n * 1e6
        out["wall_us"] = (time.perf_counter() - t0) / n * 1e6
        conn.close()
        return out

    def noop() -> None:
        pass

    async def hops(run_sync: Any) -> None:
        for _ in range(200):
            await run_sync(noop)
        c0, m0 = _cpu(), time.thread_time()
        for _ in range(n):
            await run_sync(noop)
        out["cpu_us"] = (_cpu() - c0) / n * 1e6
        out["loop_us"] = (time.thread_time() - m0) / n * 1e6

    async def run() -> None:
        if mode == "hop":
            await hops(trio.to_thread.run_sync)
            return
        if mode == "pool_hop":
            import runtime

            pool_module = Path(runtime.__file__).parent / "_commit_threads.py"
            if not pool_module.exists():  # (an editable install of another checkout would still import one)
                out["cpu_us"] = float("nan")
                return
            from runtime._commit_threads import open_commit_threads

            async with open_commit_threads() as pool:
                await hops(pool.run)
            return
        durability = "normal" if mode == "serial_normal" else "full"
        async with open_runtime(bindings={"COUNTER": Counter}, data_dir=Path(folder) / "rt",
                                durability=durability) as rt:
            stub = rt.env["COUNTER"].getByName("hot")
            for _ in range(200):
                await stub.increment()
            commits0 = sum(s.commits for s in rt.statistics())
            calls = n
            c0, m0, t0 = _cpu(), time.thread_time(), time.perf_counter()
            if mode == "group_rate":  # bench_runtime.hot_object's loop: writes/s for GROUP_SECONDS
                count = 0
                deadline = time.perf_counter() + GROUP_SECONDS

                async def timed_caller() -> None:
                    nonlocal count
                    while time.perf_counter() < deadline:
                        await stub.increment()
                        count += 1

                async with trio.open_nursery() as nursery:
                    for _ in range(CALLERS):
                        nursery.start_soon(timed_caller)
                calls = count
                out["rate"] = count / (time.perf_counter() - t0)
            elif mode == "group64":
                left = n

                async def caller() -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        await stub.increment()

                async with trio.open_nursery() as nursery:
                    for _ in range(CALLERS):
                        nursery.start_soon(caller)
            else:
                for _ in range(n):
                    await stub.increment()
            out["cpu_us"] = (_cpu() - c0) / calls * 1e6
            out["loop_us"] = (time.thread_time() - m0) / calls * 1e6
            out["wall_us"] = (time.perf_counter() - t0) / calls * 1e6
            out["per_commit"] = calls / max(1, sum(s.commits for s in rt.statistics()) - commits0)

    trio.run(run)
    return out


def _spawn(checkout: Path, mode: str, n: int, base: Path, callgrind: bool) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(dir=base))
    try:
        cmd = [sys.executable, __file__, "--worker", str(checkout), mode, str(n), str(folder)]
        if callgrind:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/cg.out", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{mode} in {checkout}: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if callgrind:
            text = (folder / "cg.out").read_text()
            result["Ir"] = int(re.findall(r"^(?:totals|summary): (\d+)", text, re.M)[-1])
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", type=Path, help="other dohost checkouts to run beside this one")
    parser.add_argument("--n", type=int, default=3000, help="calls per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--disk", action="store_true", help="storage in /tmp instead of /dev/shm")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--callgrind", action="store_true", help="count instructions per call instead")
    parser.add_argument("--worker", nargs=4, metavar=("CHECKOUT", "MODE", "N", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        checkout, mode, n, folder = args.worker
        print(json.dumps(worker(checkout, mode, int(n), folder)))
        return
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            parser.error(f"unknown mode {m!r}; modes: {', '.join(MODES)}")
    checkouts = [("this", ROOT)] + [(str(c), c.resolve()) for c in args.checkouts]
    base = Path("/tmp" if args.disk or not os.path.isdir("/dev/shm") else "/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="bench_commit-", dir=base))
    try:
        if args.callgrind:
            _callgrind(modes, checkouts, args.n, base)
        else:
            _timed(modes, checkouts, args.n, args.repeats, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _timed(modes: list[str], checkouts: list[tuple[str, Path]], n: int, repeats: int, base: Path) -> None:
    print(f"CPU µs per call, best of {repeats} (storage in {base.parent}; {n:,} calls a run)")
    print("| mode | checkout | process CPU | event-loop thread | wall | writes per commit |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for mode in modes:
        best: dict[str, dict[str, Any]] = {}
        for _ in range(repeats):
            for label, path in checkouts:  # taking turns: drift hits every checkout alike
                r = _spawn(path, mode, n, base, False)
                if label not in best or r["cpu_us"] < best[label]["cpu_us"]:
                    best[label] = r
        for label, _path in checkouts:
            r = best[label]
            if r["cpu_us"] != r["cpu_us"]:  # NaN: the mode does not apply to this checkout
                print(f"| {mode} | {label} | n/a | | | |", flush=True)
                continue
            loop = f"{r['loop_us']:.1f}" if "loop_us" in r else ""
            wall = f"{r['wall_us']:.1f}" if "wall_us" in r else ""
            per = f"{r['per_commit']:.1f}" if "per_commit" in r else ""
            print(f"| {mode} | {label} | {r['cpu_us']:.1f} | {loop} | {wall} | {per} |", flush=True)


def _callgrind(modes: list[str], checkouts: list[tuple[str, Path]], n: int, base: Path) -> None:
    small = max(1, n // 5)
    print(f"user-space instructions per call (callgrind, all threads; runs of {n:,} minus runs of {small:,})")
    print("| mode | checkout | instructions per call |")
    print("| --- | --- | ---: |")
    for mode in modes:
        for label, path in checkouts:
            big = _spawn(path, mode, n, base, True)["Ir"]
            little = _spawn(path, mode, small, base, True)["Ir"]
            print(f"| {mode} | {label} | {(big - little) / (n - small):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
