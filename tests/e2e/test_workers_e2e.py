"""Several Workers on one ``dohost serve``: deployed by name, routed by their ``routes``, bound by ``script_name``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from _e2e_support import resolve_command, run_dohost

pytestmark = pytest.mark.slow

SYNC_TOML = """\
name = "sync"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]
routes = ["sync.example.com/*"]

[vars]
WHO = "sync"

[[durable_objects.bindings]]
name = "ROOM"
class_name = "Room"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Room"]
"""

SYNC_PY = '''\
from workers import DurableObject, Response, WorkerEntrypoint


class Room(DurableObject):
    def bump(self):
        n = (self.ctx.storage.kv.get("n") or 0) + 1
        self.ctx.storage.kv.put("n", n)
        return n


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        n = await self.env.ROOM.getByName("lobby").bump()
        return Response(f"{self.env.WHO} {n}")
'''

APP_TOML = """\
name = "app"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]
routes = [{ pattern = "app.example.com", custom_domain = true }]

[vars]
WHO = "app"

[[durable_objects.bindings]]
name = "SYNC_ROOM"
class_name = "Room"
script_name = "sync"
"""

APP_PY = '''\
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        n = await self.env.SYNC_ROOM.getByName("lobby").bump()
        return Response(f"{self.env.WHO} {n} {'WHO' in self.env and 'ROOM' in self.env}")
'''


def project(root: Path, toml: str, source: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "wrangler.toml").write_text(toml)
    (root / "src" / "entry.py").write_text(source)
    return root


async def deploy(url: str, folder: Path, name: str) -> subprocess.CompletedProcess[bytes]:
    argv = resolve_command(["dohost", "deploy", "--name", name, "--to", url, "--token", "t0ken", "-c", str(folder)])
    return await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)


async def test_two_workers_deployed_by_name_share_an_object_through_script_name(tmp_path: Path) -> None:
    sync = project(tmp_path / "sync", SYNC_TOML, SYNC_PY)
    app = project(tmp_path / "app", APP_TOML, APP_PY)
    argv = ["dohost", "serve", "--processes", "2", "--data-dir", str(tmp_path / "data"),
            "--listen", "127.0.0.1:0", "--token", "t0ken"]
    async with run_dohost(argv, env={"DOHOST_TOKEN": "t0ken"}) as proc:
        await proc.wait_for(r"dohost.processes.*Ready on")
        m = proc.find(r"dohost.processes.*Ready on (http://[\d.:]+)")
        assert m is not None
        url = m[1]
        # app first: its script_name names a Worker the server does not have yet.
        refused = await deploy(url, app, "app")
        assert refused.returncode == 1
        assert b"Worker 'sync' is not loaded" in refused.stderr
        assert (await deploy(url, sync, "sync")).returncode == 0
        done = await deploy(url, app, "app")
        assert done.returncode == 0, done.stderr
        assert b"Deployed Worker app version 1" in done.stdout
        # A name that is not the wrangler file's is refused, and changes nothing.
        wrong = await deploy(url, app, "other")
        assert wrong.returncode == 1 and b"names it 'app'" in wrong.stderr

        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            seen = []
            # Both processes serve both Workers (the deploy reached every process).
            for i in range(6):
                host = "app.example.com" if i % 2 else "sync.example.com"
                reply = await client.get("/", headers={"host": host})
                assert reply.status_code == 200, reply.text
                seen.append(reply.text)
            assert [s.split()[0] for s in seen] == ["sync", "app"] * 3
            assert [int(s.split()[1]) for s in seen] == list(range(1, 7))  # one object, reached from both
            assert all(s.endswith("False") for s in seen if s.startswith("app"))  # app's own env only
            # No route matches: the default Worker (the first deployed by name, alphabetically).
            assert (await client.get("/", headers={"host": "elsewhere.test"})).text.startswith("app ")
            listing = (await client.get("/__dohost/deploys", headers={"authorization": "Bearer t0ken"})).json()
            assert {n: w["current"] for n, w in listing["workers"].items()} == {"app": 1, "sync": 1}
        assert await proc.terminate() == 0


async def test_dev_loads_two_wrangler_files_and_the_first_reaches_the_seconds_object_through_script_name(
    tmp_path: Path,
) -> None:
    sync = project(tmp_path / "sync", SYNC_TOML, SYNC_PY)
    app = project(tmp_path / "app", APP_TOML, APP_PY)
    argv = ["dohost", "dev", "-c", str(app), "-c", str(sync), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url, timeout=20) as client:
            # The first file's Worker serves HTTP, whatever the Host; its own env only;
            # its SYNC_ROOM is the sync Worker's Room class, one object across requests.
            replies = [(await client.get("/", headers={"host": h})).text for h in ("app.example.com", "sync.example.com")]
            assert replies == ["app 1 False", "app 2 False"]
    # The sync Worker's object keeps its storage across a restart of dev.
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url, timeout=20) as client:
            assert (await client.get("/")).text == "app 3 False"
