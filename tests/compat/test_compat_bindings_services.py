"""A service binding between two Python Workers in one process: fetch and RPC, the plugin and ``dohost dev -c -c``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

GATEWAY_WRANGLER = """\
name = "gateway"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

services = [
  { binding = "AUTH", service = "auth" },
  { binding = "SESSIONS", service = "auth", entrypoint = "SessionService" },
]
"""

GATEWAY = """\
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path.startswith("/login/"):
            user = path.removeprefix("/login/")
            token = await self.env.SESSIONS.create(user)
            return Response(token)
        if path.startswith("/whoami/"):
            user = await self.env.SESSIONS.lookup(path.removeprefix("/whoami/"))
            return Response.json({"user": user})
        return await self.env.AUTH.fetch(request)
"""

AUTH_WRANGLER = """\
name = "auth"
main = "src/auth.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[[kv_namespaces]]
binding = "TOKENS"
id = "auth-tokens"
"""

AUTH = """\
import hashlib

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("auth worker: " + request.method + " " + request.url, status=401)


class SessionService(WorkerEntrypoint):
    async def create(self, user):
        token = hashlib.sha256(user.encode()).hexdigest()[:16]
        await self.env.TOKENS.put(token, user)
        return token

    async def lookup(self, token):
        return await self.env.TOKENS.get(token)
"""


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path]:
    gateway = write(tmp_path / "gateway", {"wrangler.toml": GATEWAY_WRANGLER, "src/entry.py": GATEWAY})
    auth = write(tmp_path / "auth", {"wrangler.toml": AUTH_WRANGLER, "src/auth.py": AUTH})
    return gateway, auth


def test_service_bindings_under_the_plugin_with_an_auxiliary_worker(
    pytester: pytest.Pytester, projects: tuple[Path, Path]
) -> None:
    gateway, auth = projects
    result = run_plugin(pytester, gateway, """
        async def test_rpc_and_fetch_reach_the_auth_worker(dohost):
            token = await (await dohost.fetch("http://gw/login/ann")).text()
            assert await (await dohost.fetch(f"http://gw/whoami/{token}")).json() == {"user": "ann"}
            denied = await dohost.fetch("http://gw/admin", method="POST")
            assert denied.status == 401 and await denied.text() == "auth worker: POST http://gw/admin"
            assert await dohost.env.SESSIONS.lookup(token) == "ann"

        async def test_the_auth_workers_storage_is_reset_too(dohost):
            assert await dohost.env.SESSIONS.lookup("8f434346648f6b96") is None
    """, ini_extra=f"dohost_auxiliary_configs = {auth}\n")
    result.assert_outcomes(passed=2)


@pytest.mark.slow
async def test_two_workers_in_one_dohost_dev_survive_a_restart(tmp_path: Path, projects: tuple[Path, Path]) -> None:
    gateway, auth = projects
    state = tmp_path / "state"
    async with run_dohost(dev(state, gateway, auth)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            token = (await client.get("/login/bob")).text
            assert (await client.get("/anything")).status_code == 401
        await proc.terminate()
    async with run_dohost(dev(state, gateway, auth)) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get(f"/whoami/{token}")).json() == {"user": "bob"}
