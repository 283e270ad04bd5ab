"""A Hypothesis state machine: point-in-time restores against a model of every committed state.

The model is the committed table (a dict) plus, for every bookmark handed out,
the state it names: the committed state, or — asked for inside a transaction
that wrote — the state that transaction ends with (its commit, or what was
committed before it when it rolls back), since states inside an atomic
transaction never exist for anyone else. Rules write, commit, roll back, change the schema, let
time pass (crossing the one-second groups), close and reopen the file, and
restore a random bookmark (then the restore's undo bookmark). After each
restore the file holds exactly the state the bookmark named.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from persistence import ObjectDatabase, _pitr

IDS = st.integers(min_value=0, max_value=6)


class PitrModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="dohost-pitr-model-"))
        self.saved_threshold = _pitr.CHECKPOINT_FRAMES
        _pitr.CHECKPOINT_FRAMES = 12
        self.ms = 1_700_000_000_000.0
        self.db = self._open()
        self.db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        self.db.commit()
        self.committed: dict[int, int] = {}
        self.pending: dict[int, int] = {}
        self.extra_column = False
        self.marks: list[tuple[str, dict[int, int], bool]] = []
        #: Bookmarks asked for inside the open transaction: settled when it ends.
        self.unsettled: list[str] = []
        self.wrote = False

    def _open(self) -> ObjectDatabase:
        return ObjectDatabase(self.dir / "o.sqlite", durability="none", clock=lambda: self.ms)

    def teardown(self) -> None:
        _pitr.CHECKPOINT_FRAMES = self.saved_threshold
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _rows(self) -> dict[int, int]:
        return {r["id"]: r["v"] for r in self.db.sql.exec("SELECT id, v FROM t")}

    @rule(k=IDS, v=st.integers(min_value=0, max_value=99))
    def upsert(self, k: int, v: int) -> None:
        self.db.sql.exec("INSERT INTO t (id, v) VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", k, v)
        self.pending[k] = v
        self.wrote = True

    @rule(k=IDS)
    def delete(self, k: int) -> None:
        self.db.sql.exec("DELETE FROM t WHERE id = ?", k)
        self.pending.pop(k, None)
        self.wrote = True

    def _settle(self) -> None:
        for mark in self.unsettled:
            self.marks.append((mark, dict(self.committed), self.extra_column))
        self.unsettled.clear()
        self.wrote = False

    @rule(first=st.integers(min_value=100, max_value=400), v=st.integers(min_value=0, max_value=99))
    def bulk(self, first: int, v: int) -> None:
        self.db.sql.exec(
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ? + 199)"
            " INSERT INTO t (id, v) SELECT i, ? FROM n WHERE true ON CONFLICT DO UPDATE SET v = excluded.v",
            first, first, v,
        )
        self.pending.update({k: v for k in range(first, first + 200)})
        self.wrote = True

    @rule()
    def checkpoint(self) -> None:
        self.commit()
        self.db.checkpoint()

    @rule()
    def commit(self) -> None:
        self.db.commit()
        self.committed = dict(self.pending)
        self._settle()

    @rule()
    def rollback(self) -> None:
        self.db.rollback()
        self.pending = dict(self.committed)
        self._settle()

    @rule()
    def change_schema(self) -> None:
        self.commit()
        sql = "ALTER TABLE t DROP COLUMN w" if self.extra_column else "ALTER TABLE t ADD COLUMN w DEFAULT 1"
        self.db.sql.exec(sql)
        self.db.commit()
        self.extra_column = not self.extra_column

    @rule(ms=st.sampled_from([10.0, 400.0, 1500.0, 60_000.0]))
    def time_passes(self, ms: float) -> None:
        self.ms += ms

    @rule()
    def bookmark(self) -> None:
        mark = self.db.current_bookmark()
        if self.wrote:
            self.unsettled.append(mark)
        else:
            self.marks.append((mark, dict(self.committed), self.extra_column))

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.pending = dict(self.committed)
        self._settle()
        self.db = self._open()

    @precondition(lambda self: bool(self.marks))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        mark, state, extra = data.draw(st.sampled_from(self.marks))
        self.commit()
        undo = self.db.history.schedule_restore(mark)
        before = (dict(self.committed), self.extra_column)
        self.db.close()
        self.db = self._open()
        assert self._rows() == state
        self.committed, self.pending = dict(state), dict(state)
        self.extra_column = extra
        self.marks.append((undo, *before))

    @invariant()
    def the_file_holds_what_the_model_says(self) -> None:
        assert self._rows() == self.pending


PitrModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPitrModel = PitrModel.TestCase
