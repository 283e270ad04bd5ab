"""The collection tables, their names, schema versions and mismatch policies.

The layout is TanStack DB's, table for table and column for column
(``@tanstack/db-sqlite-persistence-core`` 0.2.21, ``sqlite-core-adapter.ts``
``ensureInitialized`` / ``ensureCollectionReadyInternal``; the Durable Object
package is a driver over the same adapter), so a Durable Object's file can move
between TanStack's JavaScript package and this layer::

    collection_registry       collection_id -> table_name, tombstone_table_name,
                              schema_version, updated_at
    persisted_index_registry  (collection_id, signature) -> index_name, expression_sql
                              (JSON array), where_sql, removed, created/updated/last_used_at
    applied_tx                (collection_id, term, seq) -> tx_id, row_version, replay_json,
                              replay_requires_full_reload, applied_at
    collection_version        collection_id -> latest_row_version
    collection_metadata       (collection_id, key) -> value JSON, updated_at
    leader_term               collection_id -> latest_term
    schema_version            scope 'global' -> the adapter's schema version, updated_at
    collection_reset_epoch    collection_id -> reset_epoch, updated_at

Per collection: ``c_<h>_<n>`` (``key TEXT PRIMARY KEY, value TEXT NOT NULL,
metadata TEXT, row_version INTEGER NOT NULL``) and ``t_<h>_<n>`` (tombstones:
``key, value, row_version, deleted_at TEXT`` — ``Date.toISOString()`` text),
each with an index ``<table>_row_version_idx``. ``<h>`` is the 32-bit FNV-1a
hash of the id's UTF-16 code units in base32 (``a-z2-7``), ``<n>`` the id's
length in UTF-16 code units in base36: ``todos`` -> ``c_bicmgyk_5``. Two ids
with the same name are detected and refused (TanStack would share tables).
Timestamps are epoch seconds from the adapter's clock (TanStack asks SQLite's).

dohost keeps one table of its own next to TanStack's, which TanStack's package
never reads or writes::

    dohost_collection_stream  collection_id -> reset_epoch, latest_row_version,
                              latest_term, latest_seq, pruned_term, pruned_seq, log_floor

It holds what TanStack's tables cannot say and dohost guarantees: the latest
``seq`` even after its ``applied_tx`` entry was pruned (``apply_local`` never
reuses a position), the pruned ``(term, seq)`` watermark (idempotency after
pruning), and ``log_floor``, the row version from which the replay log is
complete (``pull_since`` is exact where TanStack's ``MIN(row_version)`` test
would force a reload after a row-version jump). The row is trusted only while
its ``reset_epoch`` and ``latest_row_version`` are the collection's: any write
or reset by TanStack's package changes one of them, and the values are then
derived from TanStack's tables as TanStack does (``MAX(seq)`` of the latest
term, no watermark, ``MIN(row_version)`` floor) until dohost writes again.

Where dohost's behaviour differs from TanStack's, on purpose:

* A reset keeps ``latest_row_version`` monotonic (it adds one) instead of
  zeroing it, so ``pull_since`` from before the reset can never answer "no
  changes"; it also clears ``collection_metadata`` (TanStack keeps it: its
  issue #1659) and sets ``leader_term`` to 0.
* Registration, the version check and a reset run in **one** transaction
  (TanStack registers outside it), so a reset is all-or-nothing.

Files written by dohost before this layout (``schema_version`` scope
``dohost.collections``, SHA-256 table names) are refused with
:class:`StorageFormatError`; :func:`persistence.collections.convert_dohost_layout`
converts one explicitly.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ._driver import SQLiteDriver
from ._types import SchemaMismatchPolicy
from .errors import ConfigError, SchemaVersionMismatchError, StorageFormatError

__all__ = [
    "TableMapping",
    "table_names",
    "persisted_table_name",
    "index_name",
    "ensure_layout",
    "ensure_collection",
    "assert_current_version",
    "write_stream",
    "quote_identifier",
    "LEGACY_SCOPE",
]

LEGACY_SCOPE = "dohost.collections"  # the scope dohost's own first layout wrote
_SAFE_IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # TanStack's SAFE_IDENTIFIER_PATTERN
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

_LAYOUT_DDL = (
    """CREATE TABLE IF NOT EXISTS collection_registry (
         collection_id TEXT PRIMARY KEY,
         table_name TEXT NOT NULL UNIQUE,
         tombstone_table_name TEXT NOT NULL UNIQUE,
         schema_version INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
       )""",
    """CREATE TABLE IF NOT EXISTS persisted_index_registry (
         collection_id TEXT NOT NULL,
         signature TEXT NOT NULL,
         index_name TEXT NOT NULL,
         expression_sql TEXT NOT NULL,
         where_sql TEXT,
         removed INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL,
         last_used_at INTEGER NOT NULL,
         PRIMARY KEY (collection_id, signature)
       )""",
    """CREATE TABLE IF NOT EXISTS applied_tx (
         collection_id TEXT NOT NULL,
         term INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         tx_id TEXT NOT NULL,
         row_version INTEGER NOT NULL,
         replay_json TEXT,
         replay_requires_full_reload INTEGER NOT NULL DEFAULT 0,
         applied_at INTEGER NOT NULL,
         PRIMARY KEY (collection_id, term, seq)
       )""",
)
# TanStack adds these to files from before it had them, ignoring "duplicate column name".
_APPLIED_TX_COLUMNS = (
    ("replay_json", "ALTER TABLE applied_tx ADD COLUMN replay_json TEXT"),
    ("replay_requires_full_reload",
     "ALTER TABLE applied_tx ADD COLUMN replay_requires_full_reload INTEGER NOT NULL DEFAULT 0"),
)
_LAYOUT_DDL_AFTER = (
    """CREATE TABLE IF NOT EXISTS collection_version (
         collection_id TEXT PRIMARY KEY,
         latest_row_version INTEGER NOT NULL
       )""",
    """CREATE TABLE IF NOT EXISTS collection_metadata (
         collection_id TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         updated_at INTEGER NOT NULL,
         PRIMARY KEY (collection_id, key)
       )""",
    """CREATE TABLE IF NOT EXISTS leader_term (
         collection_id TEXT PRIMARY KEY,
         latest_term INTEGER NOT NULL
       )""",
    """CREATE TABLE IF NOT EXISTS schema_version (
         scope TEXT PRIMARY KEY,
         version INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
       )""",
)
_RESET_EPOCH_DDL = """CREATE TABLE IF NOT EXISTS collection_reset_epoch (
         collection_id TEXT PRIMARY KEY,
         reset_epoch INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
       )"""
_STREAM_DDL = """CREATE TABLE IF NOT EXISTS dohost_collection_stream (
         collection_id TEXT PRIMARY KEY,
         reset_epoch INTEGER NOT NULL,
         latest_row_version INTEGER NOT NULL,
         latest_term INTEGER NOT NULL,
         latest_seq INTEGER NOT NULL,
         pruned_term INTEGER NOT NULL,
         pruned_seq INTEGER NOT NULL,
         log_floor INTEGER NOT NULL
       )"""


class TableMapping(NamedTuple):
    rows: str  # quoted identifiers, ready for SQL
    tombstones: str


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le", "surrogatepass")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def _fnv1a32(units: list[int]) -> int:
    h = 0x811C9DC5
    for unit in units:
        h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
    return h


def _digits(value: int, alphabet: str) -> str:
    if value == 0:
        return alphabet[0]
    out = ""
    base = len(alphabet)
    while value:
        value, rest = divmod(value, base)
        out = alphabet[rest] + out
    return out


def persisted_table_name(collection_id: str, prefix: str = "c") -> str:
    """TanStack's ``createPersistedTableName``: ``<prefix>_<fnv1a32 base32>_<length base36>``."""
    units = _utf16_units(collection_id)
    return f"{prefix}_{_digits(_fnv1a32(units), _BASE32)}_{_digits(len(units), _BASE36)}"


def table_names(collection_id: str) -> tuple[str, str]:
    """The (rows, tombstones) table names of a collection id."""
    return persisted_table_name(collection_id, "c"), persisted_table_name(collection_id, "t")


def index_name(collection_id: str, signature: str) -> str:
    """TanStack's ``buildIndexName``: ``idx_<table name of "id:signature">_<readable signature>``."""
    readable = re.sub(r"[^a-z0-9]+", "_", signature.lower()).strip("_")[:24] or "sig"
    return f"idx_{persisted_table_name(f'{collection_id}:{signature}', 'c')}_{readable}"


def quote_identifier(name: str) -> str:
    if not _SAFE_IDENTIFIER.match(name):
        raise StorageFormatError(f"stored table or index name {name!r} is not a safe identifier")
    return f'"{name}"'


def _is_duplicate_column(exc: Exception, column: str) -> bool:
    message = str(exc).lower()
    return column in message and ("duplicate column name" in message or "already exists" in message)


def ensure_layout(db: SQLiteDriver, schema_version: int, now: int) -> None:
    """Create the shared tables as TanStack does; refuse dohost's pre-TanStack layout."""
    for ddl in _LAYOUT_DDL:
        db.exec(ddl)
    for column, ddl in _APPLIED_TX_COLUMNS:
        try:
            db.exec(ddl)
        except Exception as exc:  # the storage's own SQL error type; only this message is expected
            if not _is_duplicate_column(exc, column):
                raise
    for ddl in _LAYOUT_DDL_AFTER:
        db.exec(ddl)
    if db.query("SELECT 1 AS hit FROM schema_version WHERE scope = ?", [LEGACY_SCOPE]):
        raise StorageFormatError(
            "these collection tables were written by dohost before it used TanStack DB's layout "
            f"(schema_version scope {LEGACY_SCOPE!r}); convert them once with "
            "persistence.collections.convert_dohost_layout(driver)"
        )
    db.run("INSERT INTO schema_version (scope, version, updated_at) VALUES ('global', ?, ?) "
           "ON CONFLICT(scope) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
           [schema_version, now])
    db.exec(_RESET_EPOCH_DDL)
    db.exec(_STREAM_DDL)


def create_collection_tables(db: SQLiteDriver, rows: str, tombstones: str) -> None:
    r, t = quote_identifier(rows), quote_identifier(tombstones)
    db.exec(f"CREATE TABLE IF NOT EXISTS {r} (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "metadata TEXT, row_version INTEGER NOT NULL)")
    db.exec(f"CREATE INDEX IF NOT EXISTS {quote_identifier(rows + '_row_version_idx')} ON {r} (row_version)")
    db.exec(f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, value TEXT, "
            "row_version INTEGER NOT NULL, deleted_at TEXT NOT NULL)")
    db.exec(f"CREATE INDEX IF NOT EXISTS {quote_identifier(tombstones + '_row_version_idx')} "
            f"ON {t} (row_version)")


def ensure_collection(
    db: SQLiteDriver,
    collection_id: str,
    schema_version: int,
    policy: SchemaMismatchPolicy,
    now: int,
) -> TableMapping:
    """Register the collection on first use; check (and on RESET, apply) its schema version.

    Must run inside a transaction: the reset is only atomic as part of one.
    """
    if not isinstance(collection_id, str) or not collection_id:
        raise ConfigError(f"collection_id must be a non-empty str, got {collection_id!r}")
    ensure_layout(db, schema_version, now)
    found = db.query(
        "SELECT table_name, tombstone_table_name, schema_version FROM collection_registry "
        "WHERE collection_id = ?", [collection_id])
    if not found:
        rows, tombstones = table_names(collection_id)
        clash = db.query("SELECT collection_id FROM collection_registry WHERE table_name = ?", [rows])
        if clash:
            raise StorageFormatError(
                f"collection ids {collection_id!r} and {clash[0]['collection_id']!r} hash to the same "
                f"table {rows!r}"
            )
        db.run("INSERT INTO collection_registry (collection_id, table_name, tombstone_table_name, "
               "schema_version, updated_at) VALUES (?, ?, ?, ?, ?)",
               [collection_id, rows, tombstones, schema_version, now])
    else:
        rows, tombstones = found[0]["table_name"], found[0]["tombstone_table_name"]
    create_collection_tables(db, rows, tombstones)
    db.run("INSERT INTO collection_version (collection_id, latest_row_version) VALUES (?, 0) "
           "ON CONFLICT(collection_id) DO NOTHING", [collection_id])
    db.run("INSERT INTO collection_reset_epoch (collection_id, reset_epoch, updated_at) VALUES (?, 0, ?) "
           "ON CONFLICT(collection_id) DO NOTHING", [collection_id, now])
    mapping = TableMapping(quote_identifier(rows), quote_identifier(tombstones))
    if found:
        stored = int(found[0]["schema_version"])
        if stored != schema_version:
            if policy is SchemaMismatchPolicy.ERROR:
                raise SchemaVersionMismatchError(
                    f'Schema version mismatch for collection "{collection_id}": found {stored}, '
                    f'expected {schema_version}. Set schema_mismatch_policy to "reset" to allow '
                    "automatic reset.",
                    collection_id=collection_id, found=stored, expected=schema_version,
                )
            _reset(db, collection_id, mapping, schema_version, now)
    return mapping


def _reset(db: SQLiteDriver, collection_id: str, mapping: TableMapping, schema_version: int,
           now: int) -> None:
    """Drop the collection's rows, tombstones, replay log, metadata and indexes; bump the epoch."""
    for row in db.query("SELECT index_name FROM persisted_index_registry WHERE collection_id = ?",
                        [collection_id]):
        db.exec(f"DROP INDEX IF EXISTS {quote_identifier(row['index_name'])}")
    db.run("DELETE FROM persisted_index_registry WHERE collection_id = ?", [collection_id])
    db.run(f"DELETE FROM {mapping.rows}")
    db.run(f"DELETE FROM {mapping.tombstones}")
    db.run("DELETE FROM applied_tx WHERE collection_id = ?", [collection_id])
    db.run("DELETE FROM collection_metadata WHERE collection_id = ?", [collection_id])
    db.run("UPDATE collection_registry SET schema_version = ?, updated_at = ? WHERE collection_id = ?",
           [schema_version, now, collection_id])
    db.run("UPDATE collection_version SET latest_row_version = latest_row_version + 1 WHERE collection_id = ?",
           [collection_id])
    db.run("INSERT INTO leader_term (collection_id, latest_term) VALUES (?, 0) "
           "ON CONFLICT(collection_id) DO UPDATE SET latest_term = 0", [collection_id])
    db.run("UPDATE collection_reset_epoch SET reset_epoch = reset_epoch + 1, updated_at = ? "
           "WHERE collection_id = ?", [now, collection_id])
    state = db.query("SELECT v.latest_row_version AS v, e.reset_epoch AS e FROM collection_version AS v "
                     "JOIN collection_reset_epoch AS e ON e.collection_id = v.collection_id "
                     "WHERE v.collection_id = ?", [collection_id])[0]
    latest = int(state["v"])
    write_stream(db, collection_id, {
        "reset_epoch": int(state["e"]), "latest_row_version": latest, "latest_term": 0, "latest_seq": 0,
        "pruned_term": -1, "pruned_seq": -1, "log_floor": latest,
    })


_STREAM_FIELDS = ("reset_epoch", "latest_row_version", "latest_term", "latest_seq", "pruned_term",
                  "pruned_seq", "log_floor")


def write_stream(db: SQLiteDriver, collection_id: str, state: dict[str, Any]) -> None:
    """Record dohost's stream state, valid for the collection as it is now."""
    values = [int(state[f]) for f in _STREAM_FIELDS]
    db.run(f"INSERT INTO dohost_collection_stream (collection_id, {', '.join(_STREAM_FIELDS)}) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(collection_id) DO UPDATE SET "
           + ", ".join(f"{f} = excluded.{f}" for f in _STREAM_FIELDS), [collection_id, *values])


def assert_current_version(db: SQLiteDriver, collection_id: str, expected: int, operation: str) -> dict[str, Any]:
    """Refuse to work through an adapter whose schema version is no longer the stored one.

    Returns the collection's stream state (``_STREAM_FIELDS``), read in one query:
    dohost's own row when it is current, else derived from TanStack's tables.
    """
    rows = db.query(
        "SELECT r.schema_version AS schema_version, v.latest_row_version AS latest_row_version, "
        "COALESCE(l.latest_term, 0) AS latest_term, COALESCE(e.reset_epoch, 0) AS reset_epoch, "
        "s.reset_epoch AS s_epoch, s.latest_row_version AS s_version, s.latest_term AS s_term, "
        "s.latest_seq AS s_seq, s.pruned_term AS pruned_term, s.pruned_seq AS pruned_seq, "
        "s.log_floor AS log_floor "
        "FROM collection_registry AS r JOIN collection_version AS v ON v.collection_id = r.collection_id "
        "LEFT JOIN leader_term AS l ON l.collection_id = r.collection_id "
        "LEFT JOIN collection_reset_epoch AS e ON e.collection_id = r.collection_id "
        "LEFT JOIN dohost_collection_stream AS s ON s.collection_id = r.collection_id "
        "WHERE r.collection_id = ?", [collection_id])
    found = int(rows[0]["schema_version"]) if rows else None
    if found != expected:
        raise SchemaVersionMismatchError(
            f'Schema version mismatch for collection "{collection_id}": found '
            f"{'missing' if found is None else found}, expected {expected}. Refusing to "
            f"{operation} through a stale adapter.",
            collection_id=collection_id, found=found, expected=expected,
        )
    row = rows[0]
    latest = int(row["latest_row_version"])
    term = int(row["latest_term"])
    state = {"reset_epoch": int(row["reset_epoch"]), "latest_row_version": latest, "latest_term": term}
    if (row["s_epoch"] is not None and int(row["s_epoch"]) == state["reset_epoch"]
            and int(row["s_version"]) == latest and int(row["s_term"]) == term):
        state.update(latest_seq=int(row["s_seq"]), pruned_term=int(row["pruned_term"]),
                     pruned_seq=int(row["pruned_seq"]), log_floor=int(row["log_floor"]))
    else:
        # Written (or reset) by TanStack's package since dohost last wrote: its own rules
        # (getStreamPosition's MAX(seq) of the latest term; pullSince's MIN(row_version) floor).
        log = db.query("SELECT (SELECT MAX(seq) FROM applied_tx WHERE collection_id = ? AND term = ?) AS seq, "
                       "(SELECT MIN(row_version) FROM applied_tx WHERE collection_id = ?) AS floor",
                       [collection_id, term, collection_id])[0]
        state.update(latest_seq=0 if log["seq"] is None else int(log["seq"]), pruned_term=-1, pruned_seq=-1,
                     log_floor=latest if log["floor"] is None else min(int(log["floor"]) - 1, latest))
    return state
