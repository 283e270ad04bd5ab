"""``open_runtime``: the one way to host Durable Objects in a process.

It resolves bindings (classes, :class:`NamespaceSpec` s, or a wrangler file
through ``wrangler_compat``), picks the data directory (a temporary one,
removed on exit, when none is given), starts the runtime's nursery with the
alarm scheduler and the WebSocket service, and on exit stops accepting
events, drains, commits and closes every file. An exception raised in the
``async with`` body comes out as itself, not wrapped in an ExceptionGroup.
"""

from __future__ import annotations

import inspect
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Mapping, Protocol, Sequence

import trio

from persistence import PITR_DEFAULT_RETENTION_MS as DEFAULT_RETENTION_MS

from ._commit_threads import open_commit_threads
from ._runtime import (
    DEFAULT_IDLE_TIMEOUT, NamespaceSpec, NullObserver, Placement, Runtime, RuntimeObserver, default_spec,
)  # fmt: skip
from ._telemetry import NULL_TELEMETRY, Telemetry
from .errors import RuntimeConfigError

__all__ = ["open_runtime", "default_max_resident", "FILES_PER_OBJECT", "RuntimeResource"]


class RuntimeResource(Protocol):
    """Something the layer above puts in ``env`` that needs the running runtime (bindings' stores).

    ``attach`` is called once the runtime exists, before any request;
    ``close`` after every object has stopped.
    """

    def attach(self, runtime: Runtime) -> None: ...

    def close(self) -> None: ...


#: Open files per resident object where objects cannot be parked (no OFD locks):
#: the database, its -wal, the lock file (EXCLUSIVE locking: no -shm). With OFD
#: locks a parked object holds none and Runtime.max_open_objects bounds the rest.
FILES_PER_OBJECT = 3
#: Descriptors kept free for sockets, the alarm index, logs, the interpreter and
#: each namespace folder's lock files (up to ``persistence.LOCK_SHARDS``) and the
#: commit threads' eventfds (up to ``_commit_threads.MAX_COMMIT_THREADS``).
_RESERVED_FDS = 256


def default_max_resident() -> int:
    """How many objects may stay open at once, from the process's file limit.

    Raises the soft ``RLIMIT_NOFILE`` to the hard one first (as servers
    commonly do), then leaves room for everything that is not an object.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > soft):
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
        if soft == resource.RLIM_INFINITY:
            return 10_000
    except ImportError:  # pragma: no cover - not on POSIX
        return 1_000
    return max(16, min(10_000, (soft - _RESERVED_FDS) // FILES_PER_OBJECT))


@asynccontextmanager
async def open_runtime(
    *,
    bindings: Mapping[str, Any] | None = None,
    config: str | Path | Sequence[str | Path] | None = None,
    env_name: str | None = None,
    data_dir: str | Path | None = None,
    vars: Mapping[str, Any] | None = None,
    entrypoint: Any = None,
    durability: Literal["full", "normal", "none"] = "normal",
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_resident: int | None = None,
    value_binding: Literal["cloudflare", "native"] = "cloudflare",
    observer: RuntimeObserver | None = None,
    delete_all_deletes_alarm: bool = True,
    alarm_jitter: Callable[[], float] | None = None,
    group_commit: bool = True,
    worker_vars: Mapping[str, Mapping[str, Any]] | None = None,
    resources: Sequence[RuntimeResource] = (),
    telemetry: Telemetry | None = None,
    pitr_retention_ms: float = DEFAULT_RETENTION_MS,
    placement: Placement | None = None,
    alarm_index: str = "dohost-alarms.sqlite",
) -> AsyncIterator[Runtime]:
    """Host Durable Objects in this process; see ``DESIGN.md`` "The embedding API".

    ``bindings`` maps binding names to classes (or :class:`NamespaceSpec`);
    ``config`` loads them, the Worker, vars and migrations from a wrangler
    file instead; a list of wrangler files loads several Workers in this
    process (the first is the one ``rt.fetch`` calls), so a binding's
    ``script_name`` can name a class of another. Without ``data_dir`` storage
    lives in a temporary directory removed on exit. ``worker_vars`` gives the
    env values of other loaded Workers by name; ``resources`` are attached to
    the runtime once it exists and closed after every object stopped.
    ``telemetry`` receives metrics and trace events (``runtime._telemetry``);
    by default nothing is measured. ``alarm_index`` names
    this process's alarm index file in ``data_dir`` (one per process sharing it).
    ``pitr_retention_ms`` is how long point-in-time history is kept (Cloudflare:
    30 days); 0 keeps none. ``placement`` decides where each object's
    events run and forwards the others (``runtime.cluster.Forwarder``:
    ``dohost serve --processes N`` and ``--cluster``).
    """
    if max_resident is None:
        max_resident = default_max_resident()
    if max_resident < 1:
        raise RuntimeConfigError(f"max_resident: expected a positive number of objects, got {max_resident!r}")
    if durability not in ("full", "normal", "none"):
        raise RuntimeConfigError(f"durability: expected 'full', 'normal' or 'none', got {durability!r}")
    if not isinstance(pitr_retention_ms, (int, float)) or pitr_retention_ms < 0:
        raise RuntimeConfigError(
            f"pitr_retention_ms: expected a non-negative number of milliseconds, got {pitr_retention_ms!r}"
        )
    if idle_timeout <= 0:
        raise RuntimeConfigError(f"idle_timeout: expected a positive number of seconds, got {idle_timeout!r}")
    tmp: tempfile.TemporaryDirectory[str] | None = None
    body_error: BaseException | None = None
    rt: Runtime | None = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="dohost-")
        root = Path(tmp.name)
    else:
        root = Path(data_dir)
        root.mkdir(parents=True, exist_ok=True)
    try:
        specs: dict[str, NamespaceSpec] = {}
        all_vars = dict(vars or {})
        all_worker_vars: dict[str, Any] = dict(worker_vars or {})
        all_resources = list(resources)
        if config is not None:
            project = _load_project(config, env_name, root)
            specs.update(project["specs"])
            all_vars = {**project["vars"], **all_vars}
            all_worker_vars = {**project.get("worker_vars", {}), **all_worker_vars}
            all_resources.extend(project.get("resources", ()))
            entrypoint = entrypoint if entrypoint is not None else project["entrypoint"]
            delete_all_deletes_alarm = project.get("delete_all_deletes_alarm", delete_all_deletes_alarm)
        for name, value in (bindings or {}).items():
            if isinstance(value, NamespaceSpec):
                specs[name] = value
            elif inspect.isclass(value):
                specs[name] = default_spec(name, value, root, value_binding=value_binding)
            else:
                raise RuntimeConfigError(
                    f"bindings[{name!r}]: expected a Durable Object class, got {type(value).__name__}"
                )
        # The commit threads' pool encloses the runtime's nursery: it closes only once
        # every activation, and so every final commit, has finished.
        async with open_commit_threads() as commit_threads, trio.open_nursery() as nursery:
            rt = Runtime(
                nursery,
                placement=placement,
                data_dir=root,
                specs=specs,
                vars=all_vars,
                entrypoint=entrypoint,
                durability=durability,
                idle_timeout=idle_timeout,
                max_resident=max_resident,
                observer=observer or NullObserver(),
                delete_all_deletes_alarm=delete_all_deletes_alarm,
                alarm_jitter=alarm_jitter,
                group_commit=group_commit,
                worker_vars=all_worker_vars,
                telemetry=NULL_TELEMETRY if telemetry is None else telemetry,
                pitr_retention_ms=pitr_retention_ms,
                alarm_index=alarm_index,
            )
            rt.commit_threads = commit_threads
            for resource in all_resources:
                resource.attach(rt)
            alarm_scope = trio.CancelScope()

            async def serve_alarms(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with alarm_scope:
                    await rt.alarms.serve(task_status=task_status)

            await nursery.start(serve_alarms)
            worker_tasks = trio.CancelScope()

            async def serve_worker_tasks(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with worker_tasks:
                    await rt.serve_worker_tasks(task_status=task_status)

            await nursery.start(serve_worker_tasks)
            try:
                yield rt
            except BaseException as exc:
                # Re-raised below, outside the nursery, so the caller sees its own
                # exception and not an ExceptionGroup wrapping it.
                body_error = exc
            finally:
                with trio.CancelScope(shield=True):
                    rt._closing = True
                    alarm_scope.cancel()
                    await rt.stop_all()
                    rt.idle_sweeper.close()
                    # Worker waitUntil() work may await the Worker's asyncio tasks:
                    # let it finish, then cancel the tasks nobody waits for.
                    await rt.wait_worker_background()
                    worker_tasks.cancel()
                    rt.stop_sockets()
                    rt.alarms.close()
                    for resource in all_resources:
                        resource.close()
        if body_error is not None:
            raise body_error
    finally:
        if rt is not None:
            rt.close_lock_tables()  # every activation has finished: no file is open
        if tmp is not None:
            tmp.cleanup()


def _load_project(config: str | Path | Sequence[str | Path], env_name: str | None, data_dir: Path) -> dict[str, Any]:
    """Load a wrangler project through ``wrangler_compat``.

    DESIGN fixes both ``open_runtime(config=...)`` and "imports point down";
    the loader is therefore resolved by name when a config is actually given,
    so ``runtime``'s module graph never imports the layer above it.
    """
    import importlib

    loader = importlib.import_module("wrangler_compat").load_project
    return loader(config, env_name=env_name, data_dir=data_dir)  # type: ignore[no-any-return]
