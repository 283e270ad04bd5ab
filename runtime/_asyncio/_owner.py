"""Who owns the asyncio tasks and timers that hosted code starts.

A :class:`TaskOwner` belongs to one activation (its nursery, its input gate)
or to a runtime's Worker code. Tasks run in the owner's nursery, so a reset
or an eviction cancels them with the rest of the activation; timers are
cancelled by :meth:`TaskOwner.close`. While it has a task or a timer
pending the owner is :attr:`~TaskOwner.active`, and an active object is not
idle: a pending ``asyncio.sleep`` or an un-awaited ``create_task`` is work
in flight, as on Cloudflare.

The current owner travels in a context variable, which trio copies into
every task it spawns, so code running for an object finds its owner
wherever it calls ``asyncio``.
"""

from __future__ import annotations

import contextvars
from typing import Any, Awaitable, Callable

import trio

__all__ = ["TaskOwner", "current_owner", "owner_var"]

owner_var: contextvars.ContextVar[TaskOwner | None] = contextvars.ContextVar("dohost_asyncio_owner", default=None)


def current_owner() -> TaskOwner | None:
    return owner_var.get()


class TaskOwner:
    """See the module docstring."""

    __slots__ = ("label", "gate", "_nursery", "_on_idle", "tasks", "_timers", "closed", "active")

    def __init__(
        self,
        label: str,
        nursery: trio.Nursery,
        *,
        gate: Any = None,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.label = label
        #: The object's input gate (``None`` for Worker code, which has none).
        self.gate = gate
        self._nursery = nursery
        self._on_idle = on_idle
        self.tasks = 0
        self._timers: set[Any] = set()
        self.closed = False
        #: A task is running or a timer is pending. Kept up to date here rather than
        #: computed when read: every call delivered to an object reads it.
        self.active = False

    def spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        if self.closed:
            raise RuntimeError(f"cannot start an asyncio task: {self.label} has shut down")
        self.tasks += 1
        self.active = True
        self._nursery.start_soon(self._run, fn, args)

    async def _run(self, fn: Callable[..., Awaitable[None]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        finally:
            self.tasks -= 1
            self._changed()

    def track(self, handle: Any) -> None:
        if self.closed:
            handle.cancel()
            return
        self._timers.add(handle)
        self.active = True

    def untrack(self, handle: Any) -> None:
        self._timers.discard(handle)
        self._changed()

    def _changed(self) -> None:
        self.active = self.tasks > 0 or bool(self._timers)
        if not self.active and self._on_idle is not None:
            self._on_idle()

    def close(self) -> None:
        """Cancel every pending timer and refuse new tasks (tasks die with the nursery)."""
        self.closed = True
        timers, self._timers = self._timers, set()
        self.active = self.tasks > 0
        for handle in timers:
            handle.cancel()
