"""``dohost serve --cluster ...``: the flags are checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wrangler_compat.cli import main


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--node-id", "a"], "serve: --node-id and --advertise only apply with --cluster URLS (the etcd endpoints)"),
        (["--cluster", "http://127.0.0.1:1"], "serve: --cluster needs --node-id ID (unique in the cluster)"),
        (["--cluster", "etcd:2379", "--node-id", "a"], "serve: --cluster: expected comma-separated http:// URLs of etcd, got 'etcd:2379'"),
        (["--cluster", "http://127.0.0.1:1", "--node-id", "a", "--advertise", "host:1"],
         "serve: --advertise: expected an http:// URL other nodes can reach, got 'host:1'"),
        (["--cluster", "http://127.0.0.1:1", "--node-id", "a", "--lease-ttl", "1"],
         "serve: --lease-ttl: expected at least 2 seconds, got 1"),
    ],
)
def test_bad_cluster_flags_are_refused_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["serve", "--data-dir", str(tmp_path / "data"), *extra])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == f"dohost: error: {message}"
    assert not (tmp_path / "data").exists()
