"""Hosting a Worker behind the HTTP front, and swapping its code (reload, deploy, rollback).

:class:`RuntimeHost` is what ``build_app``'s ``get_runtime`` returns in
``dohost dev`` and ``dohost serve``: it forwards each request to the current
:class:`runtime.Runtime`, and can replace that runtime by one running other
code. Guarantees:

* A swap is atomic for clients: while it runs, new requests wait (they are
  not refused); requests already inside the Worker finish first (bounded by
  ``drain_timeout``); the old runtime is stopped -- queued events drained,
  everything committed, files closed -- before the new one opens on the same
  data directory, because an object file has one live owner.
* Objects are reset by a swap, as by a deploy on Cloudflare: constructors run
  again under the new code; their WebSockets are closed with 1012 "Service
  Restart". Storage and pending alarms are kept: alarms live in the object
  files and the data directory's alarm index, which the new runtime reads.
* Code is validated before anything stops (``_loading.prepare_project``:
  config, import, migrations checked against a scratch copy of the namespace
  registry), so a bad project changes nothing. Should the new runtime still
  fail to open, the previous code is reopened and the error re-raised.
* With ``run_crons`` (``dohost serve``, ``dohost dev --crons``) the Worker's
  ``triggers.crons`` fire on the runtime's clock (``runtime.serve_crons``) for
  as long as that code runs; a swap stops them with the old runtime and the
  new code's crons start with the new one.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal
from urllib.parse import urlsplit

import trio

from runtime import RuntimeObserver, Telemetry, current_activation, open_runtime, serve_crons
from persistence import PITR_DEFAULT_RETENTION_MS

from ..config._loading import Deployment
from ._logging import log_request

__all__ = ["RuntimeHost", "LogObserver", "open_runtime_host", "SERVICE_RESTART", "GOING_AWAY"]

log = logging.getLogger("dohost.host")
objects_log = logging.getLogger("dohost.objects")

SERVICE_RESTART = 1012  # RFC 6455: the server is restarting (reload, deploy)
GOING_AWAY = 1001  # RFC 6455: the server is going down


class LogObserver:
    """A :class:`runtime.RuntimeObserver` that logs activations, evictions and resets."""

    def before_commit(self, key: tuple[str, str]) -> None:
        pass

    def on_activate(self, key: tuple[str, str]) -> None:
        self._log(logging.INFO, "activated", key)

    def on_evict(self, key: tuple[str, str]) -> None:
        self._log(logging.INFO, "evicted", key)

    def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
        self._log(logging.WARNING, "reset", key, f": {error}")

    def _log(self, level: int, what: str, key: tuple[str, str], tail: str = "") -> None:
        act = current_activation()  # the observer is called from inside the activation
        name = getattr(getattr(act, "object_id", None), "name", None)
        who = f"{key[0]} {name!r}" if name is not None else f"{key[0]} id={key[1][:12]}"
        objects_log.log(
            level,
            "%s %s%s",
            what,
            who,
            tail,
            extra={"fields": {"event": what, "binding": key[0], "object": name, "id": key[1]}},
        )


class _TrackedPeer:
    """Wraps the front's WebSocket peer so the host can close it on a swap."""

    def __init__(self, peer: Any) -> None:
        self._peer = peer
        self.closed = False

    async def send_text(self, data: str) -> None:
        await self._peer.send_text(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._peer.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        await self._peer.close(code, reason)


class _Slot:
    """One open runtime and what the host tracks about it."""

    def __init__(self, rt: Any, deployment: Deployment) -> None:
        self.rt = rt
        self.deployment = deployment
        self.inflight = 0
        self.idle = trio.Event()
        self.idle.set()
        self.stop = trio.Event()
        self.done = trio.Event()
        #: Weak: a connection that ended is forgotten with its HostedSocket.
        self.peers: weakref.WeakSet[_TrackedPeer] = weakref.WeakSet()

    def enter(self) -> None:
        self.inflight += 1
        if self.inflight == 1:
            self.idle = trio.Event()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()


class RuntimeHost:
    """The runtime behind the HTTP front; see the module docstring."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        data_dir: Path,
        durability: Literal["full", "normal"],
        idle_timeout: float,
        observer: RuntimeObserver,
        drain_timeout: float,
        telemetry: Telemetry | None = None,
        runtime_options: dict[str, Any] | None = None,
        run_crons: bool | Callable[[], bool] = False,
        pitr_retention_ms: float = PITR_DEFAULT_RETENTION_MS,
    ) -> None:
        self._nursery = nursery
        #: Passed to every ``open_runtime`` (a process's router and alarm index).
        self._runtime_options = dict(runtime_options or {})
        #: Fire the Worker's cron triggers (module docstring); a callable decides at each due time.
        self.run_crons = run_crons
        #: Point-in-time recovery history every runtime keeps (``--pitr-retention``; 0: none).
        self.pitr_retention_ms = pitr_retention_ms
        #: One for every runtime this host runs: metrics go on across reloads and deploys.
        self.telemetry = telemetry
        self.data_dir = data_dir
        self._durability = durability
        self._idle_timeout = idle_timeout
        self._observer = observer
        self.drain_timeout = drain_timeout
        self._slot: _Slot | None = None
        self._ready = trio.Event()
        self._lock = trio.Lock()
        self._opened: weakref.WeakKeyDictionary[Any, _Slot] = weakref.WeakKeyDictionary()
        self.swaps = 0

    @property
    def deployment(self) -> Deployment | None:
        return self._slot.deployment if self._slot is not None else None

    @property
    def runtime(self) -> Any:
        """The current :class:`runtime.Runtime` (tests and tools; may change on a swap)."""
        return self._slot.rt if self._slot is not None else None

    # -- lifecycle ------------------------------------------------------------
    async def start(self, deployment: Deployment) -> None:
        async with self._lock:
            assert self._slot is None, "start() once; then swap()"
            self._slot = await self._open(deployment)
            self._ready.set()

    async def swap(self, deployment: Deployment) -> None:
        """Replace the running code by ``deployment``; see the module docstring."""
        async with self._lock:
            old = self._slot
            assert old is not None, "start() first"
            self._ready = trio.Event()  # new requests wait from here on
            try:
                await self._retire(old, SERVICE_RESTART, "dohost: the Worker's code changed")
                try:
                    self._slot = await self._open(deployment)
                except Exception:
                    log.error("could not start %s; restarting the previous code", deployment.label)
                    self._slot = await self._open(old.deployment)
                    raise
                self.swaps += 1
            finally:
                self._ready.set()

    async def close(self) -> None:
        async with self._lock:
            if self._slot is not None:
                self._ready = trio.Event()
                await self._retire(self._slot, GOING_AWAY, "dohost: server shutting down")
                self._slot = None

    async def close_websockets(self, code: int = GOING_AWAY, reason: str = "dohost: server shutting down") -> None:
        """Close every client WebSocket of the current runtime (graceful shutdown)."""
        if self._slot is not None:
            await self._close_peers(self._slot, code, reason)

    async def _open(self, deployment: Deployment) -> _Slot:
        options = deployment.runtime_options(self.data_dir)
        slot: _Slot = await self._nursery.start(self._hold, deployment, options)
        return slot

    async def _hold(
        self, deployment: Deployment, options: dict[str, Any], task_status: trio.TaskStatus[_Slot]
    ) -> None:
        slot: _Slot | None = None
        if self.telemetry is not None and hasattr(self.telemetry, "worker") and deployment.config is not None:
            self.telemetry.worker = deployment.config.name  # the Worker label of its metrics and spans
        try:
            async with open_runtime(
                telemetry=self.telemetry,
                data_dir=self.data_dir,
                durability=self._durability,
                idle_timeout=self._idle_timeout,
                pitr_retention_ms=self.pitr_retention_ms,
                observer=self._observer,
                **self._runtime_options,
                **options,
            ) as rt:
                slot = _Slot(rt, deployment)
                task_status.started(slot)
                crons = deployment.config.triggers.crons if self.run_crons and deployment.config else ()
                when = self.run_crons if callable(self.run_crons) else None
                async with trio.open_nursery() as cron_nursery:  # cron triggers live as long as this code
                    if crons:
                        await cron_nursery.start(partial(serve_crons, rt, crons, when=when))
                        log.info("cron triggers: %s", ", ".join(crons))
                    await slot.stop.wait()
                    cron_nursery.cancel_scope.cancel()
        finally:
            if slot is not None:
                slot.done.set()

    async def _retire(self, slot: _Slot, code: int, reason: str) -> None:
        with trio.move_on_after(self.drain_timeout) as cs:
            await slot.idle.wait()
        if cs.cancelled_caught:
            log.warning("%d request(s) still running after %.1f s; stopping anyway", slot.inflight, self.drain_timeout)
        slot.stop.set()
        await slot.done.wait()  # every event drained and committed, every file closed
        # Objects are gone; their clients learn it now (messages to a stopped
        # runtime are dropped by the host, so nothing reaches the new code).
        await self._close_peers(slot, code, reason)

    async def _close_peers(self, slot: _Slot, code: int, reason: str) -> None:
        for peer in list(slot.peers):
            with trio.move_on_after(1.0):
                try:
                    await peer.close(code, reason)
                except Exception:  # the client is already gone
                    pass

    # -- what build_app calls ---------------------------------------------------
    async def _enter(self) -> _Slot:
        while not self._ready.is_set():
            await self._ready.wait()
        slot = self._slot
        if slot is None:
            raise RuntimeError("the server is shutting down")
        slot.enter()
        return slot

    async def in_runtime(self, fn: Any) -> Any:
        """``await fn(rt)`` on the current runtime, counted as a request (a swap waits for it)."""
        slot = await self._enter()
        try:
            return await fn(slot.rt)
        finally:
            slot.leave()

    async def fetch_worker(self, request: Any) -> Any:
        slot = await self._enter()
        try:
            return await slot.rt.fetch_worker(request)
        finally:
            slot.leave()

    async def open_websocket(self, request: Any, peer: Any) -> Any:
        slot = await self._enter()
        started = time.perf_counter()
        status = 500
        try:
            tracked = _TrackedPeer(peer)
            result = await slot.rt.open_websocket(request, tracked)
            status = getattr(result, "status", None) or 500
            if result is not None and not hasattr(result, "status"):  # a HostedSocket
                status = 101
                slot.peers.add(tracked)
                self._opened[result] = slot
            return result
        finally:
            slot.leave()
            log_request("GET", urlsplit(request.url).path, status, time.perf_counter() - started, websocket=True)

    def start_socket(self, hosted: Any) -> None:
        slot = self._opened.pop(hosted, None) or self._slot
        assert slot is not None
        try:
            slot.rt.start_socket(hosted)
        except RuntimeError:  # its runtime stopped between the upgrade and now
            log.info("WebSocket opened while the Worker was being replaced; it will be closed")


@asynccontextmanager
async def open_runtime_host(
    *,
    data_dir: Path,
    durability: Literal["full", "normal"] = "normal",
    idle_timeout: float = 10.0,
    observer: RuntimeObserver | None = None,
    drain_timeout: float = 5.0,
    telemetry: Telemetry | None = None,
    runtime_options: dict[str, Any] | None = None,
    run_crons: bool | Callable[[], bool] = False,
    pitr_retention_ms: float = PITR_DEFAULT_RETENTION_MS,
) -> AsyncIterator[RuntimeHost]:
    """A :class:`RuntimeHost`; its runtime is stopped (and committed) on exit."""
    async with trio.open_nursery() as nursery:
        host = RuntimeHost(
            nursery,
            data_dir=data_dir,
            durability=durability,
            idle_timeout=idle_timeout if idle_timeout > 0 else math.inf,
            observer=observer or LogObserver(),
            drain_timeout=drain_timeout,
            telemetry=telemetry,
            runtime_options=runtime_options,
            run_crons=run_crons,
            pitr_retention_ms=pitr_retention_ms,
        )
        try:
            yield host
        finally:
            with trio.CancelScope(shield=True):
                await host.close()
