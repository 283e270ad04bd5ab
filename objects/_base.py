"""The base classes user code subclasses: ``DurableObject`` and ``WorkerEntrypoint``.

Handlers (``fetch``, ``alarm``, ``webSocketMessage``, ``webSocketClose``,
``webSocketError``; snake_case twins accepted) may be ``def`` or
``async def``; any other public method is callable over RPC.
:func:`find_handler` resolves a handler name on an instance in either spelling,
and in the ``on_<name>`` spelling of Python Workers' legacy handlers: before
the ``python_no_global_handlers`` flag (on from compatibility date
2025-08-14) workerd calls ``on_fetch``/``on_alarm``/... on an entrypoint
class (src/pyodide/python-entrypoint-helper.ts), and programs of that era
define only those. dohost accepts them whatever the date; ``fetch`` wins
when a class defines both. :func:`relaxed_call` calls a ``fetch`` handler as
workerd does: with only as many arguments as it takes (``async def
fetch(self)`` is valid).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from persistence import camel_to_snake

__all__ = ["DurableObject", "WorkerEntrypoint", "find_handler", "relaxed_call", "HANDLER_NAMES"]

#: The event handlers a Durable Object class may define, in Cloudflare's names.
HANDLER_NAMES = ("fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError")


class DurableObject:
    """Base class for Durable Objects: ``__init__(self, ctx, env)``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class WorkerEntrypoint:
    """Base class for the Worker's default export: ``__init__(self, ctx, env)``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


def find_handler(instance: Any, name: str) -> Callable[..., Any] | None:
    """The bound handler ``name`` (Cloudflare or snake spelling) or ``None``.

    Only handlers defined by the user's class count: the base classes define none.
    """
    cls = type(instance)
    known = _HANDLER_NAMES.get((cls, name))
    if known is not None:
        attr = getattr(cls, known, None)
        if attr is not None and callable(attr):
            return getattr(instance, known)  # type: ignore[no-any-return]
    for candidate in (name, camel_to_snake(name), "on_" + name):
        attr = getattr(cls, candidate, None)
        if attr is not None and callable(attr):
            if len(_HANDLER_NAMES) < 4096:
                _HANDLER_NAMES[(cls, name)] = candidate
            return getattr(instance, candidate)  # type: ignore[no-any-return]
    return None


#: (class, handler) -> the spelling the class defines: found once per class,
#: not three getattr()s and a regex on every request. Re-checked on each use.
_HANDLER_NAMES: dict[tuple[type, str], str] = {}


def relaxed_call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with the positional arguments ``fn`` cannot take dropped.

    CF: src/pyodide/internal/introspection.py wrapper_func — workerd calls an
    entrypoint's ``fetch`` through Pyodide's ``relaxed_call``, so ``async def
    fetch(self)`` (cloudflare/python-workers-examples 08-cron) is called
    without the request.
    """
    limit = _positional_limit(getattr(fn, "__func__", fn), hasattr(fn, "__self__"))
    return fn(*args) if limit is None else fn(*args[:limit])


@functools.lru_cache(maxsize=256)
def _positional_limit(func: Callable[..., Any], bound: bool) -> int | None:
    """How many positional arguments ``func`` takes (``None``: any number)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    return max(positional - 1, 0) if bound else positional
