"""Loading a project to host: :class:`Deployment` and :func:`prepare_project`.

A :class:`Deployment` is code ready to run: the project's wrangler file was
read, its ``main`` module imported afresh, and its migrations checked
against a scratch copy of the data directory's namespace registry -- all
that can fail on bad input, done before anything running is touched. Only
:meth:`Deployment.runtime_options` writes to the data directory (it applies
the already-checked migrations), right before the runtime opens.

Also here: which files make up a project (:func:`project_files`, for the dev
watcher and the deploy archive) and forgetting the modules of a project
folder (:func:`forget_modules_under`), so two deployed versions never share
a sibling module by name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import msgspec

from objects import Response
from runtime import NamespaceSpec

from ._config import WorkerConfig, load_config
from ._migrations import REGISTRY_FILE, apply_migrations, namespace_dir
from ._project import find_entrypoint, forget_modules_under, load_project, resolve_config_path
from ..bindings import ProjectBindings, load_dev_vars

__all__ = ["Deployment", "prepare_project", "project_files", "forget_modules_under"]

#: Folders never part of a project's sources (state, caches, environments).
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "env", "dist", "build"})


def project_files(root: Path, config_path: Path) -> Iterator[Path]:
    """The wrangler file and every ``.py`` file under ``root`` (hidden folders skipped)."""
    yield config_path
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


async def _no_worker(request: Any) -> Any:
    return Response("dohost serve: no Worker is deployed yet; run `dohost deploy`\n", status=503)


class Deployment:
    """Code to run: an imported wrangler project, or nothing (:meth:`empty`).

    Built by :func:`prepare_project`, which did everything that can fail on
    bad input; :meth:`runtime_options` only applies the (already checked)
    migrations to the real data directory.
    """

    def __init__(
        self,
        *,
        label: str,
        config: WorkerConfig | None = None,
        specs: dict[str, NamespaceSpec] | None = None,
        vars: dict[str, Any] | None = None,
        entrypoint: Any = None,
        delete_all_deletes_alarm: bool = True,
        configs: list[WorkerConfig] | None = None,
        worker_vars: dict[str, dict[str, Any]] | None = None,
        bindings: ProjectBindings | None = None,
        entrypoints: dict[str | None, Any] | None = None,
    ) -> None:
        self.label = label
        #: Each loaded Worker's entrypoint by env key (None: the main one), for routing (``_workers.py``).
        self.entrypoints = dict(entrypoints or {})
        #: Set when several Workers are served: it picks the Worker of each request.
        self.router: Any = None
        self.config = config
        #: Every Worker loaded (the first is ``config``): ``dohost dev -c main/ -c other/``.
        self.configs = configs if configs is not None else ([config] if config is not None else [])
        self.worker_vars = dict(worker_vars or {})
        #: KV, D1, R2, services, assets: rebuilt on the real data directory by runtime_options.
        self.bindings = bindings
        self.specs = dict(specs or {})
        self.vars = dict(vars or {})
        self.entrypoint = entrypoint
        self.delete_all_deletes_alarm = delete_all_deletes_alarm

    @classmethod
    def empty(cls) -> Deployment:
        return cls(label="(no Worker)", entrypoint=_no_worker)

    def runtime_options(self, data_dir: Path) -> dict[str, Any]:
        """``open_runtime`` keywords, after applying the migrations to ``data_dir``."""
        specs = dict(self.specs)
        registry = None
        for cfg in self.configs:
            registry = apply_migrations(cfg, data_dir)
        for cfg in self.configs:
            assert registry is not None
            for binding in cfg.durable_objects.bindings:
                info = registry.lookup(binding.script_name or cfg.name, binding.class_name)
                specs[binding.name] = msgspec.structs.replace(
                    specs[binding.name],
                    unique_key=info.unique_key,
                    directory=namespace_dir(data_dir, info),
                    sqlite_backed=info.sqlite,
                )
        options: dict[str, Any] = {
            "bindings": specs,
            "vars": self.vars,
            "entrypoint": self.entrypoint,
            "delete_all_deletes_alarm": self.delete_all_deletes_alarm,
            "worker_vars": self.worker_vars,
        }
        if self.bindings is not None:
            bindings = self.bindings.rebase(data_dir)
            options["vars"] = bindings.main_vars(self.vars)
            options["worker_vars"] = bindings.worker_vars(self.worker_vars)
            options["resources"] = [bindings]
        if self.router is not None:
            options["entrypoint"] = self.router
            options["resources"] = [*options.get("resources", ()), self.router]
        return options


def prepare_project(
    config: str | Path,
    *,
    env_name: str | None,
    data_dir: Path,
    extra_vars: dict[str, str] | None = None,
    forget_under: Path | None = None,
    extra_configs: Sequence[str | Path] = (),
    dev_vars: bool = False,
) -> Deployment:
    """Load a project freshly and check it against ``data_dir`` without changing it.

    ``extra_configs`` are more Workers loaded into the same process (service
    bindings and ``script_name`` reach them; the first config serves HTTP).
    ``dev_vars`` reads ``.dev.vars`` (``dohost dev``): its values override
    ``vars``, and ``extra_vars`` override both.

    Raises ``ConfigError``/``MigrationError`` for a bad wrangler file or
    migrations, or whatever importing the user's module raises.
    """
    if forget_under is not None:
        forget_modules_under(forget_under)
    path = resolve_config_path(config)
    cfgs = [load_config(path, env=env_name)]
    cfgs += [load_config(resolve_config_path(c), env=env_name) for c in extra_configs]
    with tempfile.TemporaryDirectory(prefix="dohost-check-") as scratch:
        registry = data_dir / REGISTRY_FILE
        if registry.exists():
            shutil.copyfile(registry, Path(scratch) / REGISTRY_FILE)
        project = load_project(cfgs if extra_configs else cfgs[0], data_dir=Path(scratch), fresh=True)
    label = str(path)

    def local(cfg: WorkerConfig) -> dict[str, str]:
        return load_dev_vars(cfg.base_dir, env_name) if dev_vars else {}

    return Deployment(
        label=label,
        config=cfgs[0],
        specs=project["specs"],
        vars={**project["plain_vars"], **local(cfgs[0]), **(extra_vars or {})},
        entrypoint=project["entrypoint"],
        delete_all_deletes_alarm=project["delete_all_deletes_alarm"],
        configs=cfgs,
        worker_vars={c.name: {**project["plain_worker_vars"].get(c.name, {}), **local(c)} for c in cfgs[1:]},
        bindings=project["bindings"],
        entrypoints={None: project["entrypoint"],
                     **{c.name: find_entrypoint(project["modules"][c.name]) for c in cfgs[1:]}},
    )
