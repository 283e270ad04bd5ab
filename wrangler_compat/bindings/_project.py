"""The bindings of the Workers loaded into one runtime, built from their wrangler files.

:class:`ProjectBindings` turns each Worker's ``kv_namespaces``,
``d1_databases``, ``r2_buckets``, ``services``, ``assets`` and unsupported
bindings into the objects its ``env`` holds, all sharing one
:class:`~._store.StoreHost` on the runtime's data directory. It is a
``runtime.RuntimeResource``: ``open_runtime`` attaches it (the stores then
use the runtime's clock and durability) and closes it after every object
stopped.

Storage is keyed by the resource's id (a KV namespace's ``id``, a D1
``database_id``, an R2 ``bucket_name``), not by the binding name, so two
Workers binding the same namespace share it, as on Cloudflare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config._config import WorkerConfig
from ._assets import AssetsBinding, AssetServer, assets_entrypoint
from ._d1 import D1Database
from ._kv import KVNamespace
from ._r2 import R2Bucket
from ._services import ServiceBinding, WorkerTarget
from ._store import StoreHost
from ._unsupported import UnsupportedBinding

__all__ = ["ProjectBindings"]


class ProjectBindings:
    """See the module docstring. ``configs[0]`` is the main Worker (env key ``None``)."""

    def __init__(
        self, configs: Sequence[WorkerConfig], modules: Mapping[str, Any], entrypoints: Mapping[str, Any],
        data_dir: Path,
    ) -> None:
        self.configs = list(configs)
        self.modules = dict(modules)
        self.entrypoints = dict(entrypoints)
        self.host = StoreHost(Path(data_dir))
        self._runtime: Any = None
        self._targets = {
            cfg.name: WorkerTarget(cfg.name, None if i == 0 else cfg.name, self.modules.get(cfg.name),
                                   self.entrypoints.get(cfg.name))
            for i, cfg in enumerate(self.configs)
        }
        self._assets = {cfg.name: self._asset_server(cfg) for cfg in self.configs}
        self._values = {cfg.name: self._build(cfg) for cfg in self.configs}

    def rebase(self, data_dir: Path) -> ProjectBindings:
        """The same bindings on another data directory (fresh objects, nothing opened)."""
        return ProjectBindings(self.configs, self.modules, self.entrypoints, data_dir)

    # ------------------------------------------------------------------ env
    def env_values(self, worker: str | None = None) -> dict[str, Any]:
        """The binding objects of Worker ``worker`` (None: the main one), by binding name."""
        name = self.configs[0].name if worker is None else worker
        return dict(self._values.get(name, {}))

    def names(self) -> set[str]:
        """Every binding name dohost provides (unsupported kinds excluded)."""
        return {n for values in self._values.values() for n, v in values.items() if not isinstance(v, UnsupportedBinding)}

    def unsupported_names(self) -> set[str]:
        return {n for values in self._values.values() for n, v in values.items() if isinstance(v, UnsupportedBinding)}

    def main_vars(self, plain: Mapping[str, Any]) -> dict[str, Any]:
        return {**plain, **self.env_values(None)}

    def worker_vars(self, plain: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        return {cfg.name: {**plain.get(cfg.name, {}), **self.env_values(cfg.name)} for cfg in self.configs[1:]}

    def wrap_entrypoint(self, entrypoint: Any) -> Any:
        """The main Worker's entrypoint with its static assets served ahead of it (if it has any)."""
        main = self.configs[0]
        server = self._assets.get(main.name)
        if server is None or main.assets is None:
            return entrypoint
        return assets_entrypoint(server, main.assets.run_worker_first, entrypoint)

    # ------------------------------------------------------------ lifecycle
    def attach(self, runtime: Any) -> None:
        self._runtime = runtime
        self.host.attach(durability=runtime.durability, now_ms=runtime.now_ms)

    def close(self) -> None:
        self.host.close()

    def reset(self) -> None:
        """Delete every binding's storage (the pytest plugin's reset); the bindings stay usable."""
        self.host.reset()

    # ------------------------------------------------------------ internals
    def _runtime_now(self) -> Any:
        if self._runtime is None:
            raise RuntimeError("service bindings need a running dohost runtime")
        return self._runtime

    def _asset_server(self, cfg: WorkerConfig) -> AssetServer | None:
        folder = cfg.assets_dir
        if folder is None or cfg.assets is None:
            return None
        return AssetServer(folder, html_handling=cfg.assets.html_handling,
                           not_found_handling=cfg.assets.not_found_handling)

    def _build(self, cfg: WorkerConfig) -> dict[str, Any]:
        host = self.host
        values: dict[str, Any] = {}
        for kv in cfg.kv_namespaces:
            values[kv.binding] = KVNamespace(kv.binding, kv.storage_key, host)
        for d1 in cfg.d1_databases:
            values[d1.binding] = D1Database(d1.binding, d1.storage_key, host)
        for r2 in cfg.r2_buckets:
            values[r2.binding] = R2Bucket(r2.binding, r2.storage_key, host)
        for svc in cfg.services:
            values[svc.binding] = ServiceBinding(svc.binding, svc.service, svc.entrypoint,
                                                 self._targets.get, self._runtime_now)
        server = self._assets.get(cfg.name)
        if server is not None and cfg.assets is not None and cfg.assets.binding:
            values[cfg.assets.binding] = AssetsBinding(cfg.assets.binding, server)
        for item in cfg.unsupported_bindings:
            values[item.name] = UnsupportedBinding(item.name, item.kind)
        return values
