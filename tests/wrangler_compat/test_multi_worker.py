"""Several Workers in one process: ``script_name`` bindings to another Worker's class."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime import open_runtime
from wrangler_compat import ConfigError

USERS_TOML = """\
name = "users"
main = "src/users.py"
compatibility_date = "2026-11-01"

[vars]
GREETING = "hello from users"

[[durable_objects.bindings]]
name = "PROFILES"
class_name = "Profile"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Profile"]
"""

USERS_PY = """\
from workers import DurableObject


class Profile(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS visits(n INTEGER)")

    def visit(self):
        self.ctx.storage.sql.exec("INSERT INTO visits VALUES (1)")
        n = self.ctx.storage.sql.exec("SELECT count(*) AS n FROM visits").one()["n"]
        return f"{self.env.GREETING} #{n}"

    def sees_gateway_binding(self):
        return hasattr(self.env, "USERS")
"""

GATEWAY_TOML = """\
name = "gateway"
main = "src/gateway.py"
compatibility_date = "2026-11-01"

[[durable_objects.bindings]]
name = "USERS"
class_name = "Profile"
script_name = "users"
"""

GATEWAY_PY = """\
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        name = urlparse(request.url).path.strip("/")
        return Response(await self.env.USERS.getByName(name).visit())
"""


def _project(root: Path, toml: str, module: str, source: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "wrangler.toml").write_text(toml)
    (root / "src" / module).write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def workers(tmp_path: Path) -> tuple[Path, Path]:
    users = _project(tmp_path / "users", USERS_TOML, "users.py", USERS_PY)
    gateway = _project(tmp_path / "gateway", GATEWAY_TOML, "gateway.py", GATEWAY_PY)
    return gateway, users


async def test_a_script_name_binding_reaches_the_class_of_another_loaded_worker(workers, tmp_path) -> None:
    gateway, users = workers
    async with open_runtime(config=[gateway, users], data_dir=tmp_path / "data") as rt:
        response = await rt.fetch("http://example.com/ann")
        # The object runs with its own Worker's env (GREETING comes from users).
        assert await response.text() == "hello from users #1"
        assert not await rt.env.USERS.getByName("ann").sees_gateway_binding()


async def test_both_workers_bindings_reach_one_instance_with_one_storage(workers, tmp_path) -> None:
    gateway, users = workers
    async with open_runtime(config=[gateway, users], data_dir=tmp_path / "data") as rt:
        assert await rt.env.USERS.getByName("bob").visit() == "hello from users #1"
        assert await rt.env_for("users").PROFILES.getByName("bob").visit() == "hello from users #2"
        assert len([s for s in rt.statistics() if s.name == "bob"]) == 1
    async with open_runtime(config=[users], data_dir=tmp_path / "data") as rt:
        # The same object, by its home Worker alone: the data is there.
        assert await rt.env.PROFILES.getByName("bob").visit() == "hello from users #3"


async def test_a_script_name_naming_a_worker_that_is_not_loaded_is_a_config_error(workers, tmp_path) -> None:
    gateway, _ = workers
    with pytest.raises(ConfigError, match=r"^wrangler\.toml: durable_objects\.bindings\[0\]\.script_name: Worker 'users' is not loaded"):
        async with open_runtime(config=gateway, data_dir=tmp_path / "data"):
            pass


async def test_a_binding_name_declared_by_two_workers_is_a_config_error(tmp_path) -> None:
    users = _project(tmp_path / "users", USERS_TOML, "users.py", USERS_PY)
    clash = _project(
        tmp_path / "clash",
        GATEWAY_TOML.replace('name = "USERS"', 'name = "PROFILES"').replace('name = "gateway"', 'name = "clash"'),
        "gateway.py",
        GATEWAY_PY,
    )
    with pytest.raises(ConfigError, match=r"binding 'PROFILES' is also declared by Worker 'clash'"):
        async with open_runtime(config=[clash, users], data_dir=tmp_path / "data"):
            pass
