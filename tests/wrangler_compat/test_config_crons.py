"""``triggers.crons`` in wrangler files: read, inherited by environments, and bad expressions refused by key path."""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path

import pytest

from wrangler_compat.config._config import load_config
from wrangler_compat.errors import ConfigError

BASE = """\
name = "worker"
main = "src/worker.py"
compatibility_date = "2025-01-01"
"""


def toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "wrangler.toml"
    path.write_text(BASE + textwrap.dedent(body), encoding="utf-8")
    return path


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_crons_are_read_without_a_warning(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [triggers]
        crons = ["*/5 * * * *", "0 12 * * MON#2", "0 0 L * *", "30 8 * JAN-MAR SUN"]
    """)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(path)
    assert config.triggers.crons == ("*/5 * * * *", "0 12 * * MON#2", "0 0 L * *", "30 8 * JAN-MAR SUN")


def test_jsonc_triggers_and_no_triggers(tmp_path: Path) -> None:
    (tmp_path / "wrangler.jsonc").write_text(
        '{"name": "w", "main": "w.py", "compatibility_date": "2025-01-01",\n'
        ' "triggers": {"crons": ["*/1 * * * *"]}, // every minute\n}'
    )
    assert load_config(tmp_path).triggers.crons == ("*/1 * * * *",)
    bare = tmp_path / "bare"
    bare.mkdir()
    assert load_config(toml(bare, "")).triggers.crons == ()


def test_an_environment_inherits_the_top_level_crons_unless_it_sets_its_own(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        triggers = { crons = ["0 * * * *"] }

        [env.staging]
        [env.quiet]
        triggers = { crons = [] }
    """)
    assert load_config(path, env="staging").triggers.crons == ("0 * * * *",)
    assert load_config(path, env="quiet").triggers.crons == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('triggers = { crons = ["61 * * * *"] }',
         "wrangler.toml: triggers.crons[0]: expected a cron expression of 5 fields (minute hour day-of-month"
         " month day-of-week), got '61 * * * *'"),
        ('triggers = { crons = ["* * * * *", "0 0 * * * *"] }',
         "wrangler.toml: triggers.crons[1]: expected a cron expression of 5 fields (minute hour day-of-month"
         " month day-of-week), got '0 0 * * * *'"),
        ('triggers = { crons = ["@daily"] }',
         "wrangler.toml: triggers.crons[0]: expected a cron expression of 5 fields (minute hour day-of-month"
         " month day-of-week), got '@daily'"),
        ('triggers = { crons = ["0 * * * *", "0 * * * *"] }',
         "wrangler.toml: triggers.crons[1]: duplicate cron '0 * * * *' (also triggers.crons[0])"),
        ('triggers = { crons = "* * * * *" }', "wrangler.toml: triggers.crons: expected array, got str"),
        ('triggers = { crons = [5] }', "wrangler.toml: triggers.crons[0]: expected str, got int"),
        ('triggers = { crons = ["0 1 * * *", "0 2 * * *", "0 3 * * *", "0 4 * * *", "0 5 * * *", "0 6 * * *"] }',
         "wrangler.toml: triggers.crons: at most 5 cron triggers per Worker, got 6"),
        ('[env.staging]\ntriggers = { crons = ["nope"] }',
         "wrangler.toml: env.staging.triggers.crons[0]: expected a cron expression of 5 fields (minute hour"
         " day-of-month month day-of-week), got 'nope'"),
    ],
)
def test_bad_crons_are_refused_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = toml(tmp_path, body)
    with pytest.raises(ConfigError, match=exact(message)):
        load_config(path, env="staging" if "env.staging" in body else None)
