"""What ``wrangler d1 execute --local`` and ``wrangler d1 migrations apply --local`` do, on dohost's files.

Real D1 projects seed or migrate their local database before ``wrangler
dev`` (``wrangler d1 execute quotes --local --file db_init.sql``); ``dohost
d1 execute`` and ``dohost d1 migrations apply`` do the same to the database
``dohost dev`` serves, and ``dohost.apply_d1_migrations("DB")`` does it in a
test (``applyD1Migrations`` of ``cloudflare:test``).

* A file or command runs as one transaction: a failing statement leaves the
  database as it was. Statements are split where SQLite says a statement is
  complete (:func:`sqlite3.complete_statement`), so triggers and strings
  holding ``;`` stay whole.
* Migrations are the ``*.sql`` files of ``migrations_dir`` (default
  ``migrations``) in name order; each applied one is recorded in
  ``migrations_table`` (default ``d1_migrations``) with wrangler's columns,
  and each runs in its own transaction, recorded in the same one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from persistence import PersistenceError

from ..config._config import D1DatabaseConfig, WorkerConfig
from ..errors import ConfigError
from ._common import JsObject
from ._d1 import D1Database
from ._store import StoreHost
from .errors import D1Error

__all__ = [
    "find_database", "split_statements", "execute_sql", "execute_in", "apply_d1_migrations",
    "apply_migrations_from", "pending_migrations",
]

DEFAULT_MIGRATIONS_DIR = "migrations"
DEFAULT_MIGRATIONS_TABLE = "d1_migrations"  # CF: https://developers.cloudflare.com/d1/reference/migrations/


def find_database(config: WorkerConfig, name: str) -> D1DatabaseConfig:
    """The ``d1_databases`` entry named ``name`` (its ``database_name``, else its binding)."""
    for db in config.d1_databases:
        if name in (db.database_name, db.binding):
            return db
    known = ", ".join(f"{d.database_name or d.binding} (env.{d.binding})" for d in config.d1_databases) or "none"
    raise ConfigError(f"{config.config_path.name}: d1_databases: no database named {name!r} (databases: {known})")


def split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        statements.append(pending.strip())
    return statements


def execute_sql(db: D1Database, sql: str) -> list[JsObject]:
    """Run ``sql`` (one or more statements) in one transaction; D1's result for each statement."""
    database = db._db()
    try:
        results = [db._run(database, stmt, ())[0] for stmt in split_statements(sql)]
        database.commit()
    except BaseException:
        if database.in_transaction:
            database.rollback()
        raise
    return results


def _migrations_dir(config: WorkerConfig, entry: D1DatabaseConfig) -> Path:
    return config.base_dir / (entry.migrations_dir or DEFAULT_MIGRATIONS_DIR)


def pending_migrations(db: D1Database, folder: Path, table: str = DEFAULT_MIGRATIONS_TABLE) -> list[Path]:
    database = db._db()
    _ensure_table(db, table)
    done = {row[0] for row in database.sql.exec(f'SELECT name FROM "{table}"').raw()}
    return [p for p in sorted(folder.glob("*.sql")) if p.name not in done]


def _ensure_table(db: D1Database, table: str) -> None:
    execute_sql(db, f'CREATE TABLE IF NOT EXISTS "{table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE,'
                    " applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")


def apply_migrations_from(db: D1Database, folder: Path, table: str = DEFAULT_MIGRATIONS_TABLE) -> list[str]:
    """Apply the pending ``*.sql`` files of ``folder``; the names applied, in order."""
    applied: list[str] = []
    for path in pending_migrations(db, folder, table):
        sql = path.read_text(encoding="utf-8")
        database = db._db()
        try:
            for stmt in split_statements(sql):
                db._run(database, stmt, ())
            database.sql.exec(f'INSERT INTO "{table}" (name) VALUES (?)', path.name)
            database.commit()
        except (D1Error, PersistenceError) as exc:
            if database.in_transaction:
                database.rollback()
            raise D1Error(f"Migration {path.name} failed: {exc}") from None
        applied.append(path.name)
    return applied


def apply_d1_migrations(config: WorkerConfig, name: str, data_dir: Path, *, durability: Any = "normal") -> list[str]:
    """``wrangler d1 migrations apply <name> --local`` against ``data_dir``."""
    entry = find_database(config, name)
    host = StoreHost(data_dir)
    host.durability = durability
    try:
        db = D1Database(entry.binding, entry.storage_key, host)
        return apply_migrations_from(db, _migrations_dir(config, entry), entry.migrations_table or DEFAULT_MIGRATIONS_TABLE)
    finally:
        host.close()


def execute_in(config: WorkerConfig, name: str, sql: str, data_dir: Path, *, durability: Any = "normal") -> list[JsObject]:
    """``wrangler d1 execute <name> --local --command/--file`` against ``data_dir``."""
    entry = find_database(config, name)
    host = StoreHost(data_dir)
    host.durability = durability
    try:
        return execute_sql(D1Database(entry.binding, entry.storage_key, host), sql)
    finally:
        host.close()
