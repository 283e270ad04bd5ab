"""Every example's own test suite passes, run as its user would run it.

Each folder under ``examples/`` is a complete project (wrangler file, Worker,
``pytest.ini``, tests). Its suite runs in a subprocess with the example
folder as the working directory — ``python -m pytest`` there, exactly what
the example's README would say — so pytest's rootdir is the example and the
dohost plugin finds the wrangler file from it, with nothing from this
repository's configuration in between.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WRANGLER_FILES = ("wrangler.toml", "wrangler.jsonc", "wrangler.json")
#: At least this many tests must pass per example (a suite that silently
#: collects fewer has lost tests); an example not listed needs one.
MIN_PASSED = {"alarms": 3, "chat": 6, "counter": 5, "livestore_sync": 58, "objectql_sync": 62, "sql": 4, "todos": 21, "workersql": 20}
#: Real seconds one example's suite may take (it takes about one).
TIMEOUT_S = 120

pytestmark = pytest.mark.slow


def example_folders() -> list[str]:
    return sorted(
        p.name for p in EXAMPLES.iterdir() if p.is_dir() and any((p / name).exists() for name in WRANGLER_FILES)
    )


def test_every_listed_example_exists() -> None:
    assert set(MIN_PASSED) <= set(example_folders())


@pytest.mark.parametrize("example", example_folders())
def test_the_example_suite_passes_when_run_from_its_folder(example: str) -> None:
    # The parent session's variables (PYTEST_CURRENT_TEST, PYTEST_ADDOPTS, ...) are not the user's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLES / example,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    passed = re.search(r"\b(\d+) passed\b", summary)
    assert passed is not None, output
    assert int(passed.group(1)) >= MIN_PASSED.get(example, 1), output
    assert not re.search(r"\b(failed|errors?|skipped|xfailed)\b", summary), output
