"""A read-only observation API over a :class:`Runtime` (the inspector, ``dohost do``), and its few operations.

What it guarantees:

* **Looking never changes what is looked at.** Reads never queue an event, so
  they neither activate an object nor delay its idle eviction, nor count as
  activity. An object with no live activation (evicted, hibernated, never
  woken) is read from its file opened read-only, creating no file
  (:func:`persistence.inspect_file.open_snapshot`), synchronously -- the read
  never awaits, so no activation of that ID can start while it runs. A
  *parked* object (in memory and locked, its connection closed while idle) is
  read the same way, from its file: reopening its connection would undo the
  parking; it cannot reopen meanwhile, since the read never awaits. A live
  object with its connection open is read through it, only between events:
  when no gate holder runs, no commit is in flight and it is not being
  created; the read runs without a checkpoint, so no object code interleaves
  with it.
* The state reported is the one the object is in: ``active`` (running an
  event or being created), ``idle`` (in memory, nothing to do), ``hibernated``
  (not in memory; hibernatable WebSockets connected), ``evicted`` (not in
  memory).
* Writes (``dohost do sql`` with a writing statement, ``kv put``, the alarm
  buttons, import) are explicit operations: to a live object they are an
  event under its gates (committed like its own writes); to an object not in
  memory they open its file directly (lock held) and tell the alarm
  scheduler what the file now says, without running its constructor.
* Each namespace keeps the last :data:`EVENTS_PER_NAMESPACE` events its
  objects ran (kind, time, duration, rows read and written, error): a bounded ring.
* Point-in-time recovery: restore points are read like the rest -- from the
  side file opened read-only for an object not in memory or parked, through
  its history between events for a live one. A restore is an operation: the
  object is evicted (as ``ctx.abort()`` would end it; hibernatable WebSockets
  stay connected), the request is recorded beside its file and applied by
  opening the file once more, so the next activation starts from the restored
  state.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import msgspec
import trio

from objects import ObjectResetError
from persistence import History, ObjectDatabase, PitrError, inspect_file, read_restore_points

from ._activation import ActivationState
from .errors import RuntimeConfigError

if TYPE_CHECKING:
    from ._activation import Activation
    from ._events import ObjectEvent
    from ._runtime import Runtime

__all__ = ["note_alarm_offline", "Observer", "ObjectView", "EventRecord", "RestorePoint", "SocketView", "Contents", "TablePage",
           "QueryResult", "ReadOnlyQueryError", "jsonable", "EventLog", "iso_utc", "EVENTS_PER_NAMESPACE"]

T = TypeVar("T")

#: Re-exported so tools above read results without reaching into persistence.
QueryResult = inspect_file.QueryResult
ReadOnlyQueryError = inspect_file.ReadOnlyQueryError
jsonable = inspect_file.jsonable

#: Events remembered per namespace (the inspector's "recent events").
EVENTS_PER_NAMESPACE = 500
#: Most objects listed per namespace.
MAX_LISTED = 2000
#: How long a read waits for a live object to be between events (seconds, bounded polling).
READ_WAIT_S = 10.0


def iso_utc(epoch_ms: float | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC (``2026-12-07T06:30:00.123Z``)."""
    if epoch_ms is None:
        return None
    t = _dt.datetime.fromtimestamp(epoch_ms / 1000.0, _dt.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ObjectView(msgspec.Struct, frozen=True, kw_only=True):
    binding: str
    id: str
    name: str | None
    state: str
    storage_bytes: int
    last_activity: str | None
    alarm: str | None
    websockets: int


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    at: str | None
    duration_ms: float
    rows_read: int
    rows_written: int
    error: str | None


class RestorePoint(msgspec.Struct, frozen=True, kw_only=True):
    bookmark: str
    at: str | None


class TablePage(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    offset: int
    limit: int
    total: int
    columns: list[str]
    rows: list[list[Any]]


class Contents(msgspec.Struct, frozen=True, kw_only=True):
    """What an object stores, as read in one step: tables, one page of one table, KV entries."""

    tables: list[tuple[str, int]]
    table: TablePage | None
    kv: list[tuple[str, Any]]


class SocketView(msgspec.Struct, frozen=True, kw_only=True):
    tags: list[str]
    attachment: Any
    auto_response_at: str | None


class EventLog:
    """The last events of each namespace; records are tuples until someone looks.

    Two clock reads per event at most: the start is the activation's
    ``last_active`` (read just before), and times stay on trio's clock until
    :meth:`recent` converts them (``to_epoch_ms``, the runtime's conversion).
    """

    __slots__ = ("_rings", "_to_epoch_ms")

    def __init__(self, to_epoch_ms: Callable[[float], float] | None = None) -> None:
        self._rings: dict[str, deque[tuple[str, str, float, float, int, int, str | None]]] = {}
        self._to_epoch_ms = to_epoch_ms

    def started(self, act: Activation, event: ObjectEvent) -> None:
        db = act.db
        if db is None:
            event.observed = (act.last_active, 0, 0)
        else:
            event.observed = (act.last_active, 0 if db.parked else db.rows_written, db.rows_read)

    def finished(self, act: Activation, event: ObjectEvent, exc: BaseException | None) -> None:
        seen = event.observed
        if seen is None:
            return
        at, changes, read_before = seen
        db = act.db
        # inspect_file.total_changes(db), inline (a Python call less per event)
        written = (0 if db.parked else db.rows_written) - changes if db is not None and not db.closed else 0
        # The engine's counter (what Cloudflare bills as rows read); 0 when the object
        # opened its database during the event (it counted from 0, so that is the count).
        read = db.rows_read - read_before if db is not None else 0
        key = act.key
        ring = self._rings.get(key[0])
        if ring is None:
            ring = self._rings[key[0]] = deque(maxlen=EVENTS_PER_NAMESPACE)
        error = None if exc is None else f"{type(exc).__name__}: {exc}"
        # The clock object and the member's ``_value_`` directly: trio.current_time()
        # and an enum's ``value`` property are a few Python calls each, per event.
        now = trio.current_time() if act._trio_clock is None else act._trio_clock.current_time()
        ring.append((key[1], event.kind._value_, at, (now - at) * 1000.0,
                     read if read > 0 else 0, written if written > 0 else 0, error))

    def _epoch_ms(self, trio_time: float) -> float:
        convert = self._to_epoch_ms
        return trio_time * 1000.0 if convert is None else convert(trio_time)

    def recent(self, binding: str, object_id: str | None = None) -> list[EventRecord]:
        """Newest first."""
        out = []
        for oid, kind, at, dur, read, written, error in reversed(self._rings.get(binding, ())):
            if object_id is None or oid == object_id:
                out.append(EventRecord(id=oid, kind=kind, at=iso_utc(self._epoch_ms(at)), duration_ms=round(dur, 3),
                                       rows_read=read, rows_written=written, error=error))
        return out

    def last_at(self, binding: str, object_id: str) -> float | None:
        for oid, _kind, at, *_ in reversed(self._rings.get(binding, ())):
            if oid == object_id:
                return self._epoch_ms(at)
        return None


class Observer:
    """See the module docstring. ``rt.observer_api()`` (or ``Observer(rt)``) makes one."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    # ------------------------------------------------------------ naming
    def bindings(self) -> list[str]:
        """Bindings that own a namespace (aliases of one namespace are listed once)."""
        rt = self._rt
        return sorted({rt._canon[b] for b in rt._specs})

    def object_id(self, binding: str, name_or_id: str) -> Any:
        """An ID from a 64-hex ID string, else from a name."""
        rt = self._rt
        rt._spec(binding)
        ids = rt._ids[binding]
        if len(name_or_id) == 64 and all(c in "0123456789abcdef" for c in name_or_id):
            try:
                return ids.id_from_string(name_or_id)
            except Exception:
                pass
        return ids.id_from_name(name_or_id)

    def _path(self, binding: str, hex_id: str) -> Any:
        return self._rt._spec(binding).directory / f"{hex_id}.sqlite"

    # ------------------------------------------------------------ states
    def _live(self, key: tuple[str, str]) -> Activation | None:
        rt = self._rt
        return rt._live.get(key) or rt._closing_acts.get(key)

    def state(self, binding: str, object_id: Any) -> str:
        rt = self._rt
        key = rt._key(binding, object_id)
        act = rt._live.get(key)
        if act is not None and act.state in (ActivationState.CREATING, ActivationState.ACTIVE):
            return "idle" if act.state is ActivationState.ACTIVE and act.idle else "active"
        book = rt._books.get(key)
        return "hibernated" if book is not None and len(book) else "evicted"

    def objects(self, binding: str | None = None, name: str | None = None) -> list[ObjectView]:
        """Objects with storage or in memory, per namespace; ``name`` filters by substring."""
        rt = self._rt
        out: list[ObjectView] = []
        for b in [binding] if binding is not None else self.bindings():
            rt._spec(b)
            b = rt._canon[b]
            hexes = set(rt.object_ids(b)[:MAX_LISTED])
            hexes |= {k[1] for k in rt._live if k[0] == b}
            hexes |= {k[1] for k, book in rt._books.items() if k[0] == b and len(book)}
            for hex_id in sorted(hexes):
                view = self._view(b, hex_id)
                if name and (view.name is None or name.lower() not in view.name.lower()) and name != hex_id:
                    continue
                out.append(view)
        return out

    def _view(self, binding: str, hex_id: str) -> ObjectView:
        rt = self._rt
        key = (binding, hex_id)
        act = rt._live.get(key)
        oid = act.object_id if act is not None else rt._ids[binding].id_from_string(hex_id)
        path = self._path(binding, hex_id)
        name, alarm = oid.name, None
        parked = act is not None and act.db is not None and act.db.parked and not act.db.closed
        if act is None or act.db is None or act.db.closed or parked:
            if path.exists() and (parked or self._live(key) is None):
                conn = inspect_file.open_snapshot(path)
                try:
                    name = name or inspect_file.stored_name(conn, path)
                    alarm = inspect_file.stored_alarm_ms(conn)
                finally:
                    conn.close()
        elif act.gate.committing:
            # A worker thread owns the connection for the commit: the scheduler knows the alarm.
            alarm = rt.alarms._due.get(key)
        else:
            alarm = act.db.get_alarm()
        last = rt.event_log.last_at(binding, hex_id)
        if last is None and path.exists():
            last = os.stat(path).st_mtime * 1000.0
        book = rt._books.get(key)
        return ObjectView(
            binding=binding, id=hex_id, name=name, state=self.state(binding, oid),
            storage_bytes=inspect_file.file_size(path), last_activity=iso_utc(last), alarm=iso_utc(alarm),
            websockets=len(book) if book is not None else 0,
        )

    def view(self, binding: str, object_id: Any) -> ObjectView:
        return self._view(self._rt._canon.get(binding, binding), object_id.toString())

    # ------------------------------------------------------------ reading
    async def read(self, binding: str, object_id: Any, fn: Callable[[Any], T]) -> T | None:
        """``fn(conn)`` on a read-only view of the object's data; ``None`` when it has no storage."""
        rt = self._rt
        key = rt._key(binding, object_id)
        deadline = trio.current_time() + READ_WAIT_S
        while True:
            act = self._live(key)
            if act is None:
                path = self._path(key[0], key[1])
                if not path.exists():
                    return None
                conn = inspect_file.open_snapshot(path)
                try:
                    return fn(conn)  # no checkpoint: no activation can start meanwhile
                finally:
                    conn.close()
            db = act.db
            if act.state is ActivationState.ACTIVE and db is not None and not db.closed and not act.gate.held:
                if db.parked:
                    conn = inspect_file.open_snapshot(db.path)
                    try:
                        return fn(conn)  # synchronous: the object cannot reopen its file meanwhile
                    finally:
                        conn.close()
                with inspect_file.reading(db) as conn:
                    return fn(conn)
            if trio.current_time() > deadline:
                raise RuntimeConfigError(f"{key[0]} {key[1]}: the object stayed busy for {READ_WAIT_S} s; try again")
            await trio.sleep(0.01)

    async def contents(
        self, binding: str, object_id: Any, *, table: str | None = None, offset: int = 0, limit: int = 25,
        kv_limit: int = 500,
    ) -> Contents:
        """Tables with row counts, a page of ``table`` (default: the first), KV entries; all in one read."""

        def look(conn: Any) -> Contents:
            tables = inspect_file.user_tables(conn)
            chosen = table if table is not None else (tables[0][0] if tables else None)
            page = None
            if chosen is not None and chosen in dict(tables):
                got = inspect_file.table_page(conn, chosen, offset=offset, limit=limit)
                page = TablePage(name=chosen, offset=offset, limit=limit, total=got.total or 0,
                                 columns=got.columns, rows=got.rows)
            return Contents(tables=tables, table=page, kv=inspect_file.kv_entries(conn, limit=kv_limit))

        found = await self.read(binding, object_id, look)
        return found if found is not None else Contents(tables=[], table=None, kv=[])

    async def query(self, binding: str, object_id: Any, sql: str) -> inspect_file.QueryResult | None:
        """Run read-only ``sql`` (``None``: no storage); a writing statement raises ``ReadOnlyQueryError``."""
        return await self.read(binding, object_id, lambda conn: inspect_file.run_query(conn, sql))

    async def kv(self, binding: str, object_id: Any, *, prefix: str = "", limit: int = 1000) -> list[tuple[str, Any]]:
        return await self.read(binding, object_id, lambda c: inspect_file.kv_entries(c, prefix=prefix, limit=limit)) or []

    async def export(self, binding: str, object_id: Any) -> str | None:
        """The object's SQL dump (``persistence.inspect_file.dump_sql``); ``None``: no storage."""
        return await self.read(binding, object_id, inspect_file.dump_sql)

    def websockets(self, binding: str, object_id: Any) -> tuple[tuple[str, str] | None, list[SocketView]]:
        """The auto-response pair (request, response) and each hibernatable WebSocket."""
        book = self._rt._books.get(self._rt._key(binding, object_id))
        if book is None:
            return None, []
        pair = book.get_web_socket_auto_response()
        sockets = []
        for ws in book.get_web_sockets():
            try:
                attachment = inspect_file.jsonable(ws.deserialize_attachment())
            except Exception as exc:  # an attachment that no longer decodes is shown, not fatal
                attachment = f"<{type(exc).__name__}>"
            stamp = book.get_web_socket_auto_response_timestamp(ws)
            sockets.append(SocketView(
                tags=book.get_tags(ws), attachment=attachment,
                auto_response_at=iso_utc(stamp.timestamp() * 1000.0) if stamp is not None else None,
            ))
        return ((pair.request, pair.response) if pair is not None else None), sockets

    def events(self, binding: str, object_id: Any) -> list[EventRecord]:
        key = self._rt._key(binding, object_id)
        return self._rt.event_log.recent(key[0], key[1])

    # ------------------------------------------------------------ operations
    async def write(self, binding: str, object_id: Any, fn: Callable[[ObjectDatabase], T]) -> T:
        """``fn(db)`` with the object's database, committed (see the module docstring)."""
        rt = self._rt
        key = rt._key(binding, object_id)
        act = rt._live.get(key)
        if act is not None and act.accepting:
            from ._activation import current_activation

            def inside(instance: Any, ctx: Any) -> T:
                me = current_activation()
                assert me is not None and me.db is not None
                return fn(me.db)

            result: T = await rt.run_in_object(binding, object_id, inside)
            return result
        closing = rt._closing_acts.get(key)
        if closing is not None:
            await closing.finished.wait()
        return self._write_file(key, object_id, fn)

    def _write_file(self, key: tuple[str, str], object_id: Any, fn: Callable[[ObjectDatabase], T]) -> T:
        rt = self._rt
        if rt._live.get(key) is not None:
            raise RuntimeConfigError(f"{key[0]} {key[1]}: the object woke up meanwhile; try again")
        spec = rt._spec(key[0])
        spec.directory.mkdir(parents=True, exist_ok=True)
        # Locked as a host locks it (the namespace's lock table), so no other host opens it meanwhile.
        db = ObjectDatabase(self._path(*key), durability=rt.durability, binding=spec.value_binding,
                            sqlite_backed=spec.sqlite_backed, locks=rt.lock_table(spec.directory),
                            pitr_retention_ms=rt.pitr_retention_ms, clock=rt.now_ms)
        try:
            result = fn(db)
            if object_id.name is not None and db.stored_name != object_id.name:
                db.record_name(object_id.name)
            if db.in_transaction:
                db.commit()
            rt.alarms.observe(key, db.get_alarm())
            return result
        finally:
            db.close()

    async def import_dump(self, binding: str, object_id: Any, text: str) -> None:
        """Replace the object's contents by a ``dohost do export`` dump (it is evicted first)."""
        rt = self._rt
        await rt.evict(binding, object_id)
        key = rt._key(binding, object_id)
        self._write_file(key, object_id, lambda db: inspect_file.restore_dump(db, text))

    # ------------------------------------------------------ point in time
    async def restore_points(self, binding: str, object_id: Any, limit: int = 20) -> list[RestorePoint]:
        """The newest restore points, newest first (``[]``: no history kept)."""
        rt = self._rt
        key = rt._key(binding, object_id)
        deadline = trio.current_time() + READ_WAIT_S
        while True:
            act = self._live(key)
            db = act.db if act is not None else None
            if act is None or db is None or db.closed or db.parked:
                # Synchronous: the object cannot open (or unpark) its history meanwhile.
                points = read_restore_points(self._path(*key), limit)
                break
            if act.state is ActivationState.ACTIVE and not act.gate.held:
                # Its history holds the side file (exclusive mode): read through it, between events.
                points = db.history.restore_points(limit) if db.history is not None else []
                break
            if trio.current_time() > deadline:
                raise RuntimeConfigError(f"{key[0]} {key[1]}: the object stayed busy for {READ_WAIT_S} s; try again")
            await trio.sleep(0.01)
        return [RestorePoint(bookmark=b, at=iso_utc(ms)) for b, ms in points]

    async def bookmark(self, binding: str, object_id: Any, at_ms: float | None = None) -> str:
        """``getCurrentBookmark()`` (or ``getBookmarkForTime(at_ms)``) of the object, without constructing it."""

        def get(db: ObjectDatabase) -> str:
            history = _history(db)
            return history.current_bookmark() if at_ms is None else history.bookmark_for_time(at_ms)

        return await self.write(binding, object_id, get)

    async def restore(self, binding: str, object_id: Any, bookmark: str) -> str:
        """Restore the object to ``bookmark`` (``onNextSessionRestoreBookmark`` + ending the
        activation); returns the undo bookmark. A bad bookmark raises ``PitrError``, changing nothing."""
        rt = self._rt
        await rt.evict(binding, object_id)
        key = rt._key(binding, object_id)
        if not self._path(*key).exists():
            raise PitrError(f"{binding} {key[1]}: the object has no storage, so no history to restore")
        undo: str = self._write_file(key, object_id, lambda db: _history(db).schedule_restore(bookmark))
        # Opening the file applies the request: what the inspector reads from now on is
        # the restored state (an object opens it the same way on its next activation).
        self._write_file(key, object_id, lambda db: None)
        return undo

    async def run_alarm(self, binding: str, object_id: Any) -> bool:
        return await self._rt.run_alarm_now(binding, object_id)

    async def delete_alarm(self, binding: str, object_id: Any) -> None:
        await self.write(binding, object_id, lambda db: db.set_alarm(None))

    async def evict(self, binding: str, object_id: Any) -> bool:
        """Evict now (hibernatable WebSockets stay connected). Returns whether it was in memory."""
        return await self._rt.evict(binding, object_id)

    def abort(self, binding: str, object_id: Any) -> bool:
        """Reset the object as ``ctx.abort()`` would; returns whether it was in memory."""
        act = self._rt._live.get(self._rt._key(binding, object_id))
        if act is None or act.state not in (ActivationState.CREATING, ActivationState.ACTIVE):
            return False
        act._reset(ObjectResetError("The Durable Object was aborted from the dohost inspector."))
        return True


def _history(db: ObjectDatabase) -> History:
    if db.history is None:
        raise PitrError("point-in-time recovery is off for this object (pitr_retention_ms=0, or a KV-backed class)")
    return db.history


def note_alarm_offline(data_dir: Any, binding: str, object_id: str, due_ms: float | None, *, durability: str = "full") -> None:
    """Tell a data directory's alarm index what an object's file now says (a tool changed it offline).

    A runtime opened later on ``data_dir`` then fires the alarm on time
    without having to open the object first. ``binding`` is the namespace's
    first binding name, as the runtime keys it.
    """
    from pathlib import Path

    from ._alarms import AlarmIndex

    path = Path(data_dir) / "dohost-alarms.sqlite"
    if due_ms is None and not path.exists():
        return
    index = AlarmIndex(path, durability=durability)
    try:
        if due_ms is None:
            index.delete((binding, object_id))
        else:
            index.upsert((binding, object_id), due_ms)
    finally:
        index.close()
