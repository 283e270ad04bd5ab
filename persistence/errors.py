"""The persistence error tree.

::

    PersistenceError                 root of everything this package raises on purpose
    ├── SqlError                     a statement failed; message is Cloudflare's
    │                                ``<sqlite message>[ at offset N]: SQLITE_<CODE>``
    ├── StorageError                 misuse of the storage API (Cloudflare's messages)
    │   ├── PitrError                a bookmark refused (malformed, foreign, out of window)
    │   └── TransactionError         transaction()/transactionSync() misuse
    ├── CommitFailedError            the implicit transaction could not commit; the
    │                                object's writes since the last commit are gone
    │                                and the host must reset the object ("broken")
    ├── ObjectLockedError            another process holds this object's file
    └── DatabaseClosedError          the file was closed (eviction, shutdown)

``TypeError`` and ``ValueError`` subclasses are used where Cloudflare throws a
JavaScript ``TypeError``/``RangeError``, so ``except TypeError`` in copied code
keeps working: :class:`StorageTypeError`, :class:`StorageRangeError`.
"""

from __future__ import annotations

__all__ = [
    "PersistenceError",
    "SqlError",
    "StorageError",
    "PitrError",
    "StorageTypeError",
    "StorageRangeError",
    "TransactionError",
    "CommitFailedError",
    "ObjectLockedError",
    "DatabaseClosedError",
]


class PersistenceError(Exception):
    """Root of the persistence package's errors."""


class SqlError(PersistenceError):
    """A SQL statement failed. ``code`` is the primary SQLite result code name."""

    def __init__(self, message: str, code: str = "SQLITE_ERROR") -> None:
        super().__init__(message)
        self.code = code


class StorageError(PersistenceError):
    """The storage API was used in a way Cloudflare rejects."""


class StorageTypeError(StorageError, TypeError):
    """Cloudflare throws a ``TypeError`` here (bad value type, bad option type)."""


class StorageRangeError(StorageError, ValueError):
    """Cloudflare throws a ``RangeError`` here (size limits, bad option values)."""


class TransactionError(StorageError):
    """transaction()/transactionSync() used in a way Cloudflare rejects."""


class CommitFailedError(PersistenceError):
    """The implicit transaction failed to commit and was rolled back."""


class ObjectLockedError(PersistenceError):
    """Another process has this object's file open (one live instance per ID)."""


class DatabaseClosedError(PersistenceError):
    """The object's database is closed; a new activation must reopen it."""


class PitrError(StorageError):
    """A point-in-time bookmark was refused: malformed, another object's, or outside the window."""
