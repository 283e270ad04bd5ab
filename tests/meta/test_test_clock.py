"""The suite's ``autojump_clock`` (tests/conftest.py): fake time stands still while a worker thread works.

Without that, a task waiting on ``trio.to_thread`` counts as blocked and the
clock jumps to the next timer at once, so a slow commit thread would let idle
timers fire between two calls on a slow machine and not on a fast one.
"""

from __future__ import annotations

import hashlib

import trio
import trio.testing


def _real_work() -> bytes:
    # Tens of milliseconds of real time in the thread (a slow fsync's stand-in),
    # far longer than the event loop takes to notice it has nothing to run.
    return hashlib.sha256(bytes(20_000_000)).digest()


async def test_no_fake_time_passes_while_a_worker_thread_works(autojump_clock: trio.testing.MockClock) -> None:
    fired = trio.Event()

    async def in_a_second() -> None:
        await trio.sleep(1)
        fired.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_a_second)
        await trio.to_thread.run_sync(_real_work)
        await trio.to_thread.run_sync(_real_work)
        assert not fired.is_set()  # every task was blocked, but on threads: no jump
        await fired.wait()  # back on trio alone, the clock jumps again


async def test_the_clock_still_jumps_while_no_thread_is_out(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, _real_work)
        await trio.sleep(3600)  # a thread out blocks the jump only until it reports back
        assert autojump_clock.autojump_threshold == 0
