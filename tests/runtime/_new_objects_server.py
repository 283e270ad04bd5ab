"""Crash-test load generator for *new* objects: creates them until it is SIGKILLed.

Run by ``test_crash_new_objects.py`` as ``python _new_objects_server.py DATA_DIR DURABILITY ROUND``.
Eight creators each make new objects one after another (``getByName``, a
constructor that creates a table, one write, a reply) and print, after the
write was acknowledged::

    ack <name>

Every new object goes through the creation path a kill can interrupt: the
file created with its first page unsynced, the name file written and synced,
the first page synced, the first commit — at any point of which the test's
SIGKILL may land.
"""

from __future__ import annotations

import sys

import trio

from objects import DurableObject
from runtime import open_runtime

CREATORS = 8


class Fresh(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t(tag TEXT PRIMARY KEY)")

    def write(self, tag):
        self.ctx.storage.sql.exec("INSERT OR IGNORE INTO t VALUES (?)", tag)


async def main(data_dir: str, durability: str, round_no: str) -> None:
    async with open_runtime(bindings={"FRESH": Fresh}, data_dir=data_dir, durability=durability) as rt:  # type: ignore[arg-type]
        ns = rt.env["FRESH"]

        async def creator(c: int) -> None:
            i = 0
            while True:
                name = f"r{round_no}-c{c}-{i}"
                await ns.getByName(name).write(name)
                print(f"ack {name}", flush=True)
                i += 1

        async with trio.open_nursery() as nursery:
            for c in range(CREATORS):
                nursery.start_soon(creator, c)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
