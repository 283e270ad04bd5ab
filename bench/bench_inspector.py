"""What looking inside costs: the event ring on the RPC path, and the inspector's reads.

* RPC calls/s through one live object with the per-namespace event ring
  (``runtime.Observer``'s "recent events") vs the same runtime with a no-op
  ring, measured in the same run, rounds interleaved, best of each.
* One object's page data read through ``runtime.Observer`` (tables, first
  page of rows, KV entries): from a live idle object (its own connection)
  and from an evicted one (a read-only snapshot of its file); and the object
  list over N evicted objects (what the list page polls every second).

The machine may be shared: figures are noisy, ratios within one run are what count.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from _table import print_table
from objects import DurableObject
from persistence import inspect_file
from runtime import Observer, open_runtime


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

    def increment(self) -> int:
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])

    def fill(self, n: int) -> None:
        for i in range(n):
            self.ctx.storage.sql.exec("INSERT OR REPLACE INTO c VALUES (?, ?)", f"k{i}", i)
            self.ctx.storage.kv.put(f"key{i}", {"i": i, "tags": ["a", "b"]})


class _NoLog:
    def started(self, act: Any, event: Any) -> None:
        pass

    def finished(self, act: Any, event: Any, exc: Any) -> None:
        pass


async def _rpc_rate(rt: Any, calls: int) -> float:
    stub = rt.env.C.getByName("hot")
    started = time.perf_counter()
    for _ in range(calls):
        await stub.increment()
    return calls / (time.perf_counter() - started)


async def _read_us(obs: Observer, oid: Any, rounds: int) -> float:
    def look(conn: Any) -> Any:
        return inspect_file.user_tables(conn), inspect_file.table_page(conn, "c", limit=25), inspect_file.kv_entries(conn)

    started = time.perf_counter()
    for _ in range(rounds):
        await obs.read("C", oid, look)
    return (time.perf_counter() - started) / rounds * 1e6


async def run() -> None:
    with tempfile.TemporaryDirectory(prefix="dohost-bench-inspector-") as tmp:
        async with open_runtime(bindings={"C": Counter}, data_dir=Path(tmp), durability="normal") as rt:
            real_log = rt.event_log
            rates: dict[str, list[float]] = {"event ring on": [], "no-op ring": []}
            await _rpc_rate(rt, 500)  # warm up
            for _ in range(5):
                rt.event_log = real_log
                rates["event ring on"].append(await _rpc_rate(rt, 3000))
                rt.event_log = _NoLog()  # type: ignore[assignment]
                rates["no-op ring"].append(await _rpc_rate(rt, 3000))
            rt.event_log = real_log
            base = max(rates["no-op ring"])
            print_table("RPC through one live object (sync method, one SQL write + read)",
                        ["event ring", "calls/s (best of 5)", "vs no-op ring"],
                        [[k, max(v), max(v) / base] for k, v in rates.items()])

            stub = rt.env.C.getByName("page")
            await stub.fill(200)
            oid = rt.env.C.idFromName("page")
            obs = Observer(rt)
            live = await _read_us(obs, oid, 300)
            await rt.evict("C", oid)
            evicted = await _read_us(obs, oid, 300)
            assert obs.state("C", oid) == "evicted"
            for i in range(200):
                await rt.env.C.getByName(f"o{i}").increment()
            await rt.evict_all()
            started = time.perf_counter()
            listed = obs.objects("C")
            list_ms = (time.perf_counter() - started) * 1000
            print_table("Reading through runtime.Observer (200 rows, 200 KV entries)",
                        ["read", "µs per read"],
                        [["object page data, live idle object", live],
                         ["object page data, evicted object (read-only snapshot)", evicted],
                         [f"object list, {len(listed)} evicted objects (per list)", list_ms * 1000]])


def main() -> None:
    trio.run(run)


if __name__ == "__main__":
    main()
