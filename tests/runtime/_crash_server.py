"""Crash-test load generator: hosts objects and writes until it is SIGKILLed.

Run by ``test_crash.py`` as ``python _crash_server.py DATA_DIR DURABILITY ROUND SEED``.
It opens a runtime on ``DATA_DIR`` (recovering whatever the previous, killed
round left behind) and runs concurrent writers against several ``Ledger``
objects forever. After every ``await stub.method()`` returns — i.e. after the
runtime acknowledged the write — it prints one line and flushes::

    ack <op> <object> <tag> [<other object>]

so every line the test reads is a write that must survive the kill. The
operations mix raw SQL, synchronous KV, async KV with a yield between two
writes, a multi-write ``transactionSync`` (SQL + KV + a counter), a counter
increment (the acked value is a lower bound), and a relay that writes and then
calls another object (the output gate must commit the first write before the
call leaves). A resident cap below the number of objects keeps evicting and
re-activating objects under load.

Failures of an operation are printed to stderr as ``error ...`` lines (the test
fails on them) and the writer keeps going.
"""

from __future__ import annotations

import random
import sys
import traceback

import trio

from objects import DurableObject
from runtime import open_runtime

OBJECTS = [f"obj{i}" for i in range(5)]
WRITERS_PER_OBJECT = 3
OPS = ("sql", "kv", "akv", "txn", "inc", "relay")


class Ledger(DurableObject):
    """The object under test. The test reads its file with the same schema."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS log(tag TEXT PRIMARY KEY, payload TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS pair_a(tag TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS pair_b(tag TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS counters(k TEXT PRIMARY KEY, v INTEGER NOT NULL)"
        )

    def sql(self, tag):
        self.ctx.storage.sql.exec("INSERT INTO log VALUES (?, ?)", tag, "x" * 64)

    def kv(self, tag):
        self.ctx.storage.kv.put(f"kv:{tag}", {"tag": tag, "blob": "y" * 32})

    async def akv(self, tag):
        await self.ctx.storage.put(f"a1:{tag}", tag)
        await trio.sleep(0)  # a real yield: other events run, a commit may happen
        await self.ctx.storage.put(f"a2:{tag}", tag)

    def txn(self, tag):
        storage = self.ctx.storage

        def body():
            storage.sql.exec("INSERT INTO pair_a VALUES (?)", tag)
            storage.kv.put(f"txn:{tag}", tag)
            storage.sql.exec("INSERT INTO pair_b VALUES (?)", tag)
            storage.sql.exec(
                "INSERT INTO counters VALUES ('txn', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1"
            )

        storage.transactionSync(body)

    def inc(self):
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO counters VALUES ('inc', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return sql.exec("SELECT v FROM counters WHERE k = 'inc'").one()["v"]

    async def relay(self, tag, other):
        self.ctx.storage.sql.exec("INSERT INTO log VALUES (?, ?)", f"relay:{tag}", other)
        await self.env.LEDGER.getByName(other).sql(f"from:{tag}")


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def writer(env, name: str, round_no: int, index: int, rng: random.Random) -> None:
    stub = env.LEDGER.getByName(name)
    seq = 0
    while True:
        seq += 1
        tag = f"r{round_no}.{name}.w{index}.{seq}"
        op = rng.choice(OPS)
        try:
            if op == "inc":
                value = await stub.inc()
                emit(f"ack inc {name} {value}")
            elif op == "relay":
                other = rng.choice([o for o in OBJECTS if o != name])
                await stub.relay(tag, other)
                emit(f"ack relay {name} {tag} {other}")
            else:
                await getattr(stub, op)(tag)
                emit(f"ack {op} {name} {tag}")
        except Exception as exc:
            lines = traceback.format_exception_only(type(exc), exc)
            sys.stderr.write(f"error {op} {name} {tag}: {''.join(lines).strip()}\n")
            sys.stderr.flush()


async def main(data_dir: str, durability: str, round_no: int, seed: int) -> None:
    rng = random.Random(seed)
    async with open_runtime(
        bindings={"LEDGER": Ledger},
        data_dir=data_dir,
        durability=durability,
        max_resident=len(OBJECTS) - 2,
    ) as rt:
        emit("ready")
        async with trio.open_nursery() as nursery:
            for name in OBJECTS:
                for index in range(WRITERS_PER_OBJECT):
                    nursery.start_soon(writer, rt.env, name, round_no, index, random.Random(rng.random()))


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
