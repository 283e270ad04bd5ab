"""Workers KV, D1 and R2 calls vs raw apsw doing the same SQL on the same file, measured in one run.

Run: ``python bench/bench_bindings.py [iterations] [repeats]`` (defaults 300 and 15).

Each binding call is awaited in a trio task, as a Worker awaits it; the
baseline is a plain apsw connection to the very same file (same journal and
``synchronous`` settings: durability ``"normal"``, as ``dohost dev`` uses)
running the statement the binding runs. Writes autocommit on both sides (a
binding write is committed before the call returns). Times are
best-of-``repeats`` in µs per operation, each repeat running both sides back
to back; the ratio is what matters. The machine is shared while this is
written, so absolute figures are noisy.

What the binding adds: the trio checkpoint and output-gate check every call
makes, argument checks (key length, options), building the JS-shaped result
(``JsObject``, ``R2ObjectBody``), and for D1 the authorizer and cursor of an
object's SQL storage plus a transaction per statement.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import trio  # noqa: E402

from persistence import open_connection  # noqa: E402
from persistence._engine import _SYNCHRONOUS  # noqa: E402,F401  (same settings as the store)
from wrangler_compat.bindings import D1Database, KVNamespace, R2Bucket  # noqa: E402
from wrangler_compat.bindings._common import store_path  # noqa: E402
from wrangler_compat.bindings._store import StoreHost  # noqa: E402


async def _time_async(fn: Callable[[int], Awaitable[Any]], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return (time.perf_counter() - start) / n * 1e6


def _time_sync(fn: Callable[[int], Any], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


async def run(iterations: int, repeats: int) -> list[list[Any]]:
    with tempfile.TemporaryDirectory(prefix="dohost-bench-") as tmp:
        host = StoreHost(Path(tmp))
        host.attach(durability="normal", now_ms=lambda: time.time() * 1000.0)
        kv, db, bucket = KVNamespace("KV", "kv", host), D1Database("DB", "db", host), R2Bucket("B", "b", host)
        value, blob = "v" * 100, os.urandom(4096)
        for i in range(iterations):
            await kv.put(f"key{i}", value)
            await bucket.put(f"obj{i}", blob)
        await db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
        for i in range(iterations):
            await db.prepare("INSERT INTO t VALUES (?, ?)").bind(f"key{i}", value).run()
        raw_kv = open_connection(store_path(Path(tmp), "kv", "kv"), durability="normal")
        raw_db = open_connection(store_path(Path(tmp), "d1", "db"), durability="normal")
        raw_r2 = open_connection(store_path(Path(tmp), "r2", "b"), durability="normal")
        now = int(time.time())

        cases: list[tuple[str, Callable[[int], Awaitable[Any]], Callable[[int], Any]]] = [
            ("KV get (100 B hit)", lambda i: kv.get(f"key{i}"),
             lambda i: raw_kv.execute("SELECT value, metadata FROM kv_entries WHERE key = ? AND"
                                      " (expiration IS NULL OR expiration > ?)", (f"key{i}", now)).fetchall()),
            ("KV put (100 B, committed)", lambda i: kv.put(f"key{i}", value),
             lambda i: raw_kv.execute("INSERT INTO kv_entries(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                                      " SET value = excluded.value", (f"key{i}", value.encode()))),
            ("D1 first() by key", lambda i: db.prepare("SELECT v FROM t WHERE k = ?").bind(f"key{i}").first(),
             lambda i: raw_db.execute("SELECT v FROM t WHERE k = ?", (f"key{i}",)).fetchall()),
            ("D1 run() update", lambda i: db.prepare("UPDATE t SET v = ? WHERE k = ?").bind("w", f"key{i}").run(),
             lambda i: raw_db.execute("UPDATE t SET v = ? WHERE k = ?", ("w", f"key{i}"))),
            ("R2 get + arrayBuffer (4 KiB)", lambda i: _r2_read(bucket, f"obj{i}"),
             lambda i: raw_r2.execute("SELECT key, version, size, etag, uploaded, http_metadata, custom_metadata,"
                                      " checksums, body FROM r2_objects WHERE key = ?", (f"obj{i}",)).fetchall()),
        ]
        rows = []
        for name, binding_call, raw_call in cases:
            best_b = best_r = float("inf")
            for _ in range(repeats):
                best_b = min(best_b, await _time_async(binding_call, iterations))
                best_r = min(best_r, _time_sync(raw_call, iterations))
            rows.append([name, best_b, best_r, best_b / best_r])
        for conn in (raw_kv, raw_db, raw_r2):
            conn.close()
        host.close()
        return rows


async def _r2_read(bucket: R2Bucket, key: str) -> bytes:
    obj = await bucket.get(key)
    assert obj is not None
    return await obj.arrayBuffer()  # type: ignore[attr-defined, no-any-return]


def main() -> None:
    from _table import print_table

    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    rows = trio.run(run, iterations, repeats)
    print_table(
        f"Bindings vs raw apsw on the same file ({iterations} ops, best of {repeats})",
        ["operation", "binding µs", "raw apsw µs", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
