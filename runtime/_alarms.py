"""The alarm scheduler and its host-level index.

Each object's alarm lives in its own file (``_cf_METADATA``), which is the
truth. The host keeps an index (``dohost-alarms.sqlite`` in the data
directory) so that pending alarms are found at start-up without opening every
object file. The index is written *before* the object's commit when an alarm
is set (a stale entry is harmless: the object's file is checked when it
fires) and *after* it when an alarm is deleted, so no committed alarm is ever
missing from it.

Time runs on trio's clock: the runtime maps trio time to epoch milliseconds,
so under ``autojump_clock`` an alarm an hour ahead fires at once, and in
order. A failing ``alarm()`` is retried after 2 s·2ⁿ plus up to 25 % jitter,
at most 6 times (Cloudflare's documented policy), then dropped.

In a cluster (``Runtime.placement`` set) the index is shared by every node:
an alarm whose object another node owns is not fired here but forgotten (its
owner fires it), and a node that takes over shards :meth:`AlarmScheduler.adopt`s
their indexed alarms, so an alarm still fires after a failover.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import apsw
import trio

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["AlarmScheduler", "AlarmIndex", "retry_delay_s", "MAX_ALARM_RETRIES"]

log = logging.getLogger("dohost.alarms")

Key = tuple[str, str]

# CF: https://developers.cloudflare.com/durable-objects/api/alarms/ — retries with
# exponential backoff starting at 2 seconds, up to 6 retries.
MAX_ALARM_RETRIES = 6
ALARM_BACKOFF_BASE_S = 2.0
ALARM_MAX_JITTER = 0.25


def retry_delay_s(retry: int, jitter: float) -> float:
    """Delay before retry number ``retry`` (0-based); ``jitter`` in [0, 1)."""
    return ALARM_BACKOFF_BASE_S * (2.0**retry) * (1.0 + ALARM_MAX_JITTER * jitter)


class AlarmIndex:
    """(binding, object id) -> due time in ms, in one small SQLite file.

    The file is created by the first alarm ever set: a runtime whose objects
    never use alarms (most test runs) pays nothing for it.
    """

    def __init__(self, path: Path | None, *, durability: str) -> None:
        self._path = path
        self._durability = durability
        self._conn: apsw.Connection | None = None
        if path is None or path.exists():
            self._open()

    def _open(self) -> apsw.Connection:
        if self._conn is None:
            conn = apsw.Connection(str(self._path) if self._path else ":memory:")
            # Cluster nodes on one data directory write this file too: wait out their
            # (tiny) writes instead of failing a commit's index upsert with SQLITE_BUSY.
            conn.set_busy_timeout(2_000)
            conn.execute("PRAGMA journal_mode=WAL")
            sync = {"full": "FULL", "normal": "NORMAL"}.get(self._durability, "OFF")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS alarms (binding TEXT, object_id TEXT, due_ms REAL, "
                "PRIMARY KEY (binding, object_id)) WITHOUT ROWID"
            )
            self._conn = conn
        return self._conn

    def upsert(self, key: Key, due_ms: float) -> None:
        self._open().execute(
            "INSERT INTO alarms VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET due_ms = excluded.due_ms",
            (key[0], key[1], due_ms),
        )

    def delete(self, key: Key) -> None:
        if self._conn is not None:
            self._conn.execute("DELETE FROM alarms WHERE binding = ? AND object_id = ?", key)

    def entries(self) -> list[tuple[Key, float]]:
        if self._conn is None:
            # Another node (same data directory) may have created the file since.
            if self._path is None or not self._path.exists():
                return []
            self._open()
        assert self._conn is not None
        return [((b, o), d) for b, o, d in self._conn.execute("SELECT binding, object_id, due_ms FROM alarms")]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class AlarmScheduler:
    """Fires each object's alarm at its time, on trio's clock; see the module docstring."""

    def __init__(self, runtime: Runtime, index: AlarmIndex, *, jitter: Callable[[], float] = random.random) -> None:
        self._rt = runtime
        self._index = index
        self._jitter = jitter
        self._due: dict[Key, float] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = 0
        self._retries: dict[Key, int] = {}
        #: The time the object set, for alarms being retried (``alarm_info.scheduledTime``).
        self._scheduled: dict[Key, float] = {}
        self._running: set[Key] = set()
        #: Entries that came due (or were re-set) while their alarm was running.
        self._deferred: dict[Key, float] = {}
        self._changed = trio.Event()
        #: Set (and replaced) each time a delivery finishes.
        self._settled = trio.Event()
        self.fired = 0

    # -- what the activations report -----------------------------------------
    def observe(self, key: Key, due_ms: float | None) -> None:
        """An object was opened; its file says ``due_ms``."""
        if due_ms is None:
            if key in self._due and key not in self._running:
                self._index.delete(key)
                self._unset(key)
        elif self._due.get(key) != due_ms and key not in self._retries:
            self._index.upsert(key, due_ms)
            self._set(key, due_ms)

    def before_commit(self, key: Key, due_ms: float | None) -> None:
        if due_ms is not None:
            self._index.upsert(key, due_ms)

    def after_commit(self, key: Key, due_ms: float | None, object_id: Any = None) -> None:
        self._retries.pop(key, None)
        self._scheduled.pop(key, None)
        if due_ms is None:
            self._index.delete(key)
            self._unset(key)
        else:
            self._set(key, due_ms)

    def pending(self, key: Key) -> float | None:
        return self._due.get(key)

    def forget_all(self) -> None:
        """Drop every alarm (``reset()`` of the test helpers)."""
        for key in list(self._due):
            self._index.delete(key)
        self._due.clear()
        self._heap.clear()
        self._retries.clear()
        self._scheduled.clear()
        self._deferred.clear()
        self._changed.set()

    def adopt(self, wanted: Callable[[Key], bool]) -> int:
        """Schedule the indexed alarms of the keys ``wanted`` accepts that are not scheduled yet.

        A cluster node calls this when it takes over shards: the alarms the
        previous owner set are in the shared index. Returns how many.
        """
        adopted = 0
        for key, due in self._index.entries():
            if key not in self._due and key not in self._running and wanted(key):
                self._set(key, due)
                adopted += 1
        return adopted

    def release(self, wanted: Callable[[Key], bool]) -> None:
        """Stop firing the alarms of the keys ``wanted`` accepts (another node owns them now).

        Only this scheduler forgets them: the index and the objects' files keep them.
        """
        for key in [k for k in self._due if k not in self._running and wanted(k)]:
            self._forget(key)
        self._changed.set()

    def _forget(self, key: Key) -> None:
        self._due.pop(key, None)
        self._retries.pop(key, None)
        self._scheduled.pop(key, None)
        self._deferred.pop(key, None)

    def _set(self, key: Key, due_ms: float) -> None:
        self._due[key] = due_ms
        self._seq += 1
        heapq.heappush(self._heap, (due_ms, self._seq, key))
        self._changed.set()

    def _unset(self, key: Key) -> None:
        self._due.pop(key, None)
        self._changed.set()

    # -- the scheduler task ---------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for key, due in self._index.entries():
            self._set(key, due)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._changed = trio.Event()
                deadline = self._next_deadline()
                if deadline <= trio.current_time():
                    self._fire_due(nursery)
                    await trio.lowlevel.checkpoint()
                    continue
                with trio.move_on_at(deadline):
                    await self._changed.wait()

    def _next_deadline(self) -> float:
        heap = self._heap
        while heap:
            due, _, key = heap[0]
            if self._due.get(key) != due:
                heapq.heappop(heap)
                continue
            if key in self._running:
                heapq.heappop(heap)
                self._deferred[key] = due
                continue
            return self._rt.trio_time_for(due)
        return math.inf

    def _fire_due(self, nursery: trio.Nursery) -> None:
        now = self._rt.now_ms()
        heap = self._heap
        placement = self._rt.placement
        while heap and heap[0][0] <= now + 0.001:
            due, _, key = heapq.heappop(heap)
            if self._due.get(key) != due or key in self._running:
                continue
            if placement is not None and not placement.is_local(key):
                # Another cluster node owns the object now (or this node's lease may
                # have expired): its owner fires it; adopt() brings it back here.
                self._forget(key)
                continue
            self._running.add(key)
            nursery.start_soon(self._fire, key, due)

    async def run_now(self, key: Key) -> bool:
        """Run ``key``'s stored alarm now, whatever its time; see :meth:`Runtime.run_alarm_now`."""
        while key in self._running:  # the scheduler is delivering it: let that finish first
            await self._settled.wait()
        self._running.add(key)
        due = self._due.get(key)
        return await self._fire(key, self._rt.now_ms() if due is None else due, manual=True)

    async def wait_idle(self) -> None:
        """Wait until no alarm is being delivered."""
        while self._running:
            await self._settled.wait()

    async def _fire(self, key: Key, due_ms: float, *, manual: bool = False) -> bool:
        """Deliver one alarm and do the bookkeeping: delete, retry, or drop.

        Returns whether an alarm ran. A ``manual`` run (a test's) raises what
        ``alarm()`` raised, after the retry is scheduled.
        """
        retry = self._retries.get(key, 0)
        # A retry runs at its backoff time, but the alarm is still the one the
        # object scheduled: alarm_info.scheduledTime and the stored time (which
        # _drop_alarm compares against) are the original, not the retry's.
        scheduled = self._scheduled.get(key, due_ms) if retry else due_ms
        failure: Exception | None = None
        try:
            # A retry's time exists only here, and a manual run is early on purpose.
            ran = await self._rt._run_alarm_event(key, retry, scheduled, force=manual or retry > 0)
        except Exception as exc:
            log.warning("alarm() of %s failed (retry %d): %r", key, retry, exc)
            failure, ran = exc, True
        finally:
            self._running.discard(key)
            deferred = self._deferred.pop(key, None)
            if deferred is not None and self._due.get(key) == deferred and deferred != due_ms:
                self._seq += 1
                heapq.heappush(self._heap, (deferred, self._seq, key))
            settled, self._settled = self._settled, trio.Event()
            settled.set()
        self.fired += 1
        if ran:
            self._rt.telemetry.alarm_ran(key[0], "success" if failure is None else "error")
        if failure is None:
            self._retries.pop(key, None)
            self._scheduled.pop(key, None)
            if self._due.get(key) == due_ms:  # not re-set by the handler
                self._unset(key)
            self._changed.set()
            return ran
        if retry >= MAX_ALARM_RETRIES:
            log.error("alarm() of %s failed %d times; dropping it", key, retry + 1)
            self._retries.pop(key, None)
            self._scheduled.pop(key, None)
            await self._rt._drop_alarm(key, scheduled)
        else:
            self._retries[key] = retry + 1
            self._scheduled[key] = scheduled
            if self._due.get(key, due_ms) == due_ms:  # not re-set by the handler
                retry_at = self._rt.now_ms() + retry_delay_s(retry, self._jitter()) * 1000.0
                self._due[key] = retry_at
                self._seq += 1
                heapq.heappush(self._heap, (retry_at, self._seq, key))
            self._changed.set()
        if manual:
            raise failure
        return True

    def close(self) -> None:
        self._index.close()
