"""Adapter contract, writes: apply_committed_tx, metadata, truncate, pruning, pull_since, ids, keys."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from collections_support import FakeClock, Harness
from persistence.collections import (
    CollectionAdapter, CommittedTx, ConfigError, InvalidKeyError, MetadataMutation, Mutation, SQLiteDriver,
    StorageFormatError, ValueEncodingError, table_names,
)

C = "todos"


def tx(seq: int, *mutations: Mutation, term: int = 1, **kw: Any) -> CommittedTx:
    return CommittedTx(tx_id=f"tx-{term}-{seq}", term=term, seq=seq, mutations=mutations, **kw)


def rows(adapter: CollectionAdapter, collection: str = C) -> dict[Any, Any]:
    return {r.key: r.value for r in adapter.load_subset(collection)}


def count(driver: SQLiteDriver, sql: str, params: list[Any] | None = None) -> int:
    return int(driver.query(sql, params or [])[0]["n"])


class FailAfter:
    """A driver whose transaction driver fails the n-th ``run`` (storage failing mid-transaction)."""

    def __init__(self, inner: SQLiteDriver, n: int) -> None:
        self.inner, self.left = inner, n

    def exec(self, sql: str) -> None:
        self.inner.exec(sql)

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return self.inner.query(sql, params)

    def run(self, sql: str, params: Any = ()) -> None:
        self.left -= 1
        if self.left < 0:
            raise OSError("disk I/O error (injected)")
        self.inner.run(sql, params)

    def transaction(self, fn: Callable[[Any], Any]) -> Any:
        return self.inner.transaction(lambda d: fn(FailAfter._view(self, d)))

    @staticmethod
    def _view(owner: FailAfter, d: SQLiteDriver) -> Any:
        view = FailAfter(d, 0)
        view.__dict__["left"] = owner.left

        def run(sql: str, params: Any = ()) -> None:
            owner.left -= 1
            if owner.left < 0:
                raise OSError("disk I/O error (injected)")
            d.run(sql, params)

        view.run = run  # type: ignore[method-assign]
        view.transaction = lambda fn: d.transaction(lambda inner: fn(FailAfter._view(owner, inner)))  # type: ignore[method-assign]
        return view


def test_apply_is_idempotent_on_term_and_seq(adapter: CollectionAdapter) -> None:
    first = tx(1, Mutation.insert("a", {"n": 1}))
    assert adapter.apply_committed_tx(C, first) is True
    replay = tx(1, Mutation.insert("a", {"n": 99}), Mutation.insert("b", {"n": 2}))
    assert adapter.apply_committed_tx(C, replay) is False
    assert rows(adapter) == {"a": {"n": 1}}
    assert adapter.get_stream_position(C).latest_row_version == 1


def test_apply_stays_idempotent_after_the_log_entry_was_pruned(make_adapter: Callable[..., CollectionAdapter],
                                                                driver: SQLiteDriver) -> None:
    adapter = make_adapter(applied_tx_prune_max_rows=2)
    for seq in range(1, 6):
        adapter.apply_committed_tx(C, tx(seq, Mutation.insert(f"k{seq}", {"n": seq})))
    assert count(driver, "SELECT COUNT(*) AS n FROM applied_tx") == 2
    assert adapter.apply_committed_tx(C, tx(1, Mutation.delete("k1"))) is False
    assert "k1" in rows(adapter)


def test_inserts_replace_updates_merge_shallowly_and_deletes_leave_tombstones(
        adapter: CollectionAdapter, driver: SQLiteDriver) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {"x": 1, "y": {"deep": 1}}),
                                     Mutation.insert("b", {"x": 2})))
    adapter.apply_committed_tx(C, tx(2, Mutation.update("a", {"y": {"other": 2}, "z": 3}),
                                     Mutation.insert("b", {"only": True}),
                                     Mutation.update("new", {"made": "by update"})))
    adapter.apply_committed_tx(C, tx(3, Mutation.delete("b", {"only": True})))
    assert rows(adapter) == {"a": {"x": 1, "y": {"other": 2}, "z": 3}, "new": {"made": "by update"}}
    tombstones = driver.query(f'SELECT key, row_version FROM "{table_names(C)[1]}"')
    assert tombstones == [{"key": "s:b", "row_version": 3}]
    adapter.apply_committed_tx(C, tx(4, Mutation.insert("b", {"back": 1})))
    assert count(driver, f'SELECT COUNT(*) AS n FROM "{table_names(C)[1]}"') == 0


def test_row_versions_advance_per_transaction_and_honour_the_floor(adapter: CollectionAdapter,
                                                                   driver: SQLiteDriver) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {})))
    adapter.apply_committed_tx(C, tx(2, Mutation.insert("b", {}), row_version=10))
    adapter.apply_committed_tx(C, tx(3, Mutation.insert("c", {}), row_version=4))
    got = driver.query(f'SELECT key, row_version FROM "{table_names(C)[0]}" ORDER BY key')
    assert got == [{"key": "s:a", "row_version": 1}, {"key": "s:b", "row_version": 10},
                   {"key": "s:c", "row_version": 11}]


def test_a_failing_mutation_leaves_nothing_behind(adapter: CollectionAdapter, driver: SQLiteDriver) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {"n": 1})))
    bad = tx(2, Mutation.insert("b", {"n": 2}), Mutation.update("a", {"n": 5}), Mutation.insert("c", {"s": {1}}))
    with pytest.raises(ValueEncodingError, match=r"^cannot store mutations\[2\]\.value of type 'set' at \$\.s$"):
        adapter.apply_committed_tx(C, bad)
    with pytest.raises(InvalidKeyError, match=r"^collection key must be a finite number or a string, got nan$"):
        adapter.apply_committed_tx(C, tx(2, Mutation.insert("b", {}), Mutation.insert(float("nan"), {})))
    assert rows(adapter) == {"a": {"n": 1}}
    assert adapter.get_stream_position(C).latest_seq == 1


def test_a_storage_failure_mid_transaction_rolls_everything_back(harness: Harness, driver: SQLiteDriver,
                                                                 clock: FakeClock) -> None:
    CollectionAdapter(driver, clock=clock).apply_committed_tx(C, tx(1, Mutation.insert("a", {"n": 1})))
    for fail_at in range(0, 9):
        flaky = CollectionAdapter(FailAfter(driver, fail_at), clock=clock)  # type: ignore[arg-type]
        big = tx(2, Mutation.insert("b", {}), Mutation.delete("a"), Mutation.insert("c", {}),
                 collection_metadata_mutations=[MetadataMutation.set("cursor", 7)])
        with pytest.raises(OSError, match=r"^disk I/O error \(injected\)$"):
            flaky.apply_committed_tx(C, big)
        flaky.close()
    check = CollectionAdapter(driver, clock=clock)
    assert rows(check) == {"a": {"n": 1}}
    assert check.load_collection_metadata(C) == {}
    assert check.pull_since(C, 0).changed_keys == ("a",)
    check.close()


def test_row_and_collection_metadata_are_persisted_and_merged_by_rule(adapter: CollectionAdapter) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {"n": 1}, metadata={"etag": "1"}),
                                     Mutation.insert("b", {"n": 2}),
                                     collection_metadata_mutations=[MetadataMutation.set("resume", {"offset": 5}),
                                                                    MetadataMutation.set("gone", 1)]))
    adapter.apply_committed_tx(C, tx(2, Mutation.update("a", {"n": 3}), Mutation.insert("b", {"n": 4}),
                                     row_metadata_mutations=[MetadataMutation.set("b", [1, 2])],
                                     collection_metadata_mutations=[MetadataMutation.delete("gone")]))
    loaded = {r.key: r.metadata for r in adapter.load_subset(C)}
    assert loaded == {"a": {"etag": "1"}, "b": [1, 2]}
    adapter.apply_committed_tx(C, tx(3, row_metadata_mutations=[MetadataMutation.delete("a")]))
    assert [r.key for r in adapter.scan_rows(C, metadata_only=True)] == ["b"]
    assert adapter.load_collection_metadata(C) == {"resume": {"offset": 5}}


def test_truncate_clears_rows_and_tombstones_then_applies_the_mutations(adapter: CollectionAdapter,
                                                                         driver: SQLiteDriver) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {}), Mutation.insert("b", {})))
    adapter.apply_committed_tx(C, tx(2, Mutation.delete("a")))
    adapter.apply_committed_tx(C, tx(3, Mutation.insert("c", {"fresh": True}), truncate=True))
    assert rows(adapter) == {"c": {"fresh": True}}
    assert count(driver, f'SELECT COUNT(*) AS n FROM "{table_names(C)[1]}"') == 0
    assert adapter.pull_since(C, 2).requires_full_reload is True
    assert adapter.pull_since(C, 3).requires_full_reload is False


def test_pull_since_returns_changed_and_deleted_keys_and_replayable_deltas(adapter: CollectionAdapter) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {"n": 1}), Mutation.insert(1, {"n": 0})))
    adapter.apply_committed_tx(C, tx(2, Mutation.update("a", {"m": 2}), Mutation.insert("b", {}),
                                     Mutation.delete("b"), Mutation.delete(1),
                                     collection_metadata_mutations=[MetadataMutation.set("k", "v")]))
    result = adapter.pull_since(C, 1)
    assert result.requires_full_reload is False and result.latest_row_version == 2
    assert result.changed_keys == ("a",)
    assert set(result.deleted_keys) == {1, "b"}
    (delta,) = result.deltas
    assert delta.tx_id == "tx-1-2" and delta.latest_row_version == 2
    assert delta.changed_rows == (("a", {"n": 1, "m": 2}),)
    assert set(delta.deleted_keys) == {"b", 1}
    assert delta.collection_metadata_mutations == (MetadataMutation.set("k", "v"),)
    assert adapter.pull_since(C, 2) == type(result)(latest_row_version=2, requires_full_reload=False)


def test_pull_since_requires_a_full_reload_when_the_log_does_not_reach_back(
        make_adapter: Callable[..., CollectionAdapter]) -> None:
    adapter = make_adapter(applied_tx_prune_max_rows=2)
    for seq in range(1, 5):
        adapter.apply_committed_tx(C, tx(seq, Mutation.insert(f"k{seq}", {})))
    assert adapter.pull_since(C, 1).requires_full_reload is True
    assert adapter.pull_since(C, 2).requires_full_reload is False
    assert adapter.pull_since(C, 2).changed_keys == ("k3", "k4")


def test_pull_since_requires_a_full_reload_when_the_change_is_too_large(
        make_adapter: Callable[..., CollectionAdapter]) -> None:
    adapter = make_adapter(pull_since_reload_threshold=3)
    adapter.apply_committed_tx(C, tx(1, *[Mutation.insert(i, {}) for i in range(4)]))
    adapter.apply_committed_tx(C, tx(2, Mutation.insert("x", {})))
    assert adapter.pull_since(C, 0).requires_full_reload is True
    assert adapter.pull_since(C, 1).changed_keys == ("x",)


def test_replay_log_is_pruned_by_count_and_by_age(make_adapter: Callable[..., CollectionAdapter],
                                                  driver: SQLiteDriver, clock: FakeClock) -> None:
    adapter = make_adapter(applied_tx_prune_max_rows=3, applied_tx_prune_max_age_seconds=3600)
    for seq in range(1, 6):
        adapter.apply_committed_tx(C, tx(seq, Mutation.insert(seq, {})))
    assert [r["seq"] for r in driver.query("SELECT seq FROM applied_tx ORDER BY seq")] == [3, 4, 5]
    clock.advance(3601)
    adapter.apply_committed_tx(C, tx(6, Mutation.insert(6, {})))
    assert [r["seq"] for r in driver.query("SELECT seq FROM applied_tx ORDER BY seq")] == [6]
    assert adapter.pull_since(C, 4).requires_full_reload is True
    assert adapter.pull_since(C, 5).changed_keys == (6,)


def test_pruning_can_be_disabled(make_adapter: Callable[..., CollectionAdapter], driver: SQLiteDriver,
                                 clock: FakeClock) -> None:
    adapter = make_adapter(applied_tx_prune_max_rows=0, applied_tx_prune_max_age_seconds=0)
    for seq in range(1, 31):
        clock.advance(100_000)  # each entry is older than the default 24 h by the next write
        adapter.apply_committed_tx(C, tx(seq))
    assert count(driver, "SELECT COUNT(*) AS n FROM applied_tx") == 30


def test_number_and_string_keys_are_distinct_rows(adapter: CollectionAdapter) -> None:
    adapter.apply_committed_tx(C, tx(1, Mutation.insert(1, {"t": "n"}), Mutation.insert("1", {"t": "s"}),
                                     Mutation.insert(1.5, {"t": "f"})))
    adapter.apply_committed_tx(C, tx(2, Mutation.update(1.0, {"u": 1})))
    assert rows(adapter) == {1: {"t": "n", "u": 1}, "1": {"t": "s"}, 1.5: {"t": "f"}}
    assert adapter.get(C, "1").value == {"t": "s"}  # type: ignore[union-attr]
    assert adapter.get(C, 2) is None


@pytest.mark.parametrize("hostile", [
    'x"; DROP TABLE collection_registry; --', "it's", "_cf_KV", "a" * 5_000, "🙂/../\x00zero", " ", "c_0",
])
def test_hostile_collection_ids_get_their_own_safe_tables(adapter: CollectionAdapter, hostile: str) -> None:
    adapter.apply_committed_tx(hostile, tx(1, Mutation.insert("k", {"id": hostile})))
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("k", {"id": C})))
    assert rows(adapter, hostile) == {"k": {"id": hostile}}
    assert rows(adapter) == {"k": {"id": C}}
    assert table_names(hostile)[0].startswith("c_") and table_names(hostile)[0].isidentifier()


@pytest.mark.parametrize("bad", ["", None, 5])
def test_collection_id_must_be_a_non_empty_string(adapter: CollectionAdapter, bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"^collection_id must be a non-empty str, got "):
        adapter.load_subset(bad)


@pytest.mark.parametrize("field,value", [("term", -1), ("seq", 2**53), ("row_version", 1.5), ("term", True)])
def test_transaction_counters_must_be_safe_non_negative_ints(adapter: CollectionAdapter, field: str,
                                                             value: Any) -> None:
    fields = {"tx_id": "t", "term": 1, "seq": 1, field: value}
    with pytest.raises(ConfigError, match=rf"^CommittedTx\.{field} must be an int in \[0, 2\*\*53\), got "):
        adapter.apply_committed_tx(C, CommittedTx(**fields))


def test_concurrent_first_loads_register_each_collection_once(harness: Harness, driver: SQLiteDriver,
                                                              clock: FakeClock) -> None:
    adapters = [CollectionAdapter(driver, clock=clock) for _ in range(6)]
    barrier = threading.Barrier(len(adapters))
    errors: list[BaseException] = []

    def first_load(i: int, adapter: CollectionAdapter) -> None:
        try:
            barrier.wait(5)
            for name in ("shared", f"own-{i % 2}"):
                adapter.load_subset(name)
                adapter.apply_committed_tx(name, tx(i + 1, Mutation.insert(i, {"by": i})))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_load, args=(i, a)) for i, a in enumerate(adapters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert count(driver, "SELECT COUNT(*) AS n FROM collection_registry") == 3
    assert sorted(rows(adapters[0], "shared")) == list(range(6))
    for a in adapters:
        a.close()


def test_writes_survive_closing_and_reopening_the_file(harness: Harness, clock: FakeClock) -> None:
    first = harness.open()
    adapter = CollectionAdapter(first, clock=clock)
    adapter.apply_committed_tx(C, tx(1, Mutation.insert("a", {"n": 1}, metadata="m"),
                                     collection_metadata_mutations=[MetadataMutation.set("k", 1)]))
    adapter.close()
    harness.close(first)
    second = harness.open()
    again = CollectionAdapter(second, clock=clock)
    assert [(r.key, r.value, r.metadata) for r in again.load_subset(C)] == [("a", {"n": 1}, "m")]
    assert again.load_collection_metadata(C) == {"k": 1}
    assert again.apply_committed_tx(C, tx(1, Mutation.insert("b", {}))) is False
    again.close()


def test_apply_local_assigns_the_next_sequence_number(adapter: CollectionAdapter) -> None:
    first = adapter.apply_local(C, [Mutation.insert("a", {"n": 1})])
    second = adapter.apply_local(C, [Mutation.update("a", {"m": 2})])
    assert (first.latest_term, first.latest_seq, second.latest_seq) == (1, 1, 2)
    assert second.latest_row_version == 2
    assert rows(adapter) == {"a": {"n": 1, "m": 2}}


def test_first_loads_from_separate_connections_to_one_file_agree(tmp_path: Any, clock: FakeClock) -> None:
    from persistence.collections import ApswDriver

    path = str(tmp_path / "shared.sqlite")
    drivers = [ApswDriver.open(path) for _ in range(4)]
    barrier = threading.Barrier(len(drivers))
    errors: list[BaseException] = []

    def first_load(i: int) -> None:
        adapter = CollectionAdapter(drivers[i], clock=clock)
        try:
            barrier.wait(5)
            adapter.load_subset(C)
            adapter.apply_committed_tx(C, tx(i + 1, Mutation.insert(i, {})))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            adapter.close()

    threads = [threading.Thread(target=first_load, args=(i,)) for i in range(len(drivers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    check = CollectionAdapter(drivers[0], clock=clock)
    assert sorted(rows(check)) == [0, 1, 2, 3]
    assert count(drivers[0], "SELECT COUNT(*) AS n FROM collection_registry") == 1
    check.close()
    for d in drivers:
        d.close()


def test_two_ids_with_tanstacks_same_table_name_are_refused_not_shared(adapter: CollectionAdapter,
                                                                         driver: SQLiteDriver) -> None:
    # TanStack's names carry 32 bits of FNV-1a: these two ids (same length) share c_bvigqoa_a.
    first, second = "id-0412299", "id-1522232"
    assert table_names(first) == table_names(second)
    adapter.apply_committed_tx(first, tx(1, Mutation.insert("k", {"id": first})))
    with pytest.raises(StorageFormatError, match=r"^collection ids 'id-1522232' and 'id-0412299' hash to the same "
                                                 r"table 'c_bvigqoa_a'$"):
        adapter.apply_committed_tx(second, tx(1, Mutation.insert("k", {"id": second})))
    assert rows(adapter, first) == {"k": {"id": first}}
    assert count(driver, "SELECT COUNT(*) AS n FROM collection_registry WHERE collection_id = ?", [second]) == 0
