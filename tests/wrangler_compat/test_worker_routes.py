"""Which Worker a request goes to when ``dohost serve`` hosts several (``wrangler_compat.cli._workers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cluster import ForwardingError, HashPlacement
from wrangler_compat.cli._workers import WorkerRouter, read_routes
from wrangler_compat.errors import ConfigError


def router(tmp_path: Path, files: dict[str, str], default: str | None = "main") -> WorkerRouter:
    routes = []
    for name, body in files.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "{name}"\n{body}')
        routes += read_routes(path, name, None)
    names: dict[str | None, str] = {None: "main", **{n: n for n in files if n != "main"}}
    return WorkerRouter(routes, {k: object() for k in names}, names, default)


def test_the_most_specific_route_wins_and_unmatched_requests_go_to_the_default_worker(tmp_path: Path) -> None:
    r = router(tmp_path, {
        "main": 'routes = ["*example.com/*"]\n',
        "api": 'route = "example.com/api/*"\n',
        "shop": 'routes = [{ pattern = "shop.example.com", custom_domain = true }]\n',
    })
    assert r.pick("http://example.com/api/x", "example.com:8787") == "api"
    assert r.pick("http://example.com/", "example.com") is None  # main, by its wildcard
    assert r.pick("http://x/", "shop.example.com") == "shop"
    assert r.pick("http://x/api/x", "shop.example.com") == "shop"
    assert r.pick("http://x/", "www.example.com") is None
    assert r.pick("http://x/", "other.test") is None


def test_an_unmatched_request_goes_to_the_named_default_when_there_is_no_main_route(tmp_path: Path) -> None:
    r = router(tmp_path, {"main": "", "b": 'routes = ["b.test/*"]\n'}, default="b")
    assert r.pick("http://x/", "nowhere.test") == "b"
    assert r.pick("http://x/y", "b.test") == "b"


def test_a_route_of_the_wrong_type_names_the_file_and_index(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('name = "w"\nroutes = ["ok.test/*", 7]\n')
    with pytest.raises(ConfigError, match=r"^w\.toml: routes\[1\]: expected a route pattern"):
        read_routes(path, "w", None)


def test_objects_are_split_by_their_id_modulo_the_number_of_processes() -> None:
    owners = [HashPlacement(0, 3).owner_of(f"{i:064x}") for i in range(9)]
    assert owners == [0, 1, 2] * 3
    with pytest.raises(ForwardingError, match=r"^process index: expected 0\.\.1, got 2$"):
        HashPlacement(2, 2)
