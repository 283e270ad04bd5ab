"""The authorizer's fast path (``Authorizer.__call__``) against its full rules (``Authorizer.by_rules``)."""

from __future__ import annotations

import itertools

import apsw
import pytest

from persistence import LockTable, ObjectDatabase
from persistence._authorizer import Authorizer
from persistence.errors import SqlError

_ACTIONS = sorted({getattr(apsw, name) for name in apsw.mapping_authorizer_function if isinstance(name, str)})
_NAMES = [
    None, "", "t", "v", "main", "temp", "_cf_KV", "_CF_meta", "_dohost_x", "_other", "dbstat", "sqlite_master",
    "sqlite_schema", "abs", "ABS", "DBSTAT", "median", "geopoly_area", "fts5", "fts4", "foreign_keys", "table_info", "OFF",
]


def _answer(authorizer: Authorizer, call: str, args: tuple[object, ...]) -> tuple[object, ...]:
    ddl: list[bool] = []
    authorizer.on_ddl = lambda: ddl.append(True)
    verdict = getattr(authorizer, call)(*args)
    return verdict, authorizer.stashed, authorizer.missing, list(authorizer.ddl_log), len(ddl), dict(authorizer.settings)


def test_the_fast_path_answers_every_action_as_the_full_rules_do() -> None:
    checked = 0
    for internal, op, p1, p2, dbname in itertools.product(
        (False, True), _ACTIONS, _NAMES, _NAMES, (None, "main", "temp", "aux")
    ):
        fast, rules = Authorizer(), Authorizer()
        fast.internal = rules.internal = internal
        args = (op, p1, p2, dbname, None)
        assert _answer(fast, "__call__", args) == _answer(rules, "by_rules", args), args
        checked += 1
    assert checked > 50_000


def _refused(db: ObjectDatabase, sql: str) -> str:
    with pytest.raises(SqlError) as info:
        db.sql.exec(sql).toArray()
    return str(info.value)


def test_a_statement_allowed_before_a_schema_change_is_refused_after_it_and_after_a_park_and_reopen(tmp_path):
    table = LockTable(tmp_path)
    try:
        db = ObjectDatabase(tmp_path / "o.sqlite", locks=table, durability="full")
        db.kv.put("secret", 1)
        db.sql.exec("CREATE TABLE v(key TEXT, value)")
        db.sql.exec("CREATE TABLE t(a)")
        read, write = "SELECT * FROM v", "INSERT INTO t VALUES (1)"
        assert db.sql.exec(read).toArray() == []
        db.sql.exec(write)
        db.commit()
        # The same texts now name a view over _cf_KV and fire a trigger that writes it.
        db.sql.exec("DROP TABLE v")
        db.sql.exec("CREATE VIEW v AS SELECT * FROM _cf_KV")
        db.sql.exec("CREATE TRIGGER w AFTER INSERT ON t BEGIN INSERT INTO _cf_KV VALUES ('x', 1); END")
        db.commit()
        for _ in range(2):
            assert "access to _cf_KV.key is prohibited" in _refused(db, read)
            assert "not authorized" in _refused(db, write)
            db.commit()
            assert db.park() is True
        assert db.kv.get("secret") == 1 and db.kv.get("x") is None
        db.close()
    finally:
        table.close()
