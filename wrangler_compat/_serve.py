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
* The inspector (``/__dohost/inspector``, ``/__dohost/api``) sits behind the
  same token; no token, no inspector (403).
* No token, no deploy API (403); and ``serve`` refuses to listen beyond
  loopback without a token at all (checked by the CLI).
"""

from __future__ import annotations

import hmac
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Sequence

import msgspec
import trio
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from runtime._http import DEFAULT_MAX_BODY_BYTES, build_app
from persistence import PITR_DEFAULT_RETENTION_MS
from runtime.cluster import ClusterError, ClusterNode, ClusterOptions, EtcdClient, EtcdError, Router

from ._deploy import MAX_ARCHIVE_BYTES, DeployError, DeployStore
from ._front import serve_until_signal
from ._hosting import RuntimeHost, open_runtime_host
from ._loading import Deployment, prepare_project
from ._logging import log_request
from .errors import WranglerCompatError
from .telemetry import build_telemetry, metrics_route, otlp_endpoint_from_env
from .inspector import InspectorOptions, ServerInfo, inspector_routes, server_info_file, write_server_info

__all__ = ["ServeOptions", "DeployManager", "run_serve"]

log = logging.getLogger("dohost.serve")


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
        self._lock = trio.Lock()

    def load_version(self, version: int) -> Deployment:
        meta = self.store.meta(version)
        deployment = prepare_project(
            self.store.config_path(version),
            env_name=meta.env,
            data_dir=self.data_dir,
            extra_vars=self.extra_vars,
            forget_under=self.store.root,
        )
        deployment.label = f"version {version}"
        return deployment

    def initial_deployment(self, config: Path | None, env: str | None) -> Deployment:
        current = self.store.current()
        if current is not None:
            if config is not None:
                log.warning("--config %s ignored: deployed version %d is current", config, current)
            try:
                return self.load_version(current)
            except Exception:
                log.error(
                    "deployed version %d does not load; serving nothing until a deploy or rollback",
                    current,
                    exc_info=True,
                )
                return Deployment.empty()
        if config is not None:
            return prepare_project(config, env_name=env, data_dir=self.data_dir, extra_vars=self.extra_vars)
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
        async with self._lock:
            try:
                meta = self.store.stage(b"".join(chunks), env)
            except WranglerCompatError as exc:
                return _error(400, str(exc))
            result = await self._activate(meta.version, previous=self.store.current(), discard=True)
        if result.status_code == 200:
            log.info("deployed version %d", meta.version, extra={"fields": {"event": "deployed", "version": meta.version}})
        return result

    async def _rollback(self, request: StarletteRequest) -> JSONResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        async with self._lock:
            current = self.store.current()
            wanted = request.query_params.get("version")
            try:
                if wanted is not None:
                    if not wanted.isdigit():
                        return _error(400, f"version: expected a number, got {wanted!r}")
                    target: int | None = int(wanted)
                    self.store.meta(int(wanted))
                else:
                    target = self.store.meta(current).previous if current is not None else None
            except DeployError as exc:
                return _error(404, str(exc))
            if target is None:
                return _error(409, "nothing to roll back to: the current version has no previous version")
            result = await self._activate(target, previous=current, discard=False)
        if result.status_code == 200:
            log.info("rolled back to version %d", target, extra={"fields": {"event": "rolled-back", "version": target}})
        return result

    async def _activate(self, version: int, *, previous: int | None, discard: bool) -> JSONResponse:
        """Load ``version``, swap it in and make it current; on error change nothing."""
        assert self.host is not None
        verb = "deploy" if discard else f"roll back to version {version}"
        try:
            deployment = self.load_version(version)
        except WranglerCompatError as exc:
            return self._refuse(version, discard, f"cannot {verb}: {exc}")
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc))
            summary = "".join(traceback.format_exception_only(exc)).strip()
            return self._refuse(version, discard, f"cannot {verb}: importing the Worker raised {summary}", detail)
        try:
            await self.host.swap(deployment)
        except Exception as exc:
            log.error("version %d failed to start", version, exc_info=True)
            return self._refuse(version, discard, f"cannot {verb}: the new code failed to start ({exc!r}); nothing changed", status=500)
        self.store.set_current(version)
        return JSONResponse({"version": version, "previous": previous, "bindings": sorted(deployment.specs)})

    def _refuse(self, version: int, discard: bool, message: str, detail: str | None = None, status: int = 400) -> JSONResponse:
        if discard:
            self.store.discard(version)
        log.warning("%s", message, extra={"fields": {"event": "deploy-refused", "version": version}})
        return _error(status, message, **({"traceback": detail} if detail else {}))

    async def _list(self, request: StarletteRequest) -> JSONResponse:
        if (denied := self._denied(request)) is not None:
            return denied
        versions = [msgspec.to_builtins(m) for m in self.store.versions()]
        return JSONResponse({"current": self.store.current(), "versions": versions})


async def run_serve(opts: ServeOptions) -> None:
    """Serve until SIGTERM/SIGINT; see the module docstring.

    With ``opts.cluster`` the node first joins the cluster (a lease and its
    registration in etcd); etcd unreachable or the node id in use raises
    :class:`runtime.cluster.ClusterError` before anything is served. On exit
    every object is committed and closed before the lease is revoked.
    """
    if opts.cluster is None:
        await _run_serve(opts, None)
        return
    cluster = opts.cluster
    async with EtcdClient(cluster.endpoints) as etcd:
        node = ClusterNode(etcd, cluster)
        try:
            await node.join()
        except ClusterError:
            raise
        except EtcdError as exc:
            raise ClusterError(f"--cluster: cannot join: {exc}") from None
        router = Router(node, lambda: None, token=opts.token)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.serve)
                await _run_serve(opts, router)
                nursery.cancel_scope.cancel()
        finally:
            await router.aclose()
            with trio.CancelScope(shield=True):
                await node.leave()


async def _run_serve(opts: ServeOptions, router: Router | None) -> None:
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    manager = DeployManager(
        DeployStore(opts.data_dir / "deploys"), data_dir=opts.data_dir, token=opts.token, extra_vars=opts.vars
    )
    deployment = manager.initial_deployment(opts.config, opts.env)
    telemetry = build_telemetry(otlp_endpoint=opts.otlp_endpoint or otlp_endpoint_from_env())
    assert telemetry.metrics is not None
    metrics = metrics_route(telemetry.metrics, public=opts.public_metrics, token=opts.token)
    async with open_runtime_host(
        data_dir=opts.data_dir,
        durability="full",
        idle_timeout=opts.idle_timeout,
        pitr_retention_ms=opts.pitr_retention_ms,
        drain_timeout=opts.drain_timeout,
        telemetry=telemetry,
        placement=router,
    ) as host:
        manager.host = host
        cluster_routes = []
        if router is not None:
            router.get_runtime = lambda: host.runtime
            cluster_routes = router.routes()
        await host.start(deployment)
        inspector = inspector_routes(lambda: host.runtime, InspectorOptions(token=opts.token, token_required=True))
        app = build_app(
            lambda: host,
            max_body_bytes=opts.max_body_bytes,
            extra_routes=[*manager.routes(), metrics, *inspector, *cluster_routes],
            on_request=log_request,
        )

        def ready(binds: Sequence[str]) -> None:
            url = binds[0] if binds else f"http://{opts.host}:{opts.port}"
            log.info(
                "Ready on %s (serving %s; data in %s)",
                url,
                deployment.label,
                opts.data_dir,
                extra={"fields": {"event": "listening", "url": url, "deploys": opts.token is not None}},
            )
            write_server_info(opts.data_dir, ServerInfo(url=url, pid=os.getpid(), kind="serve", token_required=True))

        with server_info_file(opts.data_dir):
            await serve_until_signal(app, host=opts.host, port=opts.port, on_ready=ready, on_signal=host.close_websockets)
    telemetry.shutdown()
    log.info("stopped: every object committed and closed", extra={"fields": {"event": "stopped"}})
