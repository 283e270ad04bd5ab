"""Cloudflare-shaped edges: wrangler files, migrations, the ``workers`` module, the CLI, the pytest plugin."""

from __future__ import annotations

from .config import COMPAT_FLAGS as COMPAT_FLAGS
from .config import CONFIG_FILE_NAMES as CONFIG_FILE_NAMES
from .config import CompatFlag as CompatFlag
from .config import DurableObjectBinding as DurableObjectBinding
from .config import DurableObjects as DurableObjects
from .config import WorkerConfig as WorkerConfig
from .config import find_config as find_config
from .config import flag_enabled as flag_enabled
from .config import load_config as load_config
from .config import REGISTRY_FILE as REGISTRY_FILE
from .config import Migration as Migration
from .config import NamespaceInfo as NamespaceInfo
from .config import NamespaceRegistry as NamespaceRegistry
from .config import RenamedClass as RenamedClass
from .config import ScriptNamespaces as ScriptNamespaces
from .config import TransferredClass as TransferredClass
from .config import apply_migrations as apply_migrations
from .config import default_registry_for as default_registry_for
from .config import load_registry as load_registry
from .config import namespace_dir as namespace_dir
from .config import find_entrypoint as find_entrypoint
from .testing import Harness as Harness
from .testing import UnknownBindingError as UnknownBindingError
from .testing import WebSocketClient as WebSocketClient
from .config import load_project as load_project
from .config import load_user_module as load_user_module
from .config import resolve_config_path as resolve_config_path
from .errors import ConfigError as ConfigError
from .errors import ConfigWarning as ConfigWarning
from .errors import MigrationError as MigrationError
from .errors import WranglerCompatError as WranglerCompatError
from .platform import install_modules as install_modules

__all__ = [
    "COMPAT_FLAGS",
    "CONFIG_FILE_NAMES",
    "CompatFlag",
    "DurableObjectBinding",
    "DurableObjects",
    "WorkerConfig",
    "find_config",
    "flag_enabled",
    "load_config",
    "REGISTRY_FILE",
    "Migration",
    "NamespaceInfo",
    "NamespaceRegistry",
    "RenamedClass",
    "ScriptNamespaces",
    "TransferredClass",
    "apply_migrations",
    "default_registry_for",
    "load_registry",
    "namespace_dir",
    "find_entrypoint",
    "Harness",
    "UnknownBindingError",
    "WebSocketClient",
    "load_project",
    "load_user_module",
    "resolve_config_path",
    "ConfigError",
    "ConfigWarning",
    "MigrationError",
    "WranglerCompatError",
    "install_modules",
]
