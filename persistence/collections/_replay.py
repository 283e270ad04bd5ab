"""Applying committed transactions, the replay log, and ``pull_since``.

Every function here runs inside the adapter's transaction (it receives the
transaction driver) and assumes the collection is registered and its schema
version checked. See ``_adapter`` for the guarantees; the notes here say how.

* :func:`encode_tx` validates and encodes a whole transaction before any SQL
  runs, so bad input (a NaN key, a set in a value) changes nothing.
* ``replay_json`` has TanStack's shape (``ReplayableTxDelta``: ``txId``,
  ``latestRowVersion``, ``changedRows`` of ``{key, value}``, ``deletedKeys``,
  ``rowMetadataMutations``, ``collectionMetadataMutations``; keys as plain JSON
  numbers/strings, values with TanStack's tags), so either side replays the
  other's log. Its content is each touched key's *final* state in that
  transaction (a key inserted then deleted is only a deleted key), with the
  full row after the merge, so a consumer can upsert it directly; TanStack
  records the raw mutation values in order (it reads both the same way).
* Positions and the log's floor live in ``dohost_collection_stream`` (see
  ``_schema``): the log reaches back to version ``v`` exactly when ``v`` is
  at least ``log_floor`` (the newest row version pruned, or the reset point).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from ._codec import Key, MAX_SAFE_INTEGER, decode_key, encode_key, encode_value, from_tree, json_text, parse_tree
from ._driver import SQLiteDriver
from ._schema import TableMapping, write_stream
from ._types import CommittedTx, MetadataMutation, PullSinceResult, ReplayDelta
from .errors import CollectionError, ConfigError, StorageFormatError, ValueEncodingError

__all__ = ["EncodedTx", "encode_tx", "apply_tx", "prune_applied_tx", "pull_since", "key_json"]


class _Mut(NamedTuple):
    type: str
    key: str  # encoded
    value: Any  # the given dict (update merges need it)
    value_text: str | None
    metadata_changed: bool
    metadata_text: str | None


class EncodedTx(NamedTuple):
    tx_id: str
    term: int
    seq: int
    row_version: int
    truncate: bool
    mutations: list[_Mut]
    row_metadata: list[tuple[str, str, str | None]]  # (type, encoded key, value JSON)
    collection_metadata: list[tuple[str, str, str | None]]


def _counter(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_SAFE_INTEGER:
        raise ConfigError(f"CommittedTx.{name} must be an int in [0, 2**53), got {value!r}")
    return value


def _meta(items: Any, what: str, key_encoder: Any) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for i, m in enumerate(items):
        if not isinstance(m, MetadataMutation) or m.type not in ("set", "delete"):
            raise ConfigError(f"{what}[{i}] must be MetadataMutation.set()/delete(), got {m!r}")
        text = encode_value(m.value, where=f"{what}[{i}].value") if m.type == "set" else None
        out.append((m.type, key_encoder(m.key), text))
    return out


def _collection_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ConfigError(f"collection metadata keys must be str, got {key!r}")
    return key


def encode_tx(tx: CommittedTx) -> EncodedTx:
    if not isinstance(tx, CommittedTx):
        raise ConfigError(f"expected a CommittedTx, got {type(tx).__name__}")
    if not isinstance(tx.tx_id, str):
        raise ConfigError(f"CommittedTx.tx_id must be str, got {tx.tx_id!r}")
    mutations = []
    for i, m in enumerate(tx.mutations):
        where = f"mutations[{i}]"
        if m.type not in ("insert", "update", "delete"):
            raise ConfigError(f"{where}.type must be insert, update or delete, got {m.type!r}")
        key = encode_key(m.key)
        if m.type == "delete":
            text = None if m.value is None else encode_value(m.value, where=f"{where}.value")
            mutations.append(_Mut("delete", key, m.value, text, False, None))
            continue
        if not isinstance(m.value, dict):
            raise ValueEncodingError(f"{where}.value must be a dict, got {type(m.value).__name__}")
        text = encode_value(m.value, where=f"{where}.value")
        meta = encode_value(m.metadata, where=f"{where}.metadata") if m.metadata_changed else None
        mutations.append(_Mut(m.type, key, m.value, text, bool(m.metadata_changed), meta))
    return EncodedTx(
        tx_id=tx.tx_id, term=_counter("term", tx.term), seq=_counter("seq", tx.seq),
        row_version=_counter("row_version", tx.row_version), truncate=bool(tx.truncate),
        mutations=mutations,
        row_metadata=_meta(tx.row_metadata_mutations, "row_metadata_mutations", encode_key),
        collection_metadata=_meta(tx.collection_metadata_mutations, "collection_metadata_mutations",
                                  _collection_key),
    )


def apply_tx(db: SQLiteDriver, collection_id: str, mapping: TableMapping, version: dict[str, Any],
             tx: EncodedTx, now: int, now_iso: str) -> bool:
    """Apply ``tx`` unless ``(term, seq)`` was applied before; True when applied.

    ``version`` is the stream state from ``_schema.assert_current_version``; it
    is updated in place to the state after the transaction.
    """
    position = (tx.term, tx.seq)
    if position <= (int(version["pruned_term"]), int(version["pruned_seq"])) or db.query(
        "SELECT 1 AS hit FROM applied_tx WHERE collection_id = ? AND term = ? AND seq = ?",
        [collection_id, tx.term, tx.seq],
    ):
        return False
    previous = int(version["latest_row_version"])
    row_version = max(previous + 1, tx.row_version)
    rows, tombstones = mapping.rows, mapping.tombstones
    if tx.truncate:
        db.run(f"DELETE FROM {rows}")
        db.run(f"DELETE FROM {tombstones}")
    final: dict[str, str | None] = {}  # encoded key -> row JSON, or None when deleted
    for m in tx.mutations:
        final.pop(m.key, None)
        if m.type == "delete":
            db.run(f"DELETE FROM {rows} WHERE key = ?", [m.key])
            db.run(f"INSERT INTO {tombstones} (key, value, row_version, deleted_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                   "row_version = excluded.row_version, deleted_at = excluded.deleted_at",
                   [m.key, m.value_text, row_version, now_iso])
            final[m.key] = None
            continue
        existing = []
        if m.type == "update" or not m.metadata_changed:
            existing = db.query(f"SELECT value, metadata FROM {rows} WHERE key = ?", [m.key])
        text = m.value_text
        if m.type == "update" and existing:
            stored = from_tree(parse_tree(existing[0]["value"]))
            if isinstance(stored, dict):
                text = encode_value({**stored, **m.value})
        metadata = m.metadata_text if m.metadata_changed else (existing[0]["metadata"] if existing else None)
        db.run(f"INSERT INTO {rows} (key, value, metadata, row_version) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, "
               "row_version = excluded.row_version", [m.key, text, metadata, row_version])
        db.run(f"DELETE FROM {tombstones} WHERE key = ?", [m.key])
        final[m.key] = text
    for kind, key, text in tx.row_metadata:
        db.run(f"UPDATE {rows} SET metadata = ? WHERE key = ?", [text if kind == "set" else None, key])
    for kind, key, text in tx.collection_metadata:
        if kind == "set":
            db.run("INSERT INTO collection_metadata (collection_id, key, value, updated_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(collection_id, key) DO UPDATE SET value = excluded.value, "
                   "updated_at = excluded.updated_at", [collection_id, key, text, now])
        else:
            db.run("DELETE FROM collection_metadata WHERE collection_id = ? AND key = ?", [collection_id, key])
    latest = (int(version["latest_term"]), int(version["latest_seq"]))
    term, seq = max(latest, position)
    db.run("INSERT INTO collection_version (collection_id, latest_row_version) VALUES (?, ?) "
           "ON CONFLICT(collection_id) DO UPDATE SET latest_row_version = excluded.latest_row_version",
           [collection_id, row_version])
    if tx.term > int(version["latest_term"]) or tx.term == 0:  # else TanStack's upsert would change nothing
        db.run("INSERT INTO leader_term (collection_id, latest_term) VALUES (?, ?) "
               "ON CONFLICT(collection_id) DO UPDATE SET latest_term = CASE "
               "WHEN leader_term.latest_term > excluded.latest_term THEN leader_term.latest_term "
               "ELSE excluded.latest_term END", [collection_id, tx.term])
    replay = None if tx.truncate else _replay_json(tx, row_version, final)
    db.run("INSERT INTO applied_tx (collection_id, term, seq, tx_id, row_version, replay_json, "
           "replay_requires_full_reload, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           [collection_id, tx.term, tx.seq, tx.tx_id, row_version, replay, 1 if tx.truncate else 0, now])
    version.update(latest_row_version=row_version, latest_term=term, latest_seq=seq)
    write_stream(db, collection_id, version)
    return True


def key_json(encoded: str) -> str:
    # The key as TanStack's replay delta holds it: a JSON number or string.
    key = decode_key(encoded)
    if isinstance(key, str):
        return json_text(key)
    return "0" if key == 0 else encoded[2:]  # JSON.stringify(-0) is 0; n:<text> is already JS number text


def _replay_json(tx: EncodedTx, row_version: int, final: dict[str, str | None]) -> str:
    # Assembled from the already-encoded row texts: no second encoding pass.
    changed = ",".join(f'{{"key":{key_json(k)},"value":{v}}}' for k, v in final.items() if v is not None)
    deleted = ",".join(key_json(k) for k, v in final.items() if v is None)

    def meta(items: list[tuple[str, str, str | None]], key_text: Callable[[str], str]) -> str:
        return ",".join(
            f'{{"type":"set","key":{key_text(k)},"value":{v or "null"}}}' if t == "set"
            else f'{{"type":"delete","key":{key_text(k)}}}' for t, k, v in items)

    return (f'{{"txId":{json_text(tx.tx_id)},"latestRowVersion":{row_version},'
            f'"changedRows":[{changed}],"deletedKeys":[{deleted}],'
            f'"rowMetadataMutations":[{meta(tx.row_metadata, key_json)}],'
            f'"collectionMetadataMutations":[{meta(tx.collection_metadata, json_text)}]}}')


def _replay_key(raw: Any) -> Key:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise TypeError(f"replay key {raw!r} is not a number or a string")
    return decode_key(encode_key(raw))  # one normal form: integral numbers as int


def _decode_replay(text: str) -> ReplayDelta:
    try:
        raw = parse_tree(text)
        return ReplayDelta(
            tx_id=raw["txId"],
            latest_row_version=raw["latestRowVersion"],
            changed_rows=tuple((_replay_key(r["key"]), from_tree(r["value"])) for r in raw["changedRows"]),
            deleted_keys=tuple(_replay_key(k) for k in raw["deletedKeys"]),
            row_metadata_mutations=tuple(
                MetadataMutation(type=m["type"], key=_replay_key(m["key"]), value=from_tree(m.get("value")))
                for m in raw["rowMetadataMutations"]),
            collection_metadata_mutations=tuple(
                MetadataMutation(type=m["type"], key=m["key"], value=from_tree(m.get("value")))
                for m in raw["collectionMetadataMutations"]),
        )
    except (KeyError, TypeError, ValueError, CollectionError) as exc:
        raise StorageFormatError(f"replay log entry is malformed: {exc!r}") from None


def prune_applied_tx(db: SQLiteDriver, collection_id: str, version: dict[str, Any], max_rows: int, max_age: int,
                     now: int) -> None:
    """Drop replay-log entries beyond ``max_rows`` or older than ``max_age`` seconds (0: no cap)."""
    marks: list[tuple[int, int, int]] = []  # (term, seq) watermark, newest row version pruned
    if max_age > 0:
        cutoff = now - max_age
        newest = db.query("SELECT term, seq, (SELECT MAX(row_version) FROM applied_tx WHERE collection_id = ? "
                          "AND applied_at < ?) AS v FROM applied_tx WHERE collection_id = ? AND applied_at < ? "
                          "ORDER BY term DESC, seq DESC LIMIT 1", [collection_id, cutoff, collection_id, cutoff])
        if newest:
            db.run("DELETE FROM applied_tx WHERE collection_id = ? AND applied_at < ?", [collection_id, cutoff])
            marks.append((int(newest[0]["term"]), int(newest[0]["seq"]), int(newest[0]["v"])))
    if max_rows > 0:
        count = int(db.query("SELECT COUNT(*) AS n FROM applied_tx WHERE collection_id = ?",
                             [collection_id])[0]["n"])
        excess = count - max_rows
        if excess > 0:
            # Integers are inlined: the DO binds numbers as doubles.
            oldest = (f"SELECT rowid, term, seq, row_version FROM applied_tx WHERE collection_id = ? "
                      f"ORDER BY term, seq LIMIT {excess}")
            last = db.query(f"SELECT term, seq, (SELECT MAX(row_version) FROM ({oldest})) AS v FROM applied_tx "
                            f"WHERE collection_id = ? ORDER BY term, seq LIMIT 1 OFFSET {excess - 1}",
                            [collection_id, collection_id])
            db.run(f"DELETE FROM applied_tx WHERE rowid IN (SELECT rowid FROM ({oldest}))", [collection_id])
            marks.append((int(last[0]["term"]), int(last[0]["seq"]), int(last[0]["v"])))
    if marks:
        term, seq, newest_version = max(marks)
        if (term, seq) > (int(version["pruned_term"]), int(version["pruned_seq"])):
            version.update(pruned_term=term, pruned_seq=seq)
        version["log_floor"] = max(int(version["log_floor"]), newest_version)
        write_stream(db, collection_id, version)


def pull_since(db: SQLiteDriver, collection_id: str, mapping: TableMapping, version: dict[str, Any],
               since: int, threshold: int) -> PullSinceResult:
    latest = int(version["latest_row_version"])
    reload = PullSinceResult(latest_row_version=latest, requires_full_reload=True)
    if since >= latest:
        return PullSinceResult(latest_row_version=latest, requires_full_reload=False)
    if since < int(version["log_floor"]):
        return reload  # the log does not reach back to `since` (pruned, reset, or written elsewhere)
    counts = db.query(f"SELECT (SELECT COUNT(*) FROM {mapping.rows} WHERE row_version > ?) AS changed, "
                      f"(SELECT COUNT(*) FROM {mapping.tombstones} WHERE row_version > ?) AS deleted",
                      [since, since])[0]
    if int(counts["changed"]) + int(counts["deleted"]) > threshold:
        return reload
    entries = db.query("SELECT replay_json, replay_requires_full_reload FROM applied_tx "
                       "WHERE collection_id = ? AND row_version > ? ORDER BY row_version",
                       [collection_id, since])
    if any(e["replay_requires_full_reload"] or e["replay_json"] is None for e in entries):
        return reload
    deltas = tuple(_decode_replay(e["replay_json"]) for e in entries)
    size = sum(len(d.changed_rows) + len(d.deleted_keys) + len(d.row_metadata_mutations)
               + len(d.collection_metadata_mutations) for d in deltas)
    if size > threshold:
        return reload
    changed = db.query(f"SELECT key FROM {mapping.rows} WHERE row_version > ? ORDER BY key", [since])
    deleted = db.query(f"SELECT key FROM {mapping.tombstones} WHERE row_version > ? ORDER BY key", [since])
    return PullSinceResult(
        latest_row_version=latest, requires_full_reload=False,
        changed_keys=tuple(decode_key(r["key"]) for r in changed),
        deleted_keys=tuple(decode_key(r["key"]) for r in deleted),
        deltas=deltas,
    )
