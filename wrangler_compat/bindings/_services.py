"""Service bindings: ``env.<NAME>`` for a ``services`` entry, calling another Worker in this process.

``await env.OTHER.fetch(url_or_request, ...)`` runs the bound Worker's
``fetch`` with its own ``env``; ``await env.OTHER.some_method(*args)`` calls
a public method of its entrypoint class (the named ``entrypoint``, else its
default export), a fresh instance per call, with arguments and the result
copied as RPC copies them. The bound Worker must be loaded in the same
process (``dohost dev -c main/ -c other/``, ``open_runtime(config=[...])``);
otherwise every call says so and how to load it.

A service binding to the Worker itself (``service`` = its own name) works too.
"""

from __future__ import annotations

from typing import Any, Callable

from objects import WorkerEntrypoint, lookup_rpc_method, make_request, to_rpc, to_rpc_call
from runtime import call_worker

from ._common import checkpoint, options
from .errors import ServiceBindingError

__all__ = ["ServiceBinding", "WorkerTarget"]


class WorkerTarget:
    """A loaded Worker as a service binding reaches it: its env key in the runtime and its module."""

    __slots__ = ("name", "env_key", "module", "default")

    def __init__(self, name: str, env_key: str | None, module: Any, default: Any) -> None:
        self.name = name
        self.env_key = env_key
        self.module = module
        self.default = default


class ServiceBinding:
    """``env.<NAME>`` for a service binding (a ``Fetcher`` with RPC); see the module docstring."""

    def __init__(
        self, binding: str, service: str, entrypoint: str | None,
        resolve: Callable[[str], WorkerTarget | None], runtime: Callable[[], Any],
    ) -> None:
        self._binding = binding
        self._service = service
        self._entrypoint = entrypoint
        self._resolve = resolve
        self._runtime = runtime

    def __repr__(self) -> str:
        ep = f" entrypoint={self._entrypoint}" if self._entrypoint else ""
        return f"<ServiceBinding {self._binding} -> {self._service}{ep}>"

    def _target(self) -> tuple[WorkerTarget, Any]:
        target = self._resolve(self._service)
        if target is None:
            raise ServiceBindingError(
                f"env.{self._binding}: Worker {self._service!r} is not loaded in this process; load its wrangler"
                f" file too, e.g. `dohost dev -c <this project> -c <{self._service} project>`"
            )
        if self._entrypoint is None:
            entry = target.default
            if entry is None:
                raise ServiceBindingError(f"env.{self._binding}: Worker {self._service!r} exports no default entrypoint")
            return target, entry
        entry = getattr(target.module, self._entrypoint, None)
        if not (isinstance(entry, type) and issubclass(entry, WorkerEntrypoint)):
            raise ServiceBindingError(
                f"env.{self._binding}: Worker {self._service!r} has no WorkerEntrypoint class named {self._entrypoint!r}"
            )
        return target, entry

    async def fetch(self, url_or_request: Any, init: Any = None, **kwargs: Any) -> Any:
        opts = options(init, kwargs, where=f"env.{self._binding}.fetch")
        request = make_request(
            url_or_request, method=opts.get("method"), headers=opts.get("headers"), body=opts.get("body")
        )
        target, entry = self._target()
        await checkpoint()
        return await call_worker(self._runtime(), target.env_key, entry, "fetch", (request,), {})

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise ServiceBindingError(f"env.{self._binding}.connect(): TCP sockets are not provided by dohost")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            target, entry = self._target()
            if not isinstance(entry, type):
                raise ServiceBindingError(
                    f"env.{self._binding}.{name}(): Worker {self._service!r} has no WorkerEntrypoint class to call"
                    " methods on (only fetch)"
                )
            probe: Any = object.__new__(entry)  # not constructed: only its class is looked at
            lookup_rpc_method(probe, name, base_classes=(WorkerEntrypoint,))  # Cloudflare's errors
            args, kwargs = to_rpc_call(args, kwargs)
            await checkpoint()
            result = await call_worker(self._runtime(), target.env_key, entry, name, args, kwargs)
            return to_rpc(result)

        call.__name__ = name
        return call
