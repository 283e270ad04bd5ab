"""The test harness behind the ``dohost`` pytest fixture: Cloudflare's ``cloudflare:test``, in Python.

A :class:`Harness` wraps one :class:`runtime.Runtime` opened on one data
directory and adds what ``cloudflare:test`` gives a Vitest suite:
``env`` and ``SELF.fetch`` (:attr:`Harness.env`, :meth:`Harness.fetch`),
``runInDurableObject`` (:meth:`Harness.run_in_durable_object`),
``runDurableObjectAlarm`` (:meth:`Harness.run_alarm`),
``listDurableObjectIds`` (:meth:`Harness.list_object_ids`), ``applyD1Migrations``
(:meth:`Harness.apply_d1_migrations`),
``evictDurableObject`` / ``evictAllDurableObjects`` (:meth:`Harness.evict`,
:meth:`Harness.evict_all`), ``reset`` / ``abortAllDurableObjects``
(:meth:`Harness.reset`, :meth:`Harness.abort_all`; reset also empties KV, D1 and R2),
``createScheduledController`` + ``scheduled`` (:meth:`Harness.run_scheduled`; :meth:`Harness.serve_crons`
fires the wrangler file's crons on the runtime's clock), plus an in-process
WebSocket client and per-object statistics.

What is paid once and what per harness:

* :class:`ProjectSource` is what never changes during a test session: the
  parsed wrangler file and the imported user module (or the classes a suite
  passes directly). The pytest plugin keeps one per wrangler file.
* :meth:`ProjectSource.prepare` applies the migrations to one data directory
  and builds the namespaces; :func:`open_harness` opens a runtime on it. Two
  harnesses share nothing unless they are given the same directory.

Invariants:

* Every helper goes through the object's gates: a function run inside an
  object, an alarm run now, an eviction, all queue behind the events already
  delivered to it, exactly as a request would.
* :meth:`Harness.run_alarm` runs the alarm stored in the object's file *now*,
  whatever its scheduled time, with the scheduler's semantics: ``alarm_info``
  (``retryCount``, ``isRetry``, ``scheduledTime``), deletion in the same
  commit on success, Cloudflare's retry backoff on failure (then the error is
  raised to the test). The scheduler never fires the same alarm concurrently.
* Closing a harness stops every object gracefully (queued events run, writes
  commit). An object still busy after :data:`SHUTDOWN_GRACE_S` seconds of
  trio time is aborted, so a stuck handler cannot hang a test session; under
  ``autojump_clock`` the grace period passes instantly.

"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Mapping, Sequence

import msgspec
import trio

from objects import (
    AbortError,
    DurableObjectId,
    DurableObjectNamespace,
    DurableObjectStub,
    Request,
    make_request,
)
from persistence import PITR_DEFAULT_RETENTION_MS
from runtime import (
    DEFAULT_IDLE_TIMEOUT,
    NamespaceSpec,
    ObjectStatistics,
    Runtime,
    ScheduledResult,
    Telemetry,
    default_spec,
    open_runtime,
    run_scheduled,
    serve_crons,
)

from ..config._config import WorkerConfig, load_config
from ..config._migrations import REGISTRY_FILE
from ..config._project import _module_name, load_project, load_user_module, resolve_config_path
from ..bindings import ProjectBindings
from ..errors import WranglerCompatError

__all__ = [
    "Harness",
    "ProjectSource",
    "PreparedProject",
    "UnknownBindingError",
    "WebSocketClient",
    "open_harness",
    "SHUTDOWN_GRACE_S",
]

log = logging.getLogger("dohost.testing")

#: Trio seconds a closing harness waits for busy objects before aborting them.
SHUTDOWN_GRACE_S = 5.0

WebSocketsOnEvict = Literal["hibernate", "close"]


class UnknownBindingError(WranglerCompatError, AttributeError, LookupError):
    """A test named a binding the project does not define (``env.NOPE``, ``list_object_ids("NOPE")``)."""


def no_jitter() -> float:
    """Alarm retry jitter for tests: none, so retry times are deterministic."""
    return 0.0


# ------------------------------------------------------------------ projects
class PreparedProject:
    """One data directory with its migrations applied: what ``open_runtime`` needs."""

    __slots__ = (
        "source", "data_dir", "specs", "vars", "entrypoint", "delete_all_deletes_alarm", "bindings", "worker_vars",
    )

    def __init__(
        self,
        source: ProjectSource,
        data_dir: Path,
        specs: Mapping[str, NamespaceSpec],
        vars: Mapping[str, Any],
        entrypoint: Any,
        delete_all_deletes_alarm: bool,
        bindings: ProjectBindings | None = None,
        worker_vars: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.source = source
        #: Plain vars of the auxiliary Workers, by name.
        self.worker_vars = {k: dict(v) for k, v in (worker_vars or {}).items()}
        #: KV, D1, R2, services, assets...: their objects join ``vars`` in the env.
        self.bindings = bindings
        self.data_dir = data_dir
        self.specs = dict(specs)
        self.vars = dict(vars)
        self.entrypoint = entrypoint
        self.delete_all_deletes_alarm = delete_all_deletes_alarm


class ProjectSource:
    """What a harness hosts: a wrangler project (loaded once) or classes given directly."""

    __slots__ = ("config", "bindings", "_blueprint", "extra_configs")

    def __init__(
        self, *, config: WorkerConfig | None = None, bindings: Mapping[str, Any] | None = None,
        extra_configs: Sequence[WorkerConfig] = (),
    ) -> None:
        if (config is None) == (bindings is None):
            raise TypeError("ProjectSource: give exactly one of config= and bindings=")
        self.config = config
        #: Auxiliary Workers loaded beside ``config`` (service bindings, ``script_name``).
        self.extra_configs = list(extra_configs)
        self.bindings: dict[str, Any] | None = None
        self._blueprint: _Blueprint | None = None
        if bindings is not None:
            for name, cls in bindings.items():
                if not inspect.isclass(cls):
                    raise TypeError(
                        f"dohost_bindings[{name!r}]: expected a Durable Object class, got {type(cls).__name__}"
                    )
            self.bindings = dict(bindings)

    @classmethod
    def load(
        cls, config: str | Path, *, env_name: str | None = None, auxiliary: Sequence[str | Path] = ()
    ) -> ProjectSource:
        """Parse a wrangler file (or find the one in a folder) and import its ``main`` module.

        ``auxiliary`` wrangler files are more Workers in the same runtime (what
        vitest-pool-workers calls auxiliary Workers): service bindings and
        ``script_name`` reach them; ``dohost.fetch`` goes to the main one.
        """
        worker = load_config(resolve_config_path(config), env=env_name)
        load_user_module(worker)  # import errors surface here, once
        extras = [load_config(resolve_config_path(c), env=env_name) for c in auxiliary]
        for extra in extras:
            load_user_module(extra, module_name=_module_name(extra))
        return cls(config=worker, extra_configs=extras)

    @property
    def label(self) -> str:
        """Where the bindings come from, for messages."""
        if self.config is not None:
            return self.config.config_path.name
        return "the dohost_bindings fixture"

    def prepare(self, data_dir: str | Path) -> PreparedProject:
        """Apply the migrations to ``data_dir`` and build the namespaces (synchronous).

        Migrations applied to an empty directory always give the same result,
        so the first empty directory is migrated for real and the result
        (registry file, namespace folders) is stamped onto the next empty
        ones: a test pays for a few file writes, not a migration run with
        its fsyncs. A directory holding data is always migrated for real.
        """
        root = Path(data_dir)
        fresh = _is_empty(root)
        if self.config is not None:
            if fresh and self._blueprint is not None:
                return self._blueprint.stamp(self, root)
            project = load_project([self.config, *self.extra_configs] if self.extra_configs else self.config,
                                   data_dir=root)
            prepared = PreparedProject(
                self,
                root,
                project["specs"],
                project["plain_vars"],
                project["entrypoint"],
                project["delete_all_deletes_alarm"],
                project["bindings"],
                project["plain_worker_vars"],
            )
            if fresh and self._blueprint is None:
                self._blueprint = _Blueprint.capture(prepared)
            return prepared
        assert self.bindings is not None
        root.mkdir(parents=True, exist_ok=True)
        specs = {name: default_spec(name, cls, root) for name, cls in self.bindings.items()}
        return PreparedProject(self, root, specs, {}, None, True)


class _Blueprint:
    """A freshly migrated data directory, to be reproduced without migrating (see ``prepare``)."""

    __slots__ = ("registry", "folders", "template")

    def __init__(self, registry: bytes | None, folders: list[str], template: PreparedProject) -> None:
        self.registry = registry
        self.folders = folders
        self.template = template

    @classmethod
    def capture(cls, prepared: PreparedProject) -> _Blueprint | None:
        root = prepared.data_dir
        for spec in prepared.specs.values():
            if spec.directory.parent != root:
                return None  # not the layout this copy knows how to reproduce
        try:
            registry: bytes | None = (root / REGISTRY_FILE).read_bytes()
        except FileNotFoundError:
            registry = None
        folders = sorted(p.name for p in root.iterdir() if p.is_dir())
        return cls(registry, folders, prepared)

    def stamp(self, source: ProjectSource, root: Path) -> PreparedProject:
        root.mkdir(parents=True, exist_ok=True)
        if self.registry is not None:
            (root / REGISTRY_FILE).write_bytes(self.registry)
        for name in self.folders:
            (root / name).mkdir()
        t = self.template
        specs = {
            name: msgspec.structs.replace(spec, directory=root / spec.directory.name)
            for name, spec in t.specs.items()
        }
        bindings = t.bindings.rebase(root) if t.bindings is not None else None
        return PreparedProject(source, root, specs, t.vars, t.entrypoint, t.delete_all_deletes_alarm, bindings,
                               t.worker_vars)


def _is_empty(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True


# ----------------------------------------------------------------------- env
class _TestEnv:
    """``dohost.env``: the runtime's ``env``, with a useful error for a name it lacks."""

    __slots__ = ("_env", "_label", "_namespaces")

    def __init__(self, env: Any, label: str, namespaces: list[str]) -> None:
        object.__setattr__(self, "_env", env)
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_namespaces", namespaces)

    def __getattr__(self, name: str) -> Any:
        env = object.__getattribute__(self, "_env")
        try:
            return getattr(env, name)
        except AttributeError:
            if name.startswith("__"):
                raise
            raise self._unknown(name) from None

    def __getitem__(self, name: str) -> Any:
        env = object.__getattribute__(self, "_env")
        if name not in env:
            raise self._unknown(name)
        return env[name]

    def __contains__(self, name: object) -> bool:
        return name in object.__getattribute__(self, "_env")

    def __dir__(self) -> list[str]:
        return sorted(vars(object.__getattribute__(self, "_env")))

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_env"))

    def _unknown(self, name: str) -> UnknownBindingError:
        env = object.__getattribute__(self, "_env")
        namespaces = object.__getattribute__(self, "_namespaces")
        plain = sorted(k for k in vars(env) if k not in namespaces)
        return UnknownBindingError(
            f"env.{name}: {object.__getattribute__(self, '_label')} defines no binding named {name!r}"
            f" (Durable Object namespaces: {', '.join(namespaces) or 'none'};"
            f" other bindings and vars: {', '.join(plain) or 'none'})"
        )


# ----------------------------------------------------------------- WebSockets
class WebSocketClient:
    """The test's end of a WebSocket connected through the Worker, in process.

    ``await send(message)`` returns once the object has handled the message;
    ``await receive()`` returns the next message the object sent (raises
    ``ConnectionError`` once the object closed the socket);
    ``await close(code, reason)`` closes from the client side, so the
    object's ``webSocketClose`` runs.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def send(self, message: str | bytes) -> None:
        await self._inner.send(message)

    async def receive(self) -> str | bytes:
        return await self._inner.receive()  # type: ignore[no-any-return]

    def receive_nowait(self) -> str | bytes | None:
        """The next message if one is already waiting, else ``None``."""
        return self._inner.receive_nowait()  # type: ignore[no-any-return]

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.disconnect(code, reason)

    @property
    def close_code(self) -> int | None:
        """The code the object closed the socket with (``None`` while open)."""
        return self._inner.close_code  # type: ignore[no-any-return]

    @property
    def close_reason(self) -> str | None:
        return self._inner.close_reason  # type: ignore[no-any-return]


# ------------------------------------------------------------------- harness
class Harness:
    """What the ``dohost`` fixture gives a test; see the module docstring."""

    def __init__(self, runtime: Runtime, prepared: PreparedProject) -> None:
        self.runtime = runtime
        self.data_dir = prepared.data_dir
        self._prepared = prepared
        self._namespaces = sorted(prepared.specs)
        self.env: Any = _TestEnv(runtime.env, prepared.source.label, self._namespaces)

    def __repr__(self) -> str:
        return f"<dohost Harness {self._prepared.source.label} bindings={self._namespaces} data_dir={str(self.data_dir)!r}>"

    # ------------------------------------------------------------ the Worker
    async def fetch(
        self,
        url_or_request: str | Request,
        *,
        method: str | None = None,
        headers: Any = None,
        body: str | bytes | None = None,
    ) -> Any:
        """Send a request through the Worker's entrypoint (``SELF.fetch``); returns its ``Response``."""
        request = make_request(url_or_request, method=method, headers=headers, body=body)
        __tracebackhide__ = True
        return await self.runtime.fetch_worker(request)

    async def connect_websocket(self, url: str, *, headers: Any = None) -> WebSocketClient:
        """Open a WebSocket through the Worker (``ws://`` or ``http://`` URL), with no network."""
        connect = getattr(self.runtime, "connect_websocket", None)
        if connect is None:  # pragma: no cover - the runtime predates WebSocket support
            raise NotImplementedError("this dohost runtime cannot host WebSockets in process")
        return WebSocketClient(await connect(url, headers))

    # ------------------------------------------------------- cron triggers
    @property
    def crons(self) -> tuple[str, ...]:
        """The Worker's ``triggers.crons``, as written in its wrangler file."""
        config = self._prepared.source.config
        return config.triggers.crons if config is not None else ()

    async def run_scheduled(self, cron: str | None = None, *, scheduled_time: float | None = None) -> ScheduledResult:
        """Run the Worker's ``scheduled`` handler once (``createScheduledController`` + ``scheduled``).

        ``cron`` defaults to the first of :attr:`crons`; ``scheduled_time`` (epoch
        ms) to the runtime's now. Returns after the handler and its ``waitUntil``
        work; an exception the handler raises reaches the test as it is.
        """
        __tracebackhide__ = True
        chosen = cron if cron is not None else (self.crons[0] if self.crons else "")
        return await run_scheduled(self.runtime, chosen, scheduled_time, raise_errors=True)

    async def serve_crons(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire :attr:`crons` on the runtime's clock until cancelled (``nursery.start(dohost.serve_crons)``)."""
        await serve_crons(self.runtime, self.crons, task_status=task_status)

    # --------------------------------------------------------------- objects
    async def run_in_durable_object(self, stub: DurableObjectStub, fn: Callable[[Any, Any], Any]) -> Any:
        """Run ``fn(instance, ctx)`` (sync or async) inside the object, under its gates; return its result.

        The result is not copied and an exception ``fn`` raises reaches the
        test as it is, with its traceback from inside the object.
        """
        __tracebackhide__ = True  # pytest: show the test, then the object; not this helper
        binding, object_id = self._target(stub, "run_in_durable_object")
        return await self.runtime.run_in_object(binding, object_id, fn)

    async def run_alarm(self, stub: DurableObjectStub) -> bool:
        """Run the object's pending alarm now (``runDurableObjectAlarm``); False if it has none.

        If ``alarm()`` raises, the retry is scheduled as the scheduler would
        (``retryCount`` + 1, Cloudflare's backoff) and the error is raised here.
        """
        __tracebackhide__ = True
        binding, object_id = self._target(stub, "run_alarm")
        return await self.runtime.run_alarm_now(binding, object_id)

    async def evict(self, stub: DurableObjectStub, *, web_sockets: WebSocketsOnEvict = "hibernate") -> bool:
        """Evict the object gracefully: it finishes its events, commits and leaves memory; storage stays.

        ``web_sockets="hibernate"`` keeps its hibernatable WebSockets connected
        (the next message wakes it); ``"close"`` closes them first. Returns
        whether the object was in memory.
        """
        binding, object_id = self._target(stub, "evict")
        _check_web_sockets(web_sockets)
        return await self.runtime.evict(binding, object_id, web_sockets=web_sockets)

    async def evict_all(self, *, web_sockets: WebSocketsOnEvict = "hibernate") -> None:
        """Evict every object in memory (see :meth:`evict`)."""
        _check_web_sockets(web_sockets)
        await self.runtime.evict_all(web_sockets=web_sockets)

    async def apply_d1_migrations(self, binding: str, migrations_dir: str | Path | None = None) -> list[str]:
        """Apply the D1 migrations of ``env.<binding>`` (``applyD1Migrations`` of cloudflare:test).

        The folder is the binding's ``migrations_dir`` (default ``migrations``)
        beside the wrangler file, unless given; returns the files applied.
        """
        from ..bindings import D1Database
        from ..bindings._d1_admin import DEFAULT_MIGRATIONS_DIR, DEFAULT_MIGRATIONS_TABLE, apply_migrations_from

        db = self.runtime.env[binding] if binding in self.runtime.env else None
        if not isinstance(db, D1Database):
            raise UnknownBindingError(f"apply_d1_migrations(): env.{binding} is not a D1 database")
        config = self._prepared.source.config
        entry = next((d for d in config.d1_databases if d.binding == binding), None) if config else None
        base = config.base_dir if config is not None else Path.cwd()
        folder = Path(migrations_dir) if migrations_dir is not None else base / (
            (entry.migrations_dir if entry else None) or DEFAULT_MIGRATIONS_DIR)
        table = (entry.migrations_table if entry else None) or DEFAULT_MIGRATIONS_TABLE
        await trio.lowlevel.checkpoint()
        return apply_migrations_from(db, folder, table)

    def list_object_ids(self, namespace: str | DurableObjectNamespace) -> list[DurableObjectId]:
        """IDs of the objects of a namespace that have storage (``listDurableObjectIds``)."""
        binding = namespace.binding if isinstance(namespace, DurableObjectNamespace) else namespace
        self._check_binding(binding, "list_object_ids")
        ns = self.runtime.env[binding]
        return [ns.idFromString(hex_id) for hex_id in self.runtime.object_ids(binding)]

    def statistics(self, stub: DurableObjectStub | None = None) -> Any:
        """Every object this runtime has seen, as ``ObjectStatistics`` records (binding, id,
        name, state, queue_depth, events, commits); with a stub, that object's record or None.

        ``state`` is ``"active"`` (running an event), ``"idle"`` (in memory),
        ``"evicted"`` (left memory), ``"hibernated"`` (left memory with
        WebSockets still connected), or ``"creating"`` / ``"broken"``.
        """
        records: list[ObjectStatistics] = self.runtime.statistics()
        if stub is None:
            return records
        binding, object_id = self._target(stub, "statistics")
        hex_id = object_id.toString()
        return next((r for r in records if r.binding == binding and r.id == hex_id), None)

    # ----------------------------------------------------------------- reset
    async def abort_all(self, reason: str = "aborted by dohost.abort_all()") -> None:
        """Reset every object in memory as ``ctx.abort()`` does (``abortAllDurableObjects``).

        Uncommitted writes are dropped, callers waiting on them get
        ``ObjectResetError``; committed storage and alarms stay.
        """
        while True:
            live = self._live_activations()
            if not live:
                return
            for act in live:
                await _abort(act, reason)

    async def reset(self) -> None:
        """Wipe everything: instances, storage, alarms and WebSockets (``reset`` of cloudflare:test).

        Migrations stay applied: the namespaces exist, empty.
        """
        rt = self.runtime
        for record in rt.statistics():
            object_id = rt.env[record.binding].idFromString(record.id)
            await rt.close_websockets(record.binding, object_id, 1001, "dohost.reset()")
        while True:
            await self.abort_all("reset by dohost.reset()")
            await rt.alarms.wait_idle()  # an alarm being delivered may retry or drop: let it settle
            if not self._live_activations():
                break
        # Nothing is live and nothing below awaits, so nothing can open a file meanwhile.
        rt.forget_objects()
        for spec in self._prepared.specs.values():
            shutil.rmtree(spec.directory, ignore_errors=True)
            spec.directory.mkdir(parents=True, exist_ok=True)
        if self._prepared.bindings is not None:
            self._prepared.bindings.reset()

    # -------------------------------------------------------------- internals
    def _check_binding(self, binding: str, helper: str) -> None:
        if binding not in self._prepared.specs:
            raise UnknownBindingError(
                f"{helper}(): {self._prepared.source.label} defines no Durable Object namespace named"
                f" {binding!r} (namespaces: {', '.join(self._namespaces) or 'none'})"
            )

    def _target(self, stub: Any, helper: str) -> tuple[str, DurableObjectId]:
        if not isinstance(stub, DurableObjectStub):
            raise TypeError(
                f"{helper}(): expected a Durable Object stub (env.NAMESPACE.getByName(name)),"
                f" got {type(stub).__name__}"
            )
        self._check_binding(stub._binding, helper)
        return stub._binding, stub.id

    def _live_activations(self) -> list[Any]:
        rt = self.runtime
        out = []
        for record in rt.statistics():
            object_id = rt.env[record.binding].idFromString(record.id)
            act = rt.live_activation(record.binding, object_id)
            if act is not None and not act.finished.is_set():
                out.append(act)
        return out

    async def _wind_down(self) -> None:
        """Stop every object gracefully; abort the ones still busy after the grace period."""
        with trio.move_on_after(SHUTDOWN_GRACE_S):
            await self.runtime.stop_all()
            return
        busy = [act.key for act in self._live_activations()]
        log.warning("objects still busy %.0f s after the test ended were aborted: %s", SHUTDOWN_GRACE_S, busy)
        await self.abort_all("the test ended while the object was still busy")


def _check_web_sockets(value: str) -> None:
    if value not in ("hibernate", "close"):
        raise ValueError(f"web_sockets: expected 'hibernate' or 'close', got {value!r}")


async def _abort(act: Any, reason: str) -> None:
    """``ctx.abort(reason)`` from outside the object, then wait until it is gone."""
    while act.ctx is None and not act.finished.is_set():
        await trio.sleep(0)  # its task has not opened the file yet
    if act.ctx is not None:
        try:
            act.ctx.abort(reason)
        except AbortError:
            pass  # what abort() raises to unwind the object's own code; we are not that code
    await act.finished.wait()


@asynccontextmanager
async def open_harness(
    prepared: PreparedProject,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    alarm_jitter: Callable[[], float] | None = no_jitter,
    max_resident: int | None = None,
    telemetry: Telemetry | None = None,
    history: bool = True,
) -> AsyncIterator[Harness]:
    """Open a runtime on a prepared data directory and wrap it in a :class:`Harness`.

    ``alarm_jitter`` defaults to none, so alarm retries come at exact times;
    pass ``None`` for Cloudflare's random jitter. ``history=False`` keeps no
    point-in-time history, as local workerd (``getBookmarkForTime`` and
    ``onNextSessionRestoreBookmark`` then fail as they fail there); the
    pytest plugin's default.
    """
    bindings = prepared.bindings
    async with open_runtime(
        bindings=prepared.specs,
        vars=bindings.main_vars(prepared.vars) if bindings is not None else prepared.vars,
        resources=[bindings] if bindings is not None else (),
        worker_vars=bindings.worker_vars(prepared.worker_vars) if bindings is not None else None,
        entrypoint=prepared.entrypoint,
        data_dir=prepared.data_dir,
        delete_all_deletes_alarm=prepared.delete_all_deletes_alarm,
        idle_timeout=idle_timeout,
        alarm_jitter=alarm_jitter,
        max_resident=max_resident,
        # Test storage is thrown away: no fsync (a created, committed and closed
        # WAL file otherwise costs ~16 fdatasyncs, tens of ms on a real disk).
        durability="none",
        telemetry=telemetry,
        pitr_retention_ms=PITR_DEFAULT_RETENTION_MS if history else 0,
    ) as rt:
        harness = Harness(rt, prepared)
        try:
            yield harness
        finally:
            with trio.CancelScope(shield=True):
                await harness._wind_down()
