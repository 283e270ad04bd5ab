"""``SyncEngine``: record mutations offline, push them to ``/api/sync``, merge what comes back.

ObjectQL's ``SyncEngine`` (``@objectql/plugin-sync``), completed:

* ``create``/``update``/``delete`` change the local view at once and append
  to the persisted mutation log (``ClientStore``) with an ISO ``timestamp``,
  the next ``sequence`` and a ``baseVersion``.
* :meth:`SyncEngine.sync` waits until ``debounce_ms`` (1,000) have passed
  since the last local mutation, on the engine's clock, then pushes at most
  ``batch_size`` (50) pending mutations with the last checkpoint. It returns
  ``None`` when a sync is already running or the server cannot be reached
  after ``max_retries`` retries with exponential backoff (``last_error``
  says why); a ``429`` waits for ``Retry-After`` and retries.
* Of the results only ``applied`` is acknowledged; a ``rejected`` mutation
  is parked (``rejected()``), except the over-the-limit rejection, which is
  retried; a ``conflict`` runs the object's resolver (``_resolvers.py``) —
  ObjectQL built the resolvers but never called them.
* ``serverChanges`` (the client's own echo included) are applied to the
  confirmed records, and the checkpoint stored, in the same local transaction
  as the acknowledgements: a crash between them loses nothing.
* A retried push after a network cut resends the same mutation ids; the
  server answers ``applied`` with the original ``serverVersion`` and applies
  nothing twice.

The clock is injectable (:class:`Clock`): tests pass a :class:`FakeClock` whose
``sleep`` only moves its time, so debounce and backoff cost nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol

import anyio
import httpx

from ._log import ClientStore
from ._resolvers import DROP, KEEP, OnConflict, resolve

VERSION_HEADER = "X-ObjectQL-Sync-Version"
PROTOCOL_VERSION = "1"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def utcnow(self) -> dt.datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def utcnow(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class FakeClock:
    """Time that moves only when someone sleeps or calls :meth:`advance`; several clients may share one."""

    def __init__(self, start: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) -> None:
        self.start = start
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def utcnow(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


class SyncRefused(Exception):
    """The server refused the request itself (4xx/5xx other than 429): retrying would not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass
class SyncResult:
    applied: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (mutation id, reason)
    server_changes: int = 0
    checkpoint: str = "0"
    resync: bool = False
    kept: int = 0  # conflicts left unresolved (still pending)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SyncEngine:
    def __init__(
        self,
        http: httpx.AsyncClient,
        store: ClientStore | str | Path,
        *,
        strategies: Mapping[str, str] | None = None,
        space: str = "default",
        path: str = "/api/sync",
        client_id: str | None = None,
        clock: Clock | None = None,
        debounce_ms: int = 1000,
        batch_size: int = 50,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        on_conflict: OnConflict | None = None,
    ) -> None:
        self.http = http
        self.store = store if isinstance(store, ClientStore) else ClientStore(store, client_id)
        self.strategies = dict(strategies) if strategies is not None else None
        self.space, self.path = space, path
        self.clock: Clock = clock or SystemClock()
        self.debounce_s = debounce_ms / 1000
        self.batch_size, self.max_retries, self.backoff_s = batch_size, max_retries, backoff_s
        self.on_conflict = on_conflict
        self.last_error: BaseException | None = None
        self._last_local = float("-inf")
        self._syncing = False

    @property
    def client_id(self) -> str:
        return self.store.client_id

    # -- local writes --------------------------------------------------------------------
    def _record(self, object_name: str, record_id: str, operation: str, data: dict[str, Any] | None) -> dict[str, Any]:
        entry = self.store.append(object_name, str(record_id), operation, data, iso(self.clock.utcnow()))
        self._last_local = self.clock.monotonic()
        return entry

    def create(self, object_name: str, record_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return self._record(object_name, record_id, "create", dict(data))

    def update(self, object_name: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self._record(object_name, record_id, "update", dict(changes))

    def delete(self, object_name: str, record_id: str) -> dict[str, Any]:
        return self._record(object_name, record_id, "delete", None)

    def view(self, object_name: str) -> dict[str, dict[str, Any]]:
        return self.store.view(object_name)

    def pending(self) -> list[dict[str, Any]]:
        return self.store.pending()

    def rejected(self) -> list[dict[str, Any]]:
        return self.store.rejected()

    # -- the push/pull cycle ----------------------------------------------------------------
    async def _strategies(self) -> dict[str, str]:
        if self.strategies is None:
            response = await self.http.get(f"{self.path}/objects")
            response.raise_for_status()
            self.strategies = {o["name"]: o["sync"]["strategy"] for o in response.json()["objects"]}
        return self.strategies

    async def _post(self, body: dict[str, Any]) -> dict[str, Any] | None:
        headers = {VERSION_HEADER: PROTOCOL_VERSION, "X-ObjectQL-Space": self.space}
        for attempt in range(self.max_retries + 1):
            try:
                response = await self.http.post(self.path, json=body, headers=headers)
            except httpx.TransportError as exc:
                self.last_error = exc
                if attempt < self.max_retries:
                    await self.clock.sleep(self.backoff_s * 2**attempt)
                continue
            if response.status_code == 429:
                self.last_error = SyncRefused(429, response.json().get("error", ""))
                if attempt < self.max_retries:
                    await self.clock.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code != 200:
                try:
                    message = response.json().get("error", response.text)
                except ValueError:
                    message = response.text
                raise SyncRefused(response.status_code, message)
            self.last_error = None
            return response.json()  # type: ignore[no-any-return]
        return None

    async def sync(self) -> SyncResult | None:
        """One push of at most ``batch_size`` pending mutations, and the server's changes since the checkpoint."""
        if self._syncing:
            return None
        self._syncing = True
        try:
            wait = self._last_local + self.debounce_s - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            batch = self.store.pending(self.batch_size)
            body = {"clientId": self.client_id, "mutations": batch, "lastCheckpoint": self.store.checkpoint}
            try:
                response = await self._post(body)
            except httpx.HTTPError as exc:  # e.g. a malformed response: the push may or may not have landed
                self.last_error = exc
                return None
            if response is None:
                return None
            strategies: dict[str, str] = self.strategies or {}
            if self.strategies is None and any(r["status"] == "conflict" for r in response["results"]):
                try:  # only a conflict needs the objects' strategies; unknown ones stay pending
                    strategies = await self._strategies()
                except httpx.HTTPError as exc:
                    self.last_error = exc
            return self._settle(batch, response, strategies)
        finally:
            self._syncing = False

    def _settle(self, batch: list[dict[str, Any]], response: dict[str, Any], strategies: dict[str, str]) -> SyncResult:
        result = SyncResult(checkpoint=response["checkpoint"], server_changes=len(response["serverChanges"]),
                            resync=bool(response.get("resync")))
        acknowledged: list[str] = []
        resolved: list[tuple[str, dict[str, Any] | None]] = []
        for mutation, outcome in zip(batch, response["results"]):
            if outcome["status"] == "applied":
                acknowledged.append(mutation["id"])
                result.applied += 1
            elif outcome["status"] == "rejected":
                if not outcome["reason"].startswith("Exceeds maximum mutations"):
                    result.rejected.append((mutation["id"], outcome["reason"]))
            else:
                conflict = outcome["conflict"]
                result.conflicts.append(conflict)
                strategy = strategies.get(mutation["objectName"])
                choice = KEEP if strategy is None else resolve(strategy, conflict, self.on_conflict)
                if isinstance(choice, dict):
                    resolved.append((mutation["id"], choice))
                elif choice == DROP:
                    resolved.append((mutation["id"], None))
                else:
                    result.kept += 1
        self.store.settle(acknowledged, result.rejected, resolved, response["serverChanges"], result.resync,
                          result.checkpoint)
        return result

    async def sync_until_idle(self, max_rounds: int = 1000) -> list[SyncResult]:
        """``sync()`` until nothing is pending that can be sent (or the server is unreachable)."""
        results = []
        for _ in range(max_rounds):
            result = await self.sync()
            if result is None:
                break
            results.append(result)
            left = self.store.pending_count()
            # Nothing left, or nothing moved (e.g. an unresolved manual conflict): stop.
            if not left or (result.applied == 0 and not result.rejected and result.kept == len(result.conflicts)):
                break
        return results
