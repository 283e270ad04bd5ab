"""The wrangler_compat error tree.

::

    WranglerCompatError          root of everything this package raises on purpose
    ├── ConfigError              (also ValueError) the wrangler file cannot be used:
    │                            syntax error, wrong type, missing key, bad binding;
    │                            message is ``<file>: <key.path>: <what is wrong>``
    └── MigrationError           Durable Object migrations cannot be applied to a
                                 data directory (history rewritten, class unknown);
                                 nothing on disk was changed

    UserWarning
    └── ConfigWarning            the wrangler file has a key dohost does not use
                                 (unknown, or a binding kind dohost does not provide);
                                 one warning per key, naming its path

Errors change nothing: a ``ConfigError`` is raised before anything is built, a
``MigrationError`` before the registry file is written.
"""

from __future__ import annotations

__all__ = [
    "WranglerCompatError",
    "ConfigError",
    "MigrationError",
    "ConfigWarning",
]


class WranglerCompatError(Exception):
    """Root of the wrangler_compat package's errors."""


class ConfigError(WranglerCompatError, ValueError):
    """The wrangler configuration file is malformed or inconsistent."""


class MigrationError(WranglerCompatError):
    """Durable Object migrations cannot be applied; the data directory is unchanged."""


class ConfigWarning(UserWarning):
    """A key of the wrangler file is ignored by dohost."""
