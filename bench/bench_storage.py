"""Storage calls vs raw apsw doing the same SQL, measured in one run.

Run: ``python bench/bench_storage.py [iterations] [repeats]`` (defaults 500 and 60:
many short interleaved batches, so the best batch of each side is one the machine's
other work did not disturb). ``--before=CHECKOUT`` runs this checkout's
``persistence`` and CHECKOUT's in turns, three times each in processes of their
own, and prints both (best of the three).

What is compared, per operation, on ONE object file inside ONE open
transaction (as an object's synchronous run is — the implicit transaction is
open after the first write and commits when the event ends):

=========  ====================================================  ===================================
op         dohost                                                raw apsw (same connection, same txn)
=========  ====================================================  ===================================
sql read   ``sql.exec("SELECT v FROM t WHERE k = ?", k).one()``  ``conn.execute(same, (k,)).fetchall()``
           (and ``for row in sql.exec(...)``)
sql write  ``sql.exec("INSERT ... ON CONFLICT ... UPDATE", ...)`` ``conn.execute(same, ...).fetchall()``
kv get     ``kv.get(k)``                                         ``SELECT value FROM _cf_KV WHERE key=?``
kv put     ``kv.put(k, v)``                                      ``INSERT INTO _cf_KV ... ON CONFLICT``
                                                                 with the value already encoded
=========  ====================================================  ===================================

Both sides use the same apsw connection (so the same page cache, statement
cache and transaction); the raw side runs with dohost's authorizer bypass on so
it may touch ``_cf_KV``. The extra work dohost does and raw apsw does not:
building the row dict (``Row``), converting numbers the way Pyodide does,
Cloudflare binding conversion (``int`` -> double), KV value encoding/decoding
(msgpack), key checks, and the cursor object. Times are best-of-``repeats``
(each repeat runs dohost and raw back to back, so drift affects both), in µs
per operation. Ratios are what matters; absolute numbers depend on the machine.

Where the rest of a point read goes (measured on the 2-core CI box, raw apsw
≈ 1.85 µs of which ``conn.execute`` is ≈ 1.4 µs): ``sql.exec`` adds ≈ 0.6 µs —
a Python call with ``*bindings``, the statement-split cache lookup, the
Cloudflare binding check, the column-name cache lookup, two ``total_changes()``
calls for ``rowsWritten`` on writes, and building the cursor object; ``one()``
adds ≈ 0.4 µs over raw's fetch — a Python method, the Pyodide number check and
the ``Row`` dict. Each is one or two hundred nanoseconds of interpreter work
that raw apsw does in C or not at all; what remains is the price of returning
Cloudflare's cursor and dict rows from Python. Reads skip the change counting
(SQLite reports the statement read-only the first time it runs).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# --root=CHECKOUT: time another checkout's persistence (what --before runs).
_ROOTS = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--root=")]
if _ROOTS:
    ROOT = os.path.abspath(_ROOTS[0])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from persistence import ObjectDatabase  # noqa: E402
from persistence._codec import encode_kv_value  # noqa: E402

READ_SQL = "SELECT v FROM t WHERE k = ?"
WRITE_SQL = "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
KV_GET_SQL = "SELECT value FROM _cf_KV WHERE key = ?"
KV_PUT_SQL = (
    "INSERT INTO _cf_KV (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value"
)
KEYS = 1000


def _time(fn: Callable[[int], None], n: int) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn(n)
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        gc.enable()


def main(n: int = 500, repeats: int = 60) -> list[tuple[str, float, float]]:
    tmp = tempfile.mkdtemp(prefix="dohost-bench-")
    db = ObjectDatabase(os.path.join(tmp, "bench.sqlite"), durability="normal")
    sql, kv, conn, auth = db.sql, db.kv, db._conn, db._auth
    keys = [f"key-{i:05d}" for i in range(KEYS)]
    sql.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    for i, k in enumerate(keys):
        sql.exec(WRITE_SQL, k, f"value-{i}")
        kv.put(k, f"value-{i}")
    db.commit()
    kv.put("warm", 1)  # open the implicit transaction, as a running event has it open
    assert db.in_transaction

    value = "a small value"
    blob = encode_kv_value(value)

    def d_read(n: int) -> None:
        ex = sql.exec
        for i in range(n):
            ex(READ_SQL, keys[i % KEYS]).one()

    def r_read(n: int) -> None:
        ex = conn.execute
        for i in range(n):
            ex(READ_SQL, (keys[i % KEYS],)).fetchall()

    def d_iter(n: int) -> None:
        ex = sql.exec
        for i in range(n):
            for _row in ex(READ_SQL, keys[i % KEYS]):
                pass

    def d_write(n: int) -> None:
        ex = sql.exec
        for i in range(n):
            ex(WRITE_SQL, keys[i % KEYS], value)

    def r_write(n: int) -> None:
        ex = conn.execute
        for i in range(n):
            ex(WRITE_SQL, (keys[i % KEYS], value)).fetchall()

    def d_get(n: int) -> None:
        get = kv.get
        for i in range(n):
            get(keys[i % KEYS])

    def r_get(n: int) -> None:
        ex = conn.execute
        for i in range(n):
            ex(KV_GET_SQL, (keys[i % KEYS],)).fetchall()

    def d_put(n: int) -> None:
        put = kv.put
        for i in range(n):
            put(keys[i % KEYS], value)

    def r_put(n: int) -> None:
        ex = conn.execute
        for i in range(n):
            ex(KV_PUT_SQL, (keys[i % KEYS], blob)).fetchall()

    ops = [
        ("sql.exec point read .one()", d_read, r_read),
        ("sql.exec point read, iterate", d_iter, r_read),
        ("sql.exec point write (upsert)", d_write, r_write),
        ("kv.get", d_get, r_get),
        ("kv.put", d_put, r_put),
    ]
    results = []
    auth.internal = True  # let the raw side prepare statements on _cf_KV
    try:
        for _, d, r in ops:  # warm both statement caches
            auth.internal = False
            d(200)
            auth.internal = True
            r(200)
        for name, d, r in ops:
            best_d = best_r = float("inf")
            for _ in range(repeats):
                auth.internal = False
                best_d = min(best_d, _time(d, n))
                auth.internal = True
                best_r = min(best_r, _time(r, n))
            results.append((name, best_d, best_r))
    finally:
        auth.internal = False
    db.commit()
    db.close()

    width = max(len(name) for name, _, _ in results)
    print(f"best of {repeats} batches of {n} iterations, one open transaction, apsw {_apsw_version()}")
    print(f"{'op':<{width}}  {'dohost µs/op':>12}  {'apsw µs/op':>10}  {'ratio':>6}")
    for name, d, r in results:
        print(f"{name:<{width}}  {d:>12.2f}  {r:>10.2f}  {d / r:>5.2f}x")
    return results


def _apsw_version() -> str:
    import apsw

    return f"{apsw.apsw_version()} / SQLite {apsw.sqlite_lib_version()}"


def side_by_side(before: str, args: list[str], rounds: int = 3) -> None:
    """``--before=CHECKOUT``: this checkout and CHECKOUT in turns, each in a process of its own."""
    import re
    import subprocess

    best: dict[str, dict[str, tuple[float, float]]] = {"before": {}, "after": {}}
    for _ in range(rounds):
        for side, root in (("before", before), ("after", ROOT)):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), f"--root={root}", *args],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                m = re.match(r"(.+?)\s{2,}([0-9.]+)\s+([0-9.]+)\s+[0-9.]+x$", line)
                if m:
                    d, r = float(m.group(2)), float(m.group(3))
                    old = best[side].get(m.group(1), (float("inf"), float("inf")))
                    best[side][m.group(1)] = (min(old[0], d), min(old[1], r))
    print(f"best of {rounds} runs each, taking turns; before = {before}")
    print("| op | before: dohost / raw = ratio | after: dohost / raw = ratio |")
    print("| --- | ---: | ---: |")
    for op, (d, r) in best["after"].items():
        bd, br = best["before"].get(op, (float("nan"), float("nan")))
        print(f"| {op} | {bd:.2f} / {br:.2f} = {bd / br:.2f}× | {d:.2f} / {r:.2f} = {d / r:.2f}× |")


if __name__ == "__main__":
    _before = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--before=")]
    _args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if _before:
        side_by_side(_before[0], _args)
    else:
        main(*[int(a) for a in _args[:2]])
