"""``dohost dev``: the local development server (the counterpart of ``wrangler dev``).

Serves one project over HTTP, prints the URL, logs each request and each
object activation/eviction as a readable line, and reloads on source change:

* The watcher polls modification times of the wrangler file and every
  ``.py`` file under the project folder (hidden folders, caches and
  environments skipped) with ``trio.sleep`` -- no extra dependency, and
  nothing to go wrong on network filesystems. A burst of writes is waited
  out until the snapshot is stable for one poll.
* A reload loads the project freshly and checks it first; a broken file
  (config error, syntax error, import error) is reported and the previous
  version keeps serving. Then :meth:`RuntimeHost.swap` stops the old
  runtime gracefully (everything committed) and opens the new code on the
  same data directory, with the HTTP server up throughout.
* Objects are reset, as on a deploy; storage and pending alarms are kept
  (the alarm index in the data directory). Cloudflare's local runtime loses
  alarms on reload; dohost does not.

State persists under ``--persist-to`` (default ``.dohost/state`` in the
project folder, like wrangler's ``.wrangler/state``): objects, and the
KV namespaces, D1 databases and R2 buckets under ``bindings/``.
``.dev.vars`` (or ``.dev.vars.<env>``) beside the wrangler file adds local
secrets as vars. Repeating ``--config`` loads more Workers into the same
process for service bindings; the first one serves HTTP.

The inspector is mounted at ``/__dohost/inspector`` (``wrangler_compat.inspector``;
``--inspector-writes`` lets its query box write), and ``dohost-server.json``
in the state folder names this server while it runs, so ``dohost do`` goes
through it instead of opening object files the server owns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import msgspec
import trio

from runtime._http import DEFAULT_MAX_BODY_BYTES, build_app
from persistence import PITR_DEFAULT_RETENTION_MS

from ._front import serve_until_signal
from ._hosting import RuntimeHost, open_runtime_host
from ..config._loading import Deployment, prepare_project, project_files
from ._logging import log_request
from ._scheduled_route import with_scheduled_route
from ..errors import WranglerCompatError
from ..telemetry import build_telemetry, metrics_route, otlp_endpoint_from_env
from ..inspector import InspectorOptions, ServerInfo, inspector_routes, server_info_file, write_server_info
from ..platform._local_cf import local_cf

__all__ = ["DevOptions", "run_dev", "snapshot"]

log = logging.getLogger("dohost.dev")


class DevOptions(msgspec.Struct, frozen=True, kw_only=True):
    config: Path  # the wrangler file
    extra_configs: tuple[Path, ...] = ()  # more Workers in this process (`-c main/ -c other/`)
    env: str | None = None
    ip: str = "127.0.0.1"
    port: int = 8787
    persist_to: Path
    vars: dict[str, str] = {}
    idle_timeout: float = 10.0
    #: Point-in-time recovery history kept (ms; 0: none). ``--pitr-retention DAYS``.
    pitr_retention_ms: float = PITR_DEFAULT_RETENTION_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    poll_interval: float = 0.25
    #: OTLP/HTTP base URL for traces (default: ``OTEL_EXPORTER_OTLP_ENDPOINT``; none: no tracing).
    otlp_endpoint: str | None = None
    #: The inspector's dev-only switch: its query box may write.
    inspector_writes: bool = False
    #: Fire triggers.crons on their schedule (wrangler dev never does; /__scheduled runs one now).
    crons: bool = False


Snapshot = dict[Path, tuple[int, int]]


def snapshot(root: Path, config: Path) -> Snapshot:
    """(mtime, size) of each watched file: the project's, and its ``.dev.vars`` files (secrets change too)."""
    out: Snapshot = {}
    for path in [*project_files(root, config), *sorted(config.parent.glob(".dev.vars*"))]:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out[path] = (st.st_mtime_ns, st.st_size)
    return out


async def run_dev(opts: DevOptions) -> None:
    """Serve until SIGINT/SIGTERM. A bad project at start-up raises before serving."""
    deployment = _prepare(opts)
    telemetry = build_telemetry(otlp_endpoint=opts.otlp_endpoint or otlp_endpoint_from_env())
    async with open_runtime_host(data_dir=opts.persist_to, idle_timeout=opts.idle_timeout, telemetry=telemetry,
                                 run_crons=opts.crons,
                                 pitr_retention_ms=opts.pitr_retention_ms) as host:
        await host.start(deployment)
        assert telemetry.metrics is not None
        inspector = inspector_routes(lambda: host.runtime, InspectorOptions(allow_writes=opts.inspector_writes))
        app = build_app(
            lambda: host,
            max_body_bytes=opts.max_body_bytes,
            on_request=log_request,
            extra_routes=[metrics_route(telemetry.metrics), *inspector],
            request_cf=local_cf,
        )
        app = with_scheduled_route(app, lambda: host.runtime, log_request)  # GET /__scheduled (cron triggers)

        def ready(binds: Sequence[str]) -> None:
            url = binds[0] if binds else f"http://{opts.ip}:{opts.port}"
            bindings = ", ".join(sorted(deployment.specs)) or "none"
            log.info("%s: Durable Object bindings: %s; state in %s", opts.config, bindings, opts.persist_to)
            if deployment.bindings is not None and deployment.bindings.names():
                log.info("other bindings: %s", ", ".join(sorted(deployment.bindings.names())))
            if deployment.bindings is not None and deployment.bindings.unsupported_names():
                log.warning("not provided by dohost (raise when used): %s",
                            ", ".join(sorted(deployment.bindings.unsupported_names())))
            log.info("inspector: %s/__dohost/inspector", url)
            log.info("Ready on %s", url, extra={"fields": {"event": "listening", "url": url}})
            write_server_info(opts.persist_to, ServerInfo(url=url, pid=os.getpid(), kind="dev"))

        async def watch() -> None:
            await watch_and_reload(host, opts)

        with server_info_file(opts.persist_to):
            await serve_until_signal(
                app, host=opts.ip, port=opts.port, on_ready=ready, background=[watch], on_signal=host.close_websockets
            )
    telemetry.shutdown()
    log.info("stopped: every object committed and closed", extra={"fields": {"event": "stopped"}})


def _prepare(opts: DevOptions) -> Deployment:
    return prepare_project(opts.config, env_name=opts.env, data_dir=opts.persist_to, extra_vars=opts.vars,
                           extra_configs=opts.extra_configs, dev_vars=True)


async def watch_and_reload(host: RuntimeHost, opts: DevOptions) -> None:
    root = opts.config.parent
    before = snapshot(root, opts.config)
    while True:
        await trio.sleep(opts.poll_interval)
        now = snapshot(root, opts.config)
        if now == before:
            continue
        while True:  # editors write in steps: wait until one poll sees no change
            await trio.sleep(opts.poll_interval)
            later = snapshot(root, opts.config)
            if later == now:
                break
            now = later
        changed = sorted({p for p in set(now) | set(before) if now.get(p) != before.get(p)})
        before = now
        await reload(host, opts, [_relative(p, root) for p in changed])


async def reload(host: RuntimeHost, opts: DevOptions, changed: Sequence[str]) -> bool:
    """Reload the project into ``host``; False (and the old code keeps serving) on error."""
    what = ", ".join(changed) or "the project"
    log.info("change in %s: reloading", what, extra={"fields": {"event": "change", "files": list(changed)}})
    try:
        deployment = _prepare(opts)
    except WranglerCompatError as exc:
        log.error("reload failed: %s; still serving the previous version", exc)
        return False
    except Exception:
        log.error("reload failed: importing the Worker raised; still serving the previous version", exc_info=True)
        return False
    started = trio.current_time()
    try:
        await host.swap(deployment)
    except Exception:
        log.error("reload failed; still serving the previous version", exc_info=True)
        return False
    log.info(
        "reloaded in %.0f ms (objects reset; storage and pending alarms kept)",
        (trio.current_time() - started) * 1000.0,
        extra={"fields": {"event": "reloaded"}},
    )
    return True


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
