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
when a class defines both.
"""

from __future__ import annotations

from typing import Any, Callable

from persistence import camel_to_snake

__all__ = ["DurableObject", "WorkerEntrypoint", "find_handler", "HANDLER_NAMES"]

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
    for candidate in (name, camel_to_snake(name), "on_" + name):
        attr = getattr(type(instance), candidate, None)
        if attr is not None and callable(attr):
            return getattr(instance, candidate)  # type: ignore[no-any-return]
    return None
