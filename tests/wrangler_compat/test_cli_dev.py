"""What ``dohost dev`` (and ``serve``) build on, in-process: swapping code behind the front, and the watcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from objects import Request, Response
from wrangler_compat.cli._dev import snapshot
from wrangler_compat.cli._hosting import open_runtime_host
from wrangler_compat.config._loading import Deployment


def answering(text: str, gate: trio.Event | None = None) -> Deployment:
    """Code whose Worker answers ``text`` (after ``gate``, when given)."""

    async def on_fetch(request: Any) -> Any:
        if gate is not None:
            await gate.wait()
        return Response(text)

    return Deployment(label=text, entrypoint=on_fetch)


async def fetch_text(host: Any, results: list[str]) -> None:
    response = await host.fetch_worker(Request("http://dev.test/"))
    results.append(await response.text())


async def test_a_request_arriving_during_a_swap_waits_for_the_new_code(tmp_path: Path) -> None:
    release_old = trio.Event()
    async with open_runtime_host(data_dir=tmp_path, drain_timeout=30) as host:
        await host.start(answering("old", release_old))
        results: list[str] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch_text, host, results)  # in flight in the old code
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(host.swap, answering("new"))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(fetch_text, host, results)  # arrives mid-swap: waits
            await trio.testing.wait_all_tasks_blocked()
            assert results == [] and host.swaps == 0  # the swap waits for the old request
            release_old.set()
        assert results == ["old", "new"] and host.swaps == 1


async def test_a_stuck_request_delays_a_swap_only_until_the_drain_timeout(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_runtime_host(data_dir=tmp_path, drain_timeout=5) as host:
        await host.start(answering("stuck", trio.Event()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch_text, host, [])
            await trio.testing.wait_all_tasks_blocked()
            started = trio.current_time()
            await host.swap(answering("new"))
            assert trio.current_time() - started == pytest.approx(5, abs=0.1)
            nursery.cancel_scope.cancel()
        results: list[str] = []
        await fetch_text(host, results)
        assert results == ["new"]


class Unstartable(Deployment):
    def runtime_options(self, data_dir: Path) -> dict[str, Any]:
        raise OSError("disk on fire")


async def test_when_new_code_cannot_start_the_previous_code_is_restarted(tmp_path: Path) -> None:
    async with open_runtime_host(data_dir=tmp_path) as host:
        await host.start(answering("old"))
        with pytest.raises(OSError, match=r"^disk on fire$"):
            await host.swap(Unstartable(label="bad"))
        results: list[str] = []
        await fetch_text(host, results)
        assert results == ["old"] and host.deployment is not None and host.deployment.label == "old"


def test_the_watcher_sees_sources_and_the_wrangler_file_but_not_state_or_caches(tmp_path: Path) -> None:
    files = ["wrangler.toml", "src/entry.py", "src/lib/util.py", "notes.md", ".dohost/state/x.py",
             "src/__pycache__/entry.cpython-311.py", ".venv/lib/site.py", "node_modules/x.py"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    seen = snapshot(tmp_path, tmp_path / "wrangler.toml")
    assert sorted(str(p.relative_to(tmp_path)) for p in seen) == ["src/entry.py", "src/lib/util.py", "wrangler.toml"]

    before = dict(seen)
    (tmp_path / "src" / "entry.py").write_text("x = 22\n")
    after = snapshot(tmp_path, tmp_path / "wrangler.toml")
    assert [p.name for p in after if after[p] != before[p]] == ["entry.py"]


def test_the_watcher_sees_dev_vars_files(tmp_path: Path) -> None:
    for name in ["wrangler.toml", ".dev.vars", ".dev.vars.staging"]:
        (tmp_path / name).write_text("X=1\n")
    seen = snapshot(tmp_path, tmp_path / "wrangler.toml")
    assert sorted(p.name for p in seen) == [".dev.vars", ".dev.vars.staging", "wrangler.toml"]


async def test_a_worker_that_raises_or_calls_sys_exit_gets_a_500_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    from runtime._http import build_app

    async def on_fetch(request: Any) -> Any:
        if request.url.endswith("/exit"):
            raise SystemExit(3)
        if request.url.endswith("/raise"):
            raise ValueError("user bug")
        return Response("fine")

    async with open_runtime_host(data_dir=tmp_path) as host:
        await host.start(Deployment(label="t", entrypoint=on_fetch))
        transport = httpx.ASGITransport(app=build_app(lambda: host))
        async with httpx.AsyncClient(transport=transport, base_url="http://dev.test") as client:
            assert (await client.get("/exit")).status_code == 500
            assert (await client.get("/raise")).status_code == 500
            assert (await client.get("/")).text == "fine"
    errors = [r for r in caplog.records if r.name == "dohost.http"]
    assert [r.exc_info[0] for r in errors if r.exc_info] == [SystemExit, ValueError]


async def test_the_host_gives_its_pitr_retention_to_every_runtime_it_opens(tmp_path: Path) -> None:
    async with open_runtime_host(data_dir=tmp_path, pitr_retention_ms=0) as host:
        await host.start(answering("v1"))
        assert host.runtime.pitr_retention_ms == 0
        await host.swap(answering("v2"))
        assert host.runtime.pitr_retention_ms == 0
