"""``DurableObjectDriver``: the :class:`SQLiteDriver` contract over an object's storage.

It wraps what user code holds as ``ctx.storage``: ``storage.sql.exec(query,
*bindings)`` for statements and ``storage.transactionSync(fn)`` (or
``transaction_sync``) for transactions. It is duck-typed through
:class:`DurableObjectStorageLike`, so this module imports nothing from the
engine, and works unchanged over Cloudflare-shaped fakes.

Guarantees (beyond :mod:`._driver`'s):

* Transactions go through ``transactionSync``, never ``BEGIN``/``SAVEPOINT``
  statements (the DO storage forbids those in ``exec``). Because
  ``transactionSync`` nests as a savepoint, nested ``transaction`` calls are
  real savepoints: an inner failure rolls back only the inner part. TanStack's
  DO driver refuses nesting when it uses the DO transaction API; ours does not
  have to.
* Rows come back as plain ``dict`` s with the storage's column order.
* ``bool`` parameters are sent as 0/1: the DO storage would bind them as TEXT
  ``'true'``/``'false'``, which no SQLite comparison with a stored boolean
  (JSON ``true`` extracts as 1) would match. Everything else is passed through
  with Cloudflare's binding, numbers included (an ``int`` binds as a double);
  the adapter never relies on integer binding (see ``_sqlgen``).
* The asynchronous ``storage.transaction`` is not used: the contract is
  synchronous, and inside an object ``transactionSync`` is always there.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from ._driver import GatedDriver
from .errors import ConfigError

__all__ = ["DurableObjectDriver", "DurableObjectStorageLike", "SqlStorageLike"]

T = TypeVar("T")


class SqlStorageLike(Protocol):
    """``ctx.storage.sql``: only ``exec`` is needed."""

    def exec(self, query: str, *bindings: Any) -> Iterable[Any]: ...


class DurableObjectStorageLike(Protocol):
    """``ctx.storage``: ``sql`` plus ``transactionSync`` / ``transaction_sync``."""

    @property
    def sql(self) -> SqlStorageLike: ...


class DurableObjectDriver(GatedDriver):
    """A :class:`SQLiteDriver` over ``ctx.storage`` of a Durable Object."""

    def __init__(self, storage: DurableObjectStorageLike) -> None:
        super().__init__()
        sql = getattr(storage, "sql", None)
        if sql is None or not callable(getattr(sql, "exec", None)):
            raise ConfigError(
                f"DurableObjectDriver needs storage.sql.exec; got storage {type(storage).__name__!r} "
                "without it (is this a SQLite-backed Durable Object class?)"
            )
        transaction_sync = getattr(storage, "transaction_sync", None) or getattr(
            storage, "transactionSync", None
        )
        if not callable(transaction_sync):
            raise ConfigError(
                f"DurableObjectDriver needs storage.transactionSync; got storage "
                f"{type(storage).__name__!r} without it"
            )
        self.storage = storage
        self._exec: Callable[..., Iterable[Any]] = sql.exec
        self._transaction_sync: Callable[[Callable[[], Any]], Any] = transaction_sync

    def _raw_exec(self, sql: str) -> None:
        _drain(self._exec(sql))

    def _raw_query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cursor = self._exec(sql, *_bindings(params))
        return [row if type(row) is dict else dict(row) for row in cursor]

    def _raw_run(self, sql: str, params: Sequence[Any]) -> None:
        _drain(self._exec(sql, *_bindings(params)))

    def _raw_transaction(self, thunk: Callable[[], T]) -> T:
        result: T = self._transaction_sync(thunk)
        return result

    # transactionSync nests as a savepoint, so a nested transaction is the same call.
    _raw_savepoint = _raw_transaction


def _bindings(params: Sequence[Any]) -> list[Any]:
    return [int(p) if isinstance(p, bool) else p for p in params]


def _drain(cursor: Iterable[Any] | None) -> None:
    # Statements run as their cursor is consumed (as in workerd); a write whose
    # cursor is dropped unread could otherwise stop after its first step.
    if cursor is not None:
        for _ in cursor:
            pass
