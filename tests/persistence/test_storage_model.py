"""A Hypothesis state machine: kv (sync and batch), SQL and transactions against a dict model.

The model holds what is committed and what the open implicit transaction sees.
``commit`` makes the second the first; ``rollback`` and ``close``+reopen throw the
second away; ``transactionSync`` applies a batch of operations or, when its
callback raises, none of them. Bad input must change nothing.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from persistence import ObjectDatabase, compile_list_options

KEYS = st.text(alphabet="ab\u00e9\U0001f600", max_size=3)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
SQL_KEYS = st.integers(min_value=0, max_value=20)
SQL_VALUES = st.text(max_size=6)
LIST_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "start": KEYS,
        "end": KEYS,
        "prefix": KEYS,
        "reverse": st.booleans(),
        "limit": st.integers(min_value=1, max_value=4),
    },
)


def model_list(items: dict[str, Any], options: dict[str, Any]) -> list[tuple[str, Any]]:
    """Cloudflare's list semantics, written plainly over UTF-8 bytes."""

    def b(s: str) -> bytes:
        return s.encode()

    keys = sorted(items, key=b)
    if "start" in options:
        keys = [k for k in keys if b(k) >= b(options["start"])]
    if "startAfter" in options:
        keys = [k for k in keys if b(k) > b(options["startAfter"])]
    if "end" in options:
        keys = [k for k in keys if b(k) < b(options["end"])]
    if "prefix" in options:
        keys = [k for k in keys if k.startswith(options["prefix"])]
    if options.get("reverse"):
        keys.reverse()
    if "limit" in options:
        keys = keys[: options["limit"]]
    return [(k, items[k]) for k in keys]


def as_read_back(v: Any) -> Any:
    """A stored value as Python reads it back through JS: safe-integral floats are ints."""
    if type(v) is float and v.is_integer() and abs(v) <= 2**53 - 1:
        return int(v)
    if isinstance(v, list):
        return [as_read_back(x) for x in v]
    if isinstance(v, dict):
        return {k: as_read_back(x) for k, x in v.items()}
    return v


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (``True == 1`` is not enough).

    ``b`` is the model's value, compared as it reads back (``as_read_back``).
    """
    b = as_read_back(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


class StorageModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="dohost-model-"))
        self.path = self.dir / "object.sqlite"
        self.db = ObjectDatabase(self.path)
        self.db.sql.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        self.db.commit()
        self.committed: dict[str, dict[Any, Any]] = {"kv": {}, "sql": {}}
        self.pending = copy.deepcopy(self.committed)

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- kv: sync API -------------------------------------------------------------------
    @rule(key=KEYS, value=VALUES)
    def kv_put(self, key: str, value: Any) -> None:
        self.db.kv.put(key, value)
        self.pending["kv"][key] = value

    @rule(key=KEYS)
    def kv_get(self, key: str) -> None:
        assert same(self.db.kv.get(key), self.pending["kv"].get(key))

    @rule(key=KEYS)
    def kv_delete(self, key: str) -> None:
        assert self.db.kv.delete(key) is (key in self.pending["kv"])
        self.pending["kv"].pop(key, None)

    @rule(options=LIST_OPTIONS, after=st.booleans())
    def kv_list(self, options: dict[str, Any], after: bool) -> None:
        if after and "start" in options:
            options["startAfter"] = options.pop("start")
        expected = model_list(self.pending["kv"], options)
        assert [*self.db.kv.list(options)] == expected
        assert list(self.db.kv_store.list_dict(compile_list_options(options)).items()) == expected

    # -- kv: the async API's batches ------------------------------------------------------
    @rule(entries=st.dictionaries(KEYS, VALUES, max_size=4))
    def put_many(self, entries: dict[str, Any]) -> None:
        self.db.kv_store.put_many(entries)
        self.pending["kv"].update(entries)

    @rule(keys=st.lists(KEYS, max_size=4))
    def get_many(self, keys: list[str]) -> None:
        got = self.db.kv_store.get_many(keys)
        expected = {k: self.pending["kv"][k] for k in sorted(set(keys)) if k in self.pending["kv"]}
        assert got == expected and list(got) == list(expected)

    @rule(keys=st.lists(KEYS, max_size=4))
    def delete_many(self, keys: list[str]) -> None:
        expected = len({k for k in keys if k in self.pending["kv"]})
        assert self.db.kv_store.delete_many(keys) == expected
        for k in keys:
            self.pending["kv"].pop(k, None)

    # -- SQL --------------------------------------------------------------------------------
    @rule(k=SQL_KEYS, v=SQL_VALUES)
    def sql_upsert(self, k: int, v: str) -> None:
        cursor = self.db.sql.exec(
            "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v
        )
        assert cursor.rowsWritten == 1
        self.pending["sql"][k] = v

    @rule(k=SQL_KEYS)
    def sql_delete(self, k: int) -> None:
        cursor = self.db.sql.exec("DELETE FROM t WHERE k = ?", k)
        assert cursor.rowsWritten == (1 if k in self.pending["sql"] else 0)
        self.pending["sql"].pop(k, None)

    @rule(k=SQL_KEYS)
    def sql_select_one(self, k: int) -> None:
        rows = self.db.sql.exec("SELECT v FROM t WHERE k = ?", k).toArray()
        assert rows == ([{"v": self.pending["sql"][k]}] if k in self.pending["sql"] else [])

    # -- transactions -------------------------------------------------------------------------
    @rule(key=KEYS, value=VALUES, k=SQL_KEYS, v=SQL_VALUES, fail=st.booleans(), nested_fail=st.booleans())
    def transaction_sync(self, key: str, value: Any, k: int, v: str, fail: bool, nested_fail: bool) -> None:
        def inner() -> None:
            self.db.kv.put(key + "-inner", value)
            if nested_fail:
                raise LookupError("inner")

        def callback() -> str:
            self.db.kv.put(key, value)
            self.db.sql.exec("INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)", k, v)
            try:
                self.db.transaction_sync(inner)
            except LookupError:
                pass
            if fail:
                raise KeyError("boom")
            return "ok"

        if fail:
            with pytest.raises(KeyError):
                self.db.transaction_sync(callback)
            return
        assert self.db.transaction_sync(callback) == "ok"
        self.pending["kv"][key] = value
        self.pending["sql"][k] = v
        if not nested_fail:
            self.pending["kv"][key + "-inner"] = value

    @rule(key=KEYS)
    def bad_input_changes_nothing(self, key: str) -> None:
        with pytest.raises(TypeError):
            self.db.kv.put(key, {"x": {1, 2}})
        with pytest.raises(TypeError):
            self.db.kv_store.put_many({key: 1, key + "!": object()})
        with pytest.raises(TypeError):
            self.db.kv.list(start=key, startAfter=key)
        with pytest.raises(TypeError):
            self.db.sql.exec("INSERT INTO t VALUES (?, ?)", 2**60, "x")

    @rule()
    def commit(self) -> None:
        self.db.commit()
        self.committed = copy.deepcopy(self.pending)

    @rule()
    def rollback(self) -> None:
        self.db.rollback()
        self.pending = copy.deepcopy(self.committed)

    @rule()
    def close_and_reopen(self) -> None:
        self.db.close()
        self.db = ObjectDatabase(self.path)
        self.pending = copy.deepcopy(self.committed)

    @invariant()
    def everything_matches(self) -> None:
        kv = [*self.db.kv.list()]
        expected = model_list(self.pending["kv"], {})
        assert len(kv) == len(expected)
        assert all(a == b and same(a[1], b[1]) for a, b in zip(kv, expected))
        rows = {r.k: r.v for r in self.db.sql.exec("SELECT k, v FROM t")}
        assert rows == self.pending["sql"]


StorageModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStorageModel = StorageModel.TestCase
