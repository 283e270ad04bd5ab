"""The Dockerfile built with podman and run: serve, deploy into it, healthcheck, restart on its volume.

The base image the Dockerfile names is built from Debian's packages where no
registry is reachable, and cached (see ``_container_support``); the first run
takes about two minutes, later runs seconds.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trio

from _container_support import (
    build_image,
    checkout_tag,
    ensure_base,
    ensure_wheels,
    limits_flags,
    podman,
    podman_argv,
    podman_ok,
    podman_ready,
    setup_lock,
)
from _e2e_support import HEALTH_PATH, run_dohost
from test_serve_e2e import counter_project, dohost_cli

pytestmark = pytest.mark.slow

TOKEN = "container-secret-token"


@pytest.fixture(scope="module")
def image() -> str:
    """The checkout's Dockerfile built and tagged for this checkout (base and wheels from the cache)."""
    started = time.monotonic()
    tag = checkout_tag()
    with setup_lock():
        podman_ready()
        how = ensure_base()
        wheels = ensure_wheels()
        build_image(tag, wheels)
    print(f"image {tag}: base {how}; ready in {time.monotonic() - started:.0f} s")
    return tag


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A unique (container name, volume name), both removed afterwards."""
    suffix = uuid.uuid4().hex[:10]
    container, volume = f"dohost-test-{suffix}", f"dohost-test-data-{suffix}"
    yield container, volume
    podman("rm", "--force", "--time", "1", container)
    podman("volume", "rm", "--force", volume)


def run_argv(image: str, container: str, *extra: str) -> list[str]:
    """``podman run`` of the image in the foreground (signals reach dohost), port published on loopback."""
    return podman_argv("run", "--rm", "--name", container, *limits_flags(), "-p", "127.0.0.1::8787", *extra, image)


async def published_url(container: str) -> str:
    with trio.fail_after(30):
        line = await trio.to_thread.run_sync(lambda: podman_ok("port", container, "8787/tcp"))
    return "http://" + line.strip().splitlines()[0]


async def healthcheck(container: str) -> tuple[int, str]:
    """The image's HEALTHCHECK run by the engine, and the health status it records."""
    with trio.fail_after(60):
        done = await trio.to_thread.run_sync(lambda: podman("healthcheck", "run", container))
        status = await trio.to_thread.run_sync(
            lambda: podman_ok("inspect", "--format", "{{.State.Health.Status}}", container)
        )
    return done.returncode, status.strip()


async def test_the_image_refuses_to_serve_beyond_loopback_without_a_token_and_runs_unprivileged(
    image: str, names: tuple[str, str]
) -> None:
    container, _ = names
    with trio.fail_after(60):
        refused = await trio.to_thread.run_sync(
            lambda: podman("run", "--rm", "--name", container, *limits_flags(), image)
        )
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a deploy token" in refused.stderr + refused.stdout
    probe = "import os, sys; print(os.getuid(), sys.version_info >= (3, 11), os.getcwd())"
    with trio.fail_after(60):
        who = await trio.to_thread.run_sync(
            lambda: podman_ok("run", "--rm", *limits_flags(), "--entrypoint", "python", image, "-c", probe)
        )
    assert who.split() == ["10001", "True", "/data"]


async def test_the_image_serves_a_deploy_reports_healthy_and_keeps_its_data_across_a_restart(
    image: str, names: tuple[str, str], tmp_path: Path
) -> None:
    container, volume = names
    argv = run_argv(image, container, "-v", f"{volume}:/data", "-e", f"DOHOST_TOKEN={TOKEN}")
    project = counter_project(tmp_path / "counter")

    async with run_dohost(argv) as proc:
        assert proc.url == "http://0.0.0.0:8787"  # DOHOST_LISTEN of the image
        url = await published_url(container)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get(HEALTH_PATH)).status_code == 200
            assert await healthcheck(container) == (0, "healthy")
            assert (await client.get("/a")).status_code == 503  # nothing deployed yet

            done = await dohost_cli("deploy", "--config", str(project), "--to", url, "--token", TOKEN)
            assert done.returncode == 0, done.stderr.decode()
            assert b"Deployed version 1" in done.stdout
            assert [(await client.get("/a")).text for _ in range(3)] == ["1", "2", "3"]
            assert (await client.get("/b")).text == "1"
            wrong = await dohost_cli("deploy", "--config", str(project), "--to", url, "--token", "nope")
            assert wrong.returncode == 1 and b"401" in wrong.stderr

        # `podman run` passes SIGTERM on to dohost (the image's STOPSIGNAL): a clean stop.
        assert await proc.terminate(timeout=30) == 0
        await proc.wait_for(r'"event": "stopped"')

    # A new container of the image on the same volume: the deployed Worker and its objects' data.
    async with run_dohost(argv) as proc:
        url = await published_url(container)
        async with httpx.AsyncClient(base_url=url) as client:
            assert [(await client.get("/a")).text for _ in range(2)] == ["4", "5"]
            assert (await client.get("/b")).text == "2"
            listing = await client.get("/__dohost/deploys", headers={"Authorization": f"Bearer {TOKEN}"})
            assert listing.json()["current"] == 1
            assert await healthcheck(container) == (0, "healthy")
        assert await proc.terminate(timeout=30) == 0
    assert json.loads(podman_ok("volume", "inspect", volume))[0]["Name"] == volume
