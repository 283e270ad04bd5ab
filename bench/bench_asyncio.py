"""What asyncio in object code costs, measured in one run: ``python bench/bench_asyncio.py``.

a. **The driver** — object coroutines are stepped by the asyncio-aware driver
   (``runtime._asyncio``) instead of the plain gate trampoline it replaced
   (``runtime._gates.gated``, the named baseline), run side by side: µs per
   trio yield of a coroutine that only awaits trio, and µs per handler start
   (a coroutine that returns at once).
b. **Through a live object** — ``await stub.method()`` on a warm object
   (the path users take), sequentially: an ``async def`` method that awaits
   nothing (baseline), one awaiting ``trio.sleep(0)``, ``asyncio.sleep(0)``,
   ``trio.sleep(0.001)`` against ``asyncio.sleep(0.001)`` (a timer), a ``gather`` of two ``asyncio.sleep(0)``, and one
   taking an ``asyncio.Lock``.

Each number is the best of ``REPEATS`` interleaved rounds (the machine is
shared and noisy). Prints markdown tables; never asserts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import trio

from _table import print_table
from objects import DurableObject
from runtime import open_runtime
from runtime._asyncio import get_loop, run_as_task
from runtime._gates import InputGate, gated

REPEATS = 5
YIELDS = 20_000
STARTS = 20_000
CALLS = 2_000


def _noop() -> None:
    pass


async def _yields(n: int) -> None:
    for _ in range(n):
        await trio.lowlevel.checkpoint()


async def _returns() -> int:
    return 1


class Bench(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.lock = asyncio.Lock()

    async def plain(self) -> int:
        return 1

    async def trio_sleep0(self) -> int:
        await trio.sleep(0)
        return 1

    async def asyncio_sleep0(self) -> int:
        await asyncio.sleep(0)
        return 1

    async def trio_timer(self) -> int:
        await trio.sleep(0.001)
        return 1

    async def asyncio_timer(self) -> int:
        await asyncio.sleep(0.001)
        return 1

    async def gather2(self) -> int:
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
        return 1

    async def locked(self) -> int:
        async with self.lock:
            return 1


async def _best(fn: Callable[[], Awaitable[None]], per: int, best: dict[str, float], key: str) -> None:
    start = time.perf_counter()
    await fn()
    value = (time.perf_counter() - start) / per * 1e6
    best[key] = min(best.get(key, float("inf")), value)


async def _main() -> None:
    loop, gate = get_loop(), InputGate()
    best: dict[str, float] = {}

    async def gated_yields() -> None:
        await gated(_yields(YIELDS), gate, None, _noop)

    async def driver_yields() -> None:
        await run_as_task(_yields(YIELDS), loop, None, gate, None, _noop)

    async def gated_starts() -> None:
        for _ in range(STARTS):
            await gated(_returns(), gate, None, _noop)

    async def driver_starts() -> None:
        for _ in range(STARTS):
            await run_as_task(_returns(), loop, None, gate, None, _noop)

    for _ in range(REPEATS):
        await _best(gated_yields, YIELDS, best, "gated yield")
        await _best(driver_yields, YIELDS, best, "driver yield")
        await _best(gated_starts, STARTS, best, "gated start")
        await _best(driver_starts, STARTS, best, "driver start")
    print_table(
        "asyncio driver vs the plain gate trampoline (µs)",
        ["measure", "gated (baseline)", "asyncio driver", "ratio"],
        [
            ["per trio yield", best["gated yield"], best["driver yield"], best["driver yield"] / best["gated yield"]],
            ["per handler start", best["gated start"], best["driver start"], best["driver start"] / best["gated start"]],
        ],
    )

    methods = ["plain", "trio_sleep0", "asyncio_sleep0", "trio_timer", "asyncio_timer", "gather2", "locked"]
    async with open_runtime(bindings={"B": Bench}, durability="none") as rt:
        stub = rt.env.B.getByName("bench")
        await stub.plain()
        for _ in range(REPEATS):
            for name in methods:
                method = getattr(stub, name)

                async def calls() -> None:
                    for _ in range(CALLS):
                        await method()

                await _best(calls, CALLS, best, name)
    base = best["plain"]
    print_table(
        "RPC through a live object (µs per call)",
        ["method body", "µs", "× plain"],
        [[name, best[name], best[name] / base] for name in methods],
    )


def main() -> None:
    trio.run(_main)


if __name__ == "__main__":
    main()
