"""The bindings of a wrangler project: config, env, services across Workers, unsupported kinds, .dev.vars, reset."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from runtime import open_runtime
from wrangler_compat.config._config import load_config
from wrangler_compat.testing._harness import ProjectSource, open_harness
from wrangler_compat.bindings import (
    D1Database,
    KVNamespace,
    R2Bucket,
    ServiceBindingError,
    UnsupportedBindingError,
    load_dev_vars,
)
from wrangler_compat.errors import ConfigError, ConfigWarning


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


def project(root: Path, toml: str, source: str = "", name: str = "entry") -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "wrangler.toml").write_text(textwrap.dedent(toml))
    (root / "src" / f"{name}.py").write_text(textwrap.dedent(source) or "def on_fetch(request):\n    pass\n")
    return root


HEAD = """\
    name = "{name}"
    main = "src/{module}.py"
    compatibility_date = "2026-11-01"
"""


def head(name: str = "app", module: str = "entry") -> str:
    return HEAD.format(name=name, module=module)


# ------------------------------------------------------------------ config
def test_each_binding_kind_is_read_from_the_wrangler_file(tmp_path: Path) -> None:
    root = project(tmp_path, head() + """
        [[kv_namespaces]]
        binding = "CACHE"
        id = "0f2ac74b498b48028cb68387c421e279"

        [[d1_databases]]
        binding = "DB"
        database_name = "prod-db"
        database_id = "xxxx-yyyy"

        [[r2_buckets]]
        binding = "BUCKET"
        bucket_name = "files"

        [[services]]
        binding = "AUTH"
        service = "auth-worker"
        entrypoint = "Sessions"

        [assets]
        directory = "./public"
        binding = "ASSETS"
        not_found_handling = "single-page-application"
    """)
    config = load_config(root)
    assert config.kv_namespaces[0].storage_key == "0f2ac74b498b48028cb68387c421e279"
    assert config.d1_databases[0].storage_key == "xxxx-yyyy"
    assert config.r2_buckets[0].storage_key == "files"
    assert (config.services[0].service, config.services[0].entrypoint) == ("auth-worker", "Sessions")
    assert config.assets is not None and config.assets.html_handling == "auto-trailing-slash"
    assert config.assets_dir == root.resolve() / "./public"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[assets]\ndirectory = "p"\nhtml_handling = "sometimes"\n',
         "wrangler.toml: assets.html_handling: expected one of 'auto-trailing-slash', 'force-trailing-slash',"
         " 'drop-trailing-slash', 'none', got 'sometimes'"),
        ('[assets]\nbinding = "ASSETS"\n',
         "wrangler.toml: assets.directory: required key missing (the folder of files to serve)"),
        ('[[kv_namespaces]]\nbinding = "X"\n[[r2_buckets]]\nbinding = "X"\n',
         "wrangler.toml: r2_buckets[0].binding: duplicate binding 'X' (also kv_namespaces[0].binding)"),
        ('[vars]\nDB = "1"\n[[d1_databases]]\nbinding = "DB"\n',
         "wrangler.toml: d1_databases[0].binding: binding 'DB' is also defined in vars"),
        ('[[kv_namespaces]]\nbinding = "my-kv"\n',
         "wrangler.toml: kv_namespaces[0].binding: expected an identifier, got 'my-kv'"),
        ('[[services]]\nbinding = "S"\n',
         "wrangler.toml: services[0].service: required key missing"),
    ],
)
def test_a_bad_binding_is_a_config_error_naming_its_key(tmp_path: Path, toml: str, message: str) -> None:
    root = project(tmp_path, head() + textwrap.indent(toml, "    "))
    with pytest.raises(ConfigError, match=exact(message)):
        load_config(root)


def test_bindings_are_not_inherited_by_an_environment_but_assets_are(tmp_path: Path) -> None:
    root = project(tmp_path, head() + """
        [[kv_namespaces]]
        binding = "KV"

        [assets]
        directory = "public"

        [env.staging.vars]
        X = "1"
    """)
    with pytest.warns(ConfigWarning, match="kv_namespaces is set at the top level but not in env.staging"):
        staging = load_config(root, env="staging")
    assert staging.kv_namespaces == () and staging.assets is not None


def test_an_environment_declares_its_own_bindings(tmp_path: Path) -> None:
    root = project(tmp_path, head() + """
        [[kv_namespaces]]
        binding = "KV"
        id = "prod"

        [[env.staging.kv_namespaces]]
        binding = "KV"
        id = "staging"
    """)
    assert load_config(root).kv_namespaces[0].storage_key == "prod"
    assert load_config(root, env="staging").kv_namespaces[0].storage_key == "staging"


def test_every_unsupported_kind_warns_with_the_binding_name(tmp_path: Path) -> None:
    root = project(tmp_path, head() + """
        ai = { binding = "AI" }
        [[vectorize]]
        binding = "INDEX"
        index_name = "i"
        [[send_email]]
        name = "MAIL"
    """)
    with pytest.warns(ConfigWarning) as caught:
        config = load_config(root)
    assert sorted(str(w.message) for w in caught) == [
        "wrangler.toml: ai: ai binding 'AI' is not provided by dohost; env.AI raises when used",
        "wrangler.toml: send_email[0]: send_email binding 'MAIL' is not provided by dohost; env.MAIL raises when used",
        "wrangler.toml: vectorize[0]: vectorize binding 'INDEX' is not provided by dohost; env.INDEX raises when used",
    ]
    assert {(b.name, b.kind) for b in config.unsupported_bindings} == {
        ("AI", "ai"), ("INDEX", "vectorize"), ("MAIL", "send_email")}


# --------------------------------------------------------------------- env
async def test_open_runtime_puts_each_binding_in_env(tmp_path: Path) -> None:
    root = project(tmp_path / "app", head() + """
        [[kv_namespaces]]
        binding = "KV"
        [[d1_databases]]
        binding = "DB"
        [[r2_buckets]]
        binding = "BUCKET"
        [[queues.producers]]
        binding = "JOBS"
        queue = "jobs"
    """)
    with pytest.warns(ConfigWarning, match="queues binding 'JOBS'"):
        async with open_runtime(config=root, data_dir=tmp_path / "state") as rt:
            assert isinstance(rt.env.KV, KVNamespace)
            assert isinstance(rt.env.DB, D1Database) and isinstance(rt.env.BUCKET, R2Bucket)
            await rt.env.KV.put("k", "v")
            with pytest.raises(UnsupportedBindingError, match=exact(
                "env.JOBS: this queues binding is not provided by dohost (it runs Durable Objects, Workers KV, D1,"
                " R2, static assets and service bindings); use it on Cloudflare, or replace it in tests"
            )):
                await rt.env.JOBS.send({"job": 1})
            with pytest.raises(UnsupportedBindingError):
                rt.env.JOBS()
    files = sorted(p.relative_to(tmp_path / "state").parts[:2] for p in (tmp_path / "state").rglob("*.sqlite"))
    assert ("bindings", "kv") in files


async def test_storage_is_kept_under_the_data_directory_across_runtimes(tmp_path: Path) -> None:
    root = project(tmp_path / "app", head() + '[[kv_namespaces]]\nbinding = "KV"\nid = "n1"\n')
    async with open_runtime(config=root, data_dir=tmp_path / "state") as rt:
        await rt.env.KV.put("k", "kept")
    async with open_runtime(config=root, data_dir=tmp_path / "state") as rt:
        assert await rt.env.KV.get("k") == "kept"


AUTH_PY = """\
from workers import WorkerEntrypoint, Response


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("auth says hi to " + request.url + " with " + self.env.SECRET_NAME)


class Sessions(WorkerEntrypoint):
    async def check(self, token):
        return {"token": token, "ok": token == "good", "kv": await self.env.SESSIONS.get(token)}
"""

MAIN_PY = """\
from workers import WorkerEntrypoint, Response


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/rpc"):
            result = await self.env.SESSIONS_RPC.check("good")
            return Response.json(result)
        return await self.env.AUTH.fetch("http://auth/hello")
"""


async def test_a_service_binding_fetches_and_calls_another_worker_in_the_process(tmp_path: Path) -> None:
    auth = project(tmp_path / "auth", head("auth", "auth") + """
        [vars]
        SECRET_NAME = "auth-vars"
        [[kv_namespaces]]
        binding = "SESSIONS"
        id = "sessions"
    """, AUTH_PY, "auth")
    main = project(tmp_path / "main", head("main", "main_entry") + """
        [[services]]
        binding = "AUTH"
        service = "auth"
        [[services]]
        binding = "SESSIONS_RPC"
        service = "auth"
        entrypoint = "Sessions"
        [[kv_namespaces]]
        binding = "SAME_SESSIONS"
        id = "sessions"
    """, MAIN_PY, "main_entry")
    async with open_runtime(config=[main, auth], data_dir=tmp_path / "state") as rt:
        assert await (await rt.fetch("http://main/")).text() == "auth says hi to http://auth/hello with auth-vars"
        await rt.env.SAME_SESSIONS.put("good", "shared namespace")
        assert await (await rt.fetch("http://main/rpc")).json() == {
            "token": "good", "ok": True, "kv": "shared namespace"}


async def test_a_service_binding_to_a_worker_not_loaded_says_how_to_load_it(tmp_path: Path) -> None:
    main = project(tmp_path / "main", head() + '[[services]]\nbinding = "AUTH"\nservice = "auth"\n')
    async with open_runtime(config=main, data_dir=tmp_path / "state") as rt:
        with pytest.raises(ServiceBindingError, match=r"^env\.AUTH: Worker 'auth' is not loaded in this process"):
            await rt.env.AUTH.fetch("http://auth/")


# ---------------------------------------------------------- dev vars, reset
def test_dev_vars_are_read_as_dotenv_and_the_environment_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dev.vars").write_text('API_KEY="local key"\n# a comment\nEMPTY=\n')
    assert load_dev_vars(tmp_path) == {"API_KEY": "local key", "EMPTY": ""}
    (tmp_path / ".dev.vars.staging").write_text("API_KEY=staging\n")
    assert load_dev_vars(tmp_path, "staging") == {"API_KEY": "staging"}
    assert load_dev_vars(tmp_path / "nowhere") == {}


async def test_the_harness_reset_empties_kv_d1_and_r2(tmp_path: Path) -> None:
    root = project(tmp_path / "app", head() + """
        [[kv_namespaces]]
        binding = "KV"
        [[d1_databases]]
        binding = "DB"
        [[r2_buckets]]
        binding = "BUCKET"
    """)
    prepared = ProjectSource.load(root).prepare(tmp_path / "state")
    async with open_harness(prepared) as harness:
        env = harness.env
        await env.KV.put("k", "v")
        await env.DB.exec("CREATE TABLE t (x)")
        await env.BUCKET.put("o", "x")
        await harness.reset()
        assert await env.KV.get("k") is None
        assert await env.BUCKET.head("o") is None
        assert (await env.DB.prepare("SELECT name FROM sqlite_master WHERE name = 't'").all()).results == []


async def test_a_deployment_rebuilds_its_bindings_on_the_real_data_directory(tmp_path: Path) -> None:
    from wrangler_compat.config._loading import prepare_project

    root = project(tmp_path / "app", head() + '[vars]\nTOKEN = "from vars"\n[[kv_namespaces]]\nbinding = "KV"\n')
    (root / ".dev.vars").write_text("TOKEN=from dev vars\n")
    state = tmp_path / "state"
    deployment = prepare_project(root, env_name=None, data_dir=state, dev_vars=True)
    assert not (state / "bindings").exists()  # checking a project writes nothing
    async with open_runtime(data_dir=state, **deployment.runtime_options(state)) as rt:
        assert rt.env.TOKEN == "from dev vars"
        await rt.env.KV.put("k", "v")
    assert list((state / "bindings" / "kv").glob("*.sqlite"))
    served = prepare_project(root, env_name=None, data_dir=state)  # dohost serve: no .dev.vars
    async with open_runtime(data_dir=state, **served.runtime_options(state)) as rt:
        assert rt.env.TOKEN == "from vars" and await rt.env.KV.get("k") == "v"


GATED_PY = """\
from workers import DurableObject


class Writer(DurableObject):
    async def write_then_mirror(self, value):
        self.ctx.storage.kv.put("value", value)
        await self.env.MIRROR.put("value", value)
        return "mirrored"
"""


async def test_a_binding_call_from_an_object_waits_for_its_writes_to_commit(tmp_path: Path, call_log) -> None:  # type: ignore[no-untyped-def]
    root = project(tmp_path / "app", head() + """
        [[kv_namespaces]]
        binding = "MIRROR"
        [[durable_objects.bindings]]
        name = "W"
        class_name = "Writer"
    """, GATED_PY)
    async with open_runtime(config=root, data_dir=tmp_path / "state", observer=call_log) as rt:
        stub = rt.env.W.getByName("w")
        assert await stub.write_then_mirror("one") == "mirrored"
        assert await rt.env.MIRROR.get("value") == "one"
        call_log.fail_next_commits = 1
        with pytest.raises(Exception, match="injected commit failure"):
            await stub.write_then_mirror("two")
        # The commit failed before the KV write could leave the object: KV never saw "two".
        assert await rt.env.MIRROR.get("value") == "one"
