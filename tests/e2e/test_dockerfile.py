"""The Dockerfile runs what the e2e serve tests run, checked as text (test_container.py builds and runs it)."""

from __future__ import annotations

import json
import re
import tomllib
from urllib.parse import urlsplit

from _e2e_support import HEALTH_PATH, REPO, SERVE_COMMAND, dockerfile_instructions


def _one(keyword: str) -> str:
    found = [args for k, args in dockerfile_instructions() if k == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {found!r}"
    return found[0]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", args))
    return env


def test_the_image_entry_command_is_the_serve_command_the_e2e_tests_run() -> None:
    entry = json.loads(_one("ENTRYPOINT"))
    cmd = [json.loads(a) for k, a in dockerfile_instructions() if k == "CMD"]
    assert entry + (cmd[0] if cmd else []) == SERVE_COMMAND


def test_the_image_serves_its_data_volume_on_the_exposed_port_with_a_token_required() -> None:
    env = _env()
    assert json.loads(_one("VOLUME")) == [env["DOHOST_DATA_DIR"]]
    host, _, port = env["DOHOST_LISTEN"].rpartition(":")
    assert host == "0.0.0.0" and _one("EXPOSE") == port
    assert "DOHOST_TOKEN" not in env  # never baked in: `serve` refuses 0.0.0.0 without one


def test_the_healthcheck_queries_the_health_endpoint_on_the_listening_port() -> None:
    args = _one("HEALTHCHECK")
    (url,) = re.findall(r"http://[^'\"\s]+", args)
    parts = urlsplit(url)
    assert parts.path == HEALTH_PATH
    assert str(parts.port) == _env()["DOHOST_LISTEN"].rpartition(":")[2]
    assert json.loads(args[args.index("CMD") + 3 :].strip())[0] == "python"


def test_the_image_runs_as_a_non_root_user_on_debians_slim_base_and_python() -> None:
    # A Debian base the image test can rebuild from Debian's packages (debootstrap).
    assert re.fullmatch(r"debian:[a-z]+-slim", _one("FROM"))
    assert _one("USER") not in ("root", "0")
    installs = " ".join(a for k, a in dockerfile_instructions() if k == "RUN")
    assert "apt-get install" in installs and "python3-venv" in installs
    # `python` (the HEALTHCHECK) and `dohost` (the ENTRYPOINT) come from the venv pip installs into.
    assert _env()["PATH"].startswith("/opt/dohost/bin:") and "python3 -m venv /opt/dohost" in installs


def test_pip_in_the_build_takes_its_index_settings_as_build_arguments_never_baked_in() -> None:
    args = {a for k, a in dockerfile_instructions() if k == "ARG"}
    assert {"PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"} <= args
    assert not args & set(_env())


def test_the_image_copies_every_package_that_pip_install_needs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {pattern.rstrip("*") for pattern in include}
    copied = {args.split()[0] for k, args in dockerfile_instructions() if k == "COPY"}
    assert top_level <= copied
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= set(
        " ".join(a for k, a in dockerfile_instructions() if k == "COPY").split()
    )
    assert any(k == "RUN" and "pip install ." in a for k, a in dockerfile_instructions())
