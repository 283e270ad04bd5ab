"""A Worker of the legacy-handler era (``on_fetch``/``on_alarm`` methods), as public programs still write it.

Before ``python_no_global_handlers`` (default from compatibility date
2025-08-14) workerd calls ``on_<handler>`` on Python entrypoint classes;
Backland-Labs/mcp-d1-submissions (README "Public programs tried") defines
``Default.on_fetch`` and failed on dohost with "Handler does not export a
fetch() function." (``programs/legacy_handlers``). workerd also calls
``fetch`` with only the arguments it declares (python-workers-examples
08-cron defines ``async def fetch(self)``).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
import pytest

from _e2e_support import run_dohost  # noqa: E402

pytest_plugins = ["pytester"]

PROGRAM = Path(__file__).parent / "programs" / "legacy_handlers"
INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def test_on_fetch_and_on_alarm_run_under_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    shutil.copytree(PROGRAM, pytester.path, dirs_exist_ok=True)
    (pytester.path / "pytest.ini").write_text(INI)
    pytester.makepyfile(
        test_legacy=textwrap.dedent(
            """
            import trio

            async def test_the_worker_and_the_object_answer_through_on_fetch(dohost):
                assert await (await dohost.fetch("http://x/start")).text() == "started"
                assert await (await dohost.fetch("http://x/state")).text() == "waiting"

            async def test_a_fetch_without_a_request_parameter_is_called_without_one(dohost):
                assert await (await dohost.fetch("http://x/pong")).text() == "pong"

            async def test_on_alarm_runs_when_the_alarm_is_due(dohost, autojump_clock):
                await dohost.fetch("http://x/start")
                # The program arms it with time.time() + 5 s: the wall clock, ahead of
                # fake time by the real seconds the host took to start (many when slow).
                await trio.sleep(3600)
                assert await (await dohost.fetch("http://x/state")).text() == "rang"
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.slow
async def test_on_fetch_serves_over_http_under_dohost_dev(tmp_path: Path) -> None:
    argv = ["dohost", "dev", "--config", str(PROGRAM), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/start")).text == "started"
            assert (await client.get("/state")).text == "waiting"
            assert (await client.get("/pong")).text == "pong"
