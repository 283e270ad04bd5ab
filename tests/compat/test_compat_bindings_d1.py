"""D1 in a Python Worker written as Cloudflare's docs write it: the plugin, and ``dohost dev`` over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
{
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "d1-quotes",
  "main": "src/entry.py",
  "compatibility_date": "2026-11-01",
  "compatibility_flags": ["python_workers"],
  // D1's docs: the binding, the database name, its id
  "d1_databases": [
    {
      "binding": "DB",
      "database_name": "quotes",
      "database_id": "9f1b2c3d-0000-4000-8000-quotes000001",
    },
  ],
}
"""

ENTRY = """\
from workers import Response, WorkerEntrypoint

SCHEMA = "CREATE TABLE IF NOT EXISTS quotes (id INTEGER PRIMARY KEY AUTOINCREMENT, quote TEXT NOT NULL, author TEXT)"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        await self.env.DB.exec(SCHEMA)
        if request.method == "POST":
            body = await request.json()
            result = await self.env.DB.prepare(
                "INSERT INTO quotes (quote, author) VALUES (?, ?)"
            ).bind(body["quote"], body["author"]).run()
            return Response.json({"id": result.meta.last_row_id, "changes": result.meta.changes})
        if request.url.endswith("/count"):
            n = await self.env.DB.prepare("SELECT count(*) AS n FROM quotes").first("n")
            return Response(str(n))
        results = await self.env.DB.prepare("SELECT quote, author FROM quotes ORDER BY id").all()
        return Response.json(results.results)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "d1-quotes", {"wrangler.jsonc": WRANGLER, "src/entry.py": ENTRY})


def test_d1_round_trip_and_per_test_reset_under_the_plugin(pytester: pytest.Pytester, project: Path) -> None:
    result = run_plugin(pytester, project, """
        import json

        async def test_quotes_round_trip(dohost):
            body = json.dumps({"quote": "Simple is better than complex.", "author": "Tim Peters"})
            created = await (await dohost.fetch("http://w/", method="POST", body=body)).json()
            assert created == {"id": 1, "changes": 1}
            assert await (await dohost.fetch("http://w/")).json() == [
                {"quote": "Simple is better than complex.", "author": "Tim Peters"}
            ]
            row = await dohost.env.DB.prepare("SELECT author FROM quotes WHERE id = ?").bind(1).first()
            assert row.author == "Tim Peters"

        async def test_the_next_test_starts_without_the_table(dohost):
            tables = await dohost.env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").raw()
            assert tables == []
    """)
    result.assert_outcomes(passed=2)


@pytest.mark.slow
async def test_d1_round_trip_over_http_survives_a_dohost_dev_restart(tmp_path: Path, project: Path) -> None:
    state = tmp_path / "state"
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            for i in range(3):
                got = await client.post("/", json={"quote": f"q{i}", "author": "a"})
                assert got.json() == {"id": i + 1, "changes": 1}
        await proc.terminate()
    async with run_dohost(dev(state, project)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/count")).text == "3"
            assert [q["quote"] for q in (await client.get("/")).json()] == ["q0", "q1", "q2"]
