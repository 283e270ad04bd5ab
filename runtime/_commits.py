"""The commit side of an activation: the committer, group commit and the output gate.

``CommitsMixin`` is part of :class:`~runtime._activation.Activation`. It owns
*when* the implicit transaction commits — at the object's next yield point,
after a batch of events, or (durability ``"full"``) in one of the runtime's
commit threads (:mod:`._commit_threads`) while the input gate keeps object
code off the connection — and the
:class:`CommitTicket` that everything leaving the object waits on. A failed
commit fails the ticket and resets the object.

An object whose file was parked and reopened reads its whole WAL back at each
reopen (the WAL index lives in heap memory, ``locking_mode=EXCLUSIVE``), and
parking never checkpoints: such an object's commit thread empties the WAL
once it is longer than :data:`WAL_CHECKPOINT_BYTES`, so a reopen stays cheap
(SQLite's own checkpoint waits for ~4 MiB: ~0.7 ms per reopen by then).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Callable

import trio

from objects import remote_error
from persistence import CommitFailedError, ObjectDatabase

from ._gates import CommitTicket, InputGate

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["CommitsMixin"]

log = logging.getLogger("dohost.activation")

#: A reopened object's WAL longer than this is checkpointed by its next commit's
#: thread: a reopen reads ~0.5 µs per KiB of WAL back (~105 µs emptied, ~150 µs
#: at 40 KiB, ~320 µs at 400 KiB, ~730 µs at 1.6 MiB). At 32 KiB the
#: checkpoints (0.15 a request over 1,000 objects) cost more CPU in a short
#: run than the shorter reopens saved; 256 KiB bounds a reopen at ~250 µs.
WAL_CHECKPOINT_BYTES = 256 * 1024


class CommitsMixin:
    """Commits and the output gate; see the module docstring."""

    # Provided by Activation.
    db: ObjectDatabase | None
    runtime: Runtime
    gate: InputGate
    key: tuple[str, str]
    object_id: Any
    _ticket: CommitTicket | None
    _commit_wanted: trio.Event
    _commit_lock: trio.Lock
    _host_rollback: bool
    _reset_error: BaseException | None
    _name_to_record: str | None
    _wal_check: bool

    if TYPE_CHECKING:  # provided by Activation

        def _reset(self, error: BaseException) -> None: ...

        def _close_file(self) -> None: ...

    async def _committer(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted = trio.Event()
            await self._commit_now()

    async def _commit_now(self) -> None:
        # The committer, eviction and the per-event baseline all commit through here;
        # the lock keeps a second commit off the connection while one is in its thread.
        # Free (nearly always), it is taken without trio.Lock.acquire's checkpoint: that
        # was one more trip through the scheduler per commit, and a "full" commit
        # yields for its thread anyway.
        lock = self._commit_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._commit_locked()
        finally:
            lock.release()

    def _commit_due(self) -> bool:
        db = self.db
        return db is not None and not db.closed and db.in_transaction and not db._sp_depth

    async def _commit_locked(self) -> None:
        if not self._commit_due():
            return
        db = self.db
        assert db is not None
        if not (db.dirty and self.runtime.durability == "full"):
            self._commit_inline()
            return
        # The name file is fsync'd: written in the commit's worker thread, just
        # before the commit it rides with, not on the event loop.
        alarm_changed = self._before_commit(record_name=False)
        try:
            await self._in_thread_owning_file(self._record_name_and_commit, db)
        except CommitFailedError as exc:
            self._commit_failed(exc)
            return
        finally:
            self._host_rollback = False
        self._after_commit(alarm_changed)

    async def _in_thread_owning_file(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread that owns the object's connection meanwhile.

        The input gate says "committing": object code stays off the connection, the
        open-file budget does not park the object under the thread, and a reset
        leaves closing the file to us — done here once the thread is back.
        """
        self.gate.set_committing(True)
        try:
            threads = self.runtime.commit_threads
            if threads is not None:
                return await threads.run(fn, *args)  # to_thread.run_sync's contract, cheaper
            return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=False)
        finally:
            self.gate.set_committing(False)
            if self._reset_error is not None:
                self._close_file()  # reset while the thread held the connection

    def _commit_inline(self) -> None:
        """Commit on the event loop: durability "normal" (no fsync), or nothing written."""
        db = self.db
        assert db is not None
        alarm_changed = self._before_commit()
        try:
            db.commit()
        except CommitFailedError as exc:
            self._commit_failed(exc)
            return
        finally:
            self._host_rollback = False
        self._after_commit(alarm_changed)

    def _record_name_and_commit(self, db: ObjectDatabase) -> bool:
        """In the commit's worker thread: the name file (if due), then the commit."""
        name = self._name_to_record
        if name is not None and db.dirty:
            db.write_name(name)  # _name_to_record is only set when the stored name differs
            self._name_to_record = None
        wrote = db.commit()
        if self._wal_check and wrote:
            self._checkpoint_long_wal(db)
        return wrote

    def _checkpoint_long_wal(self, db: ObjectDatabase) -> None:
        """In the commit's worker thread, after the commit: empty a reopened object's long WAL."""
        try:
            if os.stat(f"{db.path}-wal").st_size <= WAL_CHECKPOINT_BYTES:
                return
            db.checkpoint()
        except Exception:  # the commit stands; SQLite's own checkpoint still runs later
            log.warning("checkpoint after a commit of %s failed", self.key, exc_info=True)
            return
        self._wal_check = False  # until the file is reopened again

    def _before_commit(self, *, record_name: bool = True) -> bool:
        db = self.db
        assert db is not None
        # A failing commit rolls back through the hooks, possibly in the worker
        # thread: the host handles that failure itself, so on_rollback must not.
        self._host_rollback = True
        if record_name:
            self._record_name_with_commit()
        alarm_changed = db.alarm_changed
        if alarm_changed:
            self.runtime.alarms.before_commit(self.key, db.get_alarm())
        return alarm_changed

    def _record_name_with_commit(self) -> None:
        """Store the object's name (``ctx.id.name``) in the first commit that writes."""
        db = self.db
        name = self._name_to_record
        if name is not None and db is not None and db.dirty:
            db.write_name(name)
            self._name_to_record = None

    def _commit_failed(self, exc: CommitFailedError) -> None:
        log.error("commit failed for %s: %s", self.key, exc)
        # What held messages and queued callers get: the commit's message,
        # flagged as a reset (workerd: a broken output gate resets the object).
        err = remote_error(exc, durable_object_reset=True)
        err.remote = False  # not thrown by the object's own code
        err.__cause__ = exc
        self._fail_ticket(err)
        self._reset(err)

    def _after_commit(self, alarm_changed: bool) -> None:
        if self._reset_error is not None:
            return
        db = self.db
        assert db is not None
        if alarm_changed:
            db.alarm_changed = False
            self.runtime.alarms.after_commit(self.key, db.get_alarm(), self.object_id)
        self._settle_ticket()

    def _settle_ticket(self) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            ticket.succeed()

    def _fail_ticket(self, error: BaseException) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            ticket.fail(error)

    def output_hold(self) -> CommitTicket | None:
        """What a message sent now must wait for (the output gate), or ``None``.

        Unlike :meth:`wait_output` this never waits: the caller queues its
        message at once with this ticket as its ``hold``, so messages leave in
        the order they were sent and none is delivered before the writes made
        before it are committed.
        """
        db = self.db
        ticket = self._ticket
        if db is not None and db.dirty and ticket is not None:
            self._commit_wanted.set()
            return ticket
        return None

    async def wait_output(self) -> None:
        """The output gate: wait until every write made so far is committed."""
        db = self.db
        ticket = self._ticket
        if db is not None and db.dirty and ticket is not None:
            self._commit_wanted.set()
            await ticket.wait_committed()
