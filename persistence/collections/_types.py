"""Records exchanged with the adapter: transactions in, rows and positions out.

Named after TanStack DB's ``PersistedTx``, ``ReplayableTxDelta`` and friends,
as msgspec ``Struct`` s (frozen, keyword-only). Sequences may be given as
lists or tuples; the adapter only iterates them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

import msgspec

from ._codec import Key

__all__ = [
    "Mutation",
    "MetadataMutation",
    "CommittedTx",
    "LoadedRow",
    "Cursor",
    "ReplayDelta",
    "PullSinceResult",
    "StreamPosition",
    "IndexSpec",
    "CollectionMode",
    "SchemaMismatchPolicy",
]


class _Unset(Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET


class Mutation(msgspec.Struct, frozen=True, kw_only=True):
    """One row change. ``update`` merges ``value`` shallowly into the stored row.

    Row metadata changes only when ``metadata_changed`` is true (the helpers set
    it when ``metadata=`` is given); otherwise the stored metadata is kept.
    """

    type: Literal["insert", "update", "delete"]
    key: Key
    value: Any = None
    metadata: Any = None
    metadata_changed: bool = False

    @classmethod
    def insert(cls, key: Key, value: dict[str, Any], *, metadata: Any = UNSET) -> Mutation:
        return cls(type="insert", key=key, value=value, metadata=None if metadata is UNSET else metadata,
                   metadata_changed=metadata is not UNSET)

    @classmethod
    def update(cls, key: Key, value: dict[str, Any], *, metadata: Any = UNSET) -> Mutation:
        return cls(type="update", key=key, value=value, metadata=None if metadata is UNSET else metadata,
                   metadata_changed=metadata is not UNSET)

    @classmethod
    def delete(cls, key: Key, value: Any = None) -> Mutation:
        return cls(type="delete", key=key, value=value)


class MetadataMutation(msgspec.Struct, frozen=True, kw_only=True):
    """Set or delete one metadata entry (a row's, keyed by row key; or the collection's, by name)."""

    type: Literal["set", "delete"]
    key: Any
    value: Any = None

    @classmethod
    def set(cls, key: Any, value: Any) -> MetadataMutation:
        return cls(type="set", key=key, value=value)

    @classmethod
    def delete(cls, key: Any) -> MetadataMutation:
        return cls(type="delete", key=key)


class CommittedTx(msgspec.Struct, frozen=True, kw_only=True):
    """A committed transaction to persist. ``(term, seq)`` identifies it: applying
    the same pair twice is a no-op. ``row_version`` is a floor for the version
    the transaction gets (0: next after the latest)."""

    tx_id: str
    term: int
    seq: int
    row_version: int = 0
    mutations: tuple[Mutation, ...] | list[Mutation] = ()
    truncate: bool = False
    row_metadata_mutations: tuple[MetadataMutation, ...] | list[MetadataMutation] = ()
    collection_metadata_mutations: tuple[MetadataMutation, ...] | list[MetadataMutation] = ()


class LoadedRow(msgspec.Struct, frozen=True, kw_only=True):
    key: Key
    value: dict[str, Any]
    metadata: Any = None


class Cursor(msgspec.Struct, frozen=True, kw_only=True):
    """Keyset position: continue strictly after the row whose ``order_by`` values
    are ``values`` and whose key is ``key`` (see ``cursor_after``)."""

    values: tuple[Any, ...]
    key: Key


class ReplayDelta(msgspec.Struct, frozen=True, kw_only=True):
    """What one applied transaction changed; ``changed_rows`` hold the full rows after it."""

    tx_id: str
    latest_row_version: int
    changed_rows: tuple[tuple[Key, dict[str, Any]], ...]
    deleted_keys: tuple[Key, ...]
    row_metadata_mutations: tuple[MetadataMutation, ...]
    collection_metadata_mutations: tuple[MetadataMutation, ...]


class PullSinceResult(msgspec.Struct, frozen=True, kw_only=True):
    latest_row_version: int
    requires_full_reload: bool
    changed_keys: tuple[Key, ...] = ()
    deleted_keys: tuple[Key, ...] = ()
    deltas: tuple[ReplayDelta, ...] = ()


class StreamPosition(msgspec.Struct, frozen=True, kw_only=True):
    latest_term: int
    latest_seq: int
    latest_row_version: int
    reset_epoch: int


class IndexSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Expressions (``_expr`` trees, or raw SQL fragments) and an optional partial-index WHERE."""

    expressions: tuple[Any, ...]
    where: Any = None


class CollectionMode(str, Enum):
    """Whether the collection has a sync source (TanStack's inferred modes)."""

    SYNC_PRESENT = "sync-present"
    SYNC_ABSENT = "sync-absent"


class SchemaMismatchPolicy(str, Enum):
    """What to do when the stored schema version differs from the declared one."""

    RESET = "reset"
    ERROR = "error"

    @classmethod
    def _missing_(cls, value: object) -> SchemaMismatchPolicy | None:
        # TanStack's spellings, so configuration carries over.
        aliases = {"sync-present-reset": cls.RESET, "sync-absent-error": cls.ERROR, "throw": cls.ERROR}
        return aliases.get(value) if isinstance(value, str) else None
