"""The README's compatibility table matches the platform modules it describes."""

from __future__ import annotations

import re
from pathlib import Path

from wrangler_compat.platform import platform_modules
from wrangler_compat.platform._compat_table import SECTIONS, readme_block, render

ROOT = Path(__file__).resolve().parents[2]


def _named() -> set[str]:
    return {name for rows in SECTIONS.values() for row in rows for name in re.findall(r"`([^`]+)`", row.names)}


def test_readme_holds_exactly_the_generated_table() -> None:
    assert readme_block((ROOT / "README.md").read_text()) == render()


def test_every_public_name_of_the_platform_modules_has_a_row() -> None:
    named = _named()
    missing = []
    for label, module in platform_modules().items():
        if label == "asgi":
            continue  # the same module as workers.asgi
        for name in getattr(module, "__all__", ()):
            if isinstance(getattr(module, name, None), type(module)) or name in ("install_modules",):
                continue  # submodules have rows of their own
            if f"{label}.{name}" not in named and name not in ("build_environ", "process_request", "request_to_scope"):
                missing.append(f"{label}.{name}")
    assert missing == []


def test_every_refused_name_has_a_row_saying_what_is_missing() -> None:
    from wrangler_compat.platform import js

    rows = [row for rows in SECTIONS.values() for row in rows]
    for name in js.NOT_PROVIDED:
        row = next(r for r in rows if f"`js.{name}`" in r.names)
        assert row.missing, name
