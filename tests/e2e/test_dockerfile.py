"""The Dockerfile runs what the e2e serve tests run, checked as text (test_container.py builds and runs it)."""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from _e2e_support import HEALTH_PATH, REPO, SERVE_COMMAND, dockerfile_instructions
from wrangler_compat.cli import build_parser


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


# --- deploy/compose.yaml: a 3-node cluster on a 3-member etcd -------------------------

COMPOSE = REPO / "deploy" / "compose.yaml"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services(prefix: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _compose()["services"].items() if name.startswith(prefix)}


def test_the_compose_etcd_members_form_one_three_member_cluster() -> None:
    members = _services("etcd")
    assert len(members) == 3
    initial = set()
    for name, service in members.items():
        env = service["environment"]
        assert env["ETCD_NAME"] == name
        assert env["ETCD_ADVERTISE_CLIENT_URLS"] == f"http://{name}:2379"
        assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == f"http://{name}:2380"
        initial.add(env["ETCD_INITIAL_CLUSTER"])
        assert service["healthcheck"]["test"][0] == "CMD"
        assert service["volumes"] == [f"{name}-data:/etcd-data"] and env["ETCD_DATA_DIR"] == "/etcd-data"
    assert initial == {",".join(f"{n}=http://{n}:2380" for n in sorted(members))}


def _serve_options() -> set[str]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices["serve"]._option_string_actions)


def test_the_compose_dohost_nodes_run_the_image_with_every_etcd_member_and_their_own_id() -> None:
    etcd = _services("etcd")
    nodes = _services("dohost")
    assert len(nodes) == 3
    port = _env()["DOHOST_LISTEN"].rpartition(":")[2]
    ids, published = set(), set()
    for name, service in nodes.items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO and build["dockerfile"] == "Dockerfile"
        assert service["volumes"] == [f"dohost-data:{json.loads(_one('VOLUME'))[0]}"]  # one shared data dir
        assert service["environment"]["DOHOST_TOKEN"].startswith("${DOHOST_TOKEN:?")  # never a literal
        assert set(service["depends_on"]) == set(etcd)
        assert all(d["condition"] == "service_healthy" for d in service["depends_on"].values())
        (mapping,) = service["ports"]
        host, host_port, container_port = mapping.split(":")
        assert host == "127.0.0.1" and container_port == port
        published.add(host_port)
        args = dict(zip(service["command"][::2], service["command"][1::2]))
        assert set(args) == {"--cluster", "--node-id", "--advertise"}
        assert args["--cluster"].split(",") == [etcd[m]["environment"]["ETCD_ADVERTISE_CLIENT_URLS"] for m in etcd]
        assert args["--advertise"] == f"http://{name}:{port}"
        ids.add(args["--node-id"])
    assert len(ids) == 3 and len(published) == 3


def test_the_compose_dohost_commands_parse_as_dohost_serve_options() -> None:
    if "--cluster" not in _serve_options():
        pytest.skip("`dohost serve --cluster` is not in this checkout yet (it arrives with the cluster mode)")
    for service in _services("dohost").values():
        ns = build_parser().parse_args(["serve", *service["command"]])
        assert ns.cluster and ns.node_id and ns.advertise
