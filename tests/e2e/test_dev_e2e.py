"""``dohost dev`` as a subprocess, over real sockets: requests, errors, limits, reload."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from _e2e_support import EXAMPLES, run_dohost
from _lab_project import write_lab

pytestmark = pytest.mark.slow


def dev(config: Path, state: Path, *extra: str) -> list[str]:
    return ["dohost", "dev", "--config", str(config), "--port", "0", "--persist-to", str(state), *extra]


async def test_dev_serves_the_counter_example_through_its_worker(tmp_path: Path) -> None:
    async with run_dohost(dev(EXAMPLES / "counter", tmp_path / "state")) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert [(await client.get("/a")).text for _ in range(3)] == ["1", "2", "3"]
            assert (await client.get("/b")).text == "1"
            assert (await client.get("/a/get")).text == "3"
            health = await client.get("/__dohost/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
        await proc.wait_for(r"GET /a/get 200 \(")
        assert proc.find(r"activated COUNTER 'a'") and proc.find(r"activated COUNTER 'b'")
    # The data survived the process: a new one continues the count.
    async with run_dohost(dev(EXAMPLES / "counter", tmp_path / "state")) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/a")).text == "4"


async def test_dev_routes_to_objects_by_default_refuses_big_bodies_and_survives_errors(tmp_path: Path) -> None:
    config = write_lab(tmp_path / "lab")
    async with run_dohost(dev(config, tmp_path / "state", "--max-body-bytes", "1000")) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/LAB/x/")).text == "v1"
            assert (await client.get("/NOPE/x/")).status_code == 404

            too_big = await client.post("/LAB/big/put", content=b"x" * 2000)
            assert too_big.status_code == 413
            assert (await client.post("/LAB/x/put", content=b"y" * 1000)).text == "stored"

            mark = proc.mark()
            boom = await client.get("/LAB/x/boom")
            assert boom.status_code == 500
            await proc.wait_for(r"RuntimeError: boom from the lab", after=mark)

            # Still serving, same object, data intact.
            assert (await client.get("/LAB/x/status")).json()["value"] == "y" * 1000
        # The refused body never reached user code: object "big" was never activated.
        assert proc.find(r"activated LAB 'x'") and not proc.find(r"activated LAB 'big'")


async def test_dev_reload_keeps_storage_and_a_pending_alarm(tmp_path: Path) -> None:
    config = write_lab(tmp_path / "lab", version=1)
    async with run_dohost(dev(config, tmp_path / "state")) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.post("/LAB/r/put", content="kept")).text == "stored"
            # Ten seconds for the watcher to see the change and the reload to finish
            # before the alarm is due (four were little on a starved machine).
            assert (await client.get("/LAB/r/alarm?ms=10000")).text == "alarm set"

            mark = proc.mark()
            write_lab(tmp_path / "lab", version=2)
            await proc.wait_for(r"reloaded in \d+ ms", after=mark)
            assert proc.find(r"src/worker.py", after=mark)

            status = (await client.get("/LAB/r/status")).json()
            assert status["version"] == 2 and status["value"] == "kept"
            assert status["fired"] in (None, 2)  # still pending (or just fired under the new code)
            # The alarm set under version 1 fires after the reload, under version 2.
            with trio.fail_after(30):
                while status["fired"] is None:
                    await trio.sleep(0.1)
                    status = (await client.get("/LAB/r/status")).json()
            assert status["fired"] == 2


async def test_dev_keeps_serving_the_previous_code_when_a_reload_fails(tmp_path: Path) -> None:
    config = write_lab(tmp_path / "lab", version=1)
    async with run_dohost(dev(config, tmp_path / "state")) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/LAB/x/")).text == "v1"
            mark = proc.mark()
            write_lab(tmp_path / "lab", source="def broken(:\n")
            await proc.wait_for(r"reload failed: .*still serving the previous version", after=mark)
            assert proc.find(r"SyntaxError", after=mark)
            assert (await client.get("/LAB/x/")).text == "v1"

            mark = proc.mark()
            write_lab(tmp_path / "lab", version=3)
            await proc.wait_for(r"reloaded in", after=mark)
            assert (await client.get("/LAB/x/")).text == "v3"
