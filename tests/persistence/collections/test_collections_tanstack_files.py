"""dohost's collection files are TanStack DB's: checked against TanStack's own package under Node.

TanStack's adapter (``@tanstack/db-sqlite-persistence-core``, see ``tanstack_node``)
writes a SQLite file that dohost's layer opens and reads, and the other way
round; table and index names are compared with the ones TanStack's functions
compute, and the schema of a fresh collection with the one TanStack creates.
"""

from __future__ import annotations

import datetime as dt
import math
import pathlib
import re
from typing import Any

import apsw
import pytest

import tanstack_node
from collections_support import FakeClock, Harness
from persistence.collections import (
    CollectionAdapter, CommittedTx, MetadataMutation, Mutation, persisted_table_name, table_names,
)
from persistence.collections._schema import index_name

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc
C = "todos"
HOSTILE_IDS = ["todos", "a", "Todos", "ça va", "日本語のコレクション", "emoji 😀🎉", "x" * 300, "quote'\";-- drop",
               "\ud800lone", "tab\tnewline\n", "user:42/items", "id-0412299", "id-1522232"]


@pytest.fixture(scope="module")
def modules() -> pathlib.Path:
    return tanstack_node.install()


def _plain_file(path: pathlib.Path) -> None:
    """Leave the file in rollback-journal mode: sql.js (wasm, no shared memory) cannot read WAL."""
    connection = apsw.Connection(str(path))
    connection.execute("PRAGMA journal_mode=DELETE").fetchall()
    connection.close()


def _schema(path: pathlib.Path) -> dict[str, str]:
    connection = apsw.Connection(str(path))
    try:
        found = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
    finally:
        connection.close()
    # Same statements, maybe laid out differently: compare them with whitespace normalised.
    return {name: re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", re.sub(r"\s+", " ", sql))) for name, sql in found}


def test_table_names_are_the_ones_tanstacks_function_computes(modules: pathlib.Path, tmp_path: pathlib.Path) -> None:
    steps = [{"op": "tableName", "id": i, "prefix": p} for i in HOSTILE_IDS for p in ("c", "t")]
    theirs = tanstack_node.run(modules, tmp_path / "names.sqlite", steps)
    ours = [persisted_table_name(i, p) for i in HOSTILE_IDS for p in ("c", "t")]
    assert ours == theirs
    assert table_names("todos") == ("c_bicmgyk_5", "t_bicmgyk_5")
    assert persisted_table_name("id-0412299") == persisted_table_name("id-1522232") == "c_bvigqoa_a"  # 32 bits


def test_keys_are_encoded_as_tanstack_encodes_them(modules: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from persistence.collections import encode_key

    keys: list[Any] = ["a", "", 0, -0.0, 1, -1, 1.5, 0.1, 1e-7, 1.5e-5, 1e21, 1e16, 2**53, float(2**80), -2.5e-300]
    theirs = tanstack_node.run(modules, tmp_path / "keys.sqlite",
                               [{"op": "encodeKey", "key": tanstack_node.to_wire(k)} for k in keys])
    assert [encode_key(k) for k in keys] == theirs
    assert theirs[2:4] == ["n:0", "n:-0"]


def test_index_names_and_the_fresh_schema_are_tanstacks(modules: pathlib.Path, tmp_path: pathlib.Path) -> None:
    theirs, ours = tmp_path / "theirs.sqlite", tmp_path / "ours.sqlite"
    signature = "by Title & date!"
    spec = {"expressionSql": ["json_extract(value, '$.title')"]}
    tanstack_node.run(modules, theirs, [
        {"op": "apply", "collection": C, "tx": {"txId": "t1", "term": 1, "seq": 1, "rowVersion": 1, "mutations": [
            {"type": "insert", "key": "a", "value": {"title": "A"}}]}},
        {"op": "ensureIndex", "collection": C, "signature": signature, "spec": spec},
    ])
    from persistence.collections import ApswDriver, IndexSpec

    driver = ApswDriver.open(str(ours))
    adapter = CollectionAdapter(driver)
    adapter.apply_committed_tx(C, CommittedTx(tx_id="t1", term=1, seq=1, row_version=1,
                                              mutations=[Mutation.insert("a", {"title": "A"})]))
    assert adapter.ensure_index(C, signature, IndexSpec(expressions=("json_extract(value, '$.title')",))) == \
        index_name(C, signature)
    adapter.close()
    driver.close()
    _plain_file(ours)
    mine = _schema(ours)
    assert mine.pop("dohost_collection_stream").startswith("CREATE TABLE dohost_collection_stream")
    assert mine == _schema(theirs)
    assert f"idx_{persisted_table_name(C + ':' + signature)}_by_title_date" in mine


def _tanstack_history() -> list[dict[str, Any]]:
    when = {"$date": "2024-01-02T03:04:05.678Z"}
    return [
        {"op": "apply", "collection": C, "tx": {"txId": "t1", "term": 1, "seq": 1, "rowVersion": 1, "mutations": [
            {"type": "insert", "key": "a", "value": {"title": "A", "big": {"$bigint": "123456789012345678901"},
                                                      "at": when, "nan": {"$num": "NaN"},
                                                      "inf": {"$num": "-Infinity"}, "nested": {"l": [1, None]}}},
            {"type": "insert", "key": 0, "value": {"z": "zero"}},
            {"type": "insert", "key": {"$num": "-0"}, "value": {"z": "minus zero"}},
            {"type": "insert", "key": 1.5, "value": {"z": "one and a half"}},
            {"type": "insert", "key": "gone", "value": {"z": "soon deleted"}},
        ], "collectionMetadataMutations": [{"type": "set", "key": "cursor", "value": {"offset": 7}}]}},
        {"op": "apply", "collection": C, "tx": {"txId": "t2", "term": 1, "seq": 2, "rowVersion": 2, "mutations": [
            {"type": "update", "key": "a", "value": {"done": True}},
            {"type": "delete", "key": "gone", "value": {"z": "soon deleted"}},
        ], "rowMetadataMutations": [{"type": "set", "key": 0, "value": {"etag": "x"}}]}},
    ]


def test_a_file_written_by_tanstack_is_read_and_extended_by_dohost(modules: pathlib.Path, harness: Harness,
                                                                  clock: FakeClock) -> None:
    tanstack_node.run(modules, harness.path, _tanstack_history())
    driver = harness.open()
    adapter = CollectionAdapter(driver, clock=clock)
    loaded = sorted(((r.key, r.value, r.metadata) for r in adapter.load_subset(C)), key=lambda r: repr(r[0]))
    a = next(v for k, v, _ in loaded if k == "a")
    assert a["big"] == 123456789012345678901 and a["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert math.isnan(a["nan"]) and a["inf"] == -math.inf
    assert (a["title"], a["done"], a["nested"]) == ("A", True, {"l": [1, None]})
    zeros = [(k, v, m) for k, v, m in loaded if k == 0]
    assert len(zeros) == 2  # -0 and 0 are two rows, as TanStack wrote them
    assert {math.copysign(1, k): (v, m) for k, v, m in zeros} == {
        1.0: ({"z": "zero"}, {"etag": "x"}), -1.0: ({"z": "minus zero"}, None)}
    assert adapter.get(C, -0.0).value == {"z": "minus zero"} and adapter.get(C, 0).value == {"z": "zero"}
    assert adapter.get(C, 1.5).value == {"z": "one and a half"} and adapter.get(C, "gone") is None
    position = adapter.get_stream_position(C)
    assert (position.latest_term, position.latest_seq, position.latest_row_version) == (1, 2, 2)
    assert adapter.load_collection_metadata(C) == {"cursor": {"offset": 7}}
    pulled = adapter.pull_since(C, 1)
    assert not pulled.requires_full_reload and pulled.deleted_keys == ("gone",)
    assert pulled.deltas[0].tx_id == "t2" and pulled.deltas[0].deleted_keys == ("gone",)
    assert adapter.apply_committed_tx(C, CommittedTx(tx_id="t2", term=1, seq=2)) is False  # TanStack applied it

    # dohost continues the stream; TanStack's package reads what dohost wrote.
    clock.now = dt.datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()
    after = adapter.apply_local(C, [Mutation.insert("b", {"at": dt.datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
                                                       "big": -(2**70)}),
                                 Mutation.delete(1.5)],
                                collection_metadata_mutations=[MetadataMutation.set("cursor", {"offset": 9})])
    assert (after.latest_term, after.latest_seq, after.latest_row_version) == (1, 3, 3)
    adapter.close()
    harness.close(driver)
    _plain_file(harness.path)
    rows, position, pulled, metadata = tanstack_node.run(modules, harness.path, [
        {"op": "loadSubset", "collection": C, "where": ["eq", ["ref", "z"], ["val", "minus zero"]]},
        {"op": "position", "collection": C},
        {"op": "pullSince", "collection": C, "fromRowVersion": 2},
        {"op": "metadata", "collection": C},
    ])
    assert rows == [{"key": -0.0, "value": {"z": "minus zero"}}] and math.copysign(1, rows[0]["key"]) == -1
    assert position == {"latestTerm": 1, "latestSeq": 3, "latestRowVersion": 3}
    assert pulled["requiresFullReload"] is False
    assert (pulled["changedKeys"], pulled["deletedKeys"]) == (["b"], [1.5])
    assert pulled["deltas"][0]["changedRows"] == [{"key": "b", "value": {
        "at": dt.datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC), "big": -(2**70)}}]
    assert metadata == [{"key": "cursor", "value": {"offset": 9}}]
    tombstone = _tombstone(harness.path, 1.5)
    assert tombstone == "2024-03-04T05:06:07.000Z"  # deleted_at is Date.toISOString() text, as TanStack writes


def _tombstone(path: pathlib.Path, key: Any) -> Any:
    from persistence.collections import encode_key

    connection = apsw.Connection(str(path))
    try:
        return connection.execute(f'SELECT deleted_at FROM "{table_names(C)[1]}" WHERE key = ?',
                                  (encode_key(key),)).fetchall()[0][0]
    finally:
        connection.close()


def test_values_dohost_writes_read_back_in_tanstack_as_the_same_values(modules: pathlib.Path,
                                                                       tmp_path: pathlib.Path) -> None:
    from persistence.collections import ApswDriver

    path = tmp_path / "values.sqlite"
    driver = ApswDriver.open(str(path))
    adapter = CollectionAdapter(driver)
    value = {"s": "x", "i": 2**53, "big": 2**64, "f": 0.5, "nan": math.nan, "inf": math.inf, "ninf": -math.inf,
             "at": dt.datetime(2020, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
             "day": dt.date(2021, 1, 2), "list": [True, None, {"k": [1.25]}]}
    adapter.apply_committed_tx(C, CommittedTx(tx_id="d1", term=3, seq=1, mutations=[Mutation.insert(7, value)]))
    adapter.close()
    driver.close()
    _plain_file(path)
    (row,) = tanstack_node.run(modules, path, [{"op": "scanRows", "collection": C}])[0]
    got = row["value"]
    assert row["key"] == 7
    assert math.isnan(got.pop("nan"))
    assert got == {"s": "x", "i": 2**53, "big": 2**64, "f": 0.5, "inf": math.inf, "ninf": -math.inf,
                   "at": dt.datetime(2020, 5, 6, 5, 8, 9, 123000, tzinfo=UTC),  # a Date: UTC, milliseconds
                   "day": dt.datetime(2021, 1, 2, tzinfo=UTC), "list": [True, None, {"k": [1.25]}]}


def test_after_tanstack_wrote_dohost_trusts_tanstacks_tables_not_its_own_stale_state(
        modules: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from persistence.collections import ApswDriver

    path = tmp_path / "interleaved.sqlite"

    def dohost(step: Any) -> Any:
        driver = ApswDriver.open(str(path))
        adapter = CollectionAdapter(driver)
        try:
            return step(adapter)
        finally:
            adapter.close()
            driver.close()
            _plain_file(path)

    dohost(lambda a: a.apply_local(C, [Mutation.insert("x", {"n": 1})]))
    dohost(lambda a: a.apply_local(C, [Mutation.insert("y", {"n": 2})]))
    tanstack_node.run(modules, path, [{"op": "apply", "collection": C, "tx": {
        "txId": "leader-2", "term": 2, "seq": 1, "rowVersion": 10,
        "mutations": [{"type": "update", "key": "x", "value": {"n": 3}}]}}])
    position = dohost(lambda a: a.get_stream_position(C))
    assert (position.latest_term, position.latest_seq, position.latest_row_version) == (2, 1, 10)
    after = dohost(lambda a: a.apply_local(C, [Mutation.delete("y")]))
    assert (after.latest_term, after.latest_seq, after.latest_row_version) == (2, 2, 11)
    pulled = dohost(lambda a: a.pull_since(C, 2))
    assert not pulled.requires_full_reload and [d.tx_id for d in pulled.deltas][0] == "leader-2"
    assert (pulled.changed_keys, pulled.deleted_keys) == (("x",), ("y",))
    assert dohost(lambda a: a.pull_since(C, 0)).requires_full_reload is False  # nothing pruned: log complete
    (state,) = tanstack_node.run(modules, path, [{"op": "position", "collection": C}])
    assert state == {"latestTerm": 2, "latestSeq": 2, "latestRowVersion": 11}
