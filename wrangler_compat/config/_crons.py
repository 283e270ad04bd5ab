"""Checking the cron expressions of ``triggers.crons`` in a wrangler file.

Cloudflare's Cron Triggers take five fields (minute, hour, day of month,
month, day of week), evaluated in UTC, with names (``MON``, ``JAN``) and the
``L``, ``W`` and ``#`` extensions; a Worker has at most a handful of them and
no duplicates. Parsing is croniter's (the same library ``runtime``'s cron
scheduler runs them with), so an expression accepted here is one the
scheduler can run. A bad one raises :class:`ConfigError` naming
``triggers.crons[i]`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from croniter import croniter

from ..errors import ConfigError

__all__ = ["check_crons", "MAX_CRONS"]

#: Cloudflare's limit on Cron Triggers per Worker (Workers Paid).
MAX_CRONS = 5  # CF: https://developers.cloudflare.com/workers/platform/limits/#number-of-schedules


def check_crons(crons: tuple[str, ...], fail: Callable[[str, str], ConfigError]) -> None:
    """Raise ``fail(key_path, message)`` for the first bad expression in ``crons``."""
    if len(crons) > MAX_CRONS:
        raise fail("triggers.crons", f"at most {MAX_CRONS} cron triggers per Worker, got {len(crons)}")
    seen: dict[str, int] = {}
    for i, cron in enumerate(crons):
        at = f"triggers.crons[{i}]"
        # croniter also takes a 6th (seconds) and 7th (year) field; Cloudflare does not.
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise fail(at, "expected a cron expression of 5 fields (minute hour day-of-month month"
                           f" day-of-week), got {cron!r}")
        if cron in seen:
            raise fail(at, f"duplicate cron {cron!r} (also triggers.crons[{seen[cron]}])")
        seen[cron] = i
