"""Turning SQLite's exceptions into workerd's errors, for an object's database.

Owns :class:`ErrorTranslation`, a part of :class:`~._engine.ObjectDatabase`:

* an ``apsw.Error`` becomes the :class:`~.errors.SqlError` workerd raises —
  the authorizer's stashed refusal, "no such function" for a function
  workerd's SQLite lacks, or :func:`~._sql.format_sqlite_error`'s message;
* an error raised by a re-prepare of a cached statement gets back the
  offset SQLite reports on a fresh prepare (nothing runs to find it);
* when SQLite rolled the whole transaction back on its own, the host is told
  (``hooks.on_rollback()``) and the transaction and its savepoints are
  re-opened, so ``transactionSync`` / ``transaction()`` nesting stays valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import apsw

from ._sql import format_sqlite_error
from .errors import SqlError

if TYPE_CHECKING:
    from ._authorizer import Authorizer
    from ._engine import StorageHooks

__all__ = ["ErrorTranslation"]


def _abort_before_step(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
    return False


class ErrorTranslation:
    """Error translation of :class:`~._engine.ObjectDatabase` (see the module docstring)."""

    _auth: Authorizer
    _conn: apsw.Connection
    _hooks: StorageHooks
    _txn_open: bool
    _wrote: bool
    _sp_names: list[str]
    alarm_changed: bool

    if TYPE_CHECKING:

        def _exec_internal(self, sql: str, params: tuple[Any, ...] = ()) -> apsw.Cursor: ...

        def _forget_caches(self) -> None: ...

    def _translate(self, exc: apsw.Error) -> SqlError:
        auth = self._auth
        auth.ddl_log.clear()
        stashed = auth.stashed
        if stashed is not None:
            auth.stashed = None
            if isinstance(exc, apsw.AuthError):
                return SqlError(stashed, "SQLITE_ERROR" if stashed.endswith(": SQLITE_ERROR") else "SQLITE_AUTH")
        if auth.missing is not None:
            auth.missing = None
            err = format_sqlite_error(exc)
            text = str(err)
            denied = "not authorized to use function: "
            if text.startswith(denied):
                # CF: workerd's SQLite lacks the function (_cf.MISSING_FUNCTIONS).
                return SqlError("no such function: " + text[len(denied):], err.code)
            return err
        if self._txn_open and self._conn.get_autocommit():
            self._transaction_lost()
        return format_sqlite_error(exc)

    def _with_offset(self, exc: apsw.Error, sql: str, bindings: Any) -> apsw.Error:
        """The same error with SQLite's offset, when apsw lost it.

        apsw re-prepares a cached statement after a schema change, and an error
        raised by that re-prepare carries no offset ("table t already exists"
        without workerd's " at offset 13"; workerd prepares every exec afresh). A
        fresh prepare that is aborted before its first step recovers it; nothing runs.
        """
        if type(exc) is not apsw.SQLError or getattr(exc, "error_offset", -1) != -1:
            return exc
        auth = self._auth
        saved = auth.stashed, auth.missing
        cur = self._conn.cursor()
        cur.exec_trace = _abort_before_step
        try:
            cur.execute(sql, bindings, can_cache=False)
        except apsw.Error as again:
            if str(again) == str(exc) and getattr(again, "error_offset", -1) >= 0:
                return again
        finally:
            auth.stashed, auth.missing = saved
            cur.close()
        return exc

    def _transaction_lost(self) -> None:
        """SQLite rolled the whole transaction back on its own: say so, and re-open it."""
        wrote = self._wrote
        self._wrote = False
        self.alarm_changed = False
        self._forget_caches()
        self._exec_internal("BEGIN")
        for name in self._sp_names:
            self._exec_internal(f"SAVEPOINT {name}")
        if wrote:
            self._hooks.on_rollback()

