"""What each driver does beyond the shared contract: how it reaches its storage."""

from __future__ import annotations

import pathlib
from typing import Any, Callable

import apsw
import pytest

from collections_fake_do import FakeStorage
from persistence.collections import ApswDriver, ConfigError, DurableObjectDriver


class RecordingStorage:
    """A Cloudflare-shaped storage that records the calls the driver makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.sql = self

    def exec(self, query: str, *bindings: Any) -> list[dict[str, Any]]:
        self.calls.append(("exec", (query, bindings)))
        return [{"a": 1}]

    def transactionSync(self, fn: Callable[[], Any]) -> Any:
        self.calls.append(("transactionSync", None))
        try:
            return fn()
        finally:
            self.calls.append(("end", None))


def test_do_driver_runs_transactions_through_transaction_sync_and_nests_them() -> None:
    storage = RecordingStorage()
    driver = DurableObjectDriver(storage)
    driver.transaction(lambda tx: tx.transaction(lambda inner: inner.run("UPDATE t SET a = ?", [1])))
    assert storage.calls == [
        ("transactionSync", None), ("transactionSync", None),
        ("exec", ("UPDATE t SET a = ?", (1,))), ("end", None), ("end", None),
    ]


def test_do_driver_sends_bools_as_integers_and_everything_else_unchanged() -> None:
    storage = RecordingStorage()
    DurableObjectDriver(storage).run("SELECT ?, ?, ?, ?, ?", [True, False, 7, 1.5, "s"])
    assert storage.calls == [("exec", ("SELECT ?, ?, ?, ?, ?", (1, 0, 7, 1.5, "s")))]


def test_do_driver_prefers_the_snake_case_transaction_sync_when_both_exist() -> None:
    storage = RecordingStorage()
    used: list[str] = []
    storage.transaction_sync = lambda fn: used.append("snake") or fn()  # type: ignore[attr-defined]
    DurableObjectDriver(storage).transaction(lambda tx: None)
    assert used == ["snake"]


def test_do_driver_needs_sql_exec() -> None:
    class NoSql:
        def transactionSync(self, fn: Callable[[], Any]) -> Any:
            return fn()

    with pytest.raises(ConfigError, match=r"^DurableObjectDriver needs storage\.sql\.exec; got storage 'NoSql'"):
        DurableObjectDriver(NoSql())  # type: ignore[arg-type]


def test_do_driver_needs_transaction_sync() -> None:
    class OnlySql:
        def __init__(self) -> None:
            self.sql = RecordingStorage()

    with pytest.raises(ConfigError, match=r"^DurableObjectDriver needs storage\.transactionSync; got storage "
                                          r"'OnlySql' without it$"):
        DurableObjectDriver(OnlySql())  # type: ignore[arg-type]


def test_fake_do_storage_has_cloudflare_binding_and_refuses_begin(tmp_path: pathlib.Path) -> None:
    storage = FakeStorage(str(tmp_path / "f.sqlite"))
    try:
        assert storage.sql.exec("SELECT typeof(?) AS t", 1).one() == {"t": "real"}
        assert storage.sql.exec("SELECT ? AS b", True).one() == {"b": "true"}
        with pytest.raises(TypeError):
            storage.sql.exec("SELECT ?", 2**53 + 1)
        with pytest.raises(apsw.AuthError):
            storage.sql.exec("BEGIN")
        with pytest.raises(apsw.SQLError):
            storage.sql.exec("SELECT " + ",".join("?" * 101), *range(101))
    finally:
        storage.close()


def test_apsw_driver_nests_inside_a_transaction_begun_outside_it() -> None:
    connection = apsw.Connection(":memory:")
    driver = ApswDriver(connection)
    driver.exec("CREATE TABLE events (value INTEGER)")
    connection.execute("BEGIN")
    driver.transaction(lambda tx: tx.run("INSERT INTO events VALUES (?)", [1]))
    connection.execute("ROLLBACK")
    assert driver.query("SELECT value FROM events") == []


def test_apsw_driver_binds_integers_natively(tmp_path: pathlib.Path) -> None:
    driver = ApswDriver.open(str(tmp_path / "a.sqlite"), limits={"variable_number": 100})
    try:
        assert driver.query("SELECT typeof(?) AS t, ? AS big", [1, 2**62]) == [{"t": "integer", "big": 2**62}]
        with pytest.raises(apsw.SQLError):
            driver.query("SELECT " + ",".join("?" * 101), list(range(101)))
    finally:
        driver.close()
