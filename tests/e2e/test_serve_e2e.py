"""``dohost serve`` as the Docker image runs it: deploy, redeploy, a bad deploy, rollback, SIGTERM."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from _e2e_support import (
    EXAMPLES,
    HEALTH_PATH,
    SERVE_COMMAND,
    dockerfile_healthcheck_argv,
    resolve_command,
    run_dohost,
)

pytestmark = pytest.mark.slow

TOKEN = "e2e-secret-token"


async def dohost_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run a short ``dohost`` command (deploy, rollback) to completion."""
    with trio.fail_after(30):
        return await trio.run_process(
            resolve_command(["dohost", *args]), capture_stdout=True, capture_stderr=True, check=False
        )


def counter_project(root: Path, prefix: str = "") -> Path:
    """A copy of the counter example whose Worker prefixes its answers."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(EXAMPLES / "counter", root, ignore=shutil.ignore_patterns(".dohost", "__pycache__"))
    entry = root / "src" / "entry.py"
    source = entry.read_text()
    if prefix:
        source = source.replace("return Response(str(await stub.increment()))",
                                f"return Response({prefix!r} + str(await stub.increment()))")
        assert prefix in source
    entry.write_text(source)
    return root


async def test_serve_deploys_redeploys_refuses_a_bad_upload_and_rolls_back(tmp_path: Path) -> None:
    env = {"DOHOST_DATA_DIR": str(tmp_path / "data"), "DOHOST_LISTEN": "127.0.0.1:0", "DOHOST_TOKEN": TOKEN}
    async with run_dohost(SERVE_COMMAND, env=env) as proc:
        url = proc.url
        ready = json.loads(proc.lines[[i for i, l in enumerate(proc.lines) if "Ready on" in l][0]])
        assert ready["event"] == "listening" and ready["url"] == url

        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get(HEALTH_PATH)).status_code == 200
            # The image's HEALTHCHECK command itself, pointed at this server, passes.
            probe = dockerfile_healthcheck_argv(urlsplit(url).port or 0)
            with trio.fail_after(15):
                checked = await trio.run_process([sys.executable, *probe[1:]], check=False)
            assert probe[0] == "python" and checked.returncode == 0
            assert (await client.get("/a")).status_code == 503  # nothing deployed yet

            v1 = counter_project(tmp_path / "v1")
            done = await dohost_cli("deploy", "--config", str(v1), "--to", url, "--token", TOKEN)
            assert done.returncode == 0, done.stderr.decode()
            assert b"Deployed version 1" in done.stdout
            assert [(await client.get("/a")).text for _ in range(2)] == ["1", "2"]

            v2 = counter_project(tmp_path / "v2", prefix="v2:")
            done = await dohost_cli("deploy", "--config", str(v2), "--to", url, "--token", TOKEN)
            assert done.returncode == 0, done.stderr.decode()
            assert (await client.get("/a")).text == "v2:3"  # new code, same storage

            # A bad upload changes nothing.
            broken = counter_project(tmp_path / "broken")
            (broken / "src" / "entry.py").write_text("class Counter(:\n")
            done = await dohost_cli("deploy", "--config", str(broken), "--to", url, "--token", TOKEN)
            assert done.returncode == 1 and b"SyntaxError" in done.stderr
            wrong = await dohost_cli("deploy", "--config", str(v1), "--to", url, "--token", "nope")
            assert wrong.returncode == 1 and b"401" in wrong.stderr
            assert (await client.get("/a")).text == "v2:4"

            done = await dohost_cli("rollback", "--to", url, "--token", TOKEN)
            assert done.returncode == 0, done.stderr.decode()
            assert b"version 1" in done.stdout
            assert (await client.get("/a")).text == "5"

            listing = await client.get("/__dohost/deploys", headers={"Authorization": f"Bearer {TOKEN}"})
            assert listing.json()["current"] == 1
            assert [v["version"] for v in listing.json()["versions"]] == [1, 2]

        assert await proc.terminate() == 0
        await proc.wait_for(r'"event": "stopped"')
        assert all(json.loads(line) for line in proc.lines if line.strip())  # every line is JSON

    # A restarted server runs the current (rolled-back) version, with its data.
    async with run_dohost(SERVE_COMMAND, env=env) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/a")).text == "6"


async def test_serve_drains_a_request_in_flight_on_sigterm(tmp_path: Path) -> None:
    project = counter_project(tmp_path / "slow")
    entry = project / "src" / "entry.py"
    source = entry.read_text()
    slow = source.replace(
        "        return Response(str(await stub.increment()))",
        "        n = await stub.increment()\n        import trio\n        await trio.sleep(1.0)\n"
        "        return Response(str(n))",
    )
    assert slow != source
    entry.write_text(slow)
    argv = ["dohost", "serve", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
            "--config", str(project)]
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url, timeout=10) as client:
            answers: list[str] = []

            async def slow_request() -> None:
                answers.append((await client.get("/a")).text)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_request)
                await proc.wait_for(r"activated COUNTER")  # the request is inside the Worker
                proc.process.send_signal(15)
            assert answers == ["1"]
        with trio.fail_after(15):
            assert await proc.process.wait() == 0
