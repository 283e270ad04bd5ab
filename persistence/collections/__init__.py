"""Persisted collections inside a Durable Object: TanStack DB's SQLite persistence, in Python.

A collection is a keyed set of JSON rows with row versions, tombstones, a
replay log and schema-version policies, stored in the object's own SQLite
database through a small synchronous :class:`SQLiteDriver` contract. Inside
an object::

    from persistence.collections import CollectionPersistence, CollectionSpec, asc, eq, ref

    persistence = CollectionPersistence.for_storage(ctx.storage)
    todos = persistence.open([CollectionSpec(id="todos", schema_version=2)])["todos"]
    todos.insert("t1", {"title": "write docs", "done": False})
    open_items = todos.load_subset(where=eq(ref("done"), False), order_by=[asc(ref("title"))])

Modules: ``_driver`` (the contract and its gate), ``_apsw_driver`` and
``_do_driver`` (the two drivers), ``_codec`` (keys, values, the SQL value
model), ``_expr`` / ``_eval`` / ``_sqlfunc`` / ``_sqlgen`` (the expression
language, its in-memory evaluator and its SQL compiler), ``_schema`` (tables, versions,
resets), ``_replay`` and ``_indexes`` (writes, replay log, indexes),
``_adapter`` (the adapter), ``_persistence`` (modes, policies, start-up),
``_convert`` (dohost's first layout to TanStack's).

The files are TanStack DB's: same tables, names and encodings as
``@tanstack/db-sqlite-persistence-core`` (see ``_schema`` and ``_codec``), so a
Durable Object's data moves between TanStack's JavaScript package and this layer.
"""

from __future__ import annotations

from ._adapter import (
    DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS as DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS,
    DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS as DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS,
    DEFAULT_PULL_SINCE_RELOAD_THRESHOLD as DEFAULT_PULL_SINCE_RELOAD_THRESHOLD,
    CollectionAdapter as CollectionAdapter,
)
from ._apsw_driver import ApswDriver as ApswDriver
from ._codec import Key as Key, decode_key as decode_key, encode_key as encode_key
from ._convert import convert_dohost_layout as convert_dohost_layout
from ._do_driver import DurableObjectDriver as DurableObjectDriver
from ._do_driver import DurableObjectStorageLike as DurableObjectStorageLike
from ._driver import SQLiteDriver as SQLiteDriver
from ._expr import (
    Expr as Expr, Func as Func, OrderBy as OrderBy, Ref as Ref, Val as Val,
    add as add, and_ as and_, asc as asc, coalesce as coalesce, concat as concat, date_ as date_,
    datetime_ as datetime_, desc as desc, divide as divide, eq as eq, gt as gt, gte as gte,
    ilike as ilike, in_ as in_, is_null as is_null, length as length, like as like, lower as lower,
    lt as lt, lte as lte, multiply as multiply, not_ as not_, or_ as or_, ref as ref,
    strftime as strftime, subtract as subtract, upper as upper, val as val,
)
from ._persistence import (
    CollectionPersistence as CollectionPersistence,
    CollectionSpec as CollectionSpec,
    PersistedCollection as PersistedCollection,
    resolve_policy as resolve_policy,
)
from ._schema import persisted_table_name as persisted_table_name, table_names as table_names
from ._sqlgen import CLOUDFLARE_LIMITS as CLOUDFLARE_LIMITS, SqlLimits as SqlLimits
from ._types import (
    CollectionMode as CollectionMode, CommittedTx as CommittedTx, Cursor as Cursor,
    IndexSpec as IndexSpec, LoadedRow as LoadedRow, MetadataMutation as MetadataMutation,
    Mutation as Mutation, PullSinceResult as PullSinceResult, ReplayDelta as ReplayDelta,
    SchemaMismatchPolicy as SchemaMismatchPolicy, StreamPosition as StreamPosition,
)
from .errors import (
    CollectionError as CollectionError, ConfigError as ConfigError,
    DriverContractError as DriverContractError, InvalidExpressionError as InvalidExpressionError,
    InvalidKeyError as InvalidKeyError, SchemaVersionMismatchError as SchemaVersionMismatchError,
    StorageFormatError as StorageFormatError, ValueEncodingError as ValueEncodingError,
)

__all__ = [
    # drivers
    "SQLiteDriver", "ApswDriver", "DurableObjectDriver", "DurableObjectStorageLike",
    # adapter and persistence
    "CollectionAdapter", "CollectionPersistence", "CollectionSpec", "PersistedCollection",
    "CollectionMode", "SchemaMismatchPolicy", "resolve_policy", "SqlLimits", "CLOUDFLARE_LIMITS",
    "DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS", "DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS",
    "DEFAULT_PULL_SINCE_RELOAD_THRESHOLD", "table_names", "persisted_table_name", "convert_dohost_layout",
    # records
    "Key", "encode_key", "decode_key", "Mutation", "MetadataMutation", "CommittedTx", "LoadedRow",
    "Cursor", "ReplayDelta", "PullSinceResult", "StreamPosition", "IndexSpec",
    # expressions
    "Expr", "Ref", "Val", "Func", "OrderBy", "ref", "val", "eq", "gt", "gte", "lt", "lte", "and_",
    "or_", "not_", "in_", "like", "ilike", "is_null", "upper", "lower", "length", "concat",
    "coalesce", "add", "subtract", "multiply", "divide", "date_", "datetime_", "strftime", "asc", "desc",
    # errors
    "CollectionError", "DriverContractError", "ConfigError", "InvalidKeyError", "ValueEncodingError",
    "InvalidExpressionError", "SchemaVersionMismatchError", "StorageFormatError",
]
