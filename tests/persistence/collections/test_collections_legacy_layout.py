"""A file in dohost's first collection layout is refused, and converted only when asked.

The legacy file is built here the way dohost wrote it before the layout became
TanStack's (its DDL and encodings as they were at commit 4d0da96).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from collections_support import FakeClock
from persistence.collections import (
    CollectionAdapter, CommittedTx, Mutation, SQLiteDriver, StorageFormatError, convert_dohost_layout, table_names,
)

C = "todos"
OLD_ROWS, OLD_TOMBSTONES = "c_zd344j3agyzt7gdmthtml4ba4o", "t_zd344j3agyzt7gdmthtml4ba4o"  # SHA-256 names
NOW = 1_700_000_000

_LEGACY_DDL = (
    "CREATE TABLE schema_version (scope TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    "CREATE TABLE collection_registry (collection_id TEXT PRIMARY KEY, table_name TEXT NOT NULL UNIQUE, "
    "tombstone_table_name TEXT NOT NULL UNIQUE, schema_version INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    "CREATE TABLE collection_version (collection_id TEXT PRIMARY KEY, latest_row_version INTEGER NOT NULL, "
    "latest_term INTEGER NOT NULL DEFAULT 0, latest_seq INTEGER NOT NULL DEFAULT 0, "
    "pruned_term INTEGER NOT NULL DEFAULT -1, pruned_seq INTEGER NOT NULL DEFAULT -1)",
    "CREATE TABLE collection_reset_epoch (collection_id TEXT PRIMARY KEY, reset_epoch INTEGER NOT NULL, "
    "updated_at INTEGER NOT NULL)",
    "CREATE TABLE collection_metadata (collection_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
    "updated_at INTEGER NOT NULL, PRIMARY KEY (collection_id, key))",
    "CREATE TABLE applied_tx (collection_id TEXT NOT NULL, term INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "tx_id TEXT NOT NULL, row_version INTEGER NOT NULL, prev_row_version INTEGER NOT NULL, replay_json TEXT, "
    "replay_requires_full_reload INTEGER NOT NULL DEFAULT 0, applied_at INTEGER NOT NULL, "
    "PRIMARY KEY (collection_id, term, seq))",
    "CREATE TABLE persisted_index_registry (collection_id TEXT NOT NULL, signature TEXT NOT NULL, "
    "index_name TEXT NOT NULL, expression_sql TEXT NOT NULL, where_sql TEXT, removed INTEGER NOT NULL DEFAULT 0, "
    "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, "
    "PRIMARY KEY (collection_id, signature))",
    f'CREATE TABLE "{OLD_ROWS}" (key TEXT PRIMARY KEY, value TEXT NOT NULL, metadata TEXT, '
    "row_version INTEGER NOT NULL)",
    f'CREATE INDEX "{OLD_ROWS}_row_version" ON "{OLD_ROWS}" (row_version)',
    f'CREATE TABLE "{OLD_TOMBSTONES}" (key TEXT PRIMARY KEY, value TEXT, row_version INTEGER NOT NULL, '
    "deleted_at INTEGER NOT NULL)",
    f'CREATE INDEX "{OLD_TOMBSTONES}_row_version" ON "{OLD_TOMBSTONES}" (row_version)',
    f"CREATE INDEX \"i_abcdefghijklmnopqrst_by_title\" ON \"{OLD_ROWS}\" ((CASE json_extract(value, '$.title.__dh') "
    "WHEN 'bigint' THEN 1 ELSE json_extract(value, '$.title') END))",
)


def _write_legacy(driver: SQLiteDriver) -> None:
    def body(db: SQLiteDriver) -> None:
        for ddl in _LEGACY_DDL:
            db.exec(ddl)
        db.run("INSERT INTO schema_version VALUES ('dohost.collections', 1, ?)", [NOW])
        db.run("INSERT INTO collection_registry VALUES (?, ?, ?, 2, ?)", [C, OLD_ROWS, OLD_TOMBSTONES, NOW])
        db.run("INSERT INTO collection_version VALUES (?, 3, 1, 3, 1, 1)", [C])
        db.run("INSERT INTO collection_reset_epoch VALUES (?, 0, ?)", [C, NOW])
        db.run("INSERT INTO collection_metadata VALUES (?, 'cursor', '{\"offset\":4}', ?)", [C, NOW])
        rows = [
            ("s:a", '{"title":"A","at":{"__dh":"datetime","v":"2024-01-02T03:04:05.123456+00:00",'
                    '"o":"2024-01-02T03:04:05.123456Z"},"big":{"__dh":"bigint","v":"18446744073709551616"},'
                    '"odd":{"__dh":"object","v":{"__dh":"mine"}},"n":{"__dh":"-inf"}}', None, 1),
            ("n:1e-07", '{"title":"tiny"}', '{"etag":"e"}', 2),
            ("n:0", '{"title":"zero","day":{"__dh":"date","v":"2024-02-29"}}', None, 3),
        ]
        for row in rows:
            db.run(f'INSERT INTO "{OLD_ROWS}" VALUES (?, ?, ?, ?)', list(row))
        db.run(f'INSERT INTO "{OLD_TOMBSTONES}" VALUES (\'s:gone\', NULL, 3, ?)', [NOW])
        db.run("INSERT INTO applied_tx VALUES (?, 1, 2, 'tx-2', 2, 1, ?, 0, ?)",
               [C, '{"tx_id":"tx-2","latest_row_version":2,"changed_rows":[["n:1e-07",{"title":"tiny"}]],'
                   '"deleted_keys":[],"row_metadata":[],"collection_metadata":[]}', NOW])
        db.run("INSERT INTO applied_tx VALUES (?, 1, 3, 'tx-3', 3, 2, ?, 0, ?)",
               [C, '{"tx_id":"tx-3","latest_row_version":3,"changed_rows":[["n:0",{"title":"zero"}]],'
                   '"deleted_keys":["s:gone"],"row_metadata":[["set","n:0",{"x":{"__dh":"nan"}}]],'
                   '"collection_metadata":[["set","cursor",{"offset":4}]]}', NOW])
        db.run("INSERT INTO persisted_index_registry VALUES (?, 'by title', 'i_abcdefghijklmnopqrst_by_title', "
               "'[]', NULL, 0, ?, ?, ?)", [C, NOW, NOW, NOW])

    driver.transaction(body)


def _tables(driver: SQLiteDriver) -> list[str]:
    return [r["name"] for r in driver.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")]


def test_a_legacy_file_is_refused_with_the_way_to_convert_it_and_nothing_changes(driver: SQLiteDriver,
                                                                                 clock: FakeClock) -> None:
    _write_legacy(driver)
    before = _tables(driver)
    adapter = CollectionAdapter(driver, schema_version=2, clock=clock)
    with pytest.raises(StorageFormatError, match=r"^these collection tables were written by dohost before it used "
                                                 r"TanStack DB's layout \(schema_version scope 'dohost.collections'\); "
                                                 r"convert them once with persistence\.collections\."
                                                 r"convert_dohost_layout\(driver\)$"):
        adapter.load_subset(C)
    adapter.close()
    assert _tables(driver) == before


def test_converting_a_legacy_file_keeps_rows_positions_and_replay_in_tanstacks_layout(driver: SQLiteDriver,
                                                                                      clock: FakeClock) -> None:
    _write_legacy(driver)
    dropped = convert_dohost_layout(driver, clock=clock)
    assert dropped == [(C, "by title")]
    assert convert_dohost_layout(driver, clock=clock) == []  # already converted: nothing to do
    assert OLD_ROWS not in _tables(driver) and table_names(C)[0] in _tables(driver)
    adapter = CollectionAdapter(driver, schema_version=2, clock=clock)
    loaded = {repr(r.key): (r.key, r.value, r.metadata) for r in adapter.load_subset(C)}
    key, a, _ = loaded["'a'"]
    assert a["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)
    assert a["big"] == 2**64 and a["odd"] == {"__dh": "mine"} and a["n"] == -math.inf
    assert loaded["1e-07"][1:] == ({"title": "tiny"}, {"etag": "e"})
    assert loaded["0"][1] == {"title": "zero", "day": dt.date(2024, 2, 29)}
    position = adapter.get_stream_position(C)
    assert (position.latest_term, position.latest_seq, position.latest_row_version) == (1, 3, 3)
    assert adapter.load_collection_metadata(C) == {"cursor": {"offset": 4}}
    pulled = adapter.pull_since(C, 1)
    assert not pulled.requires_full_reload and pulled.deleted_keys == ("gone",)
    assert [d.tx_id for d in pulled.deltas] == ["tx-2", "tx-3"]
    assert pulled.deltas[0].changed_rows == ((1e-07, {"title": "tiny"}),)
    assert math.isnan(pulled.deltas[1].row_metadata_mutations[0].value["x"])
    assert adapter.pull_since(C, 0).requires_full_reload  # the log's floor moved with it
    assert adapter.apply_committed_tx(C, CommittedTx(tx_id="again", term=1, seq=1)) is False  # pruned watermark
    after = adapter.apply_local(C, [Mutation.insert("b", {"title": "B"})])
    assert (after.latest_term, after.latest_seq, after.latest_row_version) == (1, 4, 4)
    deleted_at: Any = driver.query(f'SELECT deleted_at FROM "{table_names(C)[1]}"')[0]["deleted_at"]
    assert deleted_at == "2023-11-14T22:13:20.000Z"
    assert driver.query("SELECT scope, version FROM schema_version") == [{"scope": "global", "version": 2}]
    adapter.close()
