"""The collections error tree.

::

    CollectionError                  root of everything this subpackage raises on purpose
    ├── DriverContractError          a SQLiteDriver was used against its contract
    │                                (callback without the driver argument, outer
    │                                driver used while its transaction runs, a
    │                                transaction driver used after it ended)
    ├── ConfigError                  invalid adapter / collection options
    ├── InvalidKeyError              a key is not a finite number or a string
    ├── ValueEncodingError           a value cannot be stored (type, dict key, range)
    ├── InvalidExpressionError       a malformed expression, order or index fragment
    ├── SchemaVersionMismatchError   stored schema version differs and the policy
    │                                is ``error`` (or a stale adapter was used)
    └── StorageFormatError           stored data this code cannot read

SQL errors raised by the storage underneath (``apsw.Error``, the engine's
``SqlError``) pass through unchanged: they belong to the layer that raised them,
and every adapter operation runs in one transaction, so they change nothing.
"""

from __future__ import annotations

__all__ = [
    "CollectionError",
    "DriverContractError",
    "ConfigError",
    "InvalidKeyError",
    "ValueEncodingError",
    "InvalidExpressionError",
    "SchemaVersionMismatchError",
    "StorageFormatError",
]


class CollectionError(Exception):
    """Root of the persisted-collections errors."""


class DriverContractError(CollectionError):
    """A :class:`SQLiteDriver` was called in a way its contract forbids."""


class ConfigError(CollectionError, ValueError):
    """An option of the adapter, a collection or a call is out of range."""


class InvalidKeyError(CollectionError, TypeError):
    """A collection key is neither a finite number nor a string."""


class ValueEncodingError(CollectionError, TypeError):
    """A row value, metadata value or literal cannot be stored exactly."""


class InvalidExpressionError(CollectionError, ValueError):
    """An expression, ``order_by`` clause or index SQL fragment is malformed."""


class SchemaVersionMismatchError(CollectionError):
    """The stored schema version of a collection is not the declared one."""

    def __init__(self, message: str, *, collection_id: str, found: int | None, expected: int) -> None:
        super().__init__(message)
        self.collection_id = collection_id
        self.found = found
        self.expected = expected


class StorageFormatError(CollectionError):
    """Stored rows or registry entries are not in a format this code wrote."""
