"""Fixtures shared by every suite: keep this file small.

``call_log`` is a fake :class:`runtime.RuntimeObserver` that records what the
host did, in order, so a test can assert the sequence of external effects
(workerd's ``pollAndExpectCalls``): ``("commit", binding)``,
``("activate", binding)``, ``("evict", binding)``, ``("reset", binding,
message)``. Tests append their own entries to ``call_log.calls`` to interleave
what the caller saw. ``fail_next_commits`` makes the next N commits fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class CallLog:
    """A RuntimeObserver that records calls; see the module docstring."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_next_commits = 0

    def before_commit(self, key: tuple[str, str]) -> None:
        if self.fail_next_commits:
            self.fail_next_commits -= 1
            self.calls.append(("commit-failed", key[0]))
            raise OSError("injected commit failure")
        self.calls.append(("commit", key[0]))

    def on_activate(self, key: tuple[str, str]) -> None:
        self.calls.append(("activate", key[0]))

    def on_evict(self, key: tuple[str, str]) -> None:
        self.calls.append(("evict", key[0]))

    def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
        self.calls.append(("reset", key[0], str(error)))

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
