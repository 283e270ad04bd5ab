"""Cloudflare-shaped edges: wrangler files, migrations, the ``workers`` module, the CLI, the pytest plugin.

The package's public names are those of its job subpackages (``config``,
``testing``) plus its error tree and the platform installer; each subpackage
keeps its own list, so a name added there is exported here too.
"""

from __future__ import annotations

from . import config as config
from . import testing as testing
from .config import *  # noqa: F403 - re-exports config.__all__
from .errors import ConfigError as ConfigError
from .errors import ConfigWarning as ConfigWarning
from .errors import MigrationError as MigrationError
from .errors import WranglerCompatError as WranglerCompatError
from .platform import install_modules as install_modules
from .testing import *  # noqa: F403 - re-exports testing.__all__

__all__ = [
    *config.__all__,
    *testing.__all__,
    "ConfigError",
    "ConfigWarning",
    "MigrationError",
    "WranglerCompatError",
    "install_modules",
]
