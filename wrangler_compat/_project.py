"""A wrangler project, loaded: the user's module, its classes, namespaces and vars.

``load_project(config, env_name=, data_dir=)`` is what ``open_runtime(config=...)``,
the CLI and the pytest plugin call. It reads the wrangler file, applies the
migrations to the data directory (recording tags, keeping renamed classes'
data, removing deleted ones), imports the ``main`` module with dohost's
``workers``/``js`` installed first, and returns what the runtime needs.

User modules are imported from their project folder under a private module
name; :func:`load_user_module` with ``fresh=True`` forgets every module that
came from the project folder first, which is how ``dohost dev`` reloads.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from runtime import NamespaceSpec

from ._config import WorkerConfig, find_config, flag_enabled, load_config
from ._migrations import apply_migrations, namespace_dir
from .errors import ConfigError
from .workers import install_modules

__all__ = ["load_project", "load_user_module", "find_entrypoint", "resolve_config_path"]


def resolve_config_path(config: str | Path) -> Path:
    """A wrangler file, or the one found in a directory."""
    path = Path(config)
    return find_config(path) if path.is_dir() else path


def _project_modules(base: Path) -> list[str]:
    # A string prefix test: resolving every loaded module's path costs ~0.3 s.
    prefix = str(base).rstrip("/") + "/"
    return [
        name
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(prefix)
    ]


def load_user_module(config: WorkerConfig, *, fresh: bool = False) -> Any:
    """Import the Worker's ``main`` module (after installing ``workers`` and ``js``)."""
    install_modules()
    main = config.main_path
    if not main.exists():
        raise ConfigError(f"{config.config_path.name}: main: file {str(main)!r} does not exist")
    base = main.parent.resolve()
    if fresh:
        for name in _project_modules(base):
            del sys.modules[name]
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))  # sibling modules import each other by plain name
    name = main.stem
    existing = sys.modules.get(name)
    if existing is not None and not fresh and getattr(existing, "__file__", None) == str(main.resolve()):
        return existing
    spec = importlib.util.spec_from_file_location(name, main.resolve())
    if spec is None or spec.loader is None:
        raise ConfigError(f"{config.config_path.name}: main: cannot import {str(main)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def find_entrypoint(module: Any) -> Any:
    """The Worker's default export: ``Default``/a ``WorkerEntrypoint`` subclass, or ``on_fetch``."""
    from objects import WorkerEntrypoint

    default = getattr(module, "Default", None)
    if inspect.isclass(default) and issubclass(default, WorkerEntrypoint):
        return default
    classes = [
        v for v in vars(module).values()
        if inspect.isclass(v) and issubclass(v, WorkerEntrypoint) and v is not WorkerEntrypoint
        and v.__module__ == module.__name__
    ]
    if len(classes) == 1:
        return classes[0]
    on_fetch = getattr(module, "on_fetch", None)
    if callable(on_fetch):
        return on_fetch
    return None


def load_project(
    config: str | Path | WorkerConfig,
    *,
    env_name: str | None = None,
    data_dir: str | Path,
    fresh: bool = False,
) -> dict[str, Any]:
    """Everything ``open_runtime`` needs from a wrangler project."""
    cfg = config if isinstance(config, WorkerConfig) else load_config(resolve_config_path(config), env=env_name)
    module = load_user_module(cfg, fresh=fresh)
    registry = apply_migrations(cfg, data_dir)
    specs: dict[str, NamespaceSpec] = {}
    for i, binding in enumerate(cfg.durable_objects.bindings):
        where = f"{cfg.config_path.name}: durable_objects.bindings[{i}]"
        if binding.script_name not in (None, cfg.name):
            raise ConfigError(
                f"{where}.script_name: {binding.script_name!r} names another Worker; dohost serves one "
                "Worker per process, so bind classes of this Worker's main module"
            )
        cls = getattr(module, binding.class_name, None)
        if not inspect.isclass(cls):
            raise ConfigError(
                f"{where}.class_name: {binding.class_name!r} is not a class exported by {cfg.main!r}"
            )
        info = registry.lookup(cfg.name, binding.class_name)
        specs[binding.name] = NamespaceSpec(
            binding=binding.name,
            cls=cls,
            unique_key=info.unique_key,
            directory=namespace_dir(data_dir, info),
            sqlite_backed=info.sqlite,
        )
    return {
        "config": cfg,
        "module": module,
        "specs": specs,
        "vars": dict(cfg.vars),
        "entrypoint": find_entrypoint(module),
        "delete_all_deletes_alarm": flag_enabled(cfg, "delete_all_deletes_alarm"),
    }
