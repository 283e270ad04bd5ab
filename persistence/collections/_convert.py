"""Converting a file from dohost's first collection layout to TanStack DB's.

dohost 0.x before this layout wrote its own variant of TanStack's tables:
SHA-256 table names (``c_<26 base32>``), ``{"__dh": ...}`` value tags, ``-0``
folded into ``n:0``, Python ``repr`` float keys, ``deleted_at`` as epoch
seconds, positions and the pruned watermark in ``collection_version``,
``prev_row_version`` in ``applied_tx``, its own ``replay_json`` shape, index
names ``i_<hash>_<sig>`` and ``schema_version`` scope ``dohost.collections``.
The adapter refuses such a file (it never migrates silently);
:func:`convert_dohost_layout` converts it explicitly, in one transaction:

* rows, tombstones, metadata and replay entries are decoded with the old
  codec and written with TanStack's (a key TanStack's encoding cannot hold,
  an int beyond 2**53 that is no double, stops the conversion with its name;
  nothing changes);
* positions, the watermark and the log floor move to ``leader_term`` and
  ``dohost_collection_stream``;
* persisted indexes are dropped and unregistered, because their SQL was
  compiled for the old tags: call ``ensure_index`` again (the return value
  lists them as ``(collection_id, signature)``).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from typing import Any, Callable

from ._codec import decode_key, encode_key, encode_value, json_text, parse_tree
from ._driver import SQLiteDriver
from ._replay import key_json
from ._schema import LEGACY_SCOPE, create_collection_tables, ensure_layout, quote_identifier, table_names, write_stream
from .errors import CollectionError, StorageFormatError

__all__ = ["convert_dohost_layout"]


def _legacy_key(encoded: str) -> Any:
    if encoded.startswith("n:"):
        body = encoded[2:]
        try:
            return int(body) if body.lstrip("-").isdigit() else float(body)
        except ValueError:
            raise StorageFormatError(f"stored key {encoded!r} is not n:<number> or s:<string>") from None
    return decode_key(encoded)


def _legacy_value(node: Any) -> Any:
    if type(node) is list:
        return [_legacy_value(v) for v in node]
    if type(node) is not dict:
        return node
    tag = node.get("__dh")
    if type(tag) is not str:
        return {k: _legacy_value(v) for k, v in node.items()}
    payload: Any = node["v"] if tag not in ("nan", "inf", "-inf") else None
    if tag == "bigint":
        return int(payload)
    if tag == "datetime":
        value = _dt.datetime.fromisoformat(payload)
        if node.get("z") is not None:
            from zoneinfo import ZoneInfo

            value = value.astimezone(ZoneInfo(node["z"]))
        return value
    if tag == "date":
        return _dt.date.fromisoformat(payload)
    if tag in ("nan", "inf", "-inf"):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[tag]
    if tag == "object":
        return {k: _legacy_value(v) for k, v in payload.items()}
    raise StorageFormatError(f"stored value has unknown legacy tag {tag!r}")


def _reencode(text: str | None) -> str | None:
    return None if text is None else encode_value(_legacy_value(parse_tree(text)))


def _replay(text: str | None) -> str | None:
    if text is None:
        return None
    raw = parse_tree(text)

    def key(encoded: str) -> str:
        return key_json(encode_key(_legacy_key(encoded)))

    def meta(items: list[Any], key_text: Callable[[Any], str]) -> str:
        return ",".join(
            f'{{"type":"set","key":{key_text(k)},"value":{encode_value(_legacy_value(v))}}}' if t == "set"
            else f'{{"type":"delete","key":{key_text(k)}}}' for t, k, v in items)

    changed = ",".join(f'{{"key":{key(k)},"value":{encode_value(_legacy_value(v))}}}' for k, v in raw["changed_rows"])
    deleted = ",".join(key(k) for k in raw["deleted_keys"])
    return (f'{{"txId":{json_text(raw["tx_id"])},"latestRowVersion":{int(raw["latest_row_version"])},'
            f'"changedRows":[{changed}],"deletedKeys":[{deleted}],'
            f'"rowMetadataMutations":[{meta(raw["row_metadata"], key)}],'
            f'"collectionMetadataMutations":[{meta(raw["collection_metadata"], json_text)}]}}')


def _iso(seconds: int) -> str:
    instant = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def convert_dohost_layout(driver: SQLiteDriver, *, clock: Callable[[], float] = time.time
                          ) -> list[tuple[str, str]]:
    """Convert dohost's first collection layout in ``driver``'s database to TanStack's.

    Returns the ``(collection_id, signature)`` of the persisted indexes that were
    dropped (call ``ensure_index`` for them again). A file already in TanStack's
    layout is left as it is (returns ``[]``).
    """
    return driver.transaction(lambda db: _convert(db, int(clock())))


def _convert(db: SQLiteDriver, now: int) -> list[tuple[str, str]]:
    try:
        legacy = db.query("SELECT 1 AS hit FROM schema_version WHERE scope = ?", [LEGACY_SCOPE])
    except Exception:  # no schema_version table: nothing was ever written
        return []
    if not legacy:
        return []
    try:
        return _convert_legacy(db, now)
    except CollectionError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageFormatError(f"cannot convert the dohost collection layout: {exc!r}") from None


def _convert_legacy(db: SQLiteDriver, now: int) -> list[tuple[str, str]]:
    registry = db.query("SELECT collection_id, table_name, tombstone_table_name, schema_version "
                        "FROM collection_registry ORDER BY collection_id")
    versions = {r["collection_id"]: r for r in db.query("SELECT * FROM collection_version")}
    epochs = {r["collection_id"]: int(r["reset_epoch"])
              for r in db.query("SELECT collection_id, reset_epoch FROM collection_reset_epoch")}
    applied = db.query("SELECT collection_id, term, seq, tx_id, row_version, prev_row_version, replay_json, "
                       "replay_requires_full_reload, applied_at FROM applied_tx")
    metadata = db.query("SELECT collection_id, key, value, updated_at FROM collection_metadata")
    indexes = db.query("SELECT collection_id, signature, index_name FROM persisted_index_registry "
                       "ORDER BY collection_id, signature")
    for index in indexes:
        db.exec(f"DROP INDEX IF EXISTS {quote_identifier(index['index_name'])}")
    db.run("DELETE FROM persisted_index_registry")
    for table in ("collection_version", "applied_tx", "collection_metadata"):
        db.exec(f"DROP TABLE {table}")
    db.run("DELETE FROM schema_version WHERE scope = ?", [LEGACY_SCOPE])
    ensure_layout(db, max((int(r["schema_version"]) for r in registry), default=1), now)
    for entry in registry:
        cid = entry["collection_id"]
        old_rows, old_tombstones = quote_identifier(entry["table_name"]), quote_identifier(entry["tombstone_table_name"])
        rows = db.query(f"SELECT key, value, metadata, row_version FROM {old_rows}")
        tombstones = db.query(f"SELECT key, value, row_version, deleted_at FROM {old_tombstones}")
        db.exec(f"DROP TABLE {old_rows}")
        db.exec(f"DROP TABLE {old_tombstones}")
        new_rows, new_tombstones = table_names(cid)
        db.run("UPDATE collection_registry SET table_name = ?, tombstone_table_name = ? WHERE collection_id = ?",
               [new_rows, new_tombstones, cid])
        create_collection_tables(db, new_rows, new_tombstones)
        for r in rows:
            db.run(f"INSERT INTO {quote_identifier(new_rows)} (key, value, metadata, row_version) VALUES (?, ?, ?, ?)",
                   [encode_key(_legacy_key(r["key"])), _reencode(r["value"]), _reencode(r["metadata"]),
                    r["row_version"]])
        for t in tombstones:
            db.run(f"INSERT INTO {quote_identifier(new_tombstones)} (key, value, row_version, deleted_at) "
                   "VALUES (?, ?, ?, ?)", [encode_key(_legacy_key(t["key"])), _reencode(t["value"]),
                                           t["row_version"], _iso(int(t["deleted_at"]))])
        v = versions.get(cid)
        latest = int(v["latest_row_version"]) if v else 0
        db.run("INSERT INTO collection_version (collection_id, latest_row_version) VALUES (?, ?)", [cid, latest])
        db.run("INSERT INTO leader_term (collection_id, latest_term) VALUES (?, ?)",
               [cid, int(v["latest_term"]) if v else 0])
        entries = [a for a in applied if a["collection_id"] == cid]
        oldest = min(entries, key=lambda a: int(a["row_version"]), default=None)
        write_stream(db, cid, {
            "reset_epoch": epochs.get(cid, 0), "latest_row_version": latest,
            "latest_term": int(v["latest_term"]) if v else 0, "latest_seq": int(v["latest_seq"]) if v else 0,
            "pruned_term": int(v["pruned_term"]) if v else -1, "pruned_seq": int(v["pruned_seq"]) if v else -1,
            "log_floor": latest if oldest is None else int(oldest["prev_row_version"]),
        })
    for a in applied:
        db.run("INSERT INTO applied_tx (collection_id, term, seq, tx_id, row_version, replay_json, "
               "replay_requires_full_reload, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [a["collection_id"], a["term"], a["seq"], a["tx_id"], a["row_version"], _replay(a["replay_json"]),
                a["replay_requires_full_reload"], a["applied_at"]])
    for m in metadata:
        db.run("INSERT INTO collection_metadata (collection_id, key, value, updated_at) VALUES (?, ?, ?, ?)",
               [m["collection_id"], m["key"], _reencode(m["value"]), m["updated_at"]])
    return [(i["collection_id"], i["signature"]) for i in indexes]
