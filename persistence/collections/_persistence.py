"""Collections inside one object's storage: modes, schema policies, start-up checks.

The counterpart of TanStack's ``createCloudflareDOSQLitePersistence``: one
:class:`CollectionPersistence` per storage, shared by every collection of the
object, handing out one :class:`CollectionAdapter` per (policy, schema
version) — the adapters share the driver, so they share its gate.

Modes and policies (the seed's schema contract):

* A collection declares ``schema_version`` (non-negative int) and a mode.
  ``sync-present`` (rows come from a sync source and can be fetched again)
  infers the ``reset`` policy: on a mismatch its rows, tombstones, replay
  log, metadata and indexes are dropped in one transaction, the reset epoch
  is bumped, the new version recorded; it loads empty and re-syncs.
  ``sync-absent`` (local-only persistence, the first-class path in a DO)
  infers ``error``: ``Schema version mismatch for collection "<id>": found
  <old>, expected <new>. ...`` and nothing changes.
* An explicit ``schema_mismatch_policy`` (on the collection, else on the
  persistence) overrides the inferred one.
* :meth:`CollectionPersistence.open` checks every declared collection at
  object start in **one** transaction: if any collection refuses (``error``),
  no other collection is reset either. Inside a DO, the constructor (or
  ``blockConcurrencyWhile``) is the place; the input gate keeps requests out
  until it returns, so a burst of requests sees the state before or after a
  reset, never a mix.

There is no leader election or cross-tab coordination: one object is one
process (TanStack's ``SingleProcessCoordinator`` role is implicit).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import msgspec

from ._adapter import CollectionAdapter
from ._codec import Key
from ._do_driver import DurableObjectDriver, DurableObjectStorageLike
from ._driver import SQLiteDriver
from ._expr import Expr, OrderBy
from ._schema import TableMapping
from ._types import (CollectionMode, CommittedTx, Cursor, IndexSpec, LoadedRow, MetadataMutation, Mutation,
                     PullSinceResult, SchemaMismatchPolicy, StreamPosition)
from .errors import ConfigError

__all__ = ["CollectionSpec", "CollectionPersistence", "PersistedCollection", "resolve_policy"]


class CollectionSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    schema_version: int = 1
    mode: CollectionMode = CollectionMode.SYNC_ABSENT
    schema_mismatch_policy: SchemaMismatchPolicy | None = None


def resolve_policy(explicit: SchemaMismatchPolicy | str | None, mode: CollectionMode | str) -> SchemaMismatchPolicy:
    """The explicit policy if any, else reset for sync-present and error for sync-absent."""
    if explicit is not None:
        try:
            return SchemaMismatchPolicy(explicit)
        except ValueError:
            raise ConfigError(f"schema_mismatch_policy must be 'reset' or 'error', got {explicit!r}") from None
    try:
        resolved = CollectionMode(mode)
    except ValueError:
        raise ConfigError(f"mode must be 'sync-present' or 'sync-absent', got {mode!r}") from None
    return SchemaMismatchPolicy.RESET if resolved is CollectionMode.SYNC_PRESENT else SchemaMismatchPolicy.ERROR


class CollectionPersistence:
    """All persisted collections of one storage (one object)."""

    def __init__(self, driver: SQLiteDriver, *, schema_mismatch_policy: SchemaMismatchPolicy | str | None = None,
                 **adapter_options: Any) -> None:
        self.driver = driver
        self.schema_mismatch_policy = (None if schema_mismatch_policy is None
                                       else resolve_policy(schema_mismatch_policy, CollectionMode.SYNC_ABSENT))
        self._options = adapter_options
        self._adapters: dict[tuple[SchemaMismatchPolicy, int], CollectionAdapter] = {}

    @classmethod
    def for_storage(cls, storage: DurableObjectStorageLike, **options: Any) -> CollectionPersistence:
        """Persistence over ``ctx.storage`` of a Durable Object."""
        return cls(DurableObjectDriver(storage), **options)

    def adapter(self, *, mode: CollectionMode | str = CollectionMode.SYNC_ABSENT, schema_version: int = 1,
                schema_mismatch_policy: SchemaMismatchPolicy | str | None = None) -> CollectionAdapter:
        policy = resolve_policy(schema_mismatch_policy or self.schema_mismatch_policy, mode)
        key = (policy, schema_version)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = CollectionAdapter(self.driver, schema_version=schema_version,
                                        schema_mismatch_policy=policy, **self._options)
            self._adapters[key] = adapter
        return adapter

    def collection(self, collection_id: str, *, schema_version: int = 1,
                   mode: CollectionMode | str = CollectionMode.SYNC_ABSENT,
                   schema_mismatch_policy: SchemaMismatchPolicy | str | None = None) -> PersistedCollection:
        """A handle; the schema check happens on first use (or in :meth:`open`)."""
        adapter = self.adapter(mode=mode, schema_version=schema_version,
                               schema_mismatch_policy=schema_mismatch_policy)
        return PersistedCollection(collection_id, adapter)

    def open(self, specs: Iterable[CollectionSpec]) -> dict[str, PersistedCollection]:
        """Check (and per policy reset) every declared collection now, all in one transaction."""
        handles: list[PersistedCollection] = []
        for spec in specs:
            if not isinstance(spec, CollectionSpec):
                raise ConfigError(f"open() takes CollectionSpec values, got {spec!r}")
            handles.append(self.collection(spec.id, schema_version=spec.schema_version, mode=spec.mode,
                                           schema_mismatch_policy=spec.schema_mismatch_policy))
        ids = [h.id for h in handles]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"open() got a collection id twice: {ids!r}")

        def check_all(db: SQLiteDriver) -> list[TableMapping]:
            return [h.adapter._register_in(db, h.id) for h in handles]

        mappings = self.driver.transaction(check_all)
        for handle, mapping in zip(handles, mappings):
            handle.adapter._remember(handle.id, mapping)
        return {h.id: h for h in handles}

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters.clear()


class PersistedCollection:
    """One collection bound to its adapter: the adapter's calls without the id."""

    def __init__(self, collection_id: str, adapter: CollectionAdapter) -> None:
        if not isinstance(collection_id, str) or not collection_id:
            raise ConfigError(f"collection_id must be a non-empty str, got {collection_id!r}")
        self.id = collection_id
        self.adapter = adapter

    def __repr__(self) -> str:
        return (f"<PersistedCollection {self.id!r} schema_version={self.adapter.schema_version} "
                f"policy={self.adapter.policy.value}>")

    def apply_committed_tx(self, tx: CommittedTx) -> bool:
        return self.adapter.apply_committed_tx(self.id, tx)

    def apply_local(self, mutations: Iterable[Mutation], **kwargs: Any) -> StreamPosition:
        return self.adapter.apply_local(self.id, mutations, **kwargs)

    def insert(self, key: Key, value: dict[str, Any]) -> StreamPosition:
        return self.apply_local([Mutation.insert(key, value)])

    def update(self, key: Key, value: dict[str, Any]) -> StreamPosition:
        return self.apply_local([Mutation.update(key, value)])

    def delete(self, key: Key) -> StreamPosition:
        return self.apply_local([Mutation.delete(key)])

    def get(self, key: Key) -> LoadedRow | None:
        return self.adapter.get(self.id, key)

    def load_subset(self, *, where: Expr | None = None, order_by: Sequence[OrderBy | Expr] = (),
                    limit: int | None = None, offset: int = 0, cursor: Cursor | None = None) -> list[LoadedRow]:
        return self.adapter.load_subset(self.id, where=where, order_by=order_by, limit=limit, offset=offset,
                                        cursor=cursor)

    def cursor_after(self, row: LoadedRow, order_by: Sequence[OrderBy | Expr] = ()) -> Cursor:
        return self.adapter.cursor_after(row, order_by)

    def pull_since(self, row_version: int) -> PullSinceResult:
        return self.adapter.pull_since(self.id, row_version)

    def stream_position(self) -> StreamPosition:
        return self.adapter.get_stream_position(self.id)

    def metadata(self) -> dict[str, Any]:
        return self.adapter.load_collection_metadata(self.id)

    def set_metadata(self, key: str, value: Any) -> StreamPosition:
        return self.apply_local([], collection_metadata_mutations=[MetadataMutation.set(key, value)])

    def ensure_index(self, signature: str, spec: IndexSpec) -> str:
        return self.adapter.ensure_index(self.id, signature, spec)

    def mark_index_removed(self, signature: str) -> None:
        self.adapter.mark_index_removed(self.id, signature)
