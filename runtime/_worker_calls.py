"""Calling a loaded Worker's entrypoint from another Worker in the same runtime (service bindings).

:func:`call_worker` runs one method of a Worker's entrypoint with that
Worker's own ``env`` (``workers.env`` included) and an ``ExecutionContext``
whose ``waitUntil`` work belongs to the runtime's nursery. A
``WorkerEntrypoint`` class gets a fresh instance per call, as on Cloudflare;
a function entrypoint (``on_fetch``) takes ``fetch`` only.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from objects import ExecutionContext, find_handler, relaxed_call

from ._activation import _env

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["call_worker"]


async def call_worker(
    rt: Runtime, worker: str | None, entrypoint: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call ``method`` of Worker ``worker``'s ``entrypoint`` (``None``: the main Worker)."""
    env = rt.env_for(worker)
    token = _env.set(env)
    try:
        ctx = ExecutionContext(wait_until=rt._worker_wait_until)
        if inspect.isclass(entrypoint):
            factory: Any = entrypoint  # a WorkerEntrypoint subclass: any constructor signature goes
            instance = factory(ctx, env)
            # fetch may be spelled on_fetch (find_handler); RPC methods are looked up as named
            handler = find_handler(instance, method) if method == "fetch" else None
            result = relaxed_call(handler, *args) if handler is not None else getattr(instance, method)(*args, **kwargs)
        else:
            arity = max(1, min(len(inspect.signature(entrypoint).parameters), 3))
            result = entrypoint(*(args[0], env, ctx)[:arity])
        if inspect.isawaitable(result):
            result = await result
        return result
    finally:
        _env.reset(token)
