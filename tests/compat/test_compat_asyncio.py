"""A Python Workers program using asyncio, run unchanged through the pytest plugin and ``dohost dev``.

The program (``programs/asyncio_counters``) is written the way Cloudflare's
Python Workers docs write code: ``asyncio.gather`` of RPC calls to two
objects, an ``asyncio.Lock`` around a read-await-write, ``create_task``
handed to ``ctx.waitUntil``, ``asyncio.wait_for`` timing out, and an
``asyncio.sleep`` in ``alarm()``.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from _e2e_support import run_dohost  # noqa: E402

pytest_plugins = ["pytester"]

PROGRAM = Path(__file__).parent / "programs" / "asyncio_counters"
INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def test_the_asyncio_program_passes_its_tests_under_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    shutil.copytree(PROGRAM, pytester.path, dirs_exist_ok=True)
    (pytester.path / "pytest.ini").write_text(INI)
    pytester.makepyfile(
        test_counters=textwrap.dedent(
            """
            import trio

            async def test_gather_of_rpc_calls_to_two_objects(dohost):
                response = await dohost.fetch("http://example.com/both")
                assert await response.json() == {"a": 1, "b": 1}
                response = await dohost.fetch("http://example.com/both")
                assert await response.json() == {"a": 2, "b": 2}

            async def test_a_lock_keeps_concurrent_increments_from_losing_updates(dohost):
                response = await dohost.fetch("http://example.com/race")
                assert await response.json() == [1, 2, 3, 4, 5]

            async def test_create_task_handed_to_wait_until_finishes_after_the_response(dohost, autojump_clock):
                response = await dohost.fetch("http://example.com/visit")
                assert response.status == 202
                await trio.sleep(1)
                assert await dohost.env.COUNTER.getByName("visits").visits() == 1

            async def test_wait_for_times_out(dohost, autojump_clock):
                response = await dohost.fetch("http://example.com/slow")
                assert (response.status, await response.text()) == (504, "timed out")

            async def test_an_alarm_sleeps_ten_minutes_instantly(dohost, autojump_clock):
                stub = dohost.env.COUNTER.getByName("alarmed")
                await stub.start_alarm()
                await trio.sleep(2)
                assert await stub.alarm_state() == "waiting"  # asleep inside alarm() (or not due yet)
                # Due at time.time() + 1 s: the wall clock, ahead of fake time by the
                # real seconds since the host started; then ten minutes asleep.
                await trio.sleep(3600)
                assert await stub.alarm_state() == "rang"
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=5)


@pytest.mark.slow
async def test_the_asyncio_program_serves_over_http_under_dohost_dev(tmp_path: Path) -> None:
    argv = ["dohost", "dev", "--config", str(PROGRAM), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/both")).json() == {"a": 1, "b": 1}
            assert (await client.get("/both")).json() == {"a": 2, "b": 2}
            assert (await client.get("/race")).json() == [1, 2, 3, 4, 5]
            slow = await client.get("/slow")
            assert (slow.status_code, slow.text) == (504, "timed out")
            assert (await client.get("/visit")).status_code == 202
            with trio.fail_after(10):
                while (await client.get("/visits")).text != "1":
                    await trio.sleep(0.05)
