"""Cron triggers under ``RuntimeHost`` (``dohost serve``, ``dohost dev --crons``): fired on the runtime's clock, per deployment."""

from __future__ import annotations

import textwrap
from pathlib import Path

import trio

from wrangler_compat.cli._hosting import open_runtime_host
from wrangler_compat.config._loading import prepare_project

ENTRY = """\
from workers import DurableObject, Response, WorkerEntrypoint


class Runs(DurableObject):
    def add(self, cron):
        self.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS r(cron TEXT)")
        self.ctx.storage.sql.exec("INSERT INTO r VALUES (?)", cron)

    def all(self):
        self.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS r(cron TEXT)")
        return [row["cron"] for row in self.ctx.storage.sql.exec("SELECT cron FROM r")]


class Default(WorkerEntrypoint):
    async def scheduled(self, controller):
        await self.env.RUNS.getByName("runs").add(controller.cron)

    async def fetch(self, request):
        return Response.json(await self.env.RUNS.getByName("runs").all())
"""


def project(root: Path, crons: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{c}"' for c in crons)
    (root / "wrangler.toml").write_text(textwrap.dedent(f"""\
        name = "cron-host"
        main = "entry.py"
        compatibility_date = "2026-11-01"
        triggers = {{ crons = [{listed}] }}

        [[durable_objects.bindings]]
        name = "RUNS"
        class_name = "Runs"
    """))
    (root / "entry.py").write_text(ENTRY)
    return root


async def runs(host: object) -> list[str]:
    rt = host.runtime  # type: ignore[attr-defined]
    return list(await (await rt.fetch("http://w/")).json())


async def test_host_fires_crons_and_a_swap_brings_the_new_codes_crons(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    state = tmp_path / "state"
    first = prepare_project(project(tmp_path / "a", ["*/10 * * * *"]), env_name=None, data_dir=state)
    second = prepare_project(project(tmp_path / "b", ["0 * * * *"]), env_name=None, data_dir=state)
    async with open_runtime_host(data_dir=state, run_crons=True) as host:
        await host.start(first)
        await trio.sleep(3600)
        assert await runs(host) == ["*/10 * * * *"] * 6
        await host.swap(second)
        await trio.sleep(2 * 3600)
        assert await runs(host) == ["*/10 * * * *"] * 6 + ["0 * * * *"] * 2


async def test_host_without_run_crons_fires_nothing_as_wrangler_dev(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    state = tmp_path / "state"
    deployment = prepare_project(project(tmp_path / "a", ["* * * * *"]), env_name=None, data_dir=state)
    async with open_runtime_host(data_dir=state) as host:
        await host.start(deployment)
        await trio.sleep(3600)
        assert await runs(host) == []
