"""One runtime-wide timer for idle objects: trimming (parking) and idle eviction.

An activation whose dispatch loop goes quiet used to open two trio cancel
scopes with deadlines (``move_on_after``) on every wait — a few µs per event,
paid by every request to a different object. Instead the loop records when it
started waiting and registers itself here once; this module's single task
sleeps until the earliest due time and wakes that activation.

Guarantees:

- An activation is woken no earlier than its due time (``idle_since`` plus
  the stage's delay) and, when trio's clock reaches it, at that time — the
  same instants the per-object timers had, so fake-clock tests see the same
  behaviour.
- An activation has one live entry in the heap: a due time that moved later
  (the object ran again meanwhile) is re-queued when popped, not on every
  event; one that moved earlier gets a new entry and the old one is dropped
  when popped.
- The task runs only while something is queued, and :meth:`close` ends it, so
  it never holds the runtime's nursery open.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Protocol

import trio

__all__ = ["IdleSweeper", "IdleWaiter"]


class IdleWaiter(Protocol):
    """What the sweeper needs from an activation."""

    #: When due (the object has waited since ``idle_since`` for its stage), or
    #: ``None`` when it is not waiting idle any more.
    def idle_due(self) -> float | None: ...

    #: Called at the due time: the activation wakes its dispatch loop.
    def idle_fired(self) -> None: ...

    #: The due time of this activation's live entry in the sweeper's heap, if any.
    sweep_due: float | None


class IdleSweeper:
    """See the module docstring."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._heap: list[tuple[float, int, IdleWaiter]] = []
        self._seq = itertools.count()
        self._scope: trio.CancelScope | None = None
        self._closed = False

    def register(self, waiter: IdleWaiter, due: float) -> None:
        """Wake ``waiter`` at ``due`` (if it is still waiting idle then)."""
        queued = waiter.sweep_due
        if (queued is not None and queued <= due) or self._closed or due == math.inf:
            return
        waiter.sweep_due = due
        heapq.heappush(self._heap, (due, next(self._seq), waiter))
        scope = self._scope
        if scope is None:
            self._scope = scope = trio.CancelScope(deadline=due)
            self._nursery.start_soon(self._run, scope)
        elif due < scope.deadline:
            scope.deadline = due

    def close(self) -> None:
        """Stop the task (the runtime is shutting down)."""
        self._closed = True
        self._heap.clear()
        if self._scope is not None:
            self._scope.cancel()

    async def _run(self, scope: trio.CancelScope) -> None:
        heap = self._heap
        while True:
            with scope:
                await trio.sleep_forever()
            if self._closed:
                return
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                queued, _, waiter = heapq.heappop(heap)
                if queued != waiter.sweep_due:
                    continue  # superseded by an earlier entry for the same waiter
                due = waiter.idle_due()
                if due is None:
                    waiter.sweep_due = None
                elif due > now:
                    waiter.sweep_due = due
                    heapq.heappush(heap, (due, next(self._seq), waiter))
                else:
                    waiter.sweep_due = None
                    waiter.idle_fired()
            if not heap:
                self._scope = None
                return
            scope = self._scope = trio.CancelScope(deadline=heap[0][0])
