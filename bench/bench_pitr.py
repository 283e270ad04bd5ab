"""Point-in-time history's costs outside the write path: park, unpark, close, archive size.

Run: ``python bench/bench_pitr.py [--before=CHECKOUT] [--repeats=N] [--objects=N]``.
Never asserts. Each side (this checkout, and ``--before``'s code in a
subprocess) measures the same scenarios on ``ObjectDatabase`` objects under a
``LockTable`` (``durability="normal"``, a fake clock), CPU time per object
(``time.process_time``), history on and off; sides take turns, best of
``--repeats``. Scenarios:

* ``park`` — park after a write, the side file existing;
* ``park_old`` — the same, the write older than ten minutes (a park that
  archives / writes its history out);
* ``cycle`` — unpark + one write + commit + park (a request to a parked object);
* ``park_new`` — park of a new object after its first write;
* ``close`` — the host's checkpoint + close after a write (an eviction);
* ``reopen`` — a point read of a parked object (the reopen, its schema read, one read);
* ``commit_grouped`` / ``commit_spaced`` — a one-row upsert and its commit, 3,000 in a
  row on one object (100-row table), 1 ms apart (grouped) and 2 s apart (an entry
  each): CPU per commit, archiving included; ``bytes_grouped_100`` / ``bytes_spaced``
  the history bytes those commits added;
* ``bytes_commit`` / ``bytes_grouped`` — history bytes per one-row upsert into
  a 1,000-row table: commits seconds apart (each its own entry), and commits
  10 ms apart (grouped per second).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _option(name: str, default: str | None = None) -> str | None:
    for arg in sys.argv[1:]:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000.0

    def __call__(self) -> float:
        return self.ms


def measure(root: Path, n: int, history: bool) -> dict[str, float]:
    """µs of CPU per object for each scenario, and history bytes per commit."""
    import apsw

    from persistence import LockTable, ObjectDatabase

    clock = Clock()
    locks = LockTable(root)
    retention = None if history else 0
    out: dict[str, float] = {}

    def open_(i: int, tag: str) -> Any:
        kw: dict[str, Any] = {"durability": "normal", "locks": locks, "clock": clock}
        if retention is not None:
            kw["pitr_retention_ms"] = retention
        return ObjectDatabase(root / f"{tag}{i}.sqlite", **kw)

    def write(db: Any, i: int) -> None:
        db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", i % 7, i)
        db.commit()

    # Objects with a table, a few rows and (history on) a side file on disk.
    dbs = []
    for i in range(n):
        db = open_(i, "o")
        db.sql.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v)")
        db.commit()
        write(db, i)
        if history:
            db.current_bookmark()
        db.close()
        dbs.append(open_(i, "o"))
    for db in dbs:
        write(db, 1)
        db.park()
    clock.ms += 5_000

    def timed(fn: Any) -> float:
        t0 = time.process_time()
        for i, db in enumerate(dbs):
            fn(i, db)
        return (time.process_time() - t0) / len(dbs) * 1e6

    for db in dbs:
        write(db, 2)
    out["park"] = timed(lambda i, db: db.park())
    clock.ms += 5_000
    for db in dbs:
        write(db, 3)
    clock.ms += 601_000  # older than either side's age for writing history out at a park
    out["park_old"] = timed(lambda i, db: db.park())
    clock.ms += 5_000

    def cycle(i: int, db: Any) -> None:
        write(db, i)
        db.park()

    out["cycle"] = timed(cycle)

    def reopen(i: int, db: Any) -> None:
        db.sql.exec("SELECT v FROM t WHERE k = ?", 1).one()

    for db in dbs:
        db.park()
    out["reopen"] = timed(reopen)
    for db in dbs:
        write(db, 4)
    out["close"] = timed(lambda i, db: (db.checkpoint(), db.close()))

    news = []
    for i in range(n):
        db = open_(i, "new")
        db.sql.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v)")
        db.commit()
        news.append(db)
    t0 = time.process_time()
    for db in news:
        db.park()
    out["park_new"] = (time.process_time() - t0) / n * 1e6
    for db in news:
        db.close()

    # One-row commits in a row on one object: CPU per commit (archiving included, amortized:
    # 3,000 commits span three WAL checkpoints) and history bytes per commit (what the
    # commits added, not the table's first load).
    for key, step in (("commit_grouped", 1.0), ("commit_spaced", 2_000.0)):
        db = open_(0, key)
        db.sql.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v)")
        for k in range(100):
            db.sql.exec("INSERT INTO t VALUES (?, 0)", k)
        db.commit()
        logged = db.history.sizes()["log_bytes"] if history else 0
        commits = 3000
        t0 = time.process_time()
        for c in range(commits):
            clock.ms += step
            db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", c % 100, c)
            db.commit()
        if history:
            logged = db.history.sizes()["log_bytes"] - logged  # archives what is left
        out[key] = (time.process_time() - t0) / commits * 1e6
        if history:
            out["bytes_grouped_100" if step < 1000 else "bytes_spaced"] = logged / commits
        db.close()

    if history:
        for key, step in (("bytes_commit", 2_000.0), ("bytes_grouped", 10.0)):
            db = open_(0, key)
            db.sql.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v REAL)")
            for k in range(1000):
                db.sql.exec("INSERT INTO t VALUES (?, ?)", f"k{k:04d}", float(k))
            db.commit()
            db.current_bookmark()
            commits = 500
            for c in range(commits):
                clock.ms += step
                db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v",
                            f"k{(c * 7919) % 1000:04d}", float(c))
                db.commit()
            path = db.path
            db.close()
            side = apsw.Connection(str(path.with_name(path.name + ".pitr")))
            logged = int(side.execute("SELECT coalesce(sum(length(changes)), 0) FROM log").fetchall()[0][0])
            side.close()
            out[key] = logged / commits
    return out


def worker(code: str) -> dict[str, Any]:
    """Both history settings measured with ``code``'s persistence package (a subprocess)."""
    n = int(_option("objects", "200") or 200)
    script = (
        f"import sys, json, pathlib; sys.path[:0] = [{code!r}, {str(HERE)!r}];"
        "import bench_pitr as b;"
        f"print(json.dumps({{h: b.measure(pathlib.Path(sys.argv[1]) / h, {n}, h == 'on') for h in ('on', 'off')}}))"
    )
    folder = Path(tempfile.mkdtemp(prefix="dohost-bench-pitr-"))
    try:
        for h in ("on", "off"):
            (folder / h).mkdir()
        out = subprocess.run([sys.executable, "-c", script, str(folder)], check=True, capture_output=True,
                             text=True, cwd=code)
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    sides = {"after": str(HERE.parent)}
    before = _option("before")
    if before:
        sides = {"before": str(Path(before).resolve()), **sides}
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(int(_option("repeats", "3") or 3)):
        for side, code in sides.items():
            got = worker(code)
            mine = best.setdefault(side, {})
            for h, figures in got.items():
                cell = mine.setdefault(h, {})
                for k, v in figures.items():
                    cell[k] = min(cell.get(k, float("inf")), v)
    labels = {
        "park": "park after a write (side file exists), µs CPU",
        "park_old": "park after a write older than ten minutes, µs CPU",
        "cycle": "unpark + one write + commit + park, µs CPU",
        "park_new": "park of a new object after its first write, µs CPU",
        "reopen": "a parked object's point read (reopen + read), µs CPU",
        "commit_grouped": "one-row commit, commits 1 ms apart, µs CPU",
        "commit_spaced": "one-row commit, commits 2 s apart (an entry each), µs CPU",
        "bytes_grouped_100": "history bytes per one-row commit, 1 ms apart (100-row table, no load)",
        "bytes_spaced": "history bytes per one-row commit, 2 s apart (100-row table, no load)",
        "close": "checkpoint + close after a write (eviction), µs CPU",
        "bytes_commit": "history bytes per one-row commit (commits 2 s apart)",
        "bytes_grouped": "history bytes per one-row commit (commits 10 ms apart)",
    }
    head = [f"{s} {h}" for s in sides for h in ("on", "off")]
    print("| what | " + " | ".join(head) + " |")
    print("| --- |" + " ---: |" * len(head))
    for k, label in labels.items():
        cells = [best[s][h].get(k) for s in sides for h in ("on", "off")]
        print(f"| {label} | " + " | ".join("" if c is None else f"{c:,.0f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
