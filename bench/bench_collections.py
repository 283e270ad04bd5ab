"""Persisted collections: write and query costs, measured in one run.

    python bench/bench_collections.py [--rows 100000] [--repeat 5]

Prints, per driver (plain apsw; the DO driver over the engine's
``ObjectDatabase`` when present, else over the test fake):

* ``apply_committed_tx`` of one transaction with 1,000 inserts, and of 1,000
  updates (read, shallow merge, write) — for the DO driver including the
  commit the host would do after the event;
* ``load_subset`` with ``eq(ref("category"), ...)`` over ``--rows`` rows (1% of
  them match) as a full scan (WHERE pushed down, no index), through an
  expression index from ``ensure_index``, and all in memory
  (``pushdown=False``), with the scan/index ratio;
* a 100-row page ordered by an indexed expression, and a one-row lookup,
  each as a scan and through an index.

Times are the median of ``--repeat`` runs. Benchmarks measure; they never
decide pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from persistence.collections import (  # noqa: E402
    ApswDriver, CollectionAdapter, CommittedTx, DurableObjectDriver, IndexSpec, Mutation, SQLiteDriver, asc, eq,
    ref,
)

try:
    from persistence._engine import ObjectDatabase
except ImportError:  # engine not in this checkout: use the test fake
    ObjectDatabase = None

C = "bench"


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def open_driver(kind: str, path: Path) -> tuple[SQLiteDriver, Callable[[], None], Callable[[], None]]:
    """(driver, commit-after-event, close)."""
    if kind == "apsw":
        driver = ApswDriver.open(str(path))
        return driver, lambda: None, driver.close
    if ObjectDatabase is not None:
        db = ObjectDatabase(str(path))
        return DurableObjectDriver(db), lambda: db.commit(), db.close
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/persistence/collections"))
    from collections_fake_do import FakeStorage

    storage = FakeStorage(str(path))
    return DurableObjectDriver(storage), lambda: None, storage.close


def bench_driver(kind: str, rows: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        driver, commit, close = open_driver(kind, Path(tmp) / "object.sqlite")
        adapter = CollectionAdapter(driver, applied_tx_prune_max_rows=100)
        seq = iter(range(1, 10**9))

        def apply(mutations: list[Mutation]) -> None:
            n = next(seq)
            adapter.apply_committed_tx(C, CommittedTx(tx_id=f"t{n}", term=1, seq=n, mutations=mutations))
            commit()

        def insert_1000() -> None:
            base = next(seq) * 1_000_000
            apply([Mutation.insert(base + i, {"title": f"todo {i}", "done": i % 2 == 0, "n": i})
                   for i in range(1_000)])

        out["apply 1,000 inserts"] = median_ms(insert_1000, repeat)
        apply([Mutation.insert(f"u{i}", {"title": "x", "n": i}) for i in range(1_000)])
        out["apply 1,000 updates"] = median_ms(
            lambda: apply([Mutation.update(f"u{i}", {"done": True}) for i in range(1_000)]), repeat)

        big = "rows"
        for start in range(0, rows, 10_000):
            n = next(seq)
            adapter.apply_committed_tx(big, CommittedTx(tx_id=f"b{n}", term=1, seq=n, mutations=[
                Mutation.insert(i, {"category": f"c{i % 100}", "rank": (i * 7919) % rows, "title": f"row {i}"})
                for i in range(start, min(start + 10_000, rows))]))
            commit()
        where = eq(ref("category"), "c42")
        page = dict(order_by=[asc(ref("rank"))], limit=100)
        memory = CollectionAdapter(driver, pushdown=False)
        expected = len(adapter.load_subset(big, where=where))
        assert expected == len(memory.load_subset(big, where=where)) == rows // 100
        out["load_subset eq, full scan"] = median_ms(lambda: adapter.load_subset(big, where=where), repeat)
        out["load_subset eq, all in memory"] = median_ms(lambda: memory.load_subset(big, where=where), repeat)
        out["page of 100 by rank, scan"] = median_ms(lambda: adapter.load_subset(big, **page), repeat)
        one = eq(ref("title"), f"row {rows // 2}")
        out["lookup 1 row by title, scan"] = median_ms(lambda: adapter.load_subset(big, where=one), repeat)
        adapter.ensure_index(big, "by-category", IndexSpec(expressions=(ref("category"),)))
        adapter.ensure_index(big, "by-rank", IndexSpec(expressions=(ref("rank"),)))
        adapter.ensure_index(big, "by-title", IndexSpec(expressions=(ref("title"),)))
        commit()
        assert len(adapter.load_subset(big, where=where)) == expected
        out["load_subset eq, index"] = median_ms(lambda: adapter.load_subset(big, where=where), repeat)
        out["page of 100 by rank, index"] = median_ms(lambda: adapter.load_subset(big, **page), repeat)
        out["lookup 1 row by title, index"] = median_ms(lambda: adapter.load_subset(big, where=one), repeat)
        adapter.close()
        memory.close()
        commit()
        close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kinds = ["apsw", "do" if ObjectDatabase is not None else "do-fake"]
    results = {kind: bench_driver(kind, args.rows, args.repeat) for kind in kinds}
    names = list(results[kinds[0]])
    width = max(map(len, names)) + 2
    print(f"persisted collections, {args.rows:,} rows, median of {args.repeat} (ms)")
    print("operation".ljust(width) + "".join(k.rjust(12) for k in kinds))
    for name in names:
        print(name.ljust(width) + "".join(f"{results[k][name]:12.2f}" for k in kinds))
    for label, scan, index in [("eq 1%: scan / index", "load_subset eq, full scan", "load_subset eq, index"),
                               ("page: scan / index", "page of 100 by rank, scan", "page of 100 by rank, index"),
                               ("lookup: scan / index", "lookup 1 row by title, scan", "lookup 1 row by title, index")]:
        print(label.ljust(width) + "".join(f"{results[k][scan] / results[k][index]:11.1f}x" for k in kinds))


if __name__ == "__main__":
    main()
