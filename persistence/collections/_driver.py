"""The ``SQLiteDriver`` contract, and the gate every driver here is built on.

The collection adapter talks to SQLite only through four calls::

    driver.exec(sql)                      # DDL / statements without parameters
    driver.query(sql, params) -> [dict]   # rows as plain dicts, column order kept
    driver.run(sql, params)               # a statement whose rows are not needed
    driver.transaction(fn)                # fn(transaction_driver) in one transaction

The contract is **synchronous**, unlike TanStack DB's promise-based one, because
Durable Object storage is synchronous: ``ctx.storage.sql.exec`` and
``transactionSync`` never yield, and the host's input gate delivers no other
event to an object while its synchronous code runs. TanStack's DO driver needs
a promise queue so that "writes outside a running transaction wait for it";
here that holds by construction inside one object:

* Another event of the same object cannot run while a transaction callback
  runs (the input gate), so it can only write before or after it.
* Another *thread* using the same driver (possible with the apsw driver in a
  plain program) blocks on the driver's lock until the transaction has
  committed or rolled back: it really does wait.
* The one remaining way to write "outside" a running transaction is from
  inside its own callback, through the outer driver. Waiting there would
  deadlock, so it is a :class:`DriverContractError` with a message naming the
  transaction driver to use instead. The same rule applies one level down: a
  transaction driver whose nested transaction (a savepoint) is running refuses
  calls until that nested transaction ends.

Guarantees every driver built on :class:`GatedDriver` gives:

* ``transaction(fn)`` checks, before touching storage, that ``fn`` accepts the
  transaction driver argument; a callback taking no argument is the contract
  error ``SQLiteDriver.transaction callback must accept the transaction driver
  argument`` (TanStack's wording).
* ``fn`` raising rolls back everything it wrote and re-raises; returning
  commits and returns its value.
* ``transaction_driver.transaction(fn)`` is a savepoint: an inner failure
  rolls back only the inner part, the outer transaction continues.
* A transaction driver used after its transaction ended is a contract error.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from .errors import DriverContractError

__all__ = [
    "SQLiteDriver",
    "SqlParam",
    "GatedDriver",
    "CALLBACK_ARITY_MESSAGE",
]

T = TypeVar("T")

#: What the adapter binds. Drivers may accept more; the adapter never sends more.
SqlParam = None | int | float | str | bytes

# TanStack's message, kept word for word so the contract reads the same.
CALLBACK_ARITY_MESSAGE = "SQLiteDriver.transaction callback must accept the transaction driver argument"


@runtime_checkable
class SQLiteDriver(Protocol):
    """Synchronous SQL access with nested transactions (see the module docstring)."""

    def exec(self, sql: str) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def transaction(self, fn: Callable[[SQLiteDriver], T]) -> T: ...


def check_transaction_callback(fn: Callable[..., Any]) -> None:
    """Raise the contract error unless ``fn`` can be called with one argument."""
    if not callable(fn):
        raise DriverContractError(CALLBACK_ARITY_MESSAGE)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return
    try:
        signature.bind(None)
    except TypeError:
        raise DriverContractError(CALLBACK_ARITY_MESSAGE) from None


class GatedDriver:
    """Base of the drivers: the gate, the transaction views, the misuse checks.

    Subclasses implement the five ``_raw_*`` primitives against their storage;
    they are only ever called with the gate held by the calling thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tx_thread: int | None = None
        # Active transaction views, outermost first; only the last one may be used.
        self._views: list[_TransactionDriver] = []

    # -- what subclasses provide -------------------------------------------------
    def _raw_exec(self, sql: str) -> None:
        raise NotImplementedError

    def _raw_query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _raw_run(self, sql: str, params: Sequence[Any]) -> None:
        raise NotImplementedError

    def _raw_transaction(self, thunk: Callable[[], T]) -> T:
        """Run ``thunk`` in a top-level transaction: commit on return, roll back on raise."""
        raise NotImplementedError

    def _raw_savepoint(self, thunk: Callable[[], T]) -> T:
        """Run ``thunk`` in a savepoint inside the running transaction."""
        raise NotImplementedError

    # -- the public contract ----------------------------------------------------
    def exec(self, sql: str) -> None:
        self._refuse_if_own_transaction("exec")
        with self._lock:
            self._raw_exec(sql)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._refuse_if_own_transaction("query")
        with self._lock:
            return self._raw_query(sql, params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._refuse_if_own_transaction("run")
        with self._lock:
            self._raw_run(sql, params)

    def transaction(self, fn: Callable[[SQLiteDriver], T]) -> T:
        check_transaction_callback(fn)
        self._refuse_if_own_transaction("transaction")
        with self._lock:
            self._tx_thread = threading.get_ident()
            view = _TransactionDriver(self)
            self._views.append(view)
            try:
                return self._raw_transaction(lambda: fn(view))
            finally:
                view._ended = True
                self._views.pop()
                self._tx_thread = None

    # -- internals --------------------------------------------------------------
    def _refuse_if_own_transaction(self, op: str) -> None:
        if self._tx_thread == threading.get_ident():
            raise DriverContractError(
                f"SQLiteDriver.{op} was called on the outer driver while its transaction is "
                "running in this thread; use the transaction driver passed to the callback "
                "(waiting for the transaction here would deadlock)"
            )

    def _nested(self, parent: _TransactionDriver, fn: Callable[[SQLiteDriver], T]) -> T:
        view = _TransactionDriver(self)
        self._views.append(view)
        try:
            return self._raw_savepoint(lambda: fn(view))
        finally:
            view._ended = True
            self._views.pop()


class _TransactionDriver:
    """The driver handed to a transaction callback; valid until that callback returns."""

    __slots__ = ("_owner", "_thread", "_ended")

    def __init__(self, owner: GatedDriver) -> None:
        self._owner = owner
        self._thread = threading.get_ident()
        self._ended = False

    def _check(self, op: str) -> GatedDriver:
        if self._ended:
            raise DriverContractError(
                f"SQLiteDriver.{op} was called on a transaction driver after its transaction ended"
            )
        if threading.get_ident() != self._thread:
            raise DriverContractError(
                f"SQLiteDriver.{op} was called on a transaction driver from another thread; "
                "a transaction belongs to the thread that started it"
            )
        owner = self._owner
        if owner._views[-1] is not self:
            raise DriverContractError(
                f"SQLiteDriver.{op} was called on an enclosing transaction driver while a nested "
                "transaction is running; use the nested transaction driver"
            )
        return owner

    def exec(self, sql: str) -> None:
        self._check("exec")._raw_exec(sql)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self._check("query")._raw_query(sql, params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._check("run")._raw_run(sql, params)

    def transaction(self, fn: Callable[[SQLiteDriver], T]) -> T:
        check_transaction_callback(fn)
        return self._check("transaction")._nested(self, fn)

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active"
        return f"<transaction driver of {type(self._owner).__name__} ({state})>"
