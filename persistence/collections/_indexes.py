"""Expression indexes on a collection's row table (``ensure_index`` / ``mark_index_removed``).

An index is named as TanStack names it (``idx_<table name of "<id>:<signature>">_<readable
signature>``, see ``_schema.index_name``), and recorded in ``persisted_index_registry`` with its
normalised SQL (a compact JSON array, as ``JSON.stringify`` writes it). Expressions given as ``_expr`` trees compile with the same
compiler as ``load_subset``'s WHERE and ORDER BY, so SQLite's planner matches
them. Raw SQL fragments are accepted as TanStack does, but a fragment that is
empty or contains ``;``, ``--`` or ``/*`` is refused before anything runs
(the fragment is interpolated into ``CREATE INDEX``). When the SQL registered
under a signature changes (a compiler upgrade), the old physical index is
dropped and rebuilt, so registry and schema agree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._driver import SQLiteDriver
from ._expr import Expr
from ._schema import TableMapping, index_name, quote_identifier
from ._sqlgen import SqlLimits, compile_index_expression, compile_index_where
from ._types import IndexSpec
from .errors import ConfigError, InvalidExpressionError

__all__ = ["ensure_index", "mark_index_removed", "index_fragment"]

_FORBIDDEN_FRAGMENT = re.compile(r";|--|/\*")


def index_fragment(fragment: Any, limits: SqlLimits, *, where: bool = False) -> str:
    if isinstance(fragment, Expr):
        return compile_index_where(fragment, limits) if where else compile_index_expression(fragment, limits)
    if not isinstance(fragment, str) or not fragment.strip() or _FORBIDDEN_FRAGMENT.search(fragment):
        raise InvalidExpressionError(f"Invalid persisted index SQL fragment: {fragment!r}")
    return fragment  # registered as given, as TanStack does


def ensure_index(db: SQLiteDriver, collection_id: str, mapping: TableMapping, signature: str,
                 spec: IndexSpec, limits: SqlLimits, now: int) -> str:
    if not isinstance(signature, str) or not signature:
        raise ConfigError(f"index signature must be a non-empty str, got {signature!r}")
    if not isinstance(spec, IndexSpec) or not spec.expressions:
        raise ConfigError(f"ensure_index needs an IndexSpec with at least one expression, got {spec!r}")
    expressions = [index_fragment(f, limits) for f in spec.expressions]
    where_sql = None if spec.where is None else index_fragment(spec.where, limits, where=True)
    name = index_name(collection_id, signature)
    registered_sql = json.dumps(expressions, separators=(",", ":"), ensure_ascii=False)  # JSON.stringify's text
    existing = db.query("SELECT index_name, expression_sql, where_sql FROM persisted_index_registry "
                        "WHERE collection_id = ? AND signature = ?", [collection_id, signature])
    if existing and (existing[0]["index_name"], existing[0]["expression_sql"], existing[0]["where_sql"]) != (
            name, registered_sql, where_sql):
        db.exec(f"DROP INDEX IF EXISTS {quote_identifier(existing[0]['index_name'])}")
    db.run("INSERT INTO persisted_index_registry (collection_id, signature, index_name, expression_sql, "
           "where_sql, removed, created_at, updated_at, last_used_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) "
           "ON CONFLICT(collection_id, signature) DO UPDATE SET index_name = excluded.index_name, "
           "expression_sql = excluded.expression_sql, where_sql = excluded.where_sql, removed = 0, "
           "updated_at = excluded.updated_at, last_used_at = excluded.last_used_at",
           [collection_id, signature, name, registered_sql, where_sql, now, now, now])
    create = f"CREATE INDEX IF NOT EXISTS {quote_identifier(name)} ON {mapping.rows} ({', '.join(expressions)})"
    if where_sql is not None:
        create += f" WHERE {where_sql}"
    db.exec(create)
    return name


def mark_index_removed(db: SQLiteDriver, collection_id: str, signature: str, now: int) -> None:
    rows = db.query("SELECT index_name FROM persisted_index_registry WHERE collection_id = ? AND signature = ?",
                    [collection_id, signature])
    db.run("UPDATE persisted_index_registry SET removed = 1, updated_at = ?, last_used_at = ? "
           "WHERE collection_id = ? AND signature = ?", [now, now, collection_id, signature])
    if rows:
        db.exec(f"DROP INDEX IF EXISTS {quote_identifier(rows[0]['index_name'])}")
