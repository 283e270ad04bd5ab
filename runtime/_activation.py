"""One live instance of one Durable Object: its lifecycle, dispatcher and commits.

An :class:`Activation` owns, for its lifetime: the object's
:class:`ObjectDatabase` (and so the file lock), the user's instance, a trio
nursery holding every task that runs the object's code, the input gate and
the implicit transaction's :class:`CommitTicket`.

* Events run in arrival order. Synchronous handlers (most RPC methods) run
  inline in the dispatcher, back to back, with no checkpoint between them, so
  a burst of queued events shares one commit (group commit). An async handler
  runs in its own task; the next event is delivered once it first yields.
  An event sent to an object waiting idle runs at once in the sender's task
  (:meth:`Activation.deliver_now`), exactly as the dispatcher would have run
  it next, without waking the dispatcher.
* The committer task wakes on the first write and runs at the object's next
  yield — Cloudflare's commit point. With durability ``"full"`` it commits in
  a worker thread while the gate keeps the object's code off the connection.
* A failed commit, an ``abort()``, or a failing ``blockConcurrencyWhile``
  resets the object: held messages and queued events fail, running tasks are
  cancelled, the file is closed, and the next event builds a new instance.

Lifecycle (one transition function, a table of allowed moves)::

    CREATING -> ACTIVE -> EVICTED | CLOSED | BROKEN
    CREATING -> BROKEN | CLOSED;  BROKEN -> CLOSED
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import logging
import traceback
import types
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable

import outcome
import trio

from objects import (
    AbortError,
    DurableObjectId,
    DurableObjectState,
    DurableObjectStorage,
    NetworkLostError,
    ObjectResetError,
    ObjectsError,
    OverloadedError,
    RemoteError,
    RpcError,
    remote_error,
    to_rpc,
)
from persistence import CommitFailedError, ObjectDatabase

from ._asyncio import TaskOwner, get_loop, owner_var, run_as_task
from ._commits import CommitsMixin
from ._events import ObjectEvent
from ._holders import HoldersMixin, _as_coroutine
from ._gates import CommitTicket, InputGate

if TYPE_CHECKING:
    from ._runtime import NamespaceSpec, Runtime

__all__ = ["Activation", "ActivationState", "current_activation", "current_env"]

log = logging.getLogger("dohost.activation")

# asyncio's current-task bookkeeping (deliver_now steps out of the sender's task).
# asyncio.current_task(loop): in 3.11 a Python function around the get of the dict
# asyncio's C _enter_task writes; from 3.12 a C function (then used as is).
_current_tasks_get: Any = asyncio.current_task
if not isinstance(_current_tasks_get, types.BuiltinFunctionType):
    _current_tasks_get = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
_enter_task: Any = asyncio.tasks._enter_task
_leave_task: Any = asyncio.tasks._leave_task

_current: contextvars.ContextVar[Activation | None] = contextvars.ContextVar("dohost_activation", default=None)

_env: contextvars.ContextVar[Any] = contextvars.ContextVar("dohost_env", default=None)


#: The dispatch loop's idle stages: running or waiting for work that is not
#: idleness; waiting to park (``Runtime.park_delay``); parking due; waiting to
#: evict; eviction due.
_AWAKE, _TRIM, _TRIM_DUE, _EVICT, _EVICT_DUE = range(5)

#: Errors the host raises about a call or an object's lifecycle; they reach callers unwrapped.
_HOST_ERRORS = (RpcError, ObjectResetError, OverloadedError, NetworkLostError)

#: What most synchronous handlers return, exactly these types (no subclass), which are
#: never awaitable: ``_deliver`` skips ``inspect.isawaitable`` (a Python call) for them.
_NEVER_AWAITABLE = frozenset({str, int, float, bool, bytes, type(None), dict, list, tuple})


def current_activation() -> Activation | None:
    """The activation whose code is running in this task, if any."""
    return _current.get()


def current_env() -> Any:
    """The ``env`` of the runtime running the current object or Worker request."""
    act = _current.get()
    if act is not None:
        return act.runtime.env_for(act.spec.home)
    return _env.get()


class ActivationState(enum.Enum):
    CREATING = "creating"
    ACTIVE = "active"
    EVICTED = "evicted"
    BROKEN = "broken"
    CLOSED = "closed"


_ACTIVE = ActivationState.ACTIVE

_MOVES: dict[ActivationState, frozenset[ActivationState]] = {
    ActivationState.CREATING: frozenset({ActivationState.ACTIVE, ActivationState.BROKEN, ActivationState.CLOSED}),
    ActivationState.ACTIVE: frozenset({ActivationState.EVICTED, ActivationState.CLOSED, ActivationState.BROKEN}),
    ActivationState.BROKEN: frozenset({ActivationState.CLOSED}),
    ActivationState.EVICTED: frozenset(),
    ActivationState.CLOSED: frozenset(),
}


class _Hooks:
    """StorageHooks for one activation: the first write opens a commit ticket; commits and rows reach telemetry."""

    __slots__ = ("_act", "_commit_token", "_rows_read", "_rows_written")

    def __init__(self, act: Activation) -> None:
        self._act = act
        self._commit_token: Any = None
        self._rows_read = self._rows_written = 0

    def report_rows(self) -> None:
        db = self._act.db
        if db is None or db.closed:
            return
        read, written = db.rows_read, db.rows_written
        if read != self._rows_read or written != self._rows_written:
            self._act.runtime.telemetry.storage_rows(self._act.key[0], read - self._rows_read, written - self._rows_written)
            self._rows_read, self._rows_written = read, written

    def on_write(self) -> None:
        act = self._act
        if act._ticket is None:
            act._ticket = CommitTicket()
        act._commit_wanted.set()

    def before_commit(self) -> None:
        act = self._act
        act.runtime.observer.before_commit(act.key)
        if act.runtime.placement is not None:
            act.runtime.placement.check_commit(act.key)  # fenced: a node that may have lost the object commits nothing
        self._commit_token = act.runtime.telemetry.commit_started(act.key[0], act.object_id)

    def on_commit(self) -> None:
        act = self._act
        act.commits += 1
        act.runtime.telemetry.commit_finished(self._commit_token, act.key[0], None)
        self._commit_token = None
        self.report_rows()

    def on_rollback(self) -> None:
        act = self._act
        token, self._commit_token = self._commit_token, None
        if token is not None:  # the commit itself failed
            act.runtime.telemetry.commit_finished(token, act.key[0], CommitFailedError("the commit failed"))
        if act._host_rollback or act._reset_error is not None:
            return
        # SQLite rolled the implicit transaction back by itself (INSERT OR ROLLBACK,
        # RAISE(ROLLBACK), a full disk): writes made before are gone, so messages
        # held for them must not leave. Break the output gate: reset the object.
        act._reset(ObjectResetError(
            "The Durable Object was reset because SQLite rolled back its uncommitted writes."
        ))


class Activation(CommitsMixin, HoldersMixin):
    """See the module docstring."""

    # Slots, the fields a call reads first: a request to one of many resident
    # objects finds its activation cold in the CPU caches, and a plain instance
    # dict of ~45 entries (past CPython's 30-key limit for shared-key dicts, so a
    # 1.5 KB table per object) spread those reads over ~25 cache lines; here the
    # fields ``deliver_now``/``_deliver``/``_finish_event`` read sit in the first few.
    # (The mixins have no slots, so an instance still has a ``__dict__``, made only if
    # something sets a field not listed here: the listed ones never go there.)
    __slots__ = (
        # the call path (deliver_now, _deliver, _finish_event, the event log, accepting)
        "_idle_stage", "_queue", "_busy", "gate", "state", "_stop_requested", "_evict_requested",
        "_closing", "_context", "runtime", "aio", "_loop", "events", "last_active", "db",
        "instance", "_idle_since", "_inline_event", "_reset_error", "_ticket", "key", "_wake",
        # the rest
        "spec", "object_id", "ctx", "commits", "_nursery", "_commit_wanted", "_commit_lock",
        "_host_rollback", "pins", "_constructing", "_alarm_running", "_alarm_written",
        "_name_to_record", "predecessor", "finished", "_storage_hooks", "_trio_clock",
        "sweep_due", "_wal_check",
    )

    def __init__(self, runtime: Runtime, spec: NamespaceSpec, object_id: Any) -> None:
        self.runtime = runtime
        self.spec = spec
        self.object_id = object_id
        self.key = (spec.binding, object_id.toString())
        self.state = ActivationState.CREATING
        self.gate = InputGate()
        self.db: ObjectDatabase | None = None
        self.instance: Any = None
        self.ctx: DurableObjectState | None = None
        self.commits = 0
        self.events = 0
        self.last_active = trio.current_time()
        self._queue: deque[ObjectEvent] = deque()
        self._wake = trio.Event()
        self._commit_wanted = trio.Event()
        self._commit_lock = trio.Lock()
        #: True while the host itself commits or rolls back (its own error handling applies).
        self._host_rollback = False
        self._ticket: CommitTicket | None = None
        self._busy = 0
        #: Open WebSockets this object accept()ed (not hibernatable): while any is
        #: open the idle timer and the resident cap never evict it, as on Cloudflare.
        self.pins = 0
        self._nursery: trio.Nursery | None = None
        #: The asyncio tasks and timers this activation's code started.
        self.aio: TaskOwner | None = None
        self._constructing = False
        self._stop_requested = False
        self._evict_requested = False
        self._reset_error: BaseException | None = None
        self._alarm_running = False
        self._alarm_written = False
        self._closing = False
        #: The object's name, to be stored with its first commit.
        self._name_to_record: str | None = None
        #: The previous activation of this ID, if it was still closing when this one was made.
        self.predecessor: Activation | None = None
        self.finished = trio.Event()
        self._storage_hooks: _Hooks | None = None
        #: Trio's clock, captured on the loop for worker threads (``_history_clock``).
        self._trio_clock: trio.abc.Clock | None = None
        #: Idle bookkeeping for the runtime's sweeper (see ``_dispatch_loop``).
        self._idle_stage = _AWAKE
        self._idle_since = 0.0
        self.sweep_due: float | None = None
        #: The file was reopened since the WAL was last emptied: a commit checks
        #: the WAL's length (``CommitsMixin._checkpoint_long_wal``).
        self._wal_check = False
        #: The activation task's context (``_current``, ``owner_var``): events
        #: delivered from a sender's task (``deliver_now``) run in it.
        self._context: contextvars.Context | None = None
        #: An async event ``deliver_now`` started that has not yielded yet: the
        #: dispatch loop delivers nothing before it does.
        self._inline_event: ObjectEvent | None = None
        self._loop: Any = None

    # ------------------------------------------------------------ lifecycle
    def _move(self, new: ActivationState) -> None:
        if new not in _MOVES[self.state]:
            raise RuntimeError(f"activation {self.key}: illegal move {self.state.name} -> {new.name}")
        self.state = new

    @property
    def accepting(self) -> bool:
        return (
            self.state in (ActivationState.CREATING, ActivationState.ACTIVE)
            and not self._stop_requested
            and not self._closing
        )

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def quiet(self) -> bool:
        """No event queued or running, no holder, no waitUntil work."""
        return not self._queue and self._busy == 0 and not self.gate.held

    @property
    def idle(self) -> bool:
        """Quiet, and no asyncio task or timer of its own pending."""
        aio = self.aio
        return self.quiet and (aio is None or not aio.active)

    def enqueue(self, event: ObjectEvent) -> None:
        """Queue ``event``; synchronous, so events queue in call order."""
        self._queue.append(event)
        self._wake.set()

    def deliver_now(self, event: ObjectEvent) -> bool:
        """Run ``event`` at once in the sender's task, if the dispatch loop would run it next; False if not.

        The dispatch loop waiting idle (nothing queued or running, the gate
        open, no asyncio work, no output-gate hold on the event) would deliver
        the event as the very next thing it does, with nothing able to run in
        between: doing it here instead saves waking the loop's task and
        re-arming its idle timer, most of the CPU of a call to an object that
        is not already busy. The event runs exactly as the loop runs it
        (``_deliver``, in the activation task's context, no asyncio task
        current); an async handler's first step still runs in its own task,
        and the loop delivers nothing else before that step yields. Writes
        commit as they do from the loop (the committer, at the next yield).
        """
        stage = self._idle_stage
        gate = self.gate
        aio = self.aio
        if (
            (stage != _TRIM and stage != _EVICT)
            or event.hold is not None
            or self._queue
            or self._busy
            or gate.committing or gate._owners  # gate.held, without the property's call
            or self.state is not _ACTIVE
            or self._stop_requested
            or self._evict_requested
            or self._closing
            or self._context is None
            or not self.runtime.group_commit
            or (aio is not None and aio.active)
        ):
            return False
        loop = self._loop
        outer = _current_tasks_get(loop)
        if outer is not None:
            _leave_task(loop, outer)  # the sender's asyncio task is not the object's
        self._idle_stage = _AWAKE  # a call back into this object while it runs queues
        try:
            self._context.run(self._deliver, event)
        finally:
            self._idle_stage = stage
            if outer is not None:
                _enter_task(loop, outer)
        # Idle again from now: the sweeper re-queues the old due time when it pops it.
        self._idle_since = self.last_active
        db = self.db
        if event.yielded is not None and not event.yielded.is_set():
            self._inline_event = event
            self._wake.set()
        elif stage == _EVICT and db is not None and not db.parked:
            # The event reopened a parked file: the loop starts the park timer again.
            self._wake.set()
        return True

    def request_stop(self) -> None:
        """Finish queued and running events, commit, close (shutdown)."""
        self._stop_requested = True
        self._wake.set()

    def request_evict(self) -> None:
        """Evict as soon as the object is idle (the resident cap, a test helper)."""
        self._evict_requested = True
        self._wake.set()

    async def run(self) -> None:
        """The activation's whole life; runs as a task in the runtime's nursery."""
        _current.set(self)
        try:
            predecessor = self.predecessor
            if predecessor is not None:
                # The previous activation of this ID still holds the file lock.
                await predecessor.finished.wait()
                self.predecessor = None
            try:
                await self._open_database()
                self._open()
            except BaseException as exc:
                # The file may be open (a failed first commit): release its lock,
                # or every later activation of this ID finds it "live elsewhere".
                self._close_file()
                self._fail_queue(exc)
                self._move(ActivationState.CLOSED)
                if not isinstance(exc, Exception):
                    raise
                return
            reason = "closed"
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                aio = self.aio = TaskOwner(f"Durable Object {self.key}", nursery, gate=self.gate, on_idle=self._poke)
                owner_var.set(aio)
                self._context = trio.lowlevel.current_task().context
                self._loop = get_loop()
                nursery.start_soon(self._committer)
                if self._construct():
                    self._move(ActivationState.ACTIVE)
                    self.runtime.observer.on_activate(self.key)
                    self.runtime.telemetry.activated(self.key[0], self.object_id)
                    reason = await self._dispatch_loop()
                # Leave the directory before the nursery's exit checkpoints, so no
                # event is queued to an activation that is about to close.
                self._closing = True
                self.runtime._forget(self)
                nursery.cancel_scope.cancel()
            aio.close()
            if self.runtime.durability == "full":
                # The last commit fsyncs: run it in a worker thread like every other
                # "full" commit, not on the event loop. Shielded, because an
                # acknowledged-to-be-stored write must reach the disk even when the
                # runtime is being cancelled; the fsync is bounded.
                with trio.CancelScope(shield=True):
                    await self._final_commit()
                    await self._checkpoint_before_close()
            self._close(reason)
        finally:
            self.finished.set()
            self.runtime._forget(self)

    def _poke(self) -> None:
        self._wake.set()

    # ------------------------------------------------- idle (runtime/_idle.py)
    def idle_due(self) -> float | None:
        """When this object's idle wait is due, or None when it is not waiting idle."""
        stage = self._idle_stage
        if stage == _TRIM:
            # Asked when the timer pops: how many files are open *then* decides.
            return self._idle_since + self.runtime.park_delay()
        if stage == _EVICT:
            return self._idle_since + self.runtime.idle_timeout
        return None

    def idle_fired(self) -> None:
        """The idle wait's time came: wake the dispatch loop to trim or evict."""
        self._idle_stage = _TRIM_DUE if self._idle_stage == _TRIM else _EVICT_DUE
        self._wake.set()

    async def _open_database(self) -> None:
        spec, rt = self.spec, self.runtime

        # The lock table's first use makes the folder; a mkdir per activation cost
        # a syscall (and a Path walk) every new object paid.
        locks = rt.lock_table(spec.directory)
        if locks is None:
            spec.directory.mkdir(parents=True, exist_ok=True)
        self._storage_hooks = hooks = _Hooks(self)

        self._trio_clock = trio.lowlevel.current_clock()

        def connect() -> ObjectDatabase:
            return ObjectDatabase(
                spec.directory / f"{self.key[1]}.sqlite",
                durability=rt.durability,
                binding=spec.value_binding,
                sqlite_backed=spec.sqlite_backed,
                hooks=hooks,
                locks=locks,
                pitr_retention_ms=rt.pitr_retention_ms,
                clock=self._history_clock,
            )

        # On the event loop, whatever the durability: opening a file, new or not,
        # fsyncs nothing (a new file's first page is written unsynced and synced
        # by its first commit, in the commit's thread; see persistence._open), as
        # reopening a parked one never did. A worker thread here cost more CPU
        # (the hop, and the GIL passed back and forth around each SQLite call)
        # than the open itself. Only rare repairs do real I/O here: a first page
        # a power cut lost under "normal", a pending point-in-time restore.
        db = connect()
        self.db = db
        db.on_unpark = self._file_reopened
        rt.file_opened(self)

    def _file_reopened(self) -> None:
        self._wal_check = True
        self.runtime.file_opened(self)

    def park(self) -> bool:
        """Close an idle object's file, keeping its lock and instance (see ObjectDatabase.park)."""
        db = self.db
        if db is None or self.state is not ActivationState.ACTIVE:
            return False
        if self.gate.committing or self._commit_lock.locked():
            return False  # a worker thread may still be using the connection
        return db.park()

    def _open(self) -> None:
        rt = self.runtime
        assert self.db is not None
        name = self.object_id.name
        stored = self.db.stored_name
        if name is not None:
            # Written with the object's first commit (see _before_commit): an object
            # that never writes has no storage to remember its name for.
            self._name_to_record = name if stored != name else None
        elif stored is not None:
            # An ID parsed with idFromString has no name; the file remembers it.
            oid = self.object_id
            self.object_id = DurableObjectId(
                oid.toString(), name=stored, jurisdiction=oid.jurisdiction, namespace=oid._namespace
            )
        storage = DurableObjectStorage(self.db, self, delete_all_deletes_alarm=rt.delete_all_deletes_alarm)
        self.ctx = DurableObjectState(self.object_id, storage, self, websockets=rt._websocket_book(self))
        rt.alarms.observe(self.key, self.db.get_alarm())

    def _history_clock(self) -> float:
        """The runtime's clock for history timestamps, also from a commit's worker thread.

        Durability "full" opens files and commits in a worker thread, where
        ``trio.current_time()`` is not available; asking the loop for it
        (``trio.from_thread``) cost a round trip per commit. Trio's clock object
        reads the same time from any thread.
        """
        return self.runtime.now_ms(self._trio_clock)

    def _construct(self) -> bool:
        token = object()
        self.gate.acquire(token)
        self._constructing = True
        try:
            self.instance = self.spec.cls(self.ctx, self.runtime.env_for(self.spec.home))
        except AbortError as exc:
            # ctx.abort() in the constructor: abort() already reset the object;
            # letting the AbortError out would end the whole runtime.
            self._fail_queue(exc.to_caller_error())
            return False
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            log.exception("constructor of %s failed", self.key)
            err = self._to_caller(exc)
            self._fail_queue(err)
            self._reset(err)
            return False
        finally:
            self._constructing = False
            self.gate.release(token)
        return True

    async def _final_commit(self) -> None:
        """Store the name of an object that never wrote, and commit what is open, off the loop."""
        db = self.db
        if db is None or db.closed or self.state is ActivationState.BROKEN or db._sp_depth:
            return
        if self._name_to_record is not None:
            try:
                # The name file is fsync'd: in a worker thread, like every "full" commit,
                # owning the connection as a commit's thread does (an older file reads its
                # stored name from the database: no park or reset's close under it).
                await self._in_thread_owning_file(db.record_name, self._name_to_record)
            except Exception:  # _close retries and reports it the way it always has
                return
            self._name_to_record = None
        await self._commit_now()

    async def _checkpoint_before_close(self) -> None:
        """The closing connection's checkpoint (it fsyncs the WAL and the file) in a worker thread."""
        db = self.db
        if db is None or db.closed or db.parked or db.in_transaction or self.state is ActivationState.BROKEN:
            return
        # The thread owns the connection, as a commit's does: the runtime's budget must
        # not park the object under it, nor a reset close the file (that close's
        # checkpoint deletes the WAL while history in the thread is reading it).
        try:
            await self._in_thread_owning_file(db.checkpoint)
        except Exception:  # the close below checkpoints again, on the loop, as it always did
            log.warning("checkpoint before closing %s failed", self.key, exc_info=True)

    def _close(self, reason: str) -> None:
        db = self.db
        if db is not None and not db.closed:
            self._host_rollback = True
            try:
                if self.state is not ActivationState.BROKEN and not db._sp_depth:
                    if self._name_to_record is not None:
                        # Never wrote: store the name now, so the file remembers it.
                        db.record_name(self._name_to_record)
                        self._name_to_record = None
                if self.state is not ActivationState.BROKEN and db.in_transaction and not db._sp_depth:
                    db.commit()
                    self._settle_ticket()
            except CommitFailedError as exc:
                self._fail_ticket(exc)
            finally:
                self.report_storage_rows()
                db.close()
        self.runtime.file_closed(self)
        self._fail_queue(self._reset_error or ObjectResetError("The Durable Object was shut down."))
        if self.state is ActivationState.ACTIVE:
            self._move(ActivationState.EVICTED if reason == "evict" else ActivationState.CLOSED)
            if reason == "evict":
                self.runtime.observer.on_evict(self.key)
                self.runtime.telemetry.evicted(self.key[0], self.object_id)
        elif self.state is ActivationState.BROKEN:
            self._move(ActivationState.CLOSED)

    def report_storage_rows(self) -> None:
        """Tell telemetry the rows read and written since the last report."""
        if self._storage_hooks is not None:
            self._storage_hooks.report_rows()

    # ------------------------------------------------------------ dispatch
    async def _dispatch_loop(self) -> str:
        gate = self.gate
        while True:
            if not self._queue:
                if (
                    self.runtime.durability != "full"
                    and not self._commit_lock.locked()
                    and not gate.held
                    and self._commit_due()
                ):
                    # The batch is done: this is the object's yield point. A commit
                    # without fsync is cheap, so do it here and release the batch's
                    # results in this same scheduler round.
                    self._commit_inline()
                if self._busy == 0 and not gate.held:
                    if self._stop_requested:
                        return "stop"
                    if self._evict_requested and await self._settle_for_eviction(forced=True):
                        return "evict"
                self._wake = trio.Event()
                aio = self.aio
                if self._busy or (aio is not None and aio.active):
                    # Not idle: its end (an event finishing, the asyncio work
                    # going quiet) wakes the loop, which then starts the clock.
                    await self._wake.wait()
                    continue
                # The runtime's one idle timer (runtime/_idle.py) wakes us when
                # due; a timer per object per wait cost every request a few µs.
                self._idle_since = trio.current_time()
                db = self.db
                if db is not None and not db.parked:
                    # Park after a while: soon when many files are open, later when
                    # the budget has room (a reopen costs more than the file held).
                    # The timer first pops at the soonest delay; idle_due() then
                    # says whether to park now or wait the longer delay.
                    self._idle_stage = _TRIM
                    self.runtime.idle_sweeper.register(self, self._idle_since + self.runtime.park_delay(soonest=True))
                    await self._wake.wait()
                    if self._idle_stage != _TRIM_DUE:
                        self._idle_stage = _AWAKE
                        continue
                    # Close the file (its lock and the instance stay): that gives
                    # back the descriptors and all SQLite's memory for it; where it
                    # cannot be parked, give back the page cache.
                    if self.gate.committing or self._commit_lock.locked():
                        # A commit's worker thread still holds the connection (a
                        # slow fsync): try again a moment after it, not at eviction.
                        self._idle_stage = _AWAKE
                        continue
                    if self.idle and not db.in_transaction:
                        if self.park():
                            self.runtime.file_closed(self)
                        else:
                            db.release_memory()
                    self._wake = trio.Event()
                    if not self.idle or self._stop_requested or self._evict_requested:
                        # An event queued, or a stop asked for, in the same moment the
                        # park timer fired: its wake-up was in the event just replaced,
                        # and the eviction wait below would sleep through it (a request
                        # then waited for the idle timeout).
                        self._idle_stage = _AWAKE
                        continue
                # Parked already (the budget parked it, or its events did not touch
                # storage since): only the eviction is left to wait for.
                self._idle_stage = _EVICT
                self.runtime.idle_sweeper.register(self, self._idle_since + self.runtime.idle_timeout)
                await self._wake.wait()
                if self._idle_stage == _EVICT_DUE and self.idle and not self.pins:
                    self._idle_stage = _AWAKE
                    if await self._settle_for_eviction():
                        return "evict"
                self._idle_stage = _AWAKE
                continue
            if not gate.may_run(None):
                await gate.wait_open(None)
                continue
            inline = self._inline_event
            if inline is not None:
                self._inline_event = None
                if inline.yielded is not None and not inline.yielded.is_set():
                    await inline.yielded.wait()  # deliver_now's async event runs its first step first
                    continue
            hold = self._queue[0].hold
            if hold is not None and not hold.settled:
                # The sender's writes are not committed yet: its message (and so
                # everything queued behind it) waits, keeping arrival order.
                await hold.wait_settled()
                continue
            event = self._queue.popleft()
            if hold is not None and hold.error is not None:
                event.settle(outcome.Error(hold.error), None)
                continue
            self._deliver(event)
            if event.yielded is not None and not event.yielded.is_set():
                await event.yielded.wait()
            elif not self.runtime.group_commit and self.db is not None and self.db.dirty:
                await self._commit_now()  # the one-commit-per-event baseline of the benchmark

    async def _settle_for_eviction(self, *, forced: bool = False) -> bool:
        """Commit what is open; True when the object can be dropped right now.

        An eviction asked for (``rt.evict``, the resident cap) waits for events
        and holders but not for the object's own asyncio tasks: they are
        cancelled with the activation. Idleness alone never evicts while one runs.
        """
        db = self.db
        assert db is not None
        if db.in_transaction:
            await self._commit_now()
        ready = self.quiet if forced else self.idle
        return ready and not db.in_transaction and self.state is ActivationState.ACTIVE

    def _deliver(self, event: ObjectEvent) -> None:
        self.events += 1
        # The run's clock, read directly: trio.current_time() is three Python calls.
        clock = self._trio_clock
        self.last_active = trio.current_time() if clock is None else clock.current_time()
        runtime = self.runtime
        db = self.db
        if db is not None and not db._parked:  # (the field behind ``db.parked``: a call less per event)
            runtime.file_used(self)  # the budget parks the least recently *used* first
        runtime.event_log.started(self, event)
        try:
            result = event.invoke(self.instance)
        except BaseException as exc:
            self._finish_event(event, exc=exc)
            return
        if type(result) not in _NEVER_AWAITABLE and inspect.isawaitable(result):
            event.yielded = trio.Event()
            self._busy += 1
            assert self._nursery is not None
            self._nursery.start_soon(self._run_async_event, event, result)
        else:
            self._finish_event(event, value=result)

    async def _run_async_event(self, event: ObjectEvent, awaitable: Awaitable[Any]) -> None:
        assert event.yielded is not None
        coro = awaitable if inspect.iscoroutine(awaitable) else _as_coroutine(awaitable)
        try:
            value = await run_as_task(coro, get_loop(), self.aio, self.gate, event, event.yielded.set)
        except trio.Cancelled:
            self._finish_event(event, exc=self._reset_error or ObjectResetError("The Durable Object was reset."))
            raise
        except BaseException as exc:
            self._finish_event(event, exc=exc)
        else:
            self._finish_event(event, value=value)
        finally:
            self._busy -= 1
            self.last_active = trio.current_time()
            self._wake.set()

    def _finish_event(self, event: ObjectEvent, *, value: Any = None, exc: BaseException | None = None) -> None:
        self.runtime.event_log.finished(self, event, exc)
        if self._reset_error is not None:
            # The object was reset while this event ran (a failed commit, abort(),
            # SQLite dropping the transaction): whatever it produced must not leave.
            event.settle(outcome.Error(self._reset_error), None)
            return
        if exc is None and event.on_success is not None:
            try:
                event.on_success(value)
            except BaseException as error:
                exc = error
        if exc is None and event.convert:
            try:
                value = to_rpc(value)
            except Exception as error:
                exc = error
        if exc is not None:
            self.runtime.telemetry.error("object", exc)
            if isinstance(exc, AbortError):
                if self._reset_error is None:
                    self._reset(exc.to_caller_error())
                result: outcome.Outcome = outcome.Error(exc.to_caller_error())  # type: ignore[type-arg]
            elif not isinstance(exc, Exception):
                # SystemExit / KeyboardInterrupt in object code: the instance cannot be
                # trusted any more; reset it like workerd resets an object whose isolate died.
                died = ObjectResetError(f"The Durable Object was reset: its code raised {type(exc).__name__}.")
                self._reset(died)
                result = outcome.Error(died)
            elif isinstance(exc, _HOST_ERRORS) and not isinstance(exc, RemoteError):
                # The host refused the call (unknown/reserved method, payload
                # size) or reset/overloaded the object (a blockConcurrencyWhile()
                # timeout the handler did not catch): the caller gets that error
                # as is, so ``except OverloadedError`` works; it is not the
                # object's own code failing.
                result = outcome.Error(exc)
            else:
                err = self._to_caller(exc) if event.convert else exc
                if self._reset_error is not None and isinstance(err, ObjectsError):
                    # The object was reset under this call (e.g. its
                    # blockConcurrencyWhile() callback raised): say so, as workerd does.
                    err.durableObjectReset = True
                result = outcome.Error(err)
            db = self.db
            event.settle(result, self._ticket if db is not None and db.dirty else None)
        else:
            db = self.db
            ticket = self._ticket  # (None: no write since the last commit, no need to ask db.dirty)
            # db._wrote / db._txn_open: the fields behind ``dirty`` / ``in_transaction``,
            # read without the properties' calls (two per event).
            event.settle_value(value, ticket if ticket is not None and db is not None and db._wrote else None)
        if db is not None and db._txn_open:
            self._commit_wanted.set()

    def _to_caller(self, exc: BaseException) -> RemoteError:
        err = remote_error(exc, traceback_text="".join(traceback.format_exception(exc)))
        err.__cause__ = exc  # in-process callers (tests) see the traceback from inside the object
        return err

    def _fail_queue(self, error: BaseException) -> None:
        while self._queue:
            self._queue.popleft().settle(outcome.Error(error), None)

    # --------------------------------------------------------------- reset
    def _reset(self, error: BaseException) -> None:
        """Break the object: drop uncommitted writes, fail what waits, cancel its tasks."""
        if self._reset_error is not None:
            return
        self._reset_error = error
        if self.state in (ActivationState.CREATING, ActivationState.ACTIVE):
            self._move(ActivationState.BROKEN)
        # Close the file now, not when the nursery has unwound: the next event
        # builds a new activation at once, and it must be able to take the lock.
        # A commit running in a worker thread still owns the connection; then
        # _commit_now closes it when the thread returns.
        if not self.gate.committing:
            self._close_file()
        self._fail_ticket(error)
        self._fail_queue(error)
        self.gate.clear()
        if self.aio is not None:
            self.aio.close()
        self.runtime._forget(self)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        self.runtime.observer.on_reset(self.key, error)
        self.runtime.telemetry.error("reset", error)

    def _close_file(self) -> None:
        """Drop uncommitted writes and close the file (the object is being reset)."""
        self.runtime.file_closed(self)
        db = self.db
        if db is not None and not db.closed:
            db.close()  # rolls back what is uncommitted, savepoints included


