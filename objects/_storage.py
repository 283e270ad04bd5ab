"""``ctx.storage``: Cloudflare's storage API over one :class:`ObjectDatabase`.

The async methods do their work *when called* and return an already settled
awaitable (:class:`Completed`), as a JS promise from workerd's SQLite-backed
storage would be: ``self.ctx.storage.put(k, v)`` without ``await`` still
takes effect, and awaiting it never lets another event in. Errors raise at
the call, which is where an ``await`` on the result would see them too.

``sql`` is the persistence object itself (no wrapper on the hot path);
``kv`` is a thin facade that hands values back JS-proxy-shaped
(``objects/_jsvalues.py``), as ``get``/``list`` here do.
``transaction(fn)`` and ``sync()`` genuinely wait, through the
:class:`ActivationHost` the runtime provides.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
from typing import Any, Awaitable, Callable, Mapping

from persistence import ObjectDatabase, StorageError, StorageTypeError, TransactionError, cf_names
from persistence import _cf
from persistence._kv import compile_list_options

from ._host import ActivationHost, Completed, DetachedActivation
from ._jsvalues import _SCALARS, JsMap, JsValueKv, js_value

__all__ = ["DurableObjectStorage", "DurableObjectTransaction", "alarm_time_ms"]

# CF: workerd 1.20261117.1 (observed, tests/conformance/cases/errors.json alarm_misuse)
SET_ALARM_NOT_A_DATE_MESSAGE = "Failed to execute 'setAlarm' on 'DurableObjectStorage': parameter 1 is not of type 'date'."
SET_ALARM_INVALID_DATE_MESSAGE = "The value cannot be converted because it is not a valid Date."
SET_ALARM_AFTER_2189_MESSAGE = "This API doesn't support dates after 2189."


def alarm_time_ms(when: Any, now_ms: float) -> float:
    """Cloudflare's setAlarm argument: ms since the epoch (number) or a datetime.

    Converted as workerd converts its ``kj::Date`` argument (observed on workerd
    1.20261117.1): whole milliseconds (the fraction is dropped), nanoseconds
    must fit an int64 ("dates after 2189").
    """
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        ms = when.timestamp() * 1000.0
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        ms = float(when)
    else:
        raise StorageTypeError(SET_ALARM_NOT_A_DATE_MESSAGE)
    if ms != ms:
        raise StorageTypeError(SET_ALARM_INVALID_DATE_MESSAGE)
    if ms * 1e6 >= 2.0**63:
        raise StorageTypeError(SET_ALARM_AFTER_2189_MESSAGE)
    ms = math.floor(ms)  # whole milliseconds first: setAlarm(0.5) is setAlarm(0)
    if ms <= 0:
        raise StorageTypeError(_cf.SET_ALARM_NON_POSITIVE_MESSAGE)  # CF: actor-state.c++
    # CF: workerd clamps past times to now; the alarm fires immediately.
    return float(max(ms, now_ms))


_EMPTY = inspect.Parameter.empty
#: The settled result of a call that returns nothing (immutable, so shared).
_DONE = Completed(None)


_new = object.__new__


def _settled(value: Any) -> Completed:
    """``Completed(value)`` without the ``__init__`` call (``list``; ``get`` inlines it)."""
    done = _new(Completed)
    done.value = value
    return done


class _KvOps:
    """get/put/delete/list shared by the storage object and transactions."""

    _db: ObjectDatabase
    #: Whether ``_guard`` has anything to check (a transaction's state); the storage
    #: object's calls skip it.
    _guarded = False

    def _guard(self, op: str) -> None:
        pass

    def get(self, keys: Any, options: Mapping[str, Any] | None = None) -> Completed:
        if self._guarded:
            self._guard("get")
        store = self._db.kv_store
        if type(keys) is str:  # the common case first: no isinstance checks
            value = store.get(keys)
            done = _new(Completed)
            done.value = value if type(value) in _SCALARS else js_value(value)
            return done
        if isinstance(keys, (list, tuple)):
            return Completed(js_value(store.get_many(list(keys)), JsMap))
        return Completed(js_value(store.get(keys)))

    def put(self, key: Any, value: Any = inspect.Parameter.empty, options: Mapping[str, Any] | None = None) -> Completed:
        if self._guarded:
            self._guard("put")
        store = self._db.kv_store
        if type(key) is str and value is not _EMPTY and value is not None:  # the common case: no ABC isinstance
            store.put(key, value)
            return _DONE
        if isinstance(key, Mapping):
            if value is not _EMPTY and not isinstance(value, Mapping):
                raise StorageTypeError(_cf.PUT_OVERLOAD_MESSAGE)  # CF: actor-state.c++
            # CF: workerd 1.20261117.1 (observed): an entry whose value is undefined
            # (Pyodide's None) is skipped; the key keeps its old value.
            store.put_many({k: v for k, v in key.items() if v is not None})
        else:
            if value is _EMPTY or value is None:
                # CF: actor-state.c++; Pyodide passes None as undefined (workerd 1.20261117.1, observed)
                raise StorageTypeError(_cf.PUT_UNDEFINED_VALUE_MESSAGE)
            store.put(key, value)
        return _DONE

    def delete(self, keys: Any, options: Mapping[str, Any] | None = None) -> Completed:
        if self._guarded:
            self._guard("delete")
        store = self._db.kv_store
        if isinstance(keys, (list, tuple)):
            return Completed(store.delete_many(list(keys)))
        return Completed(store.delete(keys))

    def list(self, options: Mapping[str, Any] | None = None, **kw: Any) -> Completed:
        if self._guarded:
            self._guard("list")
        keys, values, flat = self._db.kv_store.list_page(compile_list_options(options, **kw))
        if flat or _SCALARS.issuperset(map(type, values)):  # flat values: the Map is built at C speed
            return _settled(JsMap(zip(keys, values)))
        return _settled(js_value(dict(zip(keys, values)), JsMap))


@cf_names(
    "deleteAll",
    "transactionSync",
    "getAlarm",
    "setAlarm",
    "deleteAlarm",
    "getCurrentBookmark",
    "getBookmarkForTime",
    "onNextSessionRestoreBookmark",
)
class DurableObjectStorage(_KvOps):
    """``ctx.storage`` with Cloudflare's names and their snake_case twins."""

    def __init__(
        self,
        db: ObjectDatabase,
        host: ActivationHost | None = None,
        *,
        delete_all_deletes_alarm: bool = True,
    ) -> None:
        self._db = db
        # On a KV-backed class workerd hands out ``sql`` and ``kv`` too; using them
        # raises (``ObjectDatabase._require_sql``). CF: workerd 1.20261117.1 (observed)
        # A plain attribute, not a property: ``ctx.storage.sql`` is read by every
        # storage call through SQL, and the database's ``sql`` object never changes.
        self.sql: Any = db.sql
        self._host: ActivationHost = host or DetachedActivation()
        self._delete_all_deletes_alarm = delete_all_deletes_alarm
        self._kv_facade: JsValueKv | None = None

    @property
    def kv(self) -> Any:
        facade = self._kv_facade
        if facade is None:
            facade = self._kv_facade = JsValueKv(self._db.kv)
        return facade

    def deleteAll(self, options: Mapping[str, Any] | None = None) -> Completed:
        self._db.delete_all(delete_alarm=self._delete_all_deletes_alarm)
        return Completed(None)

    def transactionSync(self, fn: Callable[[], Any]) -> Any:
        # CF: workerd 1.20261117.1 (observed) runs transactionSync on KV-backed classes too.
        return self._db.transaction_sync(fn)

    def transaction(self, fn: Callable[[DurableObjectTransaction], Awaitable[Any]]) -> Awaitable[Any]:
        """Run ``await fn(txn)`` atomically under the input gate."""
        if not callable(fn):
            raise StorageTypeError(f"transaction(): expected a callable, got {type(fn).__name__}")
        return self._host.run_transaction(fn, DurableObjectTransaction(self))

    # -- alarms -------------------------------------------------------------
    def getAlarm(self, options: Mapping[str, Any] | None = None) -> Completed:
        if self._host.alarm_running() and not self._db.alarm_changed:
            # CF: getAlarm() is null while alarm() runs, unless the handler re-set it.
            return Completed(None)
        ms = self._db.get_alarm()
        return Completed(None if ms is None else int(ms) if float(ms).is_integer() else ms)

    def setAlarm(self, scheduled_time: Any, options: Mapping[str, Any] | None = None) -> Completed:
        host = self._host
        # CF: src/pyodide/python-entrypoint-helper.ts — a Python object is a JS
        # Proxy answering every property with a function, so workerd's "must have
        # an alarm() handler" check (io/worker.c++ assertCanSetAlarm) always
        # passes; a missing alarm() fails when the alarm fires, and is retried.
        ms = alarm_time_ms(scheduled_time, host.now_ms())
        self._db.set_alarm(ms)
        host.alarm_written()
        return Completed(None)

    def deleteAlarm(self, options: Mapping[str, Any] | None = None) -> Completed:
        self._db.set_alarm(None)
        self._host.alarm_written()
        return Completed(None)

    # -- durability and bookmarks ------------------------------------------
    def sync(self) -> Awaitable[None]:
        """Completes when every write made so far is committed."""
        return self._host.wait_committed()

    def getCurrentBookmark(self) -> Completed:
        return Completed(self._db.current_bookmark())

    def getBookmarkForTime(self, timestamp: Any) -> Completed:
        history = self._db.history
        if history is None:
            # CF: local workerd has no point-in-time recovery (actor-cache.h); dohost
            # keeps history unless it was turned off (pitr_retention_ms=0).
            raise StorageError(_cf.PITR_NOT_IMPLEMENTED_MESSAGE)
        if isinstance(timestamp, _dt.datetime):
            ms = alarm_time_ms(timestamp, 0.0)
        elif isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool) and timestamp == timestamp:
            ms = float(timestamp)
        else:
            raise StorageTypeError(
                f"getBookmarkForTime(): expected a number of milliseconds or a datetime, got {type(timestamp).__name__}"
            )
        return Completed(history.bookmark_for_time(ms))

    def onNextSessionRestoreBookmark(self, bookmark: str) -> Completed:
        """Restore to ``bookmark`` when the object next starts; returns the undo bookmark."""
        history = self._db.history
        if history is None:
            raise StorageError(_cf.PITR_NOT_IMPLEMENTED_MESSAGE)
        return Completed(history.schedule_restore(bookmark))


@cf_names("getAlarm", "setAlarm", "deleteAlarm")
class DurableObjectTransaction(_KvOps):
    """The ``txn`` passed to ``transaction(fn)``: storage ops plus ``rollback()``."""

    def __init__(self, storage: DurableObjectStorage) -> None:
        self._storage = storage
        self._db = storage._db
        self.state = "open"  # open -> rolled_back | committed
        self._depth: int | None = None

    _guarded = True

    def savepoint_opened(self, depth: int) -> None:
        """Told by the host which savepoint holds this transaction's writes."""
        self._depth = depth

    def _guard(self, op: str) -> None:
        name = _cf.TRANSACTION_OP_NAMES.get(op, f"{op}()")
        if self.state == "rolled_back":
            raise TransactionError(_cf.TXN_ROLLED_BACK_TEMPLATE.format(op=name))  # CF: actor-state.c++
        if self.state == "committed":
            raise TransactionError(_cf.TXN_ALREADY_COMMITTED_TEMPLATE.format(op=name))

    def rollback(self) -> None:
        if self.state == "rolled_back":
            return  # CF: workerd 1.20261117.1 (observed): a second rollback() is a no-op
        self._guard("rollback")
        depth = self._depth
        if depth is not None and self._db._sp_depth > depth:
            # CF: workerd rolls back at once: what the callback writes through
            # ctx.storage afterwards is kept (observed on 1.20261117.1 with bookmarks).
            self._db.rollback_to(depth)
        self.state = "rolled_back"

    def getAlarm(self, options: Mapping[str, Any] | None = None) -> Completed:
        self._guard("getAlarm")
        return self._storage.getAlarm(options)

    def setAlarm(self, scheduled_time: Any, options: Mapping[str, Any] | None = None) -> Completed:
        self._guard("setAlarm")
        return self._storage.setAlarm(scheduled_time, options)

    def deleteAlarm(self, options: Mapping[str, Any] | None = None) -> Completed:
        self._guard("deleteAlarm")
        self._db.set_alarm(None, in_transaction=True)
        self._storage._host.alarm_written()
        return Completed(None)

    def deleteAll(self, options: Mapping[str, Any] | None = None) -> Completed:
        raise TransactionError(_cf.DELETE_ALL_IN_TRANSACTION_MESSAGE)  # CF: actor-sqlite.c++
