"""The deploy API of ``dohost serve``, in-process: archives, auth, refusals that change nothing, rollback."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from runtime._http import build_app
from wrangler_compat.cli._deploy import DeployError, DeployStore, pack_project, unpack_archive
from wrangler_compat.cli._hosting import RuntimeHost, open_runtime_host
from wrangler_compat.config._loading import Deployment, forget_modules_under
from wrangler_compat.cli._serve import DeployManager

TOKEN = "unit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

WRANGLER = """\
name = "deployed"
main = "src/app.py"
compatibility_date = "2026-11-01"

[[durable_objects.bindings]]
name = "BOX"
class_name = "Box"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Box"]
"""

APP = """\
from workers import DurableObject, Response, WorkerEntrypoint
from helper import LABEL

class Box(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.boots = (ctx.storage.kv.get("boots") or 0) + 1
        ctx.storage.kv.put("boots", self.boots)

    def bump(self):
        n = (self.ctx.storage.kv.get("n") or 0) + 1
        self.ctx.storage.kv.put("n", n)
        return f"{LABEL}:{n}:boot{self.boots}"

class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(await self.env.BOX.getByName("one").bump())
"""


def write_project(root: Path, label: str, *, wrangler: str = WRANGLER, app: str = APP) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "wrangler.toml").write_text(textwrap.dedent(wrangler))
    (root / "src" / "app.py").write_text(app)
    (root / "src" / "helper.py").write_text(f"LABEL = {label!r}\n")
    return root / "wrangler.toml"


def tar_of(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink is not None:
            link = tarfile.TarInfo(symlink)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    return buf.getvalue()


# --- archives ---------------------------------------------------------------------


def test_a_packed_project_holds_the_wrangler_file_and_python_sources_only(tmp_path: Path) -> None:
    config = write_project(tmp_path / "p", "a")
    for junk in (".dohost/state/x.py", "src/__pycache__/app.cpython-311.py", ".venv/lib/site.py"):
        (tmp_path / "p" / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "p" / junk).write_text("junk = 1\n")
    (tmp_path / "p" / "notes.txt").write_text("not code\n")
    with tarfile.open(fileobj=io.BytesIO(pack_project(config)), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["src/app.py", "src/helper.py", "wrangler.toml"]


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (tar_of({"../escape.py": b""}), "'../escape.py': expected a relative path inside the project"),
        (tar_of({"/etc/evil.py": b""}), "'/etc/evil.py': expected a relative path inside the project"),
        (tar_of({"a.py": b""}, symlink="link.py"), "'link.py': only regular files are accepted"),
        (b"not a tarball", "expected a gzipped tar archive"),
        (tar_of({}), "the archive is empty"),
    ],
)
def test_unsafe_or_broken_archives_are_refused(tmp_path: Path, archive: bytes, message: str) -> None:
    with pytest.raises(DeployError, match=r"^upload: ") as info:
        unpack_archive(archive, tmp_path / "out")
    assert message in str(info.value)
    assert not (tmp_path / "escape.py").exists()


def test_a_staged_upload_without_a_wrangler_file_leaves_no_version_behind(tmp_path: Path) -> None:
    store = DeployStore(tmp_path / "deploys")
    with pytest.raises(DeployError, match=r"^upload: no wrangler configuration file"):
        store.stage(tar_of({"src/app.py": b"x = 1\n"}), None)
    assert store.versions() == [] and store.current() is None


# --- the API ----------------------------------------------------------------------


class Server:
    def __init__(self, host: RuntimeHost, manager: DeployManager, client: httpx.AsyncClient) -> None:
        self.host, self.manager, self.client, self.store = host, manager, client, manager.store

    async def deploy(self, config: Path, token: str = TOKEN) -> httpx.Response:
        return await self.client.post(
            "/__dohost/deploy", content=pack_project(config), headers={"Authorization": f"Bearer {token}"}
        )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    data = tmp_path / "data"
    manager = DeployManager(DeployStore(data / "deploys"), data_dir=data, token=TOKEN, extra_vars={})
    async with open_runtime_host(data_dir=data, durability="full", drain_timeout=2.0) as host:
        manager.host = host
        await host.start(Deployment.empty())
        app = build_app(lambda: host, extra_routes=manager.routes())
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://dohost.test") as client:
                yield Server(host, manager, client)
        finally:
            # One process, many tests: the next test's `helper` must not be this one's.
            forget_modules_under(tmp_path)


async def test_deploys_need_the_token(server: Server, tmp_path: Path) -> None:
    config = write_project(tmp_path / "p", "a")
    refused = await server.deploy(config, token="wrong")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    unauthenticated = await server.client.post("/__dohost/rollback")
    assert unauthenticated.status_code == 401
    assert server.store.versions() == []


async def test_without_a_token_the_deploy_api_is_disabled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    manager = DeployManager(DeployStore(data / "deploys"), data_dir=data, token=None, extra_vars={})
    app = build_app(lambda: None, extra_routes=manager.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        refused = await client.post("/__dohost/deploy", content=b"x", headers=AUTH)
    assert refused.status_code == 403 and "deploys are disabled" in refused.json()["error"]


async def test_deploy_swaps_code_resets_objects_keeps_storage_and_rollback_restores(
    server: Server, tmp_path: Path
) -> None:
    assert (await server.client.get("/")).status_code == 503
    first = await server.deploy(write_project(tmp_path / "v1", "one"))
    assert first.json() == {"version": 1, "previous": None, "bindings": ["BOX"]}
    assert [(await server.client.get("/")).text for _ in range(2)] == ["one:1:boot1", "one:2:boot1"]

    second = await server.deploy(write_project(tmp_path / "v2", "two"))
    assert second.json()["version"] == 2 and second.json()["previous"] == 1
    # Sibling modules come from the new version; the object was reset; storage kept.
    assert (await server.client.get("/")).text == "two:3:boot2"

    back = await server.client.post("/__dohost/rollback", headers=AUTH)
    assert back.json() == {"version": 1, "previous": 2, "bindings": ["BOX"]}
    assert (await server.client.get("/")).text == "one:4:boot3"
    assert server.store.current() == 1

    again = await server.client.post("/__dohost/rollback", headers=AUTH)
    assert again.status_code == 409 and again.json()["error"].startswith("nothing to roll back to")
    forward = await server.client.post("/__dohost/rollback?version=2", headers=AUTH)
    assert forward.json()["version"] == 2 and (await server.client.get("/")).text == "two:5:boot4"


@pytest.mark.parametrize(
    ("wrangler", "app", "message"),
    [
        (WRANGLER.replace('class_name = "Box"', "class_name = 3"), APP,
         "cannot deploy: wrangler.toml: durable_objects.bindings[0].class_name: expected str, got int"),
        (WRANGLER.replace('tag = "v1"', 'tag = "v0"'), APP,
         "cannot deploy: script 'deployed': migration #1 is 'v0' in the config, but 'v1' was applied"),
        (WRANGLER, "def broken(:\n", "cannot deploy: importing the Worker raised "),
        (WRANGLER, APP.replace("class Box(", "class Crate("),
         "cannot deploy: wrangler.toml: durable_objects.bindings[0].class_name: 'Box' is not a class"),
    ],
    ids=["config", "migrations", "syntax", "missing-class"],
)
async def test_a_bad_upload_is_a_400_and_changes_nothing(
    server: Server, tmp_path: Path, wrangler: str, app: str, message: str
) -> None:
    assert (await server.deploy(write_project(tmp_path / "good", "good"))).status_code == 200
    assert (await server.client.get("/")).text == "good:1:boot1"

    bad = await server.deploy(write_project(tmp_path / "bad", "bad", wrangler=wrangler, app=app))
    assert bad.status_code == 400
    assert bad.json()["error"].startswith(message)
    assert [m.version for m in server.store.versions()] == [1] and server.store.current() == 1
    # Same code, same live object (not even reset), same storage.
    assert (await server.client.get("/")).text == "good:2:boot1"


async def test_garbage_uploads_are_refused_with_400(server: Server) -> None:
    refused = await server.client.post("/__dohost/deploy", content=b"\x1f\x8bnope", headers=AUTH)
    assert refused.status_code == 400 and refused.json()["error"].startswith("upload: ")
    assert server.store.versions() == []


async def test_the_version_list_shows_each_deploy_and_the_current_one(server: Server, tmp_path: Path) -> None:
    await server.deploy(write_project(tmp_path / "v1", "one"))
    listing = (await server.client.get("/__dohost/deploys", headers=AUTH)).json()
    assert listing["current"] == 1
    (meta,) = listing["versions"]
    assert meta["version"] == 1 and meta["previous"] is None and meta["config"] == "wrangler.toml"
    assert meta["files"] == 3 and len(meta["sha256"]) == 64


async def test_a_rollback_across_a_migration_is_refused_and_changes_nothing(server: Server, tmp_path: Path) -> None:
    await server.deploy(write_project(tmp_path / "v1", "one"))
    with_v2 = WRANGLER + '\n[[migrations]]\ntag = "v2"\nnew_sqlite_classes = ["Shelf"]\n'
    app = APP + "\nclass Shelf(DurableObject):\n    pass\n"
    assert (await server.deploy(write_project(tmp_path / "v2", "two", wrangler=with_v2, app=app))).status_code == 200
    assert (await server.client.get("/")).text == "two:1:boot1"

    refused = await server.client.post("/__dohost/rollback", headers=AUTH)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(
        "cannot roll back to version 1: script 'deployed': migration 'v2' (#2) was applied to the data directory"
    )
    assert server.store.current() == 2 and (await server.client.get("/")).text == "two:2:boot1"
