"""Cron Triggers in a Python Worker written as Cloudflare's docs write it: the plugin, and ``dohost dev`` over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
{
  "name": "cron-log",
  "main": "src/entry.py",
  "compatibility_date": "2026-11-01",
  "compatibility_flags": ["python_workers"],
  "triggers": {
    "crons": ["*/5 * * * *", "0 3 * * *"]  // every five minutes; nightly at 03:00 UTC
  },
  "durable_objects": {"bindings": [{"name": "CRON_LOG", "class_name": "CronLog"}]},
  "migrations": [{"tag": "v1", "new_sqlite_classes": ["CronLog"]}]
}
"""

ENTRY = """\
from workers import DurableObject, Response, WorkerEntrypoint


class CronLog(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS runs(cron TEXT, at INTEGER)")

    def record(self, cron, at):
        self.ctx.storage.sql.exec("INSERT INTO runs VALUES (?, ?)", cron, at)

    def runs(self):
        return [[row["cron"], row["at"]] for row in self.ctx.storage.sql.exec("SELECT cron, at FROM runs ORDER BY rowid")]


class Default(WorkerEntrypoint):
    async def scheduled(self, controller, env, ctx):
        if controller.cron == "0 3 * * *":
            raise RuntimeError("the nightly job failed")
        log = env.CRON_LOG.getByName("log")
        ctx.waitUntil(log.record(controller.cron, int(controller.scheduledTime)))

    async def fetch(self, request):
        return Response.json(await self.env.CRON_LOG.getByName("log").runs())
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "cron-log", {"wrangler.jsonc": WRANGLER, "src/entry.py": ENTRY})


def test_scheduled_handler_runs_through_the_plugin_once_and_on_fake_time(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = run_plugin(pytester, project, """
        import pytest
        import trio

        async def test_run_scheduled_waits_for_the_handlers_wait_until_work(dohost):
            assert dohost.crons == ("*/5 * * * *", "0 3 * * *")
            outcome = await dohost.run_scheduled(scheduled_time=1_800_000_000_000)
            assert (outcome.outcome, outcome.cron) == ("ok", "*/5 * * * *")
            assert await (await dohost.fetch("http://w/")).json() == [["*/5 * * * *", 1_800_000_000_000]]

        async def test_a_raising_handler_raises_in_the_test(dohost):
            with pytest.raises(RuntimeError, match=r"^the nightly job failed$"):
                await dohost.run_scheduled("0 3 * * *")

        async def test_crons_fire_on_their_minutes_under_autojump_clock(dohost, autojump_clock):
            async with trio.open_nursery() as nursery:
                await nursery.start(dohost.serve_crons)
                await trio.sleep(3600)
                nursery.cancel_scope.cancel()
            runs = await (await dohost.fetch("http://w/")).json()
            assert len(runs) == 12 and {cron for cron, _ in runs} == {"*/5 * * * *"}
            assert all(at % 300_000 == 0 for _, at in runs)
            assert [b - a for (_, a), (_, b) in zip(runs, runs[1:])] == [300_000] * 11
    """)
    result.assert_outcomes(passed=3)


@pytest.mark.slow
async def test_scheduled_route_of_dohost_dev_runs_the_handler_over_http(tmp_path: Path, project: Path) -> None:
    async with run_dohost(dev(tmp_path / "state", project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            ran = await client.get("/__scheduled", params={"cron": "*/5 * * * *", "time": "1800000000000"})
            assert (ran.status_code, ran.text) == (200, "ok")
            python_path = await client.get("/cdn-cgi/handler/scheduled", params={"cron": "*/5 * * * *"})
            assert (python_path.status_code, python_path.text) == (200, "ok")
            failed = await client.get("/__scheduled", params={"cron": "0 3 * * *", "format": "json"})
            assert (failed.status_code, failed.json()) == (500, {"outcome": "exception", "noRetry": False})
            bad_time = await client.get("/__scheduled", params={"cron": "*/5 * * * *", "time": "soon"})
            assert (bad_time.status_code, bad_time.text) == (400, "time: expected epoch milliseconds, got 'soon'\n")
            runs = (await client.get("/")).json()
            assert runs[0] == ["*/5 * * * *", 1_800_000_000_000] and len(runs) == 2
