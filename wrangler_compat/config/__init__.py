"""Worker configuration: wrangler files (toml/jsonc/json), their bindings and crons, migrations, and loading a project to host."""

from __future__ import annotations

from ._config import COMPAT_FLAGS as COMPAT_FLAGS
from ._config import CONFIG_FILE_NAMES as CONFIG_FILE_NAMES
from ._config import CompatFlag as CompatFlag
from ._config import DurableObjectBinding as DurableObjectBinding
from ._config import DurableObjects as DurableObjects
from ._config import WorkerConfig as WorkerConfig
from ._config import find_config as find_config
from ._config import flag_enabled as flag_enabled
from ._config import load_config as load_config
from ._migrations import REGISTRY_FILE as REGISTRY_FILE
from ._migrations import Migration as Migration
from ._migrations import NamespaceInfo as NamespaceInfo
from ._migrations import NamespaceRegistry as NamespaceRegistry
from ._migrations import RenamedClass as RenamedClass
from ._migrations import ScriptNamespaces as ScriptNamespaces
from ._migrations import TransferredClass as TransferredClass
from ._migrations import apply_migrations as apply_migrations
from ._migrations import default_registry_for as default_registry_for
from ._migrations import load_registry as load_registry
from ._migrations import namespace_dir as namespace_dir
from ._project import find_entrypoint as find_entrypoint
from ._project import load_project as load_project
from ._project import load_user_module as load_user_module
from ._project import resolve_config_path as resolve_config_path

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
    "load_project",
    "load_user_module",
    "resolve_config_path",
]
