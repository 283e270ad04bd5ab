"""A Hypothesis state machine aimed at how history stores pages (side file format 3).

Where ``test_pitr_model`` checks bookmarks against transactions, this one moves
the pages under history: rows of every size (one byte to several overflow
pages), ranges inserted and deleted, ``VACUUM`` shrinking the file, commits
grouped into one entry or not, parks (the WAL kept, the connection reopened by
``reconnect``), checkpoints, the WAL read a few frames at a time, and process
crashes (the files copied as a SIGKILL would leave them, at any point between
calls, an open transaction included). Every bookmark handed out names a state
of the model; restoring it gives back exactly that table.

Under ``durability="full"`` power cuts too: the object's file and WAL as they
are (synced at each commit), the side file (never fsync'd but for its promised
block of numbers) an older copy taken since that block was last promised. A
bookmark whose entry that copy holds still restores; one handed out since may
be refused (its restore dropped), never restore to another state.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import apsw
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from persistence import LockTable, ObjectDatabase, _pitr

KEYS = st.integers(min_value=0, max_value=40)
#: Row sizes: inside a page, near a page, several overflow pages.
SIZES = st.sampled_from([1, 30, 700, 3000, 4100, 9000])

Table = dict[int, bytes]


class PitrPagesModel(RuleBasedStateMachine):
    DURABILITY = "normal"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="dohost-pitr-pages-"))
        self.saved = (_pitr.CHECKPOINT_FRAMES, _pitr._CHUNK_FRAMES)
        _pitr.CHECKPOINT_FRAMES = 40
        _pitr._CHUNK_FRAMES = 3  # commits cross the chunks the WAL is read in
        self.ms = 1_700_000_000_000.0
        self.locks = LockTable(self.dir)
        self.db = self._open()
        self.db.sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        self.db.commit()
        self.committed: Table = {}
        self.pending: Table = {}
        self.wrote = False
        self.marks: list[tuple[str, Table]] = []
        #: Bookmarks asked inside the open transaction: they name the state it ends with.
        self.unsettled: list[str] = []
        #: A copy of the side file a power cut may bring back, and the bookmarks whose
        #: entries it holds; bookmarks a power cut may have cost (refused if so).
        self.old_side: bytes | None = None
        self.old_reserved = 0
        self.in_old_side: set[str] = set()
        self.fragile: set[str] = set()

    def _open(self) -> ObjectDatabase:
        return ObjectDatabase(self.dir / "o.sqlite", durability=self.DURABILITY,
                               locks=self.locks, clock=lambda: self.ms)

    def teardown(self) -> None:
        try:
            self.db.close()
            self.locks.close()
        finally:
            _pitr.CHECKPOINT_FRAMES, _pitr._CHUNK_FRAMES = self.saved
            shutil.rmtree(self.dir, ignore_errors=True)

    def _rows(self) -> Table:
        return {r["id"]: bytes(r["v"]) for r in self.db.sql.exec("SELECT id, v FROM t")}

    def _settle(self) -> None:
        self.marks.extend((mark, dict(self.committed)) for mark in self.unsettled)
        self.unsettled.clear()
        self.wrote = False

    # ------------------------------------------------------------------ writes
    @rule(k=KEYS, size=SIZES, byte=st.integers(min_value=0, max_value=255))
    def upsert(self, k: int, size: int, byte: int) -> None:
        v = bytes([byte]) * size
        self.db.sql.exec("INSERT INTO t VALUES (?, ?) ON CONFLICT DO UPDATE SET v = excluded.v", k, v)
        self.pending[k] = v
        self.wrote = True

    @rule(k=KEYS, at=st.integers(min_value=0, max_value=8999), byte=st.integers(min_value=0, max_value=255))
    def poke(self, k: int, at: int, byte: int) -> None:
        # One byte inside a row: a page whose changed span is a byte or two.
        old = self.pending.get(k)
        if old is None or at >= len(old):
            return
        v = old[:at] + bytes([byte]) + old[at + 1 :]
        self.db.sql.exec("UPDATE t SET v = ? WHERE id = ?", v, k)
        self.pending[k] = v
        self.wrote = True

    @rule(first=st.integers(min_value=100, max_value=300), count=st.sampled_from([5, 60, 200]),
          size=st.sampled_from([10, 500, 2000]))
    def bulk(self, first: int, count: int, size: int) -> None:
        self.db.sql.exec(
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ? + ? - 1)"
            " INSERT INTO t SELECT i, zeroblob(?) FROM n WHERE true ON CONFLICT DO UPDATE SET v = excluded.v",
            first, first, count, size,
        )
        self.pending.update({k: bytes(size) for k in range(first, first + count)})
        self.wrote = True

    @rule(low=st.integers(min_value=0, max_value=500), span=st.sampled_from([3, 50, 600]))
    def delete_range(self, low: int, span: int) -> None:
        self.db.sql.exec("DELETE FROM t WHERE id >= ? AND id < ?", low, low + span)
        self.pending = {k: v for k, v in self.pending.items() if not low <= k < low + span}
        self.wrote = True

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
    def vacuum(self) -> None:
        # The file shrinks (freed pages leave it), every page is rewritten.
        self.commit()
        if self.db._reading:
            self.db.end_read()  # the invariant's reads keep a read transaction open
        conn = self.db._conn
        attached = conn.limit(apsw.SQLITE_LIMIT_ATTACHED, 1)  # VACUUM attaches its copy
        try:
            self.db._exec_internal("VACUUM").fetchall()
        finally:
            self.db._conn.limit(apsw.SQLITE_LIMIT_ATTACHED, attached)

    # ------------------------------------------------------------ the host's doings
    @rule(ms=st.sampled_from([10.0, 400.0, 1500.0, 700_000.0]))
    def time_passes(self, ms: float) -> None:
        self.ms += ms

    @rule()
    def bookmark(self) -> None:
        mark = self.db.current_bookmark()
        if self.wrote:
            self.unsettled.append(mark)
        else:
            self.marks.append((mark, dict(self.committed)))

    @rule()
    def park(self) -> None:
        self.commit()
        assert self.db.park()

    @rule()
    def checkpoint(self) -> None:
        self.commit()
        self.db.checkpoint()

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.pending = dict(self.committed)
        self._settle()
        self.db = self._open()

    @rule()
    def crash(self) -> None:
        # The files as a SIGKILL would leave them now (an open transaction dies with it).
        self._crash(side=True)

    def _crash(self, *, side: bool) -> None:
        saved = self.dir.with_name(self.dir.name + "-crash")
        shutil.rmtree(saved, ignore_errors=True)
        saved.mkdir()
        names = [p.name for p in self.dir.iterdir()
                 if p.name.startswith("o.sqlite") and (side or not p.name.startswith("o.sqlite.pitr"))]
        for name in names:
            shutil.copy2(self.dir / name, saved / name)
        self.db.close()
        for p in self.dir.iterdir():
            if p.name.startswith("o.sqlite"):
                p.unlink()
        for name in names:
            shutil.move(str(saved / name), self.dir / name)
        saved.rmdir()
        if not side:
            assert self.old_side is not None
            (self.dir / "o.sqlite.pitr").write_bytes(self.old_side)
            self.fragile.update(m for m, _ in self.marks if m not in self.in_old_side)
            self.fragile.update(self.unsettled)
            self.old_side = None
        self.pending = dict(self.committed)
        self._settle()
        self.db = self._open()

    @precondition(lambda self: self.DURABILITY == "full")
    @rule()
    def copy_side(self) -> None:
        # What the side file holds now: a power cut may bring this copy back.
        history = self.db.history
        assert history is not None
        history._settle_side()
        side = self.dir / "o.sqlite.pitr"
        if side.exists():
            self.old_side = side.read_bytes()
            self.old_reserved = history._reserved
            self.in_old_side = {m for m, _ in self.marks}

    @precondition(lambda self: self.old_side is not None)
    @rule()
    def power_cut(self) -> None:
        assert self.db.history is not None
        if self.db.history._reserved != self.old_reserved:
            return  # the side file was fsync'd since: it cannot come back older than that
        self._crash(side=False)

    @precondition(lambda self: bool(self.marks))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        mark, state = data.draw(st.sampled_from(self.marks))
        self.commit()
        assert self.db.history is not None
        try:
            undo = self.db.history.schedule_restore(mark)
        except _pitr.PitrError:
            assert mark in self.fragile
            self.marks = [m for m in self.marks if m[0] != mark]
            return
        before = dict(self.committed)
        self.db.close()
        self.db = self._open()
        got = self._rows()
        if got != state:
            # Its entry was lost with the side file's newer copy: the restore was dropped.
            assert mark in self.fragile and got == before
            self.marks = [m for m in self.marks if m[0] != mark]
            state = before
        self.committed, self.pending = dict(state), dict(state)
        self.marks.append((undo, before))

    @invariant()
    def the_file_holds_what_the_model_says(self) -> None:
        assert self._rows() == self.pending


PitrPagesModel.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPitrPagesModel = PitrPagesModel.TestCase


class PitrPagesPowerCutModel(PitrPagesModel):
    DURABILITY = "full"


PitrPagesPowerCutModel.TestCase.settings = settings(
    PitrPagesModel.TestCase.settings, max_examples=150, stateful_step_count=50
)
TestPitrPagesPowerCutModel = PitrPagesPowerCutModel.TestCase
