"""Schema versions at object start: reset for sync-present, error for sync-absent, explicit overrides."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from collections_support import FakeClock, Harness
from persistence.collections import (
    CollectionAdapter, CollectionMode, CollectionPersistence, CollectionSpec, CommittedTx, ConfigError,
    IndexSpec, MetadataMutation, Mutation, SchemaMismatchPolicy, SchemaVersionMismatchError, SQLiteDriver,
    ref, table_names,
)
from test_collections_adapter_writes import FailAfter

PRESENT = CollectionMode.SYNC_PRESENT
ABSENT = CollectionMode.SYNC_ABSENT


def restart(harness: Harness, driver: SQLiteDriver) -> SQLiteDriver:
    harness.close(driver)
    return harness.open()


def fill(persistence: CollectionPersistence, cid: str, version: int, mode: CollectionMode) -> None:
    coll = persistence.open([CollectionSpec(id=cid, schema_version=version, mode=mode)])[cid]
    coll.apply_committed_tx(CommittedTx(
        tx_id="t1", term=1, seq=1, mutations=[Mutation.insert("a", {"n": 1}), Mutation.insert("b", {"n": 2})],
        collection_metadata_mutations=[MetadataMutation.set("resume", {"offset": 9})]))
    coll.apply_committed_tx(CommittedTx(tx_id="t2", term=1, seq=2, mutations=[Mutation.delete("b")]))
    coll.ensure_index("by-n", IndexSpec(expressions=(ref("n"),)))


def count(driver: SQLiteDriver, sql: str) -> int:
    return int(driver.query(sql)[0]["n"])


@pytest.fixture
def persistence_on(clock: FakeClock) -> Any:
    made: list[CollectionPersistence] = []

    def make(driver: SQLiteDriver, **options: Any) -> CollectionPersistence:
        p = CollectionPersistence(driver, clock=clock, **options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_sync_present_mismatch_resets_the_collection_in_one_transaction(harness: Harness, driver: SQLiteDriver,
                                                                        persistence_on: Any) -> None:
    fill(persistence_on(driver), "todos", 1, PRESENT)
    driver = restart(harness, driver)
    coll = persistence_on(driver).open([CollectionSpec(id="todos", schema_version=2, mode=PRESENT)])["todos"]
    assert coll.load_subset() == []
    assert coll.metadata() == {}
    position = coll.stream_position()
    assert (position.reset_epoch, position.latest_term, position.latest_seq) == (1, 0, 0)
    assert position.latest_row_version == 3  # monotonic: the reset itself is a change
    assert coll.pull_since(2).requires_full_reload is True
    rows, tombstones = table_names("todos")
    assert count(driver, f'SELECT COUNT(*) AS n FROM "{tombstones}"') == 0
    assert count(driver, "SELECT COUNT(*) AS n FROM applied_tx") == 0
    assert count(driver, "SELECT COUNT(*) AS n FROM persisted_index_registry") == 0
    assert count(driver, "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND name LIKE 'i%'") == 0
    assert driver.query("SELECT schema_version FROM collection_registry") == [{"schema_version": 2}]
    coll.apply_committed_tx(CommittedTx(tx_id="re", term=1, seq=1, mutations=[Mutation.insert("z", {})]))
    assert [r.key for r in coll.load_subset()] == ["z"]  # term/seq restart after a reset


def test_sync_absent_mismatch_is_an_error_and_changes_nothing(harness: Harness, driver: SQLiteDriver,
                                                              persistence_on: Any) -> None:
    fill(persistence_on(driver), "notes", 1, ABSENT)
    driver = restart(harness, driver)
    persistence = persistence_on(driver)
    with pytest.raises(SchemaVersionMismatchError, match=r'^Schema version mismatch for collection "notes": found 1, '
                                                         r'expected 2\. Set schema_mismatch_policy to "reset" to '
                                                         r'allow automatic reset\.$') as info:
        persistence.open([CollectionSpec(id="notes", schema_version=2)])
    assert (info.value.found, info.value.expected) == (1, 2)
    same = persistence.open([CollectionSpec(id="notes", schema_version=1)])["notes"]
    assert [r.key for r in same.load_subset()] == ["a"]
    assert same.metadata() == {"resume": {"offset": 9}}
    assert same.stream_position().reset_epoch == 0


def test_a_lazy_handle_checks_the_version_on_first_use(driver: SQLiteDriver, persistence_on: Any) -> None:
    fill(persistence_on(driver), "notes", 1, ABSENT)
    handle = persistence_on(driver).collection("notes", schema_version=3)
    with pytest.raises(SchemaVersionMismatchError, match=r'^Schema version mismatch for collection "notes": '
                                                         r'found 1, expected 3\. '):
        handle.insert("x", {})
    assert handle.adapter.policy is SchemaMismatchPolicy.ERROR


@pytest.mark.parametrize("mode,policy,resets", [
    (ABSENT, "reset", True), (PRESENT, "error", False), (ABSENT, "sync-present-reset", True),
    (PRESENT, "throw", False), (PRESENT, None, True), (ABSENT, None, False),
])
def test_an_explicit_policy_overrides_the_inferred_one(driver: SQLiteDriver, persistence_on: Any,
                                                       mode: CollectionMode, policy: Any, resets: bool) -> None:
    fill(persistence_on(driver), "c", 1, mode)
    spec = CollectionSpec(id="c", schema_version=2, mode=mode, schema_mismatch_policy=policy)
    if resets:
        assert persistence_on(driver).open([spec])["c"].load_subset() == []
    else:
        with pytest.raises(SchemaVersionMismatchError):
            persistence_on(driver).open([spec])


def test_a_persistence_wide_policy_applies_to_every_collection(driver: SQLiteDriver, persistence_on: Any) -> None:
    fill(persistence_on(driver), "c", 1, ABSENT)
    reset_all = persistence_on(driver, schema_mismatch_policy="reset")
    assert reset_all.open([CollectionSpec(id="c", schema_version=5)])["c"].load_subset() == []


def test_open_is_all_or_nothing_across_collections(driver: SQLiteDriver, persistence_on: Any) -> None:
    fill(persistence_on(driver), "synced", 1, PRESENT)
    fill(persistence_on(driver), "local", 1, ABSENT)
    with pytest.raises(SchemaVersionMismatchError, match=r'^Schema version mismatch for collection "local"'):
        persistence_on(driver).open([CollectionSpec(id="synced", schema_version=2, mode=PRESENT),
                                     CollectionSpec(id="local", schema_version=2, mode=ABSENT)])
    still = persistence_on(driver).open([CollectionSpec(id="synced", schema_version=1, mode=PRESENT)])
    assert [r.key for r in still["synced"].load_subset()] == ["a"]


def test_a_reset_that_fails_midway_changes_nothing(driver: SQLiteDriver, persistence_on: Any,
                                                   clock: FakeClock) -> None:
    fill(persistence_on(driver), "c", 1, PRESENT)
    for fail_at in range(8):
        flaky = CollectionPersistence(FailAfter(driver, fail_at), clock=clock)  # type: ignore[arg-type]
        with pytest.raises(OSError, match=r"^disk I/O error \(injected\)$"):
            flaky.open([CollectionSpec(id="c", schema_version=2, mode=PRESENT)])
        flaky.close()
    kept = persistence_on(driver).open([CollectionSpec(id="c", schema_version=1, mode=PRESENT)])["c"]
    assert [r.key for r in kept.load_subset()] == ["a"]
    assert kept.stream_position().reset_epoch == 0


def test_a_stale_adapter_refuses_to_work_after_another_reset_the_collection(driver: SQLiteDriver,
                                                                           clock: FakeClock) -> None:
    old = CollectionAdapter(driver, schema_version=1, clock=clock)
    old.apply_local("c", [Mutation.insert("a", {})])
    new = CollectionAdapter(driver, schema_version=2, schema_mismatch_policy="reset", clock=clock)
    assert new.load_subset("c") == []
    with pytest.raises(SchemaVersionMismatchError, match=r'^Schema version mismatch for collection "c": found 2, '
                                                         r"expected 1\. Refusing to load persisted rows through a "
                                                         r"stale adapter\.$"):
        old.load_subset("c")
    old.close()
    new.close()


def test_schema_versions_and_policies_are_validated(driver: SQLiteDriver) -> None:
    with pytest.raises(ConfigError, match=r"^schema_version must be a non-negative int, got -1$"):
        CollectionAdapter(driver, schema_version=-1)
    with pytest.raises(ConfigError, match=r"^schema_mismatch_policy must be 'reset' or 'error', got 'drop'$"):
        CollectionAdapter(driver, schema_mismatch_policy="drop")
    with pytest.raises(ConfigError, match=r"^mode must be 'sync-present' or 'sync-absent', got 'sometimes'$"):
        CollectionPersistence(driver).collection("c", mode="sometimes")


def test_requests_during_a_reset_see_the_old_or_the_new_state_never_a_mix(driver: SQLiteDriver,
                                                                          persistence_on: Any) -> None:
    before = persistence_on(driver).open([CollectionSpec(id="c", schema_version=1, mode=PRESENT)])["c"]
    before.apply_committed_tx(CommittedTx(tx_id="t", term=1, seq=1,
                                          mutations=[Mutation.insert(i, {"n": i}) for i in range(300)]))
    old_code = before.adapter  # requests already admitted under the old version
    new_code = persistence_on(driver).adapter(mode=PRESENT, schema_version=2)
    seen_old: list[int] = []
    seen_new: list[int] = []
    stop = threading.Event()

    def burst(adapter: CollectionAdapter, seen: list[int]) -> None:
        while not stop.is_set():
            try:
                seen.append(len(adapter.load_subset("c")))
            except SchemaVersionMismatchError:
                seen.append(-1)  # arrived after the reset: refused whole, never half-read

    threads = [threading.Thread(target=burst, args=(a, s)) for a, s in
               [(old_code, seen_old), (old_code, seen_old), (new_code, seen_new)]]
    for t in threads:
        t.start()
    after = persistence_on(driver).open([CollectionSpec(id="c", schema_version=2, mode=PRESENT)])["c"]
    after.apply_committed_tx(CommittedTx(tx_id="t", term=1, seq=1, mutations=[Mutation.insert("new", {})]))
    stop.set()
    for t in threads:
        t.join(10)
    assert set(seen_old) <= {300, -1}
    assert set(seen_new) <= {0, 1}
    assert [r.key for r in after.load_subset()] == ["new"]
