"""The README's promises that the repository itself can check."""

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
