"""What the repository promises about itself: the README commands, the name table, strict typing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert ci in blocks


def test_readme_dev_command_runs_dohost_dev_on_an_example() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    dev = [b for b in blocks if "dohost dev" in b]
    assert dev and "examples/" in dev[0]
    config = dev[0].split("--config", 1)[1].split()[0]
    assert (ROOT / config / "wrangler.toml").exists()


def test_readme_lists_every_cloudflare_name_with_its_snake_case_twin() -> None:
    import objects  # noqa: F401  (importing registers every alias table)
    import runtime  # noqa: F401
    from persistence import ALL_ALIAS_TABLES

    readme = (ROOT / "README.md").read_text()
    missing = [
        f"{cls}: {camel}/{snake}"
        for cls, table in ALL_ALIAS_TABLES.items()
        for camel, snake in table.items()
        if f"`{camel}` / `{snake}`" not in readme
    ]
    assert missing == []


def test_every_alias_really_is_the_same_attribute() -> None:
    import importlib

    import objects  # noqa: F401
    import runtime  # noqa: F401
    from persistence import ALL_ALIAS_TABLES

    for qualname, table in ALL_ALIAS_TABLES.items():
        module, _, name = qualname.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        for camel, snake in table.items():
            assert getattr(cls, camel) is getattr(cls, snake), (qualname, camel)


def test_package_code_passes_strict_mypy() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
