"""Properties: pushdown never changes a result; the adapter behaves like a dict across restarts."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from collections_support import DRIVER_KINDS, FakeClock, Harness
from persistence.collections import (
    CollectionAdapter, CommittedTx, Expr, Mutation, SQLiteDriver, add, and_, asc, coalesce, concat, date_,
    datetime_, desc, divide, eq, gt, gte, ilike, in_, is_null, length, like, lower, lt, lte, multiply, not_,
    or_, ref, strftime, subtract, upper,
)

TEXT = st.text(alphabet="aAzZé%_*?[\x00 1.-:T", max_size=6)
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**66), 2**66), st.sampled_from([2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 0]),
    st.floats(), st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e20, 0.1]),
    TEXT, st.sampled_from(["2024-01-02", "2024-01-02 03:04:05", "2460000.5"]),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 1, 1),
                 timezones=st.sampled_from([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5))])),
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 1, 1)),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from("xy"), SCALARS, max_size=2))
ROW = st.fixed_dictionaries({}, optional={"a": VALUES, "b": SCALARS, "s": TEXT, "o": VALUES})
REFS = st.sampled_from([ref("a"), ref("b"), ref("s"), ref("o", "x"), ref("a", 0), ref("missing")])


def _values(depth: int) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(REFS, SCALARS)
    if depth == 0:
        return leaves
    sub = _values(depth - 1)
    return st.one_of(
        leaves,
        st.builds(upper, sub), st.builds(lower, sub), st.builds(length, sub),
        st.builds(concat, sub, sub), st.builds(coalesce, sub, sub),
        st.builds(add, sub, sub), st.builds(subtract, sub, sub), st.builds(multiply, sub, sub),
        st.builds(divide, sub, sub), st.builds(date_, sub), st.builds(datetime_, sub),
        st.builds(strftime, st.sampled_from(["%Y", "%H:%M", "%s"]), sub),
    )


def _predicates(depth: int) -> st.SearchStrategy[Expr]:
    values = _values(1)
    leaves = st.one_of(
        *[st.builds(op, values, values) for op in (eq, gt, gte, lt, lte)],
        st.builds(in_, values, st.lists(SCALARS, max_size=20)),
        st.builds(like, values, TEXT), st.builds(ilike, values, TEXT), st.builds(is_null, values),
        values,
    )
    if depth == 0:
        return leaves
    sub = _predicates(depth - 1)
    return st.one_of(leaves, st.builds(not_, sub), st.builds(and_, sub, sub), st.builds(or_, sub, sub))


ORDERS = st.lists(st.builds(lambda e, d, n: (asc if d else desc)(e, nulls=n), _values(1), st.booleans(),
                            st.sampled_from(["first", "last"])), max_size=2)


@pytest.fixture
def pair(make_adapter: Callable[..., CollectionAdapter]) -> tuple[CollectionAdapter, CollectionAdapter]:
    return make_adapter(), make_adapter(pushdown=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=3)), ROW, max_size=12),
       where=st.one_of(st.none(), _predicates(2)), order=ORDERS,
       limit=st.one_of(st.none(), st.integers(0, 5)), offset=st.integers(0, 3))
def test_pushdown_returns_exactly_what_in_memory_evaluation_returns(
        pair: tuple[CollectionAdapter, CollectionAdapter], rows: dict[Any, Any], where: Expr | None,
        order: list[Any], limit: int | None, offset: int) -> None:
    pushed, memory = pair
    collection = uuid.uuid4().hex
    pushed.apply_committed_tx(collection, CommittedTx(
        tx_id="seed", term=1, seq=1, mutations=[Mutation.insert(k, v) for k, v in rows.items()]))
    options = dict(where=where, order_by=order, limit=limit, offset=offset)
    expected = [r.key for r in memory.load_subset(collection, **options)]
    assert [r.key for r in pushed.load_subset(collection, **options)] == expected


# -- the state machine ----------------------------------------------------------------
KEYS = st.one_of(st.integers(0, 6), st.sampled_from(["0", "1", "a", "b"]))
FIELDS = st.fixed_dictionaries({"n": st.integers(-3, 3), "g": st.sampled_from(["x", "y", "Y"])},
                               optional={"t": st.datetimes(timezones=st.just(dt.timezone.utc))})


class CollectionMachine(RuleBasedStateMachine):
    """apply / load_subset against a plain dict, across close and reopen of the file."""

    kind = "apsw"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="collections-sm-"))
        self.harness = Harness(self.kind, self.dir / "object.sqlite")
        self.clock = FakeClock()
        self.driver: SQLiteDriver = self.harness.open()
        self.adapter = CollectionAdapter(self.driver, clock=self.clock, applied_tx_prune_max_rows=5)
        self.model: dict[Any, dict[str, Any]] = {}
        self.seq = 0
        self.applied: list[CommittedTx] = []

    def _apply(self, *mutations: Mutation, truncate: bool = False) -> None:
        self.seq += 1
        tx = CommittedTx(tx_id=f"t{self.seq}", term=1, seq=self.seq, mutations=mutations, truncate=truncate)
        assert self.adapter.apply_committed_tx("c", tx) is True
        self.applied.append(tx)

    @rule(key=KEYS, value=FIELDS)
    def insert(self, key: Any, value: dict[str, Any]) -> None:
        self._apply(Mutation.insert(key, value))
        self.model[key] = dict(value)

    @rule(key=KEYS, value=st.fixed_dictionaries({}, optional={"n": st.integers(-3, 3), "g": st.just("z")}))
    def update(self, key: Any, value: dict[str, Any]) -> None:
        self._apply(Mutation.update(key, value))
        self.model[key] = {**self.model.get(key, {}), **value}

    @rule(key=KEYS)
    def delete(self, key: Any) -> None:
        self._apply(Mutation.delete(key))
        self.model.pop(key, None)

    @rule(key=KEYS, value=FIELDS)
    def truncate_then_insert(self, key: Any, value: dict[str, Any]) -> None:
        self._apply(Mutation.insert(key, value), truncate=True)
        self.model = {key: dict(value)}

    @precondition(lambda self: bool(self.applied))
    @rule(data=st.data())
    def replay_an_applied_transaction(self, data: st.DataObject) -> None:
        tx = data.draw(st.sampled_from(self.applied))
        assert self.adapter.apply_committed_tx("c", tx) is False

    @rule()
    def restart(self) -> None:
        self.adapter.close()
        self.harness.close(self.driver)
        self.driver = self.harness.open()
        self.adapter = CollectionAdapter(self.driver, clock=self.clock, applied_tx_prune_max_rows=5)

    @rule(g=st.sampled_from(["x", "y", "z"]), n=st.integers(-3, 3), limit=st.integers(1, 4))
    def query(self, g: str, n: int, limit: int) -> None:
        got = self.adapter.load_subset("c", where=and_(ilike(ref("g"), g), gte(ref("n"), n)),
                                       order_by=[desc(ref("n")), asc(ref("g"))], limit=limit)
        matching = [(k, v) for k, v in self.model.items() if v.get("g", "").lower() == g and
                    v.get("n") is not None and v["n"] >= n]
        matching.sort(key=lambda kv: (-kv[1]["n"], kv[1]["g"], ("n:" if isinstance(kv[0], int) else "s:")
                                      + str(kv[0])))
        assert [(r.key, r.value) for r in got] == matching[:limit]

    @invariant()
    def everything_matches_the_model(self) -> None:
        assert {r.key: r.value for r in self.adapter.load_subset("c")} == self.model

    def teardown(self) -> None:
        self.adapter.close()
        self.harness.close_all()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.parametrize("kind", DRIVER_KINDS)
def test_collection_behaves_like_a_dict_across_restarts(kind: str) -> None:
    machine = type(f"CollectionMachine_{kind.replace('-', '_')}", (CollectionMachine,), {"kind": kind})
    run_state_machine_as_test(machine, settings=settings(max_examples=25, stateful_step_count=30, deadline=None))
