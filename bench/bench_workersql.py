"""WorkerSQL over HTTP, and what point-in-time history costs a write, measured in one run.

Run: ``python bench/bench_workersql.py [seconds]`` (default 5 s per HTTP load).
Prints two markdown tables; never asserts.

a. **HTTP** — ``dohost serve`` (the console script, fsync on commit) runs
   ``examples/workersql`` on a loopback port; ``CONNECTIONS`` keep-alive httpx
   clients send, for ``seconds`` each: point selects (``SELECT balance FROM
   accounts WHERE id = ?``) and single-row updates (``UPDATE accounts SET
   balance = balance + 1 WHERE id = ?``), each a ``POST /query`` with a JWT,
   over 1,000 rows of one tenant. Requests per second, p50 and p99 latency.
   The client shares the 2-core machine with the server (and with whatever
   else runs on it), so absolute figures are pessimistic and noisy.
b. **PITR write overhead** — the same live object (``ctx.storage`` inside an
   ``open_runtime``, ``durability="normal"``) with history kept (the default,
   30 days) against ``pitr_retention_ms=0``, side by side, best of
   ``ROUNDS`` interleaved rounds: (i) one single-row upsert per RPC (one
   commit each), (ii) the storage bench's shape, 500 upserts per event, (iii)
   one ``kv.put`` per RPC. Ratio = with / without.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import trio  # noqa: E402

from _table import print_table  # noqa: E402
from objects import DurableObject  # noqa: E402
from runtime import open_runtime  # noqa: E402

EXAMPLE = ROOT / "examples" / "workersql"
CONNECTIONS = 8
ROWS = 1000
ROUNDS = 12
SECRET = "dev-only-secret-change-me-in-production-0123456789"


# --- a. HTTP ---------------------------------------------------------------------------
def _token(tenant: str) -> str:
    import jwt

    return jwt.encode({"tenant_id": tenant}, SECRET, algorithm="HS256")


async def _start_server(data_dir: str) -> tuple[trio.Process, str]:
    script = Path(sys.executable).parent / "dohost"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    argv = head + ["serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--config", str(EXAMPLE),
                   "--var", "RATE_LIMIT_PER_MINUTE:100000000"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOHOST_")}
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    buffer = b""
    with trio.fail_after(60):
        while True:
            chunk = await proc.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"dohost serve exited: {buffer.decode(errors='replace')}")
            buffer += chunk
            m = re.search(rb"Ready on (http://[^\s\"]+)", buffer)
            if m:
                return proc, m[1].decode()


async def _load(url: str, sql: str, seconds: float) -> dict[str, float]:
    import httpx

    headers = {"authorization": f"Bearer {_token('bench')}", "content-type": "application/json"}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            i = c
            while time.perf_counter() < deadline:
                body = json.dumps({"sql": sql, "params": [i % ROWS]})
                started = time.perf_counter()
                response = await http.post("/query", content=body)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - started)
                i += CONNECTIONS

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for c in range(CONNECTIONS):
            nursery.start_soon(client, c)
    elapsed = time.perf_counter() - t0
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0  # noqa: E731
    return {"rps": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99)}


async def http_bench(seconds: float) -> list[list[Any]]:
    import httpx

    with tempfile.TemporaryDirectory(prefix="dohost-bench-wsql-") as data_dir:
        proc, url = await _start_server(data_dir)
        try:
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    assert proc.stdout is not None
                    async for _ in proc.stdout:
                        pass

                nursery.start_soon(drain)
                headers = {"authorization": f"Bearer {_token('bench')}"}
                async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
                    await http.post("/query", json={"sql": "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)"})
                    for start in range(0, ROWS, 500):
                        ops = [{"sql": "INSERT INTO accounts VALUES (?, 0)", "params": [i]} for i in range(start, start + 500)]
                        await http.post("/sql/batch", json={"batch": ops})
                rows = []
                for label, sql in (
                    ("point select", "SELECT balance FROM accounts WHERE id = ?"),
                    ("single-row update", "UPDATE accounts SET balance = balance + 1 WHERE id = ?"),
                ):
                    r = await _load(url, sql, seconds)
                    rows.append([label, r["rps"], r["p50"], r["p99"]])
                nursery.cancel_scope.cancel()
        finally:
            proc.kill()
            await proc.wait()
    return rows


# --- b. PITR overhead ------------------------------------------------------------------
UPSERT = "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"


class Writer(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")

    def one(self, k: int) -> None:
        self.ctx.storage.sql.exec(UPSERT, k, "x" * 40)

    def many(self, k: int, n: int) -> None:
        sql = self.ctx.storage.sql
        for i in range(n):
            sql.exec(UPSERT, (k + i) % 1000, "y" * 40)

    def put(self, k: int) -> None:
        self.ctx.storage.kv.put(f"k{k % 1000}", k)


async def pitr_bench() -> list[list[Any]]:
    async with open_runtime(bindings={"W": Writer}, pitr_retention_ms=0) as off, open_runtime(bindings={"W": Writer}) as on:
        stubs = {False: off.env.W.getByName("a"), True: on.env.W.getByName("a")}
        for stub in stubs.values():
            await stub.one(0)
        workloads = [
            ("1-row upsert per RPC (µs/commit)", 300, lambda s, i: s.one(i % 1000)),
            ("500 upserts per event (µs/event)", 4, lambda s, i: s.many(i * 500, 500)),
            ("kv.put per RPC (µs/commit)", 300, lambda s, i: s.put(i)),
        ]
        rows = []
        for label, n, call in workloads:
            best = {False: float("inf"), True: float("inf")}
            for _ in range(ROUNDS):
                for kept, stub in stubs.items():
                    t0 = time.perf_counter()
                    for i in range(n):
                        await call(stub, i)
                    best[kept] = min(best[kept], (time.perf_counter() - t0) / n * 1e6)
            rows.append([label, best[False], best[True], best[True] / best[False]])
    return rows


def main(seconds: float = 5.0) -> None:
    if len(sys.argv) > 1:
        seconds = float(sys.argv[1])
    pitr = trio.run(pitr_bench)
    print_table(
        "PITR write overhead through a live object (best of interleaved rounds; shared machine: noisy)",
        ["workload", "history off", "history kept (30 d)", "ratio"],
        pitr,
    )
    http = trio.run(http_bench, seconds)
    print_table(
        f"WorkerSQL over HTTP: dohost serve, {CONNECTIONS} connections, {seconds:g} s each (client on the same 2 cores)",
        ["request", "req/s", "p50 ms", "p99 ms"],
        http,
    )


if __name__ == "__main__":
    main()
