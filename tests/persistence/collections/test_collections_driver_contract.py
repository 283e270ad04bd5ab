"""The SQLiteDriver contract, run against every driver (TanStack's driver contract suite, synchronous)."""

from __future__ import annotations

import threading

import pytest

from persistence.collections import DriverContractError, SQLiteDriver

CALLBACK_MESSAGE = r"^SQLiteDriver\.transaction callback must accept the transaction driver argument$"


def values(driver: SQLiteDriver, table: str = "events") -> list[int]:
    return [r["value"] for r in driver.query(f"SELECT value FROM {table} ORDER BY rowid")]


def test_drivers_satisfy_the_protocol(driver: SQLiteDriver) -> None:
    assert isinstance(driver, SQLiteDriver)


def test_run_and_query_bind_parameters_and_return_dict_rows(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE todos (id TEXT PRIMARY KEY, title TEXT NOT NULL, score INTEGER NOT NULL)")
    driver.run("INSERT INTO todos (id, title, score) VALUES (?, ?, ?)", ["1", "First", 10])
    driver.run("INSERT INTO todos (id, title, score) VALUES (?, ?, ?)", ["2", "Second", 20])
    rows = driver.query("SELECT id, title FROM todos WHERE score >= ? ORDER BY score ASC", [10])
    assert rows == [{"id": "1", "title": "First"}, {"id": "2", "title": "Second"}]
    assert all(type(r) is dict for r in rows)


def test_query_after_exec_and_run_writes_returns_exact_rows(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE w (id TEXT PRIMARY KEY, title TEXT NOT NULL, score INTEGER NOT NULL)")
    driver.run("INSERT INTO w (id, title, score) VALUES (?, ?, ?)", ["run-row", "Inserted by run", 17])
    driver.exec("INSERT INTO w (id, title, score) VALUES ('exec-row', 'Inserted by exec', 29)")
    assert driver.query("SELECT title, id, score FROM w ORDER BY score DESC") == [
        {"title": "Inserted by exec", "id": "exec-row", "score": 29},
        {"title": "Inserted by run", "id": "run-row", "score": 17},
    ]


def test_query_keeps_aliases_that_look_like_result_fields_in_column_order(driver: SQLiteDriver) -> None:
    rows = driver.query(
        "SELECT 'rows-value' AS \"rows\", 'cn' AS \"columnNames\", 7 AS \"rowsAffected\", 8 AS \"changes\", "
        "9 AS \"lastInsertRowId\"")
    assert rows == [{"rows": "rows-value", "columnNames": "cn", "rowsAffected": 7, "changes": 8,
                     "lastInsertRowId": 9}]
    assert list(rows[0]) == ["rows", "columnNames", "rowsAffected", "changes", "lastInsertRowId"]


def test_query_without_rows_returns_an_empty_list(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE e (value INTEGER)")
    assert driver.query("SELECT value FROM e") == []


def test_transaction_commits_and_returns_the_callback_value(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def work(tx: SQLiteDriver) -> str:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        return "done"

    assert driver.transaction(work) == "done"
    assert values(driver) == [1]


def test_transaction_rolls_back_when_callback_raises(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def work(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match=r"^boom$"):
        driver.transaction(work)
    assert values(driver) == []


def test_nested_transaction_failure_rolls_back_only_the_inner_part(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def inner(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [2])
        raise RuntimeError("inner failure")

    def outer(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        with pytest.raises(RuntimeError, match=r"^inner failure$"):
            tx.transaction(inner)
        tx.run("INSERT INTO events (value) VALUES (?)", [3])

    driver.transaction(outer)
    assert values(driver) == [1, 3]


def test_nested_transaction_commits_with_the_outer_and_rolls_back_with_it(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def outer(tx: SQLiteDriver) -> None:
        tx.transaction(lambda inner: inner.run("INSERT INTO events (value) VALUES (?)", [1]))
        raise RuntimeError("outer failure")

    with pytest.raises(RuntimeError, match=r"^outer failure$"):
        driver.transaction(outer)
    assert values(driver) == []
    driver.transaction(lambda tx: tx.transaction(lambda inner: inner.run("INSERT INTO events VALUES (5)")))
    assert values(driver) == [5]


def test_callback_without_the_driver_argument_is_a_contract_error(driver: SQLiteDriver) -> None:
    with pytest.raises(DriverContractError, match=CALLBACK_MESSAGE):
        driver.transaction(lambda: None)  # type: ignore[arg-type,misc]


def test_nested_callback_without_the_driver_argument_is_a_contract_error(driver: SQLiteDriver) -> None:
    def outer(tx: SQLiteDriver) -> None:
        tx.transaction(lambda: None)  # type: ignore[arg-type,misc]

    with pytest.raises(DriverContractError, match=CALLBACK_MESSAGE):
        driver.transaction(outer)


def test_callbacks_taking_varargs_or_a_defaulted_parameter_are_accepted(driver: SQLiteDriver) -> None:
    assert driver.transaction(lambda *args: len(args)) == 1

    def with_default(tx: SQLiteDriver | None = None) -> bool:
        return tx is not None

    assert driver.transaction(with_default) is True


def test_outer_driver_used_inside_its_own_transaction_is_a_contract_error(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def work(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        driver.run("INSERT INTO events (value) VALUES (?)", [2])

    with pytest.raises(DriverContractError, match=r"^SQLiteDriver\.run was called on the outer driver while "
                                                  r"its transaction is running in this thread; .*deadlock\)$"):
        driver.transaction(work)
    assert values(driver) == []


def test_enclosing_transaction_driver_refuses_calls_while_a_nested_one_runs(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")

    def outer(tx: SQLiteDriver) -> None:
        def inner(nested: SQLiteDriver) -> None:
            tx.query("SELECT 1 AS one")

        with pytest.raises(DriverContractError, match=r"^SQLiteDriver\.query was called on an enclosing "
                                                      r"transaction driver while a nested transaction is running"):
            tx.transaction(inner)
        tx.run("INSERT INTO events (value) VALUES (?)", [1])

    driver.transaction(outer)
    assert values(driver) == [1]


def test_transaction_driver_used_after_its_transaction_ended_is_a_contract_error(driver: SQLiteDriver) -> None:
    kept = driver.transaction(lambda tx: tx)
    with pytest.raises(DriverContractError, match=r"^SQLiteDriver\.exec was called on a transaction driver "
                                                  r"after its transaction ended$"):
        kept.exec("CREATE TABLE t (x)")


def test_write_from_another_thread_waits_for_the_running_transaction(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")
    entered = threading.Event()
    release = threading.Event()
    outside_done = threading.Event()

    def work(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        entered.set()
        release.wait(5)
        tx.run("INSERT INTO events (value) VALUES (?)", [2])

    def outside() -> None:
        entered.wait(5)
        driver.run("INSERT INTO events (value) VALUES (?)", [3])
        outside_done.set()

    writer = threading.Thread(target=outside)
    writer.start()
    holder = threading.Thread(target=lambda: driver.transaction(work))
    holder.start()
    entered.wait(5)
    assert not outside_done.wait(0.05)  # blocked on the gate, not interleaved
    release.set()
    holder.join(5)
    writer.join(5)
    assert values(driver) == [1, 2, 3]


def test_outside_write_is_admitted_after_a_held_transaction_rolls_back(driver: SQLiteDriver) -> None:
    driver.exec("CREATE TABLE events (value INTEGER NOT NULL)")
    entered = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def work(tx: SQLiteDriver) -> None:
        tx.run("INSERT INTO events (value) VALUES (?)", [1])
        entered.set()
        release.wait(5)
        raise RuntimeError("held transaction rollback")

    def hold() -> None:
        try:
            driver.transaction(work)
        except RuntimeError as exc:
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    writer = threading.Thread(target=lambda: driver.run("INSERT INTO events (value) VALUES (?)", [3]))
    writer.start()
    writer.join(0.05)
    assert writer.is_alive()  # waiting on the gate, not slipped into the transaction
    release.set()
    holder.join(5)
    writer.join(5)
    assert [str(e) for e in errors] == ["held transaction rollback"]
    assert values(driver) == [3]


def test_transaction_driver_from_another_thread_is_a_contract_error(driver: SQLiteDriver) -> None:
    seen: list[BaseException] = []

    def work(tx: SQLiteDriver) -> None:
        def use() -> None:
            try:
                tx.query("SELECT 1 AS one")
            except DriverContractError as exc:
                seen.append(exc)

        t = threading.Thread(target=use)
        t.start()
        t.join(5)

    driver.transaction(work)
    assert len(seen) == 1
    assert str(seen[0]).startswith("SQLiteDriver.query was called on a transaction driver from another thread")
