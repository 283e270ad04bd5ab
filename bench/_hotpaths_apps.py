"""The apps bench_hotpaths.py measures: the same Worker + Counter object in Python and JS, and the storage object.

``PY_WORKER`` (dohost) and ``JS_WORKER`` (workerd) answer ``/hello/<name>``
(the object returns a constant) and ``/incr/<name>`` (a SQL upsert and read);
``store_class()`` is the live object whose RPC methods time storage calls in
a loop, and ``raw_ops()`` the raw-apsw loops they are compared with.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import apsw

KEYS = 1_000
SCHEMA = "CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)"
INC_SQL = "INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1"
GET_SQL = "SELECT v FROM c WHERE k = 'n'"

READ_SQL = "SELECT v FROM t WHERE k = ?"
WRITE_SQL = "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
KV_GET_SQL = "SELECT value FROM _cf_KV WHERE key = ?"
KV_PUT_SQL = "INSERT INTO _cf_KV (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value"
KV_LIST_SQL = "SELECT key, value FROM _cf_KV WHERE key >= ? ORDER BY key LIMIT 100"

PY_WORKER = f'''\
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("{SCHEMA}")

    def hello(self):
        return "hello"

    def increment(self):
        sql = self.ctx.storage.sql
        sql.exec("{INC_SQL}")
        return sql.exec("{GET_SQL}").one()["v"]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        parts = urlparse(request.url).path.split("/")
        if len(parts) < 3:
            return Response("ok")
        stub = self.env.COUNTER.getByName(parts[2])
        if parts[1] == "hello":
            return Response(await stub.hello())
        return Response(str(await stub.increment()))
'''

JS_WORKER = f"""\
import {{ DurableObject }} from "cloudflare:workers";

export class Counter extends DurableObject {{
  constructor(ctx, env) {{
    super(ctx, env);
    ctx.storage.sql.exec("{SCHEMA}");
  }}
  hello() {{ return "hello"; }}
  increment() {{
    const sql = this.ctx.storage.sql;
    sql.exec("{INC_SQL}");
    return sql.exec("{GET_SQL}").one().v;
  }}
}}

export default {{
  async fetch(request, env) {{
    const parts = new URL(request.url).pathname.split("/");
    if (parts.length < 3) return new Response("ok");
    const stub = env.COUNTER.getByName(parts[2]);
    if (parts[1] === "hello") return new Response(await stub.hello());
    return new Response(String(await stub.increment()));
  }},
}};
"""

WRANGLER = """\
name = "hotpaths"
main = "src/worker.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"""



def store_class() -> type:
    from objects import DurableObject
    from persistence._codec import encode_kv_value

    class Store(DurableObject):
        def setup(self) -> None:
            s = self.ctx.storage
            s.sql.exec("CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v REAL)")
            for i in range(KEYS):
                s.sql.exec("INSERT OR REPLACE INTO t VALUES (?, ?)", f"k{i:04d}", float(i))
                s.kv.put(f"k{i:04d}", i)

        def sql_read(self, n: int) -> float:
            sql = self.ctx.storage.sql
            t0 = time.perf_counter()
            for i in range(n):
                sql.exec(READ_SQL, f"k{i % KEYS:04d}").one()
            return time.perf_counter() - t0

        def sql_write(self, n: int) -> float:
            sql = self.ctx.storage.sql
            t0 = time.perf_counter()
            for i in range(n):
                sql.exec(WRITE_SQL, f"k{i % KEYS:04d}", 1.5)
            return time.perf_counter() - t0

        def kv_get(self, n: int) -> float:
            kv = self.ctx.storage.kv
            t0 = time.perf_counter()
            for i in range(n):
                kv.get(f"k{i % KEYS:04d}")
            return time.perf_counter() - t0

        def kv_put(self, n: int) -> float:
            kv = self.ctx.storage.kv
            t0 = time.perf_counter()
            for i in range(n):
                kv.put(f"k{i % KEYS:04d}", i)
            return time.perf_counter() - t0

        async def async_get(self, n: int) -> float:
            storage = self.ctx.storage
            t0 = time.perf_counter()
            for i in range(n):
                await storage.get(f"k{i % KEYS:04d}")
            return time.perf_counter() - t0

        async def async_put(self, n: int) -> float:
            storage = self.ctx.storage
            t0 = time.perf_counter()
            for i in range(n):
                await storage.put(f"k{i % KEYS:04d}", i)
            return time.perf_counter() - t0

        async def list100(self, n: int) -> float:
            storage = self.ctx.storage
            t0 = time.perf_counter()
            for i in range(n):
                await storage.list(start=f"k{(i * 7) % (KEYS - 100):04d}", limit=100)
            return time.perf_counter() - t0

    Store.encoded = staticmethod(encode_kv_value)  # type: ignore[attr-defined]
    return Store


def raw_ops(conn: apsw.Connection, encode: Callable[[Any], bytes]) -> dict[str, Callable[[int], float]]:
    values = {i: encode(i) for i in range(KEYS)}

    def txn(body: Callable[[int], None]) -> Callable[[int], float]:
        def run(n: int) -> float:
            conn.execute("BEGIN")
            try:
                t0 = time.perf_counter()
                body(n)
                return time.perf_counter() - t0
            finally:
                conn.execute("COMMIT")

        return run

    def sql_read(n: int) -> None:
        for i in range(n):
            conn.execute(READ_SQL, (f"k{i % KEYS:04d}",)).fetchall()

    def sql_write(n: int) -> None:
        for i in range(n):
            conn.execute(WRITE_SQL, (f"k{i % KEYS:04d}", 1.5)).fetchall()

    def kv_get(n: int) -> None:
        for i in range(n):
            conn.execute(KV_GET_SQL, (f"k{i % KEYS:04d}",)).fetchall()

    def kv_put(n: int) -> None:
        for i in range(n):
            conn.execute(KV_PUT_SQL, (f"k{i % KEYS:04d}", values[i % KEYS])).fetchall()

    def list100(n: int) -> None:
        for i in range(n):
            conn.execute(KV_LIST_SQL, (f"k{(i * 7) % (KEYS - 100):04d}",)).fetchall()

    return {
        "sql_read": txn(sql_read), "sql_write": txn(sql_write), "kv_get": txn(kv_get),
        "kv_put": txn(kv_put), "async_get": txn(kv_get), "async_put": txn(kv_put), "list100": txn(list100),
    }


