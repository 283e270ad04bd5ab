"""``dohost serve``: a small self-hosted Durable Objects server, and its deploy API.

* No reload; durability ``"full"`` (every commit fsynced); JSON log lines.
* SIGTERM/SIGINT: stop accepting, drain open requests, close WebSockets
  (1001), commit and close every object, exit 0.
* What runs: the current deployed version (``DATA_DIR/deploys/current``),
  else ``--config``, else nothing (503) until a deploy arrives. A deployed
  version that no longer loads is reported and the server starts empty, so
  it can still be rolled back or redeployed.
* ``POST /__dohost/deploy`` (``Authorization: Bearer <token>``, a
  ``dohost deploy`` archive as the body, ``?env=`` optional): store the
  version, load it (config, import, migrations checked against a scratch
  copy of the namespace registry), then swap the code atomically (objects
  reset, storage and alarms kept) and make it current. Anything bad is a
  400 naming the problem, and nothing changed.
* ``POST /__dohost/rollback[?version=N]``: run the version that was current
  before the current one (or N) again; ``GET /__dohost/deploys`` lists them.
* In a cluster (nodes share the data directory) a deploy or rollback to any
  node is recorded in etcd once it serves there; every other node loads that
  version from the shared directory and swaps it in (objects reset once,
  storage and alarms kept).
* The inspector (``/__dohost/inspector``, ``/__dohost/api``) sits behind the
  same token; no token, no inspector (403).
* No token, no deploy API (403); and ``serve`` refuses to listen beyond
  loopback without a token at all (checked by the CLI).
"""

from __future__ import annotations

import contextlib
import hmac
import re
import shutil
import logging
import os
import socket
import traceback
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import msgspec
import trio
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from runtime._http import DEFAULT_MAX_BODY_BYTES, build_app
from persistence import PITR_DEFAULT_RETENTION_MS
from runtime.cluster import ClusterError, ClusterNode, ClusterOptions, EtcdClient, EtcdError, ShardPlacement
from runtime.cluster import Forwarder, HashPlacement

from ..config._config import load_config
from ._deploy import MAX_ARCHIVE_BYTES, DeployError, DeployStore
from ._workers import WorkerRouter, read_routes
from ._front import serve_until_signal
from ._hosting import RuntimeHost, open_runtime_host
from ..config._loading import Deployment, prepare_project
from ._logging import log_request
from ..errors import WranglerCompatError
from ..telemetry import build_telemetry, metrics_route, otlp_endpoint_from_env
from ..inspector import InspectorOptions, ServerInfo, inspector_routes, server_info_file, write_server_info

__all__ = ["ServeOptions", "ProcessSlot", "DeployManager", "run_serve"]

log = logging.getLogger("dohost.serve")

#: A Worker name as ``dohost deploy --name`` accepts it (it names a folder: nothing else).
_WORKER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class ProcessSlot(msgspec.Struct, frozen=True, kw_only=True):
    """This process's place among ``dohost serve --processes N`` (given by the supervisor)."""

    index: int
    count: int
    #: The shared public listening socket and this process's private one, bound by the supervisor.
    public_fd: int
    private_fd: int
    #: Every process's private base URL, by index (the supervisor's health checks).
    peers: list[str]
    #: This process's wire socket (a listening Unix socket) and every process's wire address, by index.
    wire_fd: int
    wires: list[str]
    token: str
    #: The public address (the port the supervisor bound, when ``--listen`` asked for 0).
    public_url: str


class ServeOptions(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8787
    token: str | None = None
    config: Path | None = None
    env: str | None = None
    vars: dict[str, str] = {}
    idle_timeout: float = 10.0
    #: Point-in-time recovery history kept (ms; 0: none). ``--pitr-retention DAYS``.
    pitr_retention_ms: float = PITR_DEFAULT_RETENTION_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    drain_timeout: float = 10.0
    #: ``/__dohost/metrics`` without the token (for a scraper that cannot send one).
    public_metrics: bool = False
    #: OTLP/HTTP base URL for traces (default: ``OTEL_EXPORTER_OTLP_ENDPOINT``; none: no tracing).
    otlp_endpoint: str | None = None
    #: ``--cluster``: join a cluster of nodes on etcd (``runtime.cluster``; docs/cluster.md).
    cluster: ClusterOptions | None = None
    #: Set in a child of ``--processes N`` (``_processes.py``).
    process: ProcessSlot | None = None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class DeployManager:
    """The deploy API of one server; deploys and rollbacks run one at a time."""

    def __init__(self, store: DeployStore, *, data_dir: Path, token: str | None, extra_vars: dict[str, str]) -> None:
        self.store = store
        self.data_dir = data_dir
        self.token = token
        self.extra_vars = extra_vars
        self.host: RuntimeHost | None = None
        #: The cluster node whose other nodes follow our deploys (``--cluster``).
        self.cluster: ClusterNode | None = None
        #: The deployed version this server runs (None: ``--config`` or nothing).
        self.running: int | None = None
        self._lock = trio.Lock()
        #: Called after a deploy or rollback took effect here (outside the lock): other processes follow.
        self.after_change: Callable[[], Awaitable[None]] | None = None

    async def reload_current(self) -> None:
        """Run the current version again (another process deployed it)."""
        async with self._lock:
            current = self.store.current()
            if self.host is None:
                return
            await self.host.swap(self.compose())
        log.info("now serving the current versions", extra={"fields": {"event": "reloaded", "version": current}})

    def named_store(self, name: str) -> DeployStore:
        """The versions of the Worker deployed as ``name`` (``dohost deploy --name``)."""
        if not _WORKER_NAME.fullmatch(name):
            # CF: https://developers.cloudflare.com/workers/wrangler/configuration/ (name: alphanumeric and dashes)
            raise DeployError(f"name: expected a Worker name of lowercase letters, digits, '-' and '_'"
                              f" (at most 63), got {name!r}")
        return DeployStore(self.store.root / "workers" / name)

    def _named(self) -> list[str]:
        folder = self.store.root / "workers"
        return sorted(p.name for p in folder.iterdir() if _WORKER_NAME.fullmatch(p.name)) if folder.is_dir() else []

    def load_version(self, version: int, name: str | None = None) -> Deployment:
        """The code to run with ``version`` of the main Worker (or of Worker ``name``) and the others' current ones."""
        return self.compose({name: version})

    def compose(self, pinned: dict[str | None, int] | None = None, main_config: Path | None = None,
                main_env: str | None = None) -> Deployment:
        """Every Worker to serve, loaded together: the main one first, then those deployed by name.

        ``pinned`` picks a version other than the current one (a deploy being
        checked, a rollback). Raises what loading raises.
        """
        pinned = pinned or {}
        sources: list[tuple[str | None, Path, str | None, str]] = []
        main_version = pinned.get(None, self.store.current())
        if main_version is not None:
            meta = self.store.meta(main_version)
            sources.append((None, self.store.config_path(main_version), meta.env, f"version {main_version}"))
        elif main_config is not None:
            sources.append((None, main_config, main_env, str(main_config)))
        for name in self._named():
            store = self.named_store(name)
            version = pinned.get(name, store.current())
            if version is not None:
                meta = store.meta(version)
                config_path = store.config_path(version)
                named_as = load_config(config_path, env=meta.env).name
                if named_as != name:
                    raise DeployError(f"name: deployed as Worker {name!r}, but its wrangler file names it"
                                      f" {named_as!r}; deploy it with --name {named_as}")
                sources.append((name, config_path, meta.env, f"{name} version {version}"))
        if not sources:
            return Deployment.empty()
        deployment = prepare_project(
            sources[0][1],
            env_name=sources[0][2],
            data_dir=self.data_dir,
            extra_vars=self.extra_vars,
            forget_under=self.store.root,
            extra_configs=[src[1] for src in sources[1:]],
        )
        deployment.label = ", ".join(src[3] for src in sources)
        if len(sources) > 1:
            routes = [r for src, cfg in zip(sources, deployment.configs)
                      for r in read_routes(src[1], cfg.name, src[2])]
            names: dict[str | None, str] = {None: deployment.configs[0].name}
            names.update({c.name: c.name for c in deployment.configs[1:]})
            deployment.router = WorkerRouter(routes, deployment.entrypoints, names, deployment.configs[0].name)
        return deployment

    def initial_deployment(self, config: Path | None, env: str | None) -> Deployment:
        current = self.store.current()
        if current is not None and config is not None:
            log.warning("--config %s ignored: deployed version %d is current", config, current)
        try:
            deployment = self.compose(main_config=config, main_env=env)
            self.running = current
            return deployment
        except Exception:
            if current is None and not self._named():
                raise  # --config alone: its error is the command's
            log.error("the deployed Workers do not load; serving nothing until a deploy or rollback", exc_info=True)
            return Deployment.empty()

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/__dohost/deploy", self._deploy, methods=["POST"]),
            Route("/__dohost/rollback", self._rollback, methods=["POST"]),
            Route("/__dohost/deploys", self._list, methods=["GET"]),
        ]

    def _denied(self, request: StarletteRequest) -> JSONResponse | None:
        if self.token is None:
            return _error(403, "deploys are disabled: start `dohost serve` with --token or DOHOST_TOKEN")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return _error(401, "a valid deploy token is required (Authorization: Bearer <token>)")
        return None

    async def _deploy(self, request: StarletteRequest) -> JSONResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                return _error(413, f"upload larger than {MAX_ARCHIVE_BYTES} bytes")
            chunks.append(chunk)
        env = request.query_params.get("env") or None
        name = request.query_params.get("name") or None
        async with self._lock:
            try:
                store = self.store if name is None else self.named_store(name)
                meta = store.stage(b"".join(chunks), env)
            except WranglerCompatError as exc:
                return _error(400, str(exc))
            result = await self._activate(meta.version, previous=store.current(), discard=True, name=name)
        if result.status_code == 200 and self.after_change is not None:
            await self.after_change()
        if result.status_code == 200:
            log.info("deployed version %d", meta.version, extra={"fields": {"event": "deployed", "version": meta.version}})
        return result

    async def _rollback(self, request: StarletteRequest) -> JSONResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        name = request.query_params.get("name") or None
        async with self._lock:
            try:
                store = self.store if name is None else self.named_store(name)
            except DeployError as exc:
                return _error(400, str(exc))
            current = store.current()
            wanted = request.query_params.get("version")
            try:
                if wanted is not None:
                    if not wanted.isdigit():
                        return _error(400, f"version: expected a number, got {wanted!r}")
                    target: int | None = int(wanted)
                    store.meta(int(wanted))
                else:
                    target = store.meta(current).previous if current is not None else None
            except DeployError as exc:
                return _error(404, str(exc))
            if target is None:
                return _error(409, "nothing to roll back to: the current version has no previous version")
            result = await self._activate(target, previous=current, discard=False, name=name)
        if result.status_code == 200 and self.after_change is not None:
            await self.after_change()
        if result.status_code == 200:
            log.info("rolled back to version %d", target, extra={"fields": {"event": "rolled-back", "version": target}})
        return result

    async def _activate(self, version: int, *, previous: int | None, discard: bool,
                        name: str | None = None) -> JSONResponse:
        """Load ``version`` (of Worker ``name``), swap it in and make it current; on error change nothing."""
        assert self.host is not None
        store = self.store if name is None else self.named_store(name)
        verb = "deploy" if discard else f"roll back to version {version}"
        try:
            deployment = self.load_version(version, name)
        except WranglerCompatError as exc:
            return self._refuse(version, discard, f"cannot {verb}: {exc}", store=store)
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc))
            summary = "".join(traceback.format_exception_only(exc)).strip()
            return self._refuse(version, discard, f"cannot {verb}: importing the Worker raised {summary}", detail,
                                store=store)
        try:
            await self.host.swap(deployment)
        except Exception as exc:
            log.error("version %d failed to start", version, exc_info=True)
            return self._refuse(version, discard, f"cannot {verb}: the new code failed to start ({exc!r}); nothing changed",
                                status=500, store=store)
        store.set_current(version)
        body: dict[str, Any] = {"version": version, "previous": previous, "bindings": sorted(deployment.specs),
                                **({"name": name} if name is not None else {})}
        if name is None:
            self.running = version
            if self.cluster is not None:
                try:
                    await self.cluster.publish_deploy(version)
                except EtcdError as exc:
                    # This node serves it and it is current on disk (nodes restarting load it);
                    # the running nodes are not told: say so, and deploy again to retry.
                    log.error("version %d not recorded in etcd: %s", version, exc)
                    body["cluster_error"] = f"the other nodes were not told (etcd: {exc}); deploy again"
        return JSONResponse(body)

    async def follow(self, version: int) -> None:
        """Another cluster node deployed ``version`` (in the shared data directory): run it here too."""
        assert self.host is not None
        async with self._lock:
            if version == self.running:
                return
            deployment = self.load_version(version)
            await self.host.swap(deployment)
            self.running = version
        log.info("serving version %d, deployed on another node", version,
                 extra={"fields": {"event": "deploy-followed", "version": version}})

    def _refuse(self, version: int, discard: bool, message: str, detail: str | None = None, status: int = 400,
                store: DeployStore | None = None) -> JSONResponse:
        if discard:
            store = store or self.store
            store.discard(version)
            if store is not self.store and not store.versions():
                shutil.rmtree(store.root, ignore_errors=True)  # a first deploy by a new name: no trace
        log.warning("%s", message, extra={"fields": {"event": "deploy-refused", "version": version}})
        return _error(status, message, **({"traceback": detail} if detail else {}))

    async def _list(self, request: StarletteRequest) -> JSONResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        versions = [msgspec.to_builtins(m) for m in self.store.versions()]
        workers = {name: {"current": self.named_store(name).current(),
                          "versions": [msgspec.to_builtins(m) for m in self.named_store(name).versions()]}
                   for name in self._named()}
        return JSONResponse({"current": self.store.current(), "versions": versions, "workers": workers})


async def run_serve(opts: ServeOptions) -> None:
    """Serve until SIGTERM/SIGINT; see the module docstring.

    With ``opts.cluster`` the node first joins the cluster (a lease and its
    registration in etcd); etcd unreachable or the node id in use raises
    :class:`runtime.cluster.ClusterError` before anything is served. On exit
    every object is committed and closed before the lease is revoked.
    """
    if opts.cluster is None:
        await _run_serve(opts, None, [])
        return
    # The wire (forwarded calls from other nodes) listens before joining: its address is registered.
    listener, *others = await trio.open_tcp_listeners(cluster_wire_port(opts), host=opts.host)
    for other in others:  # a name with IPv4 and IPv6 addresses: one family is enough on one port
        await other.aclose()
    port = listener.socket.getsockname()[1]
    host = urlsplit(opts.cluster.advertise).hostname or opts.host
    cluster = msgspec.structs.replace(opts.cluster, wire=f"tcp:{host}:{port}")
    async with EtcdClient(cluster.endpoints) as etcd:
        node = ClusterNode(etcd, cluster)
        try:
            await node.join()
        except ClusterError:
            await listener.aclose()
            raise
        except EtcdError as exc:
            await listener.aclose()
            raise ClusterError(f"--cluster: cannot join: {exc}") from None
        placement = ShardPlacement(node, lambda: None)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.serve)
                await _run_serve(opts, placement, [listener])
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await node.leave()


def cluster_wire_port(opts: ServeOptions) -> int:
    """The wire's TCP port: ``DOHOST_WIRE_PORT`` (a container publishing it), else any free port."""
    value = os.environ.get("DOHOST_WIRE_PORT", "")
    return int(value) if value.isdigit() else 0


async def _run_serve(opts: ServeOptions, placement: ShardPlacement | None, listeners: list[Any]) -> None:
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    manager = DeployManager(
        DeployStore(opts.data_dir / "deploys"), data_dir=opts.data_dir, token=opts.token, extra_vars=opts.vars
    )
    deployment = manager.initial_deployment(opts.config, opts.env)
    telemetry = build_telemetry(otlp_endpoint=opts.otlp_endpoint or otlp_endpoint_from_env())
    assert telemetry.metrics is not None
    metrics = metrics_route(telemetry.metrics, public=opts.public_metrics, token=opts.token)
    forwarder: Forwarder | None = None
    runtime_options: dict[str, Any] = {}
    binds: list[str] | None = None
    trace_hooks = {"trace_context": getattr(telemetry, "trace_context", None),
                   "resume_trace": getattr(telemetry, "resume_trace", None)}
    if placement is not None:  # --cluster: this node's placement (ownership, forwarding, fencing)
        forwarder = Forwarder(placement, opts.token, **trace_hooks)
    if opts.process is not None:
        slot = opts.process
        forwarder = Forwarder(HashPlacement(slot.index, slot.count, slot.wires), slot.token, **trace_hooks)
        listeners = [trio.SocketListener(trio.socket.fromfd(slot.wire_fd, socket.AF_UNIX, socket.SOCK_STREAM))]
        os.close(slot.wire_fd)  # fromfd duplicated it
        # One alarm index per process: each holds the alarms of the objects it owns.
        runtime_options.update(alarm_index=f"dohost-alarms.{slot.index}-of-{slot.count}.sqlite")
        binds = [f"fd://{slot.public_fd}", f"fd://{slot.private_fd}"]
        manager.after_change = partial(forwarder.broadcast, "reload")

        async def on_notice(notice: str) -> None:
            if notice == "reload":  # another process deployed: run the current version
                await manager.reload_current()

        forwarder.on_notice = on_notice
    if forwarder is not None:
        runtime_options["placement"] = forwarder
    # Each cron fires once per time across the processes or nodes sharing the data: in
    # the first process, or on the node that owns shard 0 (it moves on failover).
    crons_here: bool | Callable[[], bool] = opts.process is None or opts.process.index == 0
    if placement is not None:
        node = placement.node
        crons_here = lambda: node.holds(0)  # noqa: E731
    async with trio.open_nursery() as wire:
        if forwarder is not None:
            await wire.start(forwarder.run)
        try:
            await _serve_host(opts, manager, deployment, telemetry, metrics, runtime_options, crons_here, binds,
                              placement, forwarder, listeners)
        finally:
            wire.cancel_scope.cancel()
    telemetry.shutdown()
    log.info("stopped: every object committed and closed", extra={"fields": {"event": "stopped"}})


async def _serve_host(opts: ServeOptions, manager: DeployManager, deployment: Deployment, telemetry: Any, metrics: Any,
                      runtime_options: dict[str, Any], crons_here: bool | Callable[[], bool], binds: list[str] | None,
                      placement: ShardPlacement | None, forwarder: Forwarder | None, listeners: list[Any]) -> None:
    async with open_runtime_host(
        data_dir=opts.data_dir,
        durability="full",
        idle_timeout=opts.idle_timeout,
        pitr_retention_ms=opts.pitr_retention_ms,
        drain_timeout=opts.drain_timeout,
        telemetry=telemetry,
        runtime_options=runtime_options,
        run_crons=crons_here,
    ) as host:
        manager.host = host
        if placement is not None:
            placement.get_runtime = lambda: host.runtime
            manager.cluster = placement.node
        await host.start(deployment)
        if placement is not None:
            placement.node.follow_deploys(manager.follow)  # from here on a deploy can be swapped in
        if forwarder is not None:
            forwarder.in_runtime = host.in_runtime
            forwarder.serve(listeners)  # peers' calls waited in the listening socket's backlog until now
        inspector = inspector_routes(lambda: host.runtime, InspectorOptions(token=opts.token, token_required=True))
        app = build_app(
            lambda: host,
            max_body_bytes=opts.max_body_bytes,
            extra_routes=[*manager.routes(), metrics, *inspector],
            on_request=log_request,
        )
        # One server-info file per data directory: with --processes, the first child's.
        writes_info = opts.process is None or opts.process.index == 0

        def ready(bound: Sequence[str]) -> None:
            url = opts.process.public_url if opts.process is not None else (
                bound[0] if bound else f"http://{opts.host}:{opts.port}")
            who = ""
            if opts.process is not None:
                who = (f" (process {opts.process.index + 1} of {opts.process.count};"
                       f" internal {opts.process.peers[opts.process.index]})")
            log.info(
                "Ready on %s%s (serving %s; data in %s)",
                url,
                who,
                deployment.label,
                opts.data_dir,
                extra={"fields": {"event": "listening", "url": url, "deploys": opts.token is not None}},
            )
            if writes_info:
                write_server_info(
                    opts.data_dir, ServerInfo(url=url, pid=os.getpid(), kind="serve", token_required=True)
                )

        from ._processes import watch_supervisor

        with server_info_file(opts.data_dir) if writes_info else contextlib.nullcontext():
            await serve_until_signal(app, host=opts.host, port=opts.port, on_ready=ready,
                                     on_signal=host.close_websockets, binds=binds,
                                     background=[watch_supervisor] if opts.process is not None else [])
