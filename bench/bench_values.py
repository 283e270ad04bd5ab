"""JS-proxy-shaped storage values vs the plain values beneath them, through a live object.

Run: ``python bench/bench_values.py [iterations] [repeats]`` (defaults 2000 and 15).

Since values from storage answer both SDK eras (``objects/_jsvalues.py``),
``ctx.storage.get``/``ctx.storage.kv.get`` copy dicts and lists into
``JsObject``/``JsArray``. This measures what that costs on the read path
users take — inside one object's RPC method, interleaved batches, best of
``repeats`` — against the same read without the shaping (the persistence
store the facade wraps: ``storage._db.kv_store.get`` / the ``SyncKv``
itself). Scalars are returned as they are; containers pay one copy. The
machine is shared: compare the ratios, not the microseconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from typing import Any

import trio

from _table import print_table
from objects import DurableObject
from runtime import open_runtime

VALUES: dict[str, Any] = {
    "int": 7,
    "flat dict (4 keys)": {"a": 1, "b": "x", "c": 2.5, "d": None},
    "nested dict (list inside)": {"name": "ada", "tags": ["x", "y", "z"], "n": 3},
    "list of 10 dicts": [{"i": i} for i in range(10)],
}


class Reader(DurableObject):
    def setup(self) -> None:
        for name, value in VALUES.items():
            self.ctx.storage.kv.put(name, value)

    def measure(self, name: str, iterations: int) -> list[float]:
        storage = self.ctx.storage
        store = storage._db.kv_store  # the plain read the facade shapes
        facade, sync = storage.kv, storage._db.kv
        out = []
        for fn in (store.get, storage.get, sync.get, facade.get):
            start = time.perf_counter()
            for _ in range(iterations):
                fn(name)
            out.append((time.perf_counter() - start) / iterations * 1e6)
        return out


async def run(iterations: int, repeats: int) -> list[list[Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with open_runtime(bindings={"R": Reader}, data_dir=data_dir) as rt:
            stub = rt.env.R.getByName("bench")
            await stub.setup()
            for name in VALUES:
                best = [float("inf")] * 4
                for _ in range(repeats):
                    got = await stub.measure(name, iterations)
                    best = [min(b, g) for b, g in zip(best, got)]
                plain, shaped, sync_plain, sync_shaped = best
                rows.append([name, plain, shaped, shaped / plain, sync_plain, sync_shaped, sync_shaped / sync_plain])
    return rows


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    iterations = int(args[0]) if args else 2000
    repeats = int(args[1]) if len(args) > 1 else 15
    rows = trio.run(run, iterations, repeats)
    print_table(
        "Storage reads: JS-shaped values vs plain (µs per read, best of repeats)",
        ["value", "plain get", "storage.get", "ratio", "plain kv.get", "kv.get", "ratio"],
        rows,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main()
