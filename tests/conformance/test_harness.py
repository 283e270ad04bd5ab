"""The harness itself: installing workerd never silently skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import _workerd
from ._workerd import WorkerdUnavailable, workerd_binary


def test_missing_node_or_npm_fails_saying_how_to_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOHOST_TEST_CACHE", str(tmp_path))
    monkeypatch.setattr(_workerd.shutil, "which", lambda name: None)
    with pytest.raises(WorkerdUnavailable, match=r"need Node\.js and npm .* install them"):
        workerd_binary()


def test_an_installed_binary_is_reused_without_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOHOST_TEST_CACHE", str(tmp_path))
    binary = tmp_path / f"workerd-{_workerd.WORKERD_VERSION}" / _workerd.platform_binary()
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setattr(_workerd.shutil, "which", lambda name: None)  # npm is never asked
    assert workerd_binary() == binary
