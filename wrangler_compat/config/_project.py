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
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from runtime import NamespaceSpec

from ._config import WorkerConfig, find_config, flag_enabled, load_config
from ._migrations import apply_migrations, namespace_dir
from ..bindings import ProjectBindings
from ..errors import ConfigError
from ..platform import install_modules

__all__ = ["forget_modules_under", "load_project", "load_user_module", "find_entrypoint", "resolve_config_path"]


def resolve_config_path(config: str | Path) -> Path:
    """A wrangler file, or the one found in a directory."""
    path = Path(config)
    return find_config(path) if path.is_dir() else path


def forget_modules_under(root: Path) -> None:
    """Drop modules imported from ``root`` and its ``sys.path`` entries.

    Two versions of a project (a reload, a deploy) have modules of the same
    names; the next import must find the new files, not the cached old ones.
    """
    # Plain prefix tests: resolving every loaded module's path costs a syscall
    # per path component (~0.3 s per call).
    prefix = str(root.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.startswith(prefix):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not (p + os.sep).startswith(prefix)]


def load_user_module(config: WorkerConfig, *, fresh: bool = False, module_name: str | None = None) -> Any:
    """Import the Worker's ``main`` module (after installing ``workers`` and ``js``).

    ``module_name`` (default: the file's stem) keeps the ``main`` modules of
    several Workers loaded in one process apart.
    """
    install_modules(config.compatibility_date, config.compatibility_flags)
    main = config.main_path
    if not main.exists():
        raise ConfigError(f"{config.config_path.name}: main: file {str(main)!r} does not exist")
    base = main.parent.resolve()
    if fresh:
        forget_modules_under(base)
    if str(base) not in sys.path:
        sys.path.insert(0, str(base))  # sibling modules import each other by plain name
    name = module_name or main.stem
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
    config: str | Path | WorkerConfig | Sequence[str | Path | WorkerConfig],
    *,
    env_name: str | None = None,
    data_dir: str | Path,
    fresh: bool = False,
) -> dict[str, Any]:
    """Everything ``open_runtime`` needs from a wrangler project.

    A sequence loads several Workers into one process: the first is the main
    one (its entrypoint serves requests, its env is ``rt.env``); a binding's
    ``script_name`` may name any of them. Binding names must be unique across
    the Workers (each becomes one key of the host's directory).

    The other bindings (KV, D1, R2, services, assets, unsupported kinds) are
    built by :class:`~wrangler_compat.bindings.ProjectBindings` on ``data_dir``
    and returned in ``vars``/``worker_vars`` and as a runtime resource; the
    entrypoint comes back wrapped so static assets are served ahead of it.
    """
    sources: list[str | Path | WorkerConfig] = (
        list(config) if isinstance(config, (list, tuple)) else [config]  # type: ignore[list-item]
    )
    if not sources:
        raise ConfigError("load_project: expected at least one wrangler file")
    cfgs = [c if isinstance(c, WorkerConfig) else load_config(resolve_config_path(c), env=env_name) for c in sources]
    names = [c.name for c in cfgs]
    for i, cfg in enumerate(cfgs):
        if cfg.name in names[:i]:
            raise ConfigError(f"{cfg.config_path}: name: Worker {cfg.name!r} is loaded twice")
    modules = {
        cfg.name: load_user_module(cfg, fresh=fresh, module_name=None if i == 0 else _module_name(cfg))
        for i, cfg in enumerate(cfgs)
    }
    registry = None
    for cfg in cfgs:
        registry = apply_migrations(cfg, data_dir)
    assert registry is not None
    main_name = cfgs[0].name
    specs: dict[str, NamespaceSpec] = {}
    declared: dict[str, str] = {}
    for cfg in cfgs:
        worker = None if cfg.name == main_name else cfg.name
        for i, binding in enumerate(cfg.durable_objects.bindings):
            where = f"{cfg.config_path.name}: durable_objects.bindings[{i}]"
            home = binding.script_name or cfg.name
            if home not in modules:
                raise ConfigError(
                    f"{where}.script_name: Worker {home!r} is not loaded; load its wrangler file in the same "
                    f"process, e.g. open_runtime(config=[{str(cfgs[0].config_path)!r}, <its wrangler file>])"
                )
            if binding.name in declared:
                raise ConfigError(
                    f"{where}.name: binding {binding.name!r} is also declared by Worker {declared[binding.name]!r};"
                    " binding names must be unique across the Workers loaded in one process"
                )
            declared[binding.name] = cfg.name
            cls = getattr(modules[home], binding.class_name, None)
            if not inspect.isclass(cls):
                owner = next(c for c in cfgs if c.name == home)
                raise ConfigError(
                    f"{where}.class_name: {binding.class_name!r} is not a class exported by {owner.main!r}"
                    + (f" of Worker {home!r}" if home != cfg.name else "")
                )
            info = registry.lookup(home, binding.class_name)
            specs[binding.name] = NamespaceSpec(
                binding=binding.name,
                cls=cls,
                unique_key=info.unique_key,
                directory=namespace_dir(data_dir, info),
                sqlite_backed=info.sqlite,
                worker=worker,
                home=None if home == main_name else home,
            )
    main = cfgs[0]
    entrypoints = {name: find_entrypoint(module) for name, module in modules.items()}
    bindings = ProjectBindings(cfgs, modules, entrypoints, Path(data_dir))
    plain_worker_vars = {c.name: dict(c.vars) for c in cfgs[1:]}
    return {
        "config": main,
        "configs": cfgs,
        "module": modules[main.name],
        "modules": modules,
        "specs": specs,
        # Vars and the other bindings' objects (KV, D1, R2, services, assets...).
        "vars": bindings.main_vars(main.vars),
        "worker_vars": bindings.worker_vars(plain_worker_vars),
        # The same without binding objects, for callers that rebuild them on another data directory.
        "plain_vars": dict(main.vars),
        "plain_worker_vars": plain_worker_vars,
        "bindings": bindings,
        "resources": [bindings],
        "entrypoint": bindings.wrap_entrypoint(entrypoints[main.name]),
        "delete_all_deletes_alarm": flag_enabled(main, "delete_all_deletes_alarm"),
    }


def _module_name(cfg: WorkerConfig) -> str:
    """The import name of a secondary Worker's ``main`` (never its bare stem)."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in cfg.name)
    return f"_dohost_worker_{safe}_{cfg.main_path.stem}"
