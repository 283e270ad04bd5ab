"""The host: namespaces, the directory of live activations, Worker requests, WebSockets.

A :class:`Runtime` owns one trio nursery in which every activation and the
alarm scheduler run, so closing it (the ``async with`` of ``open_runtime``,
in :mod:`runtime._open`) stops accepting events, drains what is queued and
running, commits and closes every file. Several runtimes can live in one process; nothing here is global.

The directory keeps **one live activation per (binding, ID)**: lookups and
creation are synchronous, so concurrent first callers share one activation
and the constructor runs once. Across processes the object file's lock
enforces the same. A cap on resident objects evicts the least recently used
idle ones.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
import types
import weakref
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Literal, Mapping, Protocol

import msgspec
import trio
from persistence import PITR_DEFAULT_RETENTION_MS as DEFAULT_RETENTION_MS

from objects import (
    DurableObject,
    DurableObjectNamespace,
    ExecutionContext,
    IdFactory,
    make_request,
    Request,
    Response,
    find_handler,
    relaxed_call,
    lookup_rpc_method,
    to_rpc_call,
)
from objects._base import _positional_limit  # relaxed_call's rule, applied once per Worker class

from persistence import LockTable, ofd_locks_available

from ._activation import Activation, ActivationState, _current, _env, current_activation
from ._asyncio import TaskOwner, get_loop, owner_var, run_as_task
from ._alarms import AlarmIndex, AlarmScheduler
from ._commit_threads import CommitThreads
from ._events import AlarmInfo, EventKind, ObjectEvent
from ._idle import IdleSweeper
from ._telemetry import NULL_TELEMETRY, Telemetry, run_request
from ._observe import EventLog
from ._websockets import (
    HostBook, HostedSocket, InProcessWebSocket, WebSocketPeer, note_accepted_socket_owner, websocket_request,
)  # fmt: skip
from .errors import RuntimeConfigError

__all__ = ["Runtime", "NamespaceSpec", "Env", "RuntimeObserver", "ObjectStatistics"]

log = logging.getLogger("dohost.runtime")

#: Objects whose file may stay open at once (about two descriptors each: the
#: database and its WAL). Past it, the least recently used idle objects are
#: parked — file closed, lock and instance kept — so a process stays far below
#: the common 1,024-descriptor limit whatever the number of live objects.
MAX_OPEN_OBJECTS = 400

#: How long an idle object keeps its file open before it is parked. Reopening
#: costs ~120 µs of CPU (more with a long WAL, read back whole), so while the
#: open-file budget has room an object keeps its file for a while: a request
#: to an object touched every few seconds does not pay a reopen each time.
PARK_AFTER_IDLE_S = 30.0

#: Past this many open objects (half the budget) idle objects park sooner,
#: after :data:`PARK_SOON_AFTER_IDLE_S`, so the files fall back quickly when
#: many objects are live and the budget itself rarely has to park anything.
PARK_SOON_ABOVE = MAX_OPEN_OBJECTS // 2
PARK_SOON_AFTER_IDLE_S = 1.0

#: workerd's local idle timeout before an object is evicted.
DEFAULT_IDLE_TIMEOUT = 10.0  # CF: workerd server.c++ (local dev evicts after ~10 s idle)


class NamespaceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the host needs to run one Durable Object namespace."""

    binding: str
    cls: Any
    unique_key: str
    directory: Path
    sqlite_backed: bool = True
    value_binding: Literal["cloudflare", "native"] = "cloudflare"
    #: The Worker whose ``env`` holds this binding (``None``: the main Worker).
    worker: str | None = None
    #: The Worker that defines the class; its instances get that Worker's ``env``.
    home: str | None = None


class ObjectStatistics(msgspec.Struct, frozen=True, kw_only=True):
    binding: str
    id: str
    name: str | None
    state: str  # active | idle | evicted | broken | closed
    queue_depth: int
    events: int
    commits: int


class RuntimeObserver(Protocol):
    """What the host reports (the dev server logs it; tests record it)."""

    def before_commit(self, key: tuple[str, str]) -> None: ...
    def on_activate(self, key: tuple[str, str]) -> None: ...
    def on_evict(self, key: tuple[str, str]) -> None: ...
    def on_reset(self, key: tuple[str, str], error: BaseException) -> None: ...


class Placement(Protocol):
    """Where an object's events run, when objects are spread over processes or nodes (``runtime.cluster``).

    ``None`` on the runtime (the default) means every object is local.
    """

    def is_local(self, key: tuple[str, str]) -> bool: ...
    def check_start(self, key: tuple[str, str]) -> None: ...
    def check_commit(self, key: tuple[str, str]) -> None: ...
    def confirmed(self, key: tuple[str, str], sent: Awaitable[Any]) -> Awaitable[Any]: ...
    def forward(
        self, key: tuple[str, str], object_id: Any, call: tuple[Any, ...], hold: Any, local: Callable[[], Awaitable[Any]]
    ) -> Awaitable[Any]: ...


class NullObserver:
    def before_commit(self, key: tuple[str, str]) -> None:
        pass

    def on_activate(self, key: tuple[str, str]) -> None:
        pass

    def on_evict(self, key: tuple[str, str]) -> None:
        pass

    def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
        pass


class Env:
    """``env``: Durable Object namespaces and vars as attributes (and items)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not set: say what the env does hold.
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"env has no binding or var named {name!r} (it has: {', '.join(sorted(self.__dict__)) or 'nothing'})")

    def __getitem__(self, name: str) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            raise KeyError(f"env has no binding or var named {name!r} (it has: {', '.join(sorted(self.__dict__)) or 'nothing'})") from None

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __repr__(self) -> str:
        return f"<Env {sorted(self.__dict__)}>"

    # Before mid-2026 the platform handed Python the env as a JsProxy, and code of
    # that era calls its proxy methods (``var in env.as_object_map()``,
    # ``env.to_py().items()``). Bindings stay themselves in both, as in Pyodide,
    # where converting an object converts its plain values and keeps host objects.
    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> dict[str, Any]:
        """Pyodide's ``JsProxy.to_py()`` of the env: a new dict of its names and values."""
        return dict(self.__dict__)

    def as_object_map(self, *, hereditary: bool = False) -> dict[str, Any]:
        """Pyodide's mapping view of the env's properties (``in``, ``[]``, iteration)."""
        return dict(self.__dict__)

    def object_keys(self) -> list[str]:
        return list(self.__dict__)

    def object_values(self) -> list[Any]:
        return list(self.__dict__.values())

    def object_entries(self) -> list[list[Any]]:
        return [[k, v] for k, v in self.__dict__.items()]


def default_spec(binding: str, cls: type, data_dir: Path, script_name: str = "worker", **kw: Any) -> NamespaceSpec:
    """A namespace for a class given directly (no wrangler file): SQLite-backed."""
    unique_key = f"{script_name}:{cls.__name__}"
    digest = hashlib.sha256(unique_key.encode()).hexdigest()[:32]
    return NamespaceSpec(binding=binding, cls=cls, unique_key=unique_key, directory=data_dir / digest, **kw)


class Runtime:
    """See the module docstring. Build it with :func:`open_runtime`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        data_dir: Path,
        specs: Mapping[str, NamespaceSpec],
        vars: Mapping[str, Any],
        entrypoint: Any,
        durability: Literal["full", "normal", "none"],
        idle_timeout: float,
        max_resident: int,
        observer: RuntimeObserver,
        delete_all_deletes_alarm: bool,
        alarm_jitter: Callable[[], float] | None,
        group_commit: bool = True,
        worker_vars: Mapping[str, Mapping[str, Any]] | None = None,
        telemetry: Telemetry = NULL_TELEMETRY,
        pitr_retention_ms: float = DEFAULT_RETENTION_MS,
        placement: Placement | None = None,
        alarm_index: str = "dohost-alarms.sqlite",
    ) -> None:
        self._nursery = nursery
        #: Set with ``--processes N`` or in a cluster: objects owned elsewhere are forwarded, and
        #: starting an event or committing checks ownership (``runtime.cluster.Forwarder``).
        self.placement = placement
        #: Metrics and traces go here (``_telemetry.py``); the default does nothing.
        self.telemetry = telemetry
        #: False commits after every event (a benchmark baseline, never a good idea).
        self.group_commit = group_commit
        self.data_dir = data_dir
        self.durability = durability
        #: Point-in-time history kept per object (0: none).
        self.pitr_retention_ms = pitr_retention_ms
        self.idle_timeout = idle_timeout
        #: One timer for every idle object's trim and eviction (``_idle.py``).
        self.idle_sweeper = IdleSweeper(nursery)
        #: Where "full" commits run (set by ``open_runtime``); ``None``: ``trio.to_thread``.
        self.commit_threads: CommitThreads | None = None
        self.max_resident = max_resident
        self.observer = observer
        self.delete_all_deletes_alarm = delete_all_deletes_alarm
        self.entrypoint = entrypoint
        # Decided once: inspecting the entrypoint on every request is measurable.
        self._entrypoint_is_class = inspect.isclass(entrypoint)
        self._on_fetch_arity = (
            max(1, min(len(inspect.signature(entrypoint).parameters), 3))
            if entrypoint is not None and not self._entrypoint_is_class
            else 0
        )
        #: (Worker class, handler name, its function, whether it takes the request):
        #: the entrypoint's fetch handler as found on the first request.
        self._fetch_plan: tuple[type, str, Any, bool] | None = None
        self._specs = dict(specs)
        self._ids = {b: IdFactory(s.unique_key) for b, s in self._specs.items()}
        # Several bindings (in several Workers' envs) may name one namespace; its
        # objects are keyed by the first binding's name, so each has one instance.
        first: dict[str, str] = {}
        self._canon = {b: first.setdefault(s.unique_key, b) for b, s in self._specs.items()}
        self._live: OrderedDict[tuple[str, str], Activation] = OrderedDict()
        #: WebSocket books outlive activations (hibernation); owners map server ends to them.
        self._books: dict[tuple[str, str], HostBook] = {}
        self._ws_owners: dict[Any, HostBook] = {}
        #: Live connections and the cancel scope of each one's sender task.
        self._sockets: dict[HostedSocket, trio.CancelScope] = {}
        #: Server ends an object accept()ed and returned in a 101, until the front connects them.
        self._accepted_owners: weakref.WeakKeyDictionary[Any, Activation] = weakref.WeakKeyDictionary()
        #: Activations that left the directory but still hold their file.
        self._closing_acts: dict[tuple[str, str], Activation] = {}
        #: Objects evicted since they were last live (statistics() reports them).
        self._evicted: dict[tuple[str, str], Any] = {}
        #: Recent events per namespace (the inspector's; see _observe).
        self.event_log = EventLog(self._epoch_ms_at)
        self._closing = False
        #: Owns the asyncio tasks Worker (non-object) code starts; see serve_worker_tasks.
        self._worker_tasks: TaskOwner | None = None
        # Made now, so synchronous code (constructors, sync RPC methods) finds a running loop.
        self.loop = get_loop()
        #: Worker waitUntil() work still running, and an event set when there is none.
        self._worker_background = 0
        self._worker_background_done = trio.Event()
        self._worker_background_done.set()
        #: One lock file per namespace folder (persistence.LockTable), when the OS has OFD locks.
        self._lock_tables: dict[Path, LockTable] = {}
        #: Activations whose object file is open (not parked), least recently used first.
        self._open_files: OrderedDict[tuple[str, str], Activation] = OrderedDict()
        self.max_open_objects = MAX_OPEN_OBJECTS
        #: Idle parking (see :meth:`park_delay`); tests lower these.
        self.park_after_idle = PARK_AFTER_IDLE_S
        self.park_soon_after_idle = PARK_SOON_AFTER_IDLE_S
        self.park_soon_above = PARK_SOON_ABOVE
        # Wall-clock ms = epoch at start + trio time elapsed: alarms follow trio's clock.
        self._epoch_ms = time.time() * 1000.0
        self._trio_start = trio.current_time()
        index = AlarmIndex(data_dir / alarm_index, durability=durability)
        kw = {"jitter": alarm_jitter} if alarm_jitter else {}
        self.alarms = AlarmScheduler(self, index, **kw)
        self._envs = self._build_envs(vars, worker_vars or {})
        self.env = self._envs[None]
        telemetry.attach(self)

    def _build_envs(self, vars: Mapping[str, Any], worker_vars: Mapping[str, Mapping[str, Any]]) -> dict[str | None, Env]:
        """One ``env`` per loaded Worker: its vars and the bindings declared in it."""
        workers: set[str | None] = {None, *worker_vars, *(s.worker for s in self._specs.values())}
        envs: dict[str | None, Env] = {}
        for worker in workers:
            own_vars = vars if worker is None else worker_vars.get(worker, {})
            namespaces = {
                b: DurableObjectNamespace(b, self._ids[b], self) for b, s in self._specs.items() if s.worker == worker
            }
            envs[worker] = Env({**dict(own_vars), **namespaces})
        return envs

    def env_for(self, worker: str | None) -> Env:
        """The ``env`` of a loaded Worker (``None``: the main one)."""
        return self._envs[worker]

    # ------------------------------------------------------------------ time
    def now_ms(self, clock: trio.abc.Clock | None = None) -> float:
        """Epoch ms on trio's clock; pass ``trio.lowlevel.current_clock()`` to read it off the loop."""
        now = trio.current_time() if clock is None else clock.current_time()
        return self._epoch_ms + (now - self._trio_start) * 1000.0

    def _epoch_ms_at(self, trio_time: float) -> float:
        return self._epoch_ms + (trio_time - self._trio_start) * 1000.0

    def trio_time_for(self, epoch_ms: float) -> float:
        return self._trio_start + (epoch_ms - self._epoch_ms) / 1000.0

    # ------------------------------------------------------------- directory
    def _spec(self, binding: str) -> NamespaceSpec:
        try:
            return self._specs[binding]
        except KeyError:
            raise RuntimeConfigError(f"no Durable Object binding named {binding!r}") from None

    def _key(self, binding: str, object_id: Any) -> tuple[str, str]:
        """An object's directory key: its namespace's first binding, and its ID."""
        return (self._canon.get(binding, binding), object_id.toString())

    def activation_for(self, binding: str, object_id: Any) -> Activation:
        """The live activation for an object, created if needed. Never awaits."""
        if self._closing:
            raise RuntimeConfigError("the runtime is shutting down")
        key = (self._canon.get(binding, binding), object_id.toString())  # _key, inline: every call comes here
        if self.placement is not None:
            self.placement.check_start(key)  # a node that may have lost the object starts nothing
        binding = key[0]
        act = self._live.get(key)
        # act.accepting, its common case inline (a Python call less per call)
        if act is not None and (
            (act.state is _ACTIVE and not act._stop_requested and not act._closing) or act.accepting
        ):
            self._live.move_to_end(key)
            return act
        previous = act if act is not None else self._closing_acts.get(key)
        act = Activation(self, self._spec(binding), object_id)
        if previous is not None and not previous.finished.is_set():
            act.predecessor = previous
        self._live[key] = act
        self._evicted.pop(key, None)
        self._nursery.start_soon(act.run)
        if len(self._live) > self.max_resident:
            self._evict_lru()
        return act

    # -------------------------------------------------------- open files
    def lock_table(self, folder: Path) -> LockTable | None:
        """The shared lock table of a namespace folder (``None``: one flock'd file per object)."""
        if not ofd_locks_available():
            return None
        table = self._lock_tables.get(folder)
        if table is None:
            table = self._lock_tables[folder] = LockTable(folder)
        return table

    def close_lock_tables(self) -> None:
        for table in self._lock_tables.values():
            table.close()
        self._lock_tables.clear()

    def file_opened(self, act: Activation) -> None:
        """``act``'s file is open (again): park the least recently used idle ones over the budget.

        ``_open_files`` is kept in order of use (``Activation._deliver`` moves
        an object to the end), so the budget parks the objects used longest ago.
        """
        files = self._open_files
        files[act.key] = act
        files.move_to_end(act.key)
        excess = len(files) - self.max_open_objects
        if excess <= 0:
            return
        # Oldest first; busy objects are skipped, so look a little past the excess
        # (never the whole table: this runs on every open once the budget is full).
        parked: list[tuple[str, str]] = []
        for seen, (key, other) in enumerate(files.items()):
            if len(parked) >= excess or seen >= excess + 32:
                break
            if other is not act and other.idle and other.park():
                parked.append(key)
        for key in parked:
            del files[key]

    def file_used(self, act: Activation) -> None:
        """``act`` runs an event: its open file becomes the most recently used."""
        files = self._open_files
        if files.get(act.key) is act:
            files.move_to_end(act.key)

    def park_delay(self, *, soonest: bool = False) -> float:
        """Seconds an idle object keeps its file open before it parks, with as many files open as now.

        ``soonest``: the delay when many files are open, the first moment an
        idle object asks again (the runtime's idle timer re-asks then, and
        waits the rest of the longer delay only while the budget has room).
        """
        if soonest or len(self._open_files) > self.park_soon_above:
            delay = self.park_soon_after_idle
        else:
            delay = self.park_after_idle
        # Parking before eviction is the point: an eviction closes the file anyway.
        return min(delay, self.idle_timeout / 2)

    def file_closed(self, act: Activation) -> None:
        if self._open_files.get(act.key) is act:
            del self._open_files[act.key]

    def _evict_lru(self) -> None:
        excess = len(self._live) - self.max_resident
        for act in list(self._live.values()):
            if excess <= 0:
                break
            if act.state is ActivationState.ACTIVE and act.idle and not act.pins and not act._evict_requested:
                act.request_evict()
                excess -= 1

    async def run_alarm_now(self, binding: str, object_id: Any) -> bool:
        """Run an object's stored alarm now, whatever its time (``runDurableObjectAlarm``).

        Full scheduler semantics: ``alarm_info``, deletion on success, retry
        with backoff on failure (then the error is raised here). Returns
        whether an alarm ran.
        """
        self._spec(binding)
        return await self.alarms.run_now(self._key(binding, object_id))

    def forget_objects(self) -> None:
        """Forget every pending alarm and evicted object (test ``reset``; nothing may be live)."""
        self.alarms.forget_all()
        self._evicted.clear()

    def _forget(self, act: Activation) -> None:
        if act.finished.is_set():
            if self._closing_acts.get(act.key) is act:
                del self._closing_acts[act.key]
        elif self._live.get(act.key) is act:
            self._closing_acts[act.key] = act
        if self._live.get(act.key) is act:
            del self._live[act.key]
            self._evicted[act.key] = act.object_id
            book = self._books.get(act.key)
            if book is not None:
                self._drop_book_if_empty(book)
            if act.pins:  # it accept()ed sockets: their listeners left with the instance
                for hosted in [h for h in self._sockets if h.owner is act]:
                    hosted.close_for_owner()

    def object_id_for(self, binding: str, hex_id: str, name: str | None) -> Any:
        """The ID of an object named by a forwarded call (its name kept, as ``ctx.id.name``)."""
        self._spec(binding)  # a clear error for an unknown binding
        ids = self._ids[binding]
        return ids.id_from_name(name) if name is not None else ids.id_from_string(hex_id)

    def _deliver(self, binding: str, object_id: Any, event: ObjectEvent) -> None:
        act = self.activation_for(binding, object_id)
        if not act.deliver_now(event):
            act.enqueue(event)

    # ------------------------------------------------- NamespaceHost protocol
    def send_method(self, binding: str, object_id: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ObjectEvent:
        """Queue an RPC call *now* (E-order); await the returned event for its result.

        Inside an object the call carries that object's pending commit as its
        ``hold`` (the output gate): it is queued in order at once but delivered
        only after the caller's earlier writes are committed.
        """
        caller = _current.get()  # current_activation(), without its Python call
        hold = caller.output_hold() if caller is not None else None
        placement = self.placement
        if placement is not None:
            key = self._key(binding, object_id)
            if not placement.is_local(key):
                def local() -> Any:
                    return self.send_method(binding, object_id, method, args, kwargs)
                return placement.forward(key, object_id, ("rpc", method, args, kwargs), hold, local)  # type: ignore[return-value]
        if args or kwargs:
            args, kwargs = to_rpc_call(args, kwargs)

        def invoke(instance: Any) -> Any:
            return lookup_rpc_method(instance, method, base_classes=_RPC_BASES)(*args, **kwargs)

        telemetry = self.telemetry
        run: Callable[[Any], Any] = invoke
        if telemetry is not NULL_TELEMETRY:  # the default wraps nothing: skip the call
            run = telemetry.event_sent(binding, object_id, "rpc", method, invoke)
        event = ObjectEvent(EventKind.RPC, run, hold=hold)
        act = self.activation_for(binding, object_id)  # _deliver, inline (one Python call less per RPC)
        if not act.deliver_now(event):
            act.enqueue(event)
        if placement is not None:
            return placement.confirmed(self._key(binding, object_id), event)  # type: ignore[return-value]
        return event

    def send_fetch(self, binding: str, object_id: Any, request: Any) -> ObjectEvent:
        """Queue ``fetch(request)`` for an object now; await the event for its Response."""
        caller = current_activation()
        hold = caller.output_hold() if caller is not None else None
        trace = self.telemetry.trace_context()
        if trace is not None and isinstance(request, Request) and request.headers.get("traceparent") != trace:
            # W3C trace context on the request: a call forwarded to another process or
            # node (or any HTTP hop behind it) joins the caller's trace.
            request = request._copy()
            request.headers.set("traceparent", trace)
        placement = self.placement
        if placement is not None:
            key = self._key(binding, object_id)
            if not placement.is_local(key):
                def local() -> Any:
                    return self.send_fetch(binding, object_id, request)
                return placement.forward(key, object_id, ("fetch", request), hold, local)  # type: ignore[return-value]

        def invoke(instance: Any) -> Any:
            handler = find_handler(instance, "fetch")
            if handler is None:
                raise TypeError("Handler does not export a fetch() function.")  # CF: workerd global-scope.c++
            return relaxed_call(handler, request.clone() if hasattr(request, "clone") else request)

        owners = partial(note_accepted_socket_owner, self._accepted_owners)
        traced = self.telemetry.event_sent(binding, object_id, "fetch", "fetch", invoke)
        event = ObjectEvent(EventKind.FETCH, traced, hold=hold, on_success=owners)
        self._deliver(binding, object_id, event)
        if placement is not None:
            return placement.confirmed(self._key(binding, object_id), event)  # type: ignore[return-value]
        return event

    async def call_method(self, binding: str, object_id: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self.send_method(binding, object_id, method, args, kwargs)


    async def run_in_object(self, binding: str, object_id: Any, fn: Callable[[Any, Any], Any]) -> Any:
        """Run ``fn(instance, ctx)`` inside the object, under its gates (test helper)."""
        event = ObjectEvent(EventKind.RUN, lambda inst: fn(inst, inst.ctx), convert=False)
        self._deliver(binding, object_id, event)
        return await event.result()

    # ---------------------------------------------------------------- alarms
    async def _run_alarm_event(self, key: tuple[str, str], retry: int, due_ms: float, *, force: bool = False) -> bool:
        """Deliver ``alarm()`` to an object; True if it ran, False if there was none to run.

        The object's file is the truth: a stored alarm that is not due yet is
        left alone (the index was stale) unless ``force`` (a retry, whose time
        lives only in the scheduler, or a test running it now). Raises what
        ``alarm()`` raised.
        """
        binding, hex_id = key
        if binding not in self._specs:
            return False
        object_id = self._ids[binding].id_from_string(hex_id)
        info = AlarmInfo(retry, due_ms)
        ran = False

        async def invoke_alarm(instance: Any) -> None:
            nonlocal ran
            act = current_activation()
            assert act is not None and act.db is not None
            stored = act.db.get_alarm()
            if stored is None or (stored > self.now_ms() + 1.0 and not force):
                return
            handler = find_handler(instance, "alarm")
            if handler is None:
                # CF: src/pyodide/python-entrypoint-helper.ts (the entrypoint proxy's
                # message); the alarm stays set, so it is retried like a failing alarm().
                raise TypeError("Method alarm does not exist")
            act._alarm_running, act._alarm_written = True, False
            try:
                takes_info = _accepts_argument(handler)
                result = handler(info) if takes_info else handler()
                if inspect.isawaitable(result):
                    await result
                ran = True
            finally:
                act._alarm_running = False
            if not act._alarm_written:
                act.db.set_alarm(None)  # success deletes the alarm, in the same commit

        event = ObjectEvent(EventKind.ALARM, self.telemetry.event_sent(binding, object_id, "alarm", "alarm", invoke_alarm), convert=False)
        self._deliver(binding, object_id, event)
        await event.result()
        return ran

    async def _drop_alarm(self, key: tuple[str, str], due_ms: float) -> None:
        binding, hex_id = key
        object_id = self._ids[binding].id_from_string(hex_id)

        def drop(instance: Any, ctx: Any) -> None:
            act = current_activation()
            assert act is not None and act.db is not None
            if act.db.get_alarm() == due_ms:
                act.db.set_alarm(None)

        await self.run_in_object(binding, object_id, drop)

    # ------------------------------------------------------------ the Worker
    async def fetch(
        self,
        url_or_request: Any,
        *,
        method: str | None = None,
        headers: Any = None,
        body: Any = None,
    ) -> Any:
        """``rt.fetch(request)``: call the Worker entrypoint (DESIGN's embedding API)."""
        return await self.fetch_worker(make_request(url_or_request, method=method, headers=headers, body=body))

    async def fetch_worker(self, request: Any) -> Any:
        """Deliver ``request`` to the Worker entrypoint (or the default router)."""
        token = _env.set(self.env)
        owner_token = owner_var.set(self._worker_tasks)
        try:
            if self.telemetry is not NULL_TELEMETRY:
                return await run_request(self.telemetry, None, request, self._fetch_worker)
            # Nothing to record: the handler runs from this frame (every trip
            # through the scheduler resumes each frame of the request's task).
            pending, result = self._start_fetch(request)
            return result if pending is None else await pending
        finally:
            owner_var.reset(owner_token)
            _env.reset(token)

    async def serve_worker_tasks(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the asyncio tasks of Worker code until cancelled (``open_runtime`` runs this)."""
        try:
            async with trio.open_nursery() as nursery:
                self._worker_tasks = TaskOwner("the Worker", nursery)
                task_status.started()
                await trio.sleep_forever()
        finally:
            if self._worker_tasks is not None:
                self._worker_tasks.close()

    async def wait_worker_background(self) -> None:
        """Wait until the Worker's ``waitUntil()`` work has finished (shutdown)."""
        await self._worker_background_done.wait()

    async def _fetch_worker(self, request: Any) -> Any:
        pending, result = self._start_fetch(request)
        return result if pending is None else await pending

    def _start_fetch(self, request: Any) -> tuple[Awaitable[Any] | None, Any]:
        """Call the fetch handler: (what to await for its result, ``None``) or (``None``, its result).

        Not a coroutine itself, so the caller awaits the handler from its own frame.
        """
        if self.entrypoint is None:
            return self._default_route(request), None
        result = self._call_worker(request)
        if type(result) is _COROUTINE:  # an async def fetch: no awaitable checks
            return run_as_task(result, self.loop, self._worker_tasks, None, None, None), None
        if inspect.isawaitable(result):
            return run_as_task(_as_coroutine(result), self.loop, self._worker_tasks, None, None, None), None
        return None, result

    def _call_worker(self, request: Any) -> Any:
        """Call the entrypoint's fetch handler with ``request``; returns what it returned (maybe a coroutine)."""
        ep = self.entrypoint
        ctx = ExecutionContext(self._worker_wait_until)  # (its first parameter: no keyword matching per request)
        if not self._entrypoint_is_class:
            # on_fetch(request[, env[, ctx]]): as many arguments as it declares.
            return ep(*(request, self.env, ctx)[: self._on_fetch_arity])
        factory: Any = ep  # a WorkerEntrypoint subclass: any constructor signature goes
        worker = factory(ctx, self.env)
        plan = self._fetch_plan
        if plan is not None and plan[0] is type(worker):
            # The handler found on an earlier request, if the class still has
            # it: no lookup and no signature check (relaxed_call's) per request.
            handler = getattr(worker, plan[1], None)
            if getattr(handler, "__func__", None) is plan[2]:
                return handler(request) if plan[3] else handler()  # type: ignore[misc]
        return self._call_fetch_first(worker, request)

    def _call_fetch_first(self, worker: Any, request: Any) -> Any:
        """Call ``worker``'s fetch handler, found by name, and remember it for the next request."""
        handler = find_handler(worker, "fetch")
        if handler is None:
            raise TypeError("Handler does not export a fetch() function.")  # CF: workerd
        function = getattr(handler, "__func__", None)
        name = next((n for n in ("fetch", "on_fetch") if getattr(worker, n, None) == handler), None)
        if function is not None and name is not None:
            self._fetch_plan = (type(worker), name, function, _positional_limit(function, True) != 0)
        return relaxed_call(handler, request)

    def _worker_wait_until(self, awaitable: Any) -> None:
        async def run() -> None:
            try:
                await run_as_task(_as_coroutine(awaitable), get_loop(), self._worker_tasks, None, None, _noop)
            except Exception:
                log.exception("waitUntil() task failed")
            finally:
                self._worker_background -= 1
                if not self._worker_background:
                    self._worker_background_done.set()

        if not self._worker_background:
            self._worker_background_done = trio.Event()
        self._worker_background += 1
        self._nursery.start_soon(run)

    async def _default_route(self, request: Any) -> Any:
        """``/<BINDING>/<object-name>/<rest>`` straight to the object's ``fetch``."""
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(request.url).path.lstrip("/").split("/", 2)
        if len(parts) < 2 or parts[0] not in self._specs or not parts[1]:
            names = ", ".join(sorted(self._specs)) or "(none)"
            return Response(
                f"dohost default router: expected /<BINDING>/<object-name>/..., bindings: {names}\n",
                status=404,
            )
        stub = getattr(self.env, parts[0]).getByName(unquote(parts[1]))
        return await stub.fetch(request)

    # ----------------------------------------------------------- management
    def statistics(self) -> list[ObjectStatistics]:
        out = []
        for act in self._live.values():
            state = act.state.value
            if act.state is ActivationState.ACTIVE:
                state = "idle" if act.idle else "active"
            out.append(
                ObjectStatistics(
                    binding=act.key[0],
                    id=act.key[1],
                    name=act.object_id.name,
                    state=state,
                    queue_depth=act.queue_depth,
                    events=act.events,
                    commits=act.commits,
                )
            )
        for key, object_id in sorted(self._evicted.items()):
            if key in self._live:
                continue
            book = self._books.get(key)
            out.append(
                ObjectStatistics(
                    binding=key[0],
                    id=key[1],
                    name=object_id.name,
                    state="hibernated" if book is not None and len(book) else "evicted",
                    queue_depth=0,
                    events=0,
                    commits=0,
                )
            )
        return out

    def live_activation(self, binding: str, object_id: Any) -> Activation | None:
        return self._live.get(self._key(binding, object_id))

    async def evict(self, binding: str, object_id: Any, *, web_sockets: str = "hibernate") -> bool:
        """Evict one object gracefully (storage kept). Returns whether it was live.

        ``web_sockets="hibernate"`` keeps its hibernatable WebSockets connected
        (the next message re-activates it); ``"close"`` closes them with 1001.
        """
        if web_sockets not in ("hibernate", "close"):
            raise RuntimeConfigError(f"web_sockets: expected 'hibernate' or 'close', got {web_sockets!r}")
        if web_sockets == "close":
            await self.close_websockets(binding, object_id)
        act = self.live_activation(binding, object_id)
        if act is None:
            return False
        act.request_evict()
        await act.finished.wait()
        return True

    async def evict_all(self, *, web_sockets: str = "hibernate") -> None:
        for act in list(self._live.values()):
            await self.evict(act.key[0], act.object_id, web_sockets=web_sockets)

    async def stop_all(self) -> None:
        acts = list(self._live.values())
        for act in acts:
            act.request_stop()
        for act in acts:
            await act.finished.wait()

    def object_ids(self, binding: str) -> list[str]:
        """IDs of the objects of ``binding`` that have storage."""
        directory = self._spec(binding).directory
        if not directory.exists():
            return []
        return sorted(p.stem for p in directory.glob("*.sqlite"))

    # ------------------------------------------------------------ WebSockets
    def _websocket_book(self, act: Activation) -> HostBook:
        book = self._books.get(act.key)
        if book is None:
            book = self._books[act.key] = HostBook(self, act.key, act.object_id)
        return book

    def _drop_book_if_empty(self, book: HostBook) -> None:
        if len(book) == 0 and book.key not in self._live and self._books.get(book.key) is book:
            del self._books[book.key]

    async def open_websocket(self, request: Any, peer: WebSocketPeer) -> HostedSocket | Any:
        """Run the Worker for an upgrade request; a 101 reply connects ``peer``.

        Returns the :class:`HostedSocket` (call :meth:`HostedSocket.pump` via
        :meth:`start_socket` once the client is accepted) or the Worker's
        non-101 response, to be sent back as the refusal.
        """
        return self._connect_peer(await self.fetch_worker(request), peer)

    async def open_object_websocket(self, binding: str, object_id: Any, request: Any, peer: WebSocketPeer) -> HostedSocket | Any:
        """:meth:`open_websocket` for an upgrade sent straight to an object's ``fetch`` (a forwarded one)."""
        return self._connect_peer(await self.send_fetch(binding, object_id, request), peer)

    def _connect_peer(self, response: Any, peer: WebSocketPeer) -> HostedSocket | Any:
        client = getattr(response, "web_socket", None)
        if response is None or getattr(response, "status", None) != 101 or client is None:
            return response
        server = client._peer
        hosted = HostedSocket(self, peer, server, self._accepted_owners.pop(server, None))
        client.couple(hosted)
        return hosted

    def start_socket(self, hosted: HostedSocket) -> None:
        """Start sending the object's frames to the (now accepted) client."""
        scope = trio.CancelScope()
        self._sockets[hosted] = scope

        async def pump() -> None:
            try:
                with scope:
                    await hosted.pump()
            finally:
                self._sockets.pop(hosted, None)

        self._nursery.start_soon(pump)

    def stop_sockets(self) -> None:
        """Stop every connection's sender (shutdown); clients see the server go."""
        for scope in list(self._sockets.values()):
            scope.cancel()

    async def connect_websocket(self, url: str, headers: Any = None) -> InProcessWebSocket:
        """An in-process WebSocket client through the Worker (no network)."""
        client = InProcessWebSocket()
        result = await self.open_websocket(websocket_request(url, headers), client)
        if not isinstance(result, HostedSocket):
            status = getattr(result, "status", None)
            raise ConnectionError(f"the Worker answered the WebSocket upgrade with status {status}, not 101")
        client.hosted = result
        self.start_socket(result)
        return client

    async def close_websockets(self, binding: str, object_id: Any, code: int = 1001, reason: str = "Durable Object evicted") -> None:
        """Close every hibernatable WebSocket of an object (as a deploy or ``evict(web_sockets="close")`` does)."""
        book = self._books.get(self._key(binding, object_id))
        if book is None:
            return
        for hosted in [h for h in self._sockets if self._ws_owners.get(h.server) is book]:
            hosted.close(code, reason)
            await hosted.on_close(code, reason, True)


def _noop() -> None:
    pass


_COROUTINE = types.CoroutineType
_ACTIVE = ActivationState.ACTIVE
#: What ``stub.method()`` may not call: what the base class defines (one tuple, not one per call).
_RPC_BASES = (DurableObject,)


def _as_coroutine(awaitable: Any) -> Any:
    if inspect.iscoroutine(awaitable):
        return awaitable

    async def wrap() -> Any:
        return await awaitable

    return wrap()


def _accepts_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)
