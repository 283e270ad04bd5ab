"""``CollectionAdapter``: persisted collections over any :class:`SQLiteDriver`.

The Python counterpart of TanStack DB's ``SQLiteCorePersistenceAdapter``. It
has no Durable-Object branch: the DO differs only in its driver.

Guarantees:

* Every public call is **one driver transaction**: it registers the collection
  on first use and checks its schema version (``_schema``), refuses to work
  through a stale adapter, and does its work; a failure leaves nothing behind.
  Input is validated and encoded *before* the transaction starts.
* ``apply_committed_tx`` is idempotent on ``(term, seq)``, also after the
  transaction's replay-log entry was pruned (a watermark remembers it; after
  TanStack's own package wrote to the file, only until the entry is pruned,
  as in TanStack — see ``_schema``). Each
  transaction gets ``row_version = max(latest + 1, tx.row_version)``; inserts
  replace, updates merge shallowly into the stored row, deletes leave a
  tombstone, truncate clears rows and tombstones first. The replay log
  (``applied_tx``) is pruned by count and by age in the same transaction.
* ``load_subset`` pushes what it exactly can into SQL (``_sqlgen``), then
  re-checks the WHERE and the cursor in memory on every returned row, sorts in
  memory when ORDER BY was not pushed, and slices when LIMIT was not pushed.
  Results never depend on what was pushed down; ``pushdown=False`` evaluates
  everything in memory and the conformance tests compare the two.
* Order is ``order_by`` then the encoded key (ties broken by key); without
  ``order_by``, by encoded key. Pagination with :class:`Cursor` (keyset: strictly
  after the given order values and key) neither skips nor repeats rows.
  TanStack's cursor is a pair of expressions (``whereFrom``, ``whereCurrent``)
  built by its query engine; a keyset cursor is what a caller without that
  engine can build (:meth:`cursor_after`), and is exact under ties.
* ``pull_since`` answers from the replay log, or says ``requires_full_reload``
  when the log does not reach back far enough, a truncate or reset happened
  in between, or more than ``pull_since_reload_threshold`` keys changed.
* Integers the adapter binds are below 2**53 and never compared by type, so
  the DO binding ints as doubles cannot change a result.
"""

from __future__ import annotations

import datetime as _dt
import time
import uuid
from typing import Any, Callable, Iterable, Sequence, TypeVar

from ._codec import (Key, datetime_order, decode_key, decode_value, encode_key, from_tree, has_tags, literal,
                     parse_tree, to_tree)
from ._driver import SQLiteDriver
from ._eval import Evaluator, clause_key
from ._expr import Expr, Func, OrderBy, as_expr, check_order_by, normalize
from ._indexes import ensure_index, mark_index_removed
from ._replay import apply_tx, encode_tx, prune_applied_tx, pull_since
from ._schema import TableMapping, assert_current_version, ensure_collection
from ._sqlfunc import SqlFunctions
from ._sqlgen import CLOUDFLARE_LIMITS, SelectPlan, SqlLimits, plan_select
from ._types import (CommittedTx, Cursor, IndexSpec, LoadedRow, MetadataMutation, Mutation,
                     PullSinceResult, SchemaMismatchPolicy, StreamPosition)
from .errors import ConfigError

__all__ = ["CollectionAdapter", "DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS",
           "DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS", "DEFAULT_PULL_SINCE_RELOAD_THRESHOLD"]

T = TypeVar("T")

DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS = 1_000  # TanStack's defaults
DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS = 24 * 60 * 60
DEFAULT_PULL_SINCE_RELOAD_THRESHOLD = 128


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative int, got {value!r}")
    return value


class CollectionAdapter:
    """Persisted collections of one schema version and mismatch policy, over one driver.

    The default policy is ``error``: unlike TanStack's core adapter (whose
    default resets), nothing is deleted unless someone asked for it.
    """

    def __init__(
        self,
        driver: SQLiteDriver,
        *,
        schema_version: int = 1,
        schema_mismatch_policy: SchemaMismatchPolicy | str = SchemaMismatchPolicy.ERROR,
        applied_tx_prune_max_rows: int = DEFAULT_APPLIED_TX_PRUNE_MAX_ROWS,
        applied_tx_prune_max_age_seconds: int = DEFAULT_APPLIED_TX_PRUNE_MAX_AGE_SECONDS,
        pull_since_reload_threshold: int = DEFAULT_PULL_SINCE_RELOAD_THRESHOLD,
        limits: SqlLimits = CLOUDFLARE_LIMITS,
        clock: Callable[[], float] = time.time,
        pushdown: bool = True,
    ) -> None:
        self.driver = driver
        self.schema_version = _non_negative_int("schema_version", schema_version)
        try:
            self.policy = SchemaMismatchPolicy(schema_mismatch_policy)
        except ValueError:
            raise ConfigError(
                f"schema_mismatch_policy must be 'reset' or 'error', got {schema_mismatch_policy!r}"
            ) from None
        self.prune_max_rows = _non_negative_int("applied_tx_prune_max_rows", applied_tx_prune_max_rows)
        self.prune_max_age = _non_negative_int(
            "applied_tx_prune_max_age_seconds", applied_tx_prune_max_age_seconds)
        self.reload_threshold = _non_negative_int("pull_since_reload_threshold", pull_since_reload_threshold)
        self.limits = limits
        self.clock = clock
        self.pushdown = pushdown
        self._ready: dict[str, TableMapping] = {}
        self._evaluator = Evaluator(SqlFunctions())

    # -- the transaction every call runs in -------------------------------------
    def _run(self, collection_id: str, operation: str,
             fn: Callable[[SQLiteDriver, TableMapping, dict[str, Any]], T]) -> T:
        cached = self._ready.get(collection_id)
        registered: list[TableMapping] = []
        now = self._now()

        def body(db: SQLiteDriver) -> T:
            mapping = cached
            if mapping is None:
                mapping = ensure_collection(db, collection_id, self.schema_version, self.policy, now)
                registered.append(mapping)
            version = assert_current_version(db, collection_id, self.schema_version, operation)
            return fn(db, mapping, version)

        result = self.driver.transaction(body)
        if registered:  # only once committed: a rolled-back registration created nothing
            self._ready[collection_id] = registered[0]
        return result

    def _register_in(self, db: SQLiteDriver, collection_id: str) -> TableMapping:
        """Register / check / reset inside a caller's transaction (``CollectionPersistence.open``)."""
        return ensure_collection(db, collection_id, self.schema_version, self.policy, self._now())

    def _remember(self, collection_id: str, mapping: TableMapping) -> None:
        self._ready[collection_id] = mapping

    def _now(self) -> int:
        return int(self.clock())

    def _now_iso(self) -> str:
        """The clock's instant as ``Date.toISOString()`` writes it (tombstones' ``deleted_at``)."""
        return datetime_order(_dt.datetime.fromtimestamp(self.clock(), _dt.timezone.utc))

    def _now_text(self) -> str:
        instant = _dt.datetime.fromtimestamp(self.clock(), _dt.timezone.utc)
        return instant.strftime("%Y-%m-%d %H:%M:%S.") + f"{instant.microsecond // 1000:03d}"

    # -- lifecycle ---------------------------------------------------------------
    def ensure_collection(self, collection_id: str) -> StreamPosition:
        """Register the collection / check its schema version now (at object start)."""
        return self._run(collection_id, "open the collection", lambda db, m, v: _position(db, collection_id, v))

    def get_stream_position(self, collection_id: str) -> StreamPosition:
        return self._run(collection_id, "read the stream position", lambda db, m, v: _position(db, collection_id, v))

    # -- writes ------------------------------------------------------------------
    def apply_committed_tx(self, collection_id: str, tx: CommittedTx) -> bool:
        """Persist ``tx``; False when ``(term, seq)`` was already applied."""
        encoded = encode_tx(tx)
        now, now_iso = self._now(), self._now_iso()

        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> bool:
            applied = apply_tx(db, collection_id, mapping, version, encoded, now, now_iso)
            if applied:
                prune_applied_tx(db, collection_id, version, self.prune_max_rows, self.prune_max_age, now)
            return applied

        return self._run(collection_id, "apply a committed transaction", work)

    def apply_local(
        self,
        collection_id: str,
        mutations: Iterable[Mutation],
        *,
        collection_metadata_mutations: Iterable[MetadataMutation] = (),
        row_metadata_mutations: Iterable[MetadataMutation] = (),
    ) -> StreamPosition:
        """Write local mutations (sync-absent mode): the next ``seq`` of the current term."""
        template = CommittedTx(tx_id=str(uuid.uuid4()), term=0, seq=0, mutations=tuple(mutations),
                               row_metadata_mutations=tuple(row_metadata_mutations),
                               collection_metadata_mutations=tuple(collection_metadata_mutations))
        encoded = encode_tx(template)
        now, now_iso = self._now(), self._now_iso()

        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> StreamPosition:
            term = max(int(version["latest_term"]), 1)
            seq = int(version["latest_seq"]) + 1 if term == int(version["latest_term"]) else 1
            apply_tx(db, collection_id, mapping, version, encoded._replace(term=term, seq=seq), now, now_iso)
            prune_applied_tx(db, collection_id, version, self.prune_max_rows, self.prune_max_age, now)
            return _position(db, collection_id, version)

        return self._run(collection_id, "apply local mutations", work)

    # -- reads -------------------------------------------------------------------
    def load_subset(
        self,
        collection_id: str,
        *,
        where: Expr | Any = None,
        order_by: Sequence[OrderBy | Expr] = (),
        limit: int | None = None,
        offset: int = 0,
        cursor: Cursor | None = None,
    ) -> list[LoadedRow]:
        if limit is not None:
            _non_negative_int("limit", limit)
        _non_negative_int("offset", offset)
        now = self._now_text()
        clauses = tuple(OrderBy(expr=normalize(c.expr, now), direction=c.direction, nulls=c.nulls)
                        for c in check_order_by(order_by))
        predicate = normalize(as_expr(where), now) if where is not None else None
        boundary: tuple[tuple[Any, ...], str] | None = None
        if cursor is not None:
            if len(cursor.values) != len(clauses):
                raise ConfigError(f"cursor has {len(cursor.values)} values for {len(clauses)} order_by clauses")
            boundary = (tuple(cursor.values), encode_key(cursor.key))
        conjuncts = _conjuncts(predicate) if predicate is not None else []
        # Compiled before any SQL runs: a bad expression changes nothing.
        matches = self._evaluator.predicate(predicate) if predicate is not None else None
        sort_key = self._evaluator.sort_key(clauses)

        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> tuple[SelectPlan, list[Any]]:
            if self.pushdown:
                plan = plan_select(mapping.rows, conjuncts, clauses, boundary, limit, offset, self.limits)
            else:  # everything in memory: the reference the pushdown is tested against
                plan = plan_select(mapping.rows, [], [], None, None, 0, self.limits)._replace(order_pushed=False)
            return plan, db.query(plan.sql, plan.params)

        plan, rows = self._run(collection_id, "load persisted rows", work)
        trees = [(row, parse_tree(row["value"])) for row in rows]
        if matches is not None:
            trees = [(row, tree) for row, tree in trees if matches(tree)]
        if boundary is not None or not plan.order_pushed:
            keyed = [(sort_key(tree, row["key"]), row, tree) for row, tree in trees]
            if boundary is not None:
                after = _boundary_key(boundary, clauses)
                keyed = [item for item in keyed if item[0] > after]
            if not plan.order_pushed:
                keyed.sort(key=lambda item: item[0])
            trees = [(row, tree) for _, row, tree in keyed]
        if not plan.limit_pushed:
            end = None if limit is None else offset + limit
            trees = trees[offset:end]
        return [_loaded(row, tree) for row, tree in trees]

    def get(self, collection_id: str, key: Key) -> LoadedRow | None:
        """The row stored under ``key``, or None."""
        encoded = encode_key(key)

        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> list[dict[str, Any]]:
            return db.query(f"SELECT key, value, metadata FROM {mapping.rows} WHERE key = ?", [encoded])

        rows = self._run(collection_id, "load persisted rows", work)
        return _loaded(rows[0], parse_tree(rows[0]["value"])) if rows else None

    def cursor_after(self, row: LoadedRow, order_by: Sequence[OrderBy | Expr] = ()) -> Cursor:
        """The cursor continuing after ``row`` in ``order_by`` order."""
        now = self._now_text()
        tree = to_tree(row.value)
        values = tuple(self._evaluator.compile(normalize(c.expr, now))(tree) for c in check_order_by(order_by))
        return Cursor(values=values, key=row.key)

    def scan_rows(self, collection_id: str, *, metadata_only: bool = False) -> list[LoadedRow]:
        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> list[dict[str, Any]]:
            where = " WHERE metadata IS NOT NULL" if metadata_only else ""
            return db.query(f"SELECT key, value, metadata FROM {mapping.rows}{where} ORDER BY key")

        return [_loaded(r, parse_tree(r["value"])) for r in self._run(collection_id, "scan persisted rows", work)]

    def load_collection_metadata(self, collection_id: str) -> dict[str, Any]:
        def work(db: SQLiteDriver, mapping: TableMapping, version: dict[str, Any]) -> list[dict[str, Any]]:
            return db.query("SELECT key, value FROM collection_metadata WHERE collection_id = ? ORDER BY key",
                            [collection_id])

        rows = self._run(collection_id, "load collection metadata", work)
        return {r["key"]: decode_value(r["value"]) for r in rows}

    def pull_since(self, collection_id: str, row_version: int) -> PullSinceResult:
        since = _non_negative_int("row_version", row_version)
        return self._run(collection_id, "read persisted transaction deltas",
                         lambda db, m, v: pull_since(db, collection_id, m, v, since, self.reload_threshold))

    # -- indexes -----------------------------------------------------------------
    def ensure_index(self, collection_id: str, signature: str, spec: IndexSpec) -> str:
        """Create (or rebuild, if its SQL changed) an expression index; returns its name."""
        now = self._now()
        return self._run(collection_id, "create a persisted index",
                         lambda db, m, v: ensure_index(db, collection_id, m, signature, spec, self.limits, now))

    def mark_index_removed(self, collection_id: str, signature: str) -> None:
        now = self._now()
        self._run(collection_id, "remove a persisted index",
                  lambda db, m, v: mark_index_removed(db, collection_id, signature, now))

    def close(self) -> None:
        """Release the adapter's private function connection (the driver is not closed)."""
        self._evaluator.fn.close()


def _conjuncts(expr: Expr) -> list[Expr]:
    if isinstance(expr, Func) and expr.name == "and":
        out: list[Expr] = []
        for arg in expr.args:
            out.extend(_conjuncts(arg))
        return out
    return [expr]


def _boundary_key(boundary: tuple[tuple[Any, ...], str], clauses: Sequence[OrderBy]) -> tuple[Any, ...]:
    values, encoded_key = boundary
    out: list[Any] = []
    for v, clause in zip(values, clauses):
        out.extend(clause_key(literal(v), clause.direction == "desc", clause.nulls == "first"))
    out.append(encoded_key)
    return tuple(out)


def _loaded(row: dict[str, Any], tree: Any) -> LoadedRow:
    text = row["value"]
    value = from_tree(tree) if has_tags(text) else tree
    metadata = row.get("metadata")
    return LoadedRow(key=decode_key(row["key"]), value=value,
                     metadata=None if metadata is None else decode_value(metadata))


def _position(db: SQLiteDriver, collection_id: str, version: dict[str, Any]) -> StreamPosition:
    return StreamPosition(
        latest_term=int(version["latest_term"]), latest_seq=int(version["latest_seq"]),
        latest_row_version=int(version["latest_row_version"]), reset_epoch=int(version["reset_epoch"]),
    )
