"""The collection tables, their names, schema versions and mismatch policies.

Shared tables (TanStack's names, created on first use)::

    schema_version            scope -> version of *this layout* ('dohost.collections')
    collection_registry       collection_id -> row table, tombstone table, schema_version
    collection_version        collection_id -> latest_row_version, latest_term/seq,
                              pruned_term/seq (replay-log watermark)
    collection_reset_epoch    collection_id -> reset_epoch
    collection_metadata       (collection_id, key) -> JSON value
    applied_tx                (collection_id, term, seq) -> tx_id, row_version,
                              prev_row_version, replay_json, replay_requires_full_reload,
                              applied_at
    persisted_index_registry  (collection_id, signature) -> index_name, expression_sql,
                              where_sql, removed, timestamps

Per collection: ``c_<hash>`` (key TEXT PRIMARY KEY, value, metadata,
row_version) and ``t_<hash>`` (tombstones), each indexed on ``row_version``.
``<hash>`` is 26 base32 characters (130 bits) of SHA-256 of the collection id,
so any id — quotes, semicolons, 10 KB of emoji — becomes a safe identifier and
two ids never share tables in practice; a collision would still be detected
and refused. (TanStack uses a 32-bit FNV hash plus the id length.)

Differences from TanStack, and why:

* ``schema_version`` records the version of this table layout, for future
  migrations; TanStack overwrites one global row with each adapter's user
  schema version, which carries no information the registry lacks.
* ``leader_term`` is folded into ``collection_version`` (``latest_term``,
  ``latest_seq``): one row per collection, updated in the same statement.
  The pruned watermark (``pruned_term``/``pruned_seq``) keeps ``(term, seq)``
  idempotent after its ``applied_tx`` entry was pruned.
* TanStack's key-set evidence (``collection_expected_keys`` and triggers)
  detects other tabs or processes deleting rows behind the adapter's back;
  a Durable Object's storage has one writer, so it is left out.
* A reset keeps ``latest_row_version`` monotonic (it adds one) instead of
  zeroing it, so ``pull_since`` from before the reset can never answer "no
  changes"; ``prev_row_version`` in ``applied_tx`` tells exactly whether the
  replay log reaches back to a given version.
* Registration, the version check and a reset run in **one** transaction
  (TanStack registers outside it), so a reset is all-or-nothing and a burst of
  requests sees the old state or the new one.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, NamedTuple

from ._driver import SQLiteDriver
from ._types import SchemaMismatchPolicy
from .errors import ConfigError, SchemaVersionMismatchError, StorageFormatError

__all__ = [
    "LAYOUT_VERSION",
    "TableMapping",
    "table_names",
    "index_name",
    "ensure_layout",
    "ensure_collection",
    "assert_current_version",
    "quote_identifier",
]

LAYOUT_SCOPE = "dohost.collections"
LAYOUT_VERSION = 1
_SAFE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

_LAYOUT_DDL = (
    """CREATE TABLE IF NOT EXISTS schema_version (
         scope TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS collection_registry (
         collection_id TEXT PRIMARY KEY,
         table_name TEXT NOT NULL UNIQUE,
         tombstone_table_name TEXT NOT NULL UNIQUE,
         schema_version INTEGER NOT NULL,
         updated_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS collection_version (
         collection_id TEXT PRIMARY KEY,
         latest_row_version INTEGER NOT NULL,
         latest_term INTEGER NOT NULL DEFAULT 0,
         latest_seq INTEGER NOT NULL DEFAULT 0,
         pruned_term INTEGER NOT NULL DEFAULT -1,
         pruned_seq INTEGER NOT NULL DEFAULT -1)""",
    """CREATE TABLE IF NOT EXISTS collection_reset_epoch (
         collection_id TEXT PRIMARY KEY, reset_epoch INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS collection_metadata (
         collection_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
         updated_at INTEGER NOT NULL, PRIMARY KEY (collection_id, key))""",
    """CREATE TABLE IF NOT EXISTS applied_tx (
         collection_id TEXT NOT NULL,
         term INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         tx_id TEXT NOT NULL,
         row_version INTEGER NOT NULL,
         prev_row_version INTEGER NOT NULL,
         replay_json TEXT,
         replay_requires_full_reload INTEGER NOT NULL DEFAULT 0,
         applied_at INTEGER NOT NULL,
         PRIMARY KEY (collection_id, term, seq))""",
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
         PRIMARY KEY (collection_id, signature))""",
)


class TableMapping(NamedTuple):
    rows: str  # quoted identifiers, ready for SQL
    tombstones: str


def _hash(text: str, length: int) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def table_names(collection_id: str) -> tuple[str, str]:
    """The (rows, tombstones) table names of a collection id."""
    h = _hash(collection_id, 26)
    return f"c_{h}", f"t_{h}"


def index_name(collection_id: str, signature: str) -> str:
    readable = re.sub(r"[^a-z0-9]+", "_", signature.lower()).strip("_")[:24] or "sig"
    return f"i_{_hash(collection_id + chr(0) + signature, 20)}_{readable}"


def quote_identifier(name: str) -> str:
    if not _SAFE_IDENTIFIER.match(name):
        raise StorageFormatError(f"stored table or index name {name!r} is not a safe identifier")
    return f'"{name}"'


def ensure_layout(db: SQLiteDriver, now: int) -> None:
    """Create the shared tables; refuse a layout written by a newer version."""
    for ddl in _LAYOUT_DDL:
        db.exec(ddl)
    rows = db.query("SELECT version FROM schema_version WHERE scope = ?", [LAYOUT_SCOPE])
    if not rows:
        db.run("INSERT INTO schema_version (scope, version, updated_at) VALUES (?, ?, ?)",
               [LAYOUT_SCOPE, LAYOUT_VERSION, now])
    elif int(rows[0]["version"]) > LAYOUT_VERSION:
        raise StorageFormatError(
            f"collection tables have layout version {rows[0]['version']!r}; this code reads "
            f"up to {LAYOUT_VERSION} (written by a newer dohost?)"
        )


def _create_collection_tables(db: SQLiteDriver, rows: str, tombstones: str) -> None:
    r, t = quote_identifier(rows), quote_identifier(tombstones)
    db.exec(f"CREATE TABLE IF NOT EXISTS {r} (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "metadata TEXT, row_version INTEGER NOT NULL)")
    db.exec(f'CREATE INDEX IF NOT EXISTS "{rows}_row_version" ON {r} (row_version)')
    db.exec(f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, value TEXT, "
            "row_version INTEGER NOT NULL, deleted_at INTEGER NOT NULL)")
    db.exec(f'CREATE INDEX IF NOT EXISTS "{tombstones}_row_version" ON {t} (row_version)')


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
    ensure_layout(db, now)
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
    _create_collection_tables(db, rows, tombstones)
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
    db.run("UPDATE collection_version SET latest_row_version = latest_row_version + 1, latest_term = 0, "
           "latest_seq = 0, pruned_term = -1, pruned_seq = -1 WHERE collection_id = ?", [collection_id])
    db.run("UPDATE collection_reset_epoch SET reset_epoch = reset_epoch + 1, updated_at = ? "
           "WHERE collection_id = ?", [now, collection_id])


def assert_current_version(db: SQLiteDriver, collection_id: str, expected: int, operation: str) -> dict[str, Any]:
    """Refuse to work through an adapter whose schema version is no longer the stored one.

    Returns the collection's ``collection_version`` row (read in the same query).
    """
    rows = db.query(
        "SELECT r.schema_version AS schema_version, v.latest_row_version AS latest_row_version, "
        "v.latest_term AS latest_term, v.latest_seq AS latest_seq, v.pruned_term AS pruned_term, "
        "v.pruned_seq AS pruned_seq FROM collection_registry AS r JOIN collection_version AS v "
        "ON v.collection_id = r.collection_id WHERE r.collection_id = ?", [collection_id])
    found = int(rows[0]["schema_version"]) if rows else None
    if found != expected:
        raise SchemaVersionMismatchError(
            f'Schema version mismatch for collection "{collection_id}": found '
            f"{'missing' if found is None else found}, expected {expected}. Refusing to "
            f"{operation} through a stale adapter.",
            collection_id=collection_id, found=found, expected=expected,
        )
    return rows[0]
