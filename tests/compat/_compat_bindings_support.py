"""Small Python Workers projects using one binding kind each, written as Cloudflare's docs write them.

Each ``write_*`` function writes a project (``wrangler.toml`` or
``wrangler.jsonc`` plus ``src/entry.py``) into a folder and returns it.
:func:`run_plugin` runs a test file against a project through the dohost
pytest plugin (pytester, in process); :func:`dev` is the ``dohost dev``
command line for a project, run with ``tests/e2e``'s :func:`run_dohost`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


from _e2e_support import run_dohost  # noqa: E402

__all__ = ["run_dohost", "dev", "write", "run_plugin"]

INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def dev(state: Path, *configs: Path, extra: tuple[str, ...] = ()) -> list[str]:
    argv = ["dohost", "dev", "--port", "0", "--persist-to", str(state)]
    for config in configs:
        argv += ["--config", str(config)]
    return argv + list(extra)


def run_plugin(
    pytester: pytest.Pytester, project: Path, tests: str, *, ini_extra: str = "", filterwarnings: str = "error"
) -> pytest.RunResult:
    """Run ``tests`` (a test module's source) with the dohost fixture on ``project``."""
    ini = INI.replace("filterwarnings = error\n", f"filterwarnings =\n    {filterwarnings}\n".replace("; ", "\n    "))
    (pytester.path / "pytest.ini").write_text(ini + f"dohost_config = {project}\n" + ini_extra)
    pytester.makepyfile(test_user=textwrap.dedent(tests))
    return pytester.runpytest()
