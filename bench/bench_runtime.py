"""The runtime's costs, measured in one run: RPC, group commit, activation, memory, files.

Run: ``python bench/bench_runtime.py [--full]`` (a minute or two; longer on a
busy disk). Prints one markdown table; never asserts (DESIGN: benchmarks never
decide pass/fail).

What is measured, all in this process, on temporary directories:

a. **RPC round trip** — ``await stub.ping()`` on a warm object, sequentially,
   for a ``def`` method and for an ``async def`` one (µs per call).
b. **Group commit** — durable increments per second on ONE hot object from 64
   concurrent callers with ``durability="full"`` (fsync per commit), the
   DESIGN.md ``Counter``'s SQL. Baselines on the same disk: (i) raw apsw
   running the same SQL with one ``BEGIN … COMMIT`` per increment
   (``journal_mode=WAL``, ``synchronous=FULL``, a fresh file in the same
   directory); (ii) dohost's own ``group_commit=False`` (one commit per
   event); (iii) one caller awaiting each increment (every event necessarily
   gets its own commit). Each is the best of ``REPEATS`` interleaved runs of
   ``SECONDS``.
c. **Activation** — the first call to an evicted object (constructor re-runs,
   file reopened), averaged over many objects, against a warm call to the same
   objects; and the first call ever (object file created).
d. **Footprint** — memory per resident idle object over 2,000 objects touched
   once: RSS delta and SQLite's heap (``apsw.memory_used()``) per object, and
   the Python heap per object (``tracemalloc``, a separate run of 500); open
   file descriptors after touching the 2,000 with the default
   ``max_resident``, and after touching 2,000 with ``max_resident=500``; and
   what the default cap needs against this process's fd limit. ``--full``
   touches 10,000 objects in both fd runs, the second with
   ``max_resident=1000``. These runs use ``/dev/shm`` when it exists: memory
   and descriptors don't depend on the disk, and creating thousands of object
   files on a busy disk (a few fsyncs each) takes minutes.

A measurement that fails (the runtime raised) prints as ``failed: …`` in its
row instead of stopping the run.
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Literal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import apsw  # noqa: E402
import trio  # noqa: E402

from _table import print_table  # noqa: E402
from objects import DurableObject  # noqa: E402
from runtime import open_runtime  # noqa: E402

#: open_runtime's default cap on resident objects, for the projection row.
from runtime import default_max_resident

#: What open_runtime picks when max_resident is not given (it follows the fd limit).
DEFAULT_MAX_RESIDENT: int = default_max_resident()

RPC_CALLS = 5_000
CALLERS = 64
SECONDS = 1.5
REPEATS = 2
ACTIVATIONS = 300
MEMORY_OBJECTS = 2_000  # default run: memory and fds with the default max_resident
TRACED_OBJECTS = 500  # tracemalloc slows everything down; the mean per object is stable
CAPPED = (2_000, 500)  # default run: objects touched, max_resident
FULL_OBJECTS = 10_000  # --full: both fd runs touch this many objects
FULL_CAP = 1_000
QUIET = 3600.0  # idle_timeout for the footprint runs: nothing is evicted behind our back

INC_SQL = "INSERT INTO c VALUES ('n', ?) ON CONFLICT(k) DO UPDATE SET v = v + ?"
GET_SQL = "SELECT v FROM c WHERE k = 'n'"
SCHEMA = "CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)"


class Counter(DurableObject):
    """DESIGN.md's counter, plus trivial methods for the RPC timings."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec(SCHEMA)

    def ping(self) -> int:
        return 1

    async def aping(self) -> int:
        return 1

    def increment(self, by: int = 1) -> int:
        sql = self.ctx.storage.sql
        sql.exec(INC_SQL, by, by)
        return sql.exec(GET_SQL).one()["v"]  # type: ignore[no-any-return]


# --------------------------------------------------------------- helpers
def _failure(exc: BaseException) -> str:
    """The innermost error of a (possibly grouped) exception, one line."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}".replace("|", "/").replace("\n", " ")
    return "failed: " + (text if len(text) < 90 else text[:87] + "...")


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a broken measurement is a result, not a crash
        return _failure(exc)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _ratio(a: Any, b: Any) -> Any:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}×"
    return None


# ------------------------------------------------------------------ a. RPC
def bench_rpc(root: Path) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        async with open_runtime(bindings={"COUNTER": Counter}, data_dir=root / "rpc") as rt:
            stub = rt.env["COUNTER"].getByName("rpc")
            out = []
            for method in (stub.ping, stub.aping):
                for _ in range(500):
                    await method()
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    for _ in range(RPC_CALLS):
                        await method()
                    best = min(best, (time.perf_counter() - t0) / RPC_CALLS * 1e6)
                out.append(best)
            return out[0], out[1]

    return trio.run(run)


# --------------------------------------------------------- b. group commit
def hot_object(root: Path, *, durability: Literal["full", "normal"], group_commit: bool = True, callers: int = CALLERS) -> tuple[float, float]:
    """(increments per second, increments per commit) on one object."""

    async def run() -> tuple[float, float]:
        async with open_runtime(
            bindings={"COUNTER": Counter}, data_dir=root, durability=durability, group_commit=group_commit
        ) as rt:
            stub = rt.env["COUNTER"].getByName("hot")
            await stub.increment()
            commits0 = sum(s.commits for s in rt.statistics())
            count = 0
            deadline = time.perf_counter() + SECONDS

            async def caller() -> None:
                nonlocal count
                while time.perf_counter() < deadline:
                    await stub.increment()
                    count += 1

            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(callers):
                    nursery.start_soon(caller)
            elapsed = time.perf_counter() - t0
            commits = sum(s.commits for s in rt.statistics()) - commits0
            return count / elapsed, count / max(commits, 1)

    return trio.run(run)


def raw_apsw(path: Path) -> float:
    """Increments per second, one transaction (and fsync) per increment."""
    conn = apsw.Connection(str(path))
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SCHEMA)
        count = 0
        deadline = time.perf_counter() + SECONDS
        t0 = time.perf_counter()
        while time.perf_counter() < deadline:
            with conn:  # BEGIN ... COMMIT
                conn.execute(INC_SQL, (1, 1))
                conn.execute(GET_SQL).fetchall()
            count += 1
        return count / (time.perf_counter() - t0)
    finally:
        conn.close()


def bench_group_commit(root: Path) -> dict[str, Any]:
    best: dict[str, Any] = {}

    def keep(name: str, value: Any) -> None:
        old = best.get(name)
        if isinstance(value, str):
            best.setdefault(name, value)
        elif not isinstance(old, tuple) or value[0] > old[0]:
            best[name] = value

    for rep in range(REPEATS):  # interleaved, so drift hits every variant alike
        d = root / f"hot{rep}"
        d.mkdir()
        keep("group", _guard(lambda: hot_object(d / "group", durability="full")))
        keep("raw", _guard(lambda: (raw_apsw(d / "raw.sqlite"), 1.0)))
        keep("nogroup", _guard(lambda: hot_object(d / "nogroup", durability="full", group_commit=False)))
        keep("serial", _guard(lambda: hot_object(d / "serial", durability="full", callers=1)))
        keep("normal", _guard(lambda: hot_object(d / "normal", durability="normal")))
    return best


# ----------------------------------------------------------- c. activation
def bench_activation(root: Path) -> tuple[float, float, float]:
    """(first activation ever, re-activation after eviction, warm call), µs per call."""

    async def run() -> tuple[float, float, float]:
        async with open_runtime(bindings={"COUNTER": Counter}, data_dir=root / "act", idle_timeout=QUIET) as rt:
            stubs = [rt.env["COUNTER"].getByName(f"act-{i}") for i in range(ACTIVATIONS)]

            async def each() -> float:
                t0 = time.perf_counter()
                for stub in stubs:
                    await stub.ping()
                return (time.perf_counter() - t0) / len(stubs) * 1e6

            first = await each()
            reactivations = []
            for _ in range(2):
                await rt.evict_all()
                reactivations.append(await each())
            warm = min([await each() for _ in range(3)])
            return first, min(reactivations), warm

    return trio.run(run)


# ------------------------------------------------------------ d. footprint
def touch_objects(root: Path, n: int, *, max_resident: int | None = None, trace: bool = False) -> dict[str, Any]:
    """Touch ``n`` objects once each; what it cost in memory and open files."""

    async def run() -> dict[str, Any]:
        cap = DEFAULT_MAX_RESIDENT if max_resident is None else max_resident
        async with open_runtime(bindings={"COUNTER": Counter}, data_dir=root, idle_timeout=QUIET, max_resident=cap) as rt:
            await rt.env["COUNTER"].getByName("warm-up").ping()
            gc.collect()
            fds0, rss0, sqlite0 = _open_fds(), _rss_bytes(), apsw.memory_used()
            if trace:
                tracemalloc.start()
            peak_fds = fds0
            touched = 0
            error: BaseException | None = None
            try:
                for i in range(n):
                    await rt.env["COUNTER"].getByName(f"obj-{i}").ping()
                    touched += 1
                    if i % 100 == 99:
                        peak_fds = max(peak_fds, _open_fds())
            except Exception as exc:
                error = exc
            gc.collect()
            out: dict[str, Any] = {
                "touched": touched,
                "error": error,
                "resident": sum(1 for s in rt.statistics() if s.state in ("active", "idle")),
                "fds": _open_fds() - fds0,
                "peak_fds": max(peak_fds, _open_fds()) - fds0,
                "rss": (_rss_bytes() - rss0) / max(touched, 1),
                "sqlite": (apsw.memory_used() - sqlite0) / max(touched, 1),
            }
            if trace:
                out["python"] = tracemalloc.get_traced_memory()[0] / max(touched, 1)
                tracemalloc.stop()
            return out

    return trio.run(run)


# ------------------------------------------------------------------- main
def main(full: bool = False) -> list[list[Any]]:
    """Run everything and print the table; ``full`` touches 10,000 objects for the fd rows."""
    tmp = Path(tempfile.mkdtemp(prefix="dohost-bench-runtime-"))
    soft_fds, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(
        f"bench_runtime: Python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"apsw {apsw.apsw_version()} / SQLite {apsw.sqlite_lib_version()}, {os.cpu_count()} CPUs, "
        f"fd limit {soft_fds:,}; data in {tmp}",
        flush=True,
    )
    rows: list[list[Any]] = []
    t_start = time.perf_counter()
    sections: list[tuple[str, Callable[[], list[list[Any]]]]] = [
        ("a. RPC", lambda: _rpc_rows(tmp)),
        ("b. group commit", lambda: _group_commit_rows(tmp)),
        ("c. activation", lambda: _activation_rows(tmp)),
        ("d. footprint", lambda: _footprint_rows(tmp, full, soft_fds)),
    ]
    try:
        for title, section in sections:
            t0 = time.perf_counter()
            rows += section()
            print(f"  {title}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(
        f"dohost runtime ({time.perf_counter() - t_start:.0f} s)",
        ["measure", "dohost", "compared with", "ratio"],
        rows,
    )
    return rows


def _rpc_rows(tmp: Path) -> list[list[Any]]:
    rpc = _guard(lambda: bench_rpc(tmp))
    sync_us, async_us = rpc if isinstance(rpc, tuple) else (rpc, rpc)
    return [
        ["a. RPC round trip, `def` method (µs)", sync_us, None, None],
        ["a. RPC round trip, `async def` method (µs)", async_us, None, None],
    ]


def _group_commit_rows(tmp: Path) -> list[list[Any]]:
    hot = bench_group_commit(tmp)

    def rate(name: str) -> Any:
        v = hot[name]
        return v[0] if isinstance(v, tuple) else v

    def per_commit(name: str) -> Any:
        v = hot[name]
        return v[1] if isinstance(v, tuple) else None

    group = rate("group")
    return [
        ["b. durable increments/s, 1 hot object, 64 callers, fsync on", group, None, None],
        ["b. … vs raw apsw, one commit per increment (same SQL, same disk)", group, rate("raw"), _ratio(group, rate("raw"))],
        ["b. … vs dohost `group_commit=False` (one commit per event)", group, rate("nogroup"), _ratio(group, rate("nogroup"))],
        ["b. … vs dohost, 1 caller (each event its own commit)", group, rate("serial"), _ratio(group, rate("serial"))],
        ["b. increments per commit, 64 callers, fsync on", per_commit("group"), None, None],
        ['b. increments/s, 64 callers, `durability="normal"` (no fsync)', rate("normal"), None, None],
        ['b. increments per commit, 64 callers, `durability="normal"`', per_commit("normal"), None, None],
    ]


def _activation_rows(tmp: Path) -> list[list[Any]]:
    act = _guard(lambda: bench_activation(tmp))
    if not isinstance(act, tuple):
        return [["c. activation of an evicted object (µs)", act, None, None]]
    first, again, warm = act
    return [
        [f"c. first call to an evicted object (µs, mean of {ACTIVATIONS}) vs a warm call", again, warm, _ratio(again, warm)],
        ["c. first call ever, object file created (µs) vs a warm call", first, warm, _ratio(first, warm)],
    ]


def _memory_disk() -> str | None:
    """A RAM-backed directory if there is one (see the module docstring, d.)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _footprint_rows(tmp: Path, full: bool, soft_fds: int) -> list[list[Any]]:
    ram = _memory_disk()
    if ram is not None:
        tmp = Path(tempfile.mkdtemp(prefix="dohost-bench-runtime-", dir=ram))
    try:
        return _footprint_rows_in(tmp, full, soft_fds)
    finally:
        if ram is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _footprint_rows_in(tmp: Path, full: bool, soft_fds: int) -> list[list[Any]]:
    n = FULL_OBJECTS if full else MEMORY_OBJECTS
    n_capped, cap = (FULL_OBJECTS, FULL_CAP) if full else CAPPED
    plain = _guard(lambda: touch_objects(tmp / "plain", n))
    shutil.rmtree(tmp / "plain", ignore_errors=True)
    traced = _guard(lambda: touch_objects(tmp / "traced", TRACED_OBJECTS, trace=True))
    shutil.rmtree(tmp / "traced", ignore_errors=True)
    capped = _guard(lambda: touch_objects(tmp / "capped", n_capped, max_resident=cap))
    shutil.rmtree(tmp / "capped", ignore_errors=True)

    rows: list[list[Any]] = []
    if isinstance(plain, dict):
        touched = f"{plain['touched']:,}"
        rows.append([f"d. RSS per resident idle object, {touched} touched once (KiB)", plain["rss"] / 1024, None, None])
        rows.append(["d. … SQLite heap per object, apsw.memory_used() (KiB)", plain["sqlite"] / 1024, None, None])
    else:
        rows.append(["d. memory per resident idle object", plain, None, None])
    python_heap = traced["python"] / 1024 if isinstance(traced, dict) else traced
    rows.append([f"d. … Python heap per object, tracemalloc, {TRACED_OBJECTS:,} objects (KiB)", python_heap, None, None])

    per_object: float | None = None
    for label, n_touched, r in (("default max_resident", n, plain), (f"max_resident={cap:,}", n_capped, capped)):
        name = f"d. open fds after touching {n_touched:,} objects, {label}"
        if not isinstance(r, dict):
            rows.append([name, r, None, None])
            continue
        value: Any = r["fds"]
        if r["error"] is not None:
            value = f"{_failure(r['error'])} at object #{r['touched'] + 1:,}, fds +{r['peak_fds']:,}"
        resident = max(r["resident"], 1)
        per_object = per_object or r["peak_fds"] / resident
        rows.append([name, value, f"{r['resident']:,} resident", f"{r['peak_fds'] / resident:.1f} fds/object"])
    if per_object is not None:
        need = round(per_object * DEFAULT_MAX_RESIDENT)
        rows.append(
            [f"d. fds the default max_resident={DEFAULT_MAX_RESIDENT:,} needs vs the fd limit", need, soft_fds, _ratio(need, soft_fds)]
        )
    return rows


if __name__ == "__main__":
    main(full="--full" in sys.argv[1:])
