"""dohost's storage engine: one SQLite file per Durable Object, synchronous.

Owns connection set-up, the authorizer, ``sql.exec`` and its cursor, the
``_cf_KV``/``_cf_METADATA`` tables, the value codec, implicit transactions and
savepoints. No trio here: the host (``runtime``) decides when to commit.
"""

from __future__ import annotations

from ._codec import MAX_SAFE_INTEGER as MAX_SAFE_INTEGER
from ._codec import Binding as Binding
from ._engine import Durability as Durability
from ._engine import NoHooks as NoHooks
from ._engine import ObjectDatabase as ObjectDatabase
from ._engine import StorageHooks as StorageHooks
from ._locks import LOCK_SHARDS as LOCK_SHARDS
from ._locks import LOCK_TABLE_FILE as LOCK_TABLE_FILE
from ._locks import LockTable as LockTable
from ._locks import ofd_locks_available as ofd_locks_available
from . import _inspect as inspect_file
from ._kv import ListRange as ListRange
from ._kv import SyncKv as SyncKv
from ._kv import compile_list_options as compile_list_options
from ._names import ALL_ALIAS_TABLES as ALL_ALIAS_TABLES
from ._names import alias_table as alias_table
from ._names import camel_to_snake as camel_to_snake
from ._names import cf_names as cf_names
from ._plain import open_connection as open_connection
from ._sql import Row as Row
from ._sql import RowArray as RowArray
from ._sql import SqlCursor as SqlCursor
from ._sql import SqlStorage as SqlStorage
from ._pitr import DEFAULT_RETENTION_MS as PITR_DEFAULT_RETENTION_MS
from ._pitr import History as History
from ._pitr import read_restore_points as read_restore_points
from .errors import CommitFailedError as CommitFailedError
from .errors import PitrError as PitrError
from .errors import DatabaseClosedError as DatabaseClosedError
from .errors import ObjectLockedError as ObjectLockedError
from .errors import PersistenceError as PersistenceError
from .errors import SqlError as SqlError
from .errors import StorageError as StorageError
from .errors import StorageRangeError as StorageRangeError
from .errors import StorageTypeError as StorageTypeError
from .errors import TransactionError as TransactionError

__all__ = [
    "MAX_SAFE_INTEGER",
    "Binding",
    "Durability",
    "NoHooks",
    "ObjectDatabase",
    "LockTable",
    "LOCK_SHARDS",
    "LOCK_TABLE_FILE",
    "ofd_locks_available",
    "StorageHooks",
    "inspect_file",
    "ListRange",
    "SyncKv",
    "compile_list_options",
    "ALL_ALIAS_TABLES",
    "alias_table",
    "camel_to_snake",
    "cf_names",
    "open_connection",
    "Row",
    "RowArray",
    "SqlCursor",
    "SqlStorage",
    "PITR_DEFAULT_RETENTION_MS",
    "History",
    "read_restore_points",
    "PitrError",
    "CommitFailedError",
    "DatabaseClosedError",
    "ObjectLockedError",
    "PersistenceError",
    "SqlError",
    "StorageError",
    "StorageRangeError",
    "StorageTypeError",
    "TransactionError",
]
