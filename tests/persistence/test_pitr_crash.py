"""SIGKILL in the middle of writing: every bookmark handed out still restores exactly.

A child process writes one row per commit to an object file (history on, the
WAL checkpointed by history every :data:`~persistence._pitr.CHECKPOINT_FRAMES`
frames) and prints ``ack <n>`` after each commit returns and ``mark <bookmark>
<n>`` for a bookmark taken after the ``n``-th commit. The test SIGKILLs it
after a number of acknowledgements, wherever it is (mid-commit, mid-archive,
mid-checkpoint), reopens the file in this process and restores a sample of the
bookmarks, and the state the crash left: each holds exactly the rows it named,
and every acknowledged row is in the file. Nothing sleeps: the test waits for
the child's output lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import persistence
from persistence import ObjectDatabase

CODE_ROOT = Path(persistence.__file__).resolve().parents[1]

CHILD = """
import sys
from persistence import ObjectDatabase
db = ObjectDatabase(sys.argv[1], durability="normal")
db.sql.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
db.commit()
n = db.sql.exec("SELECT count(*) AS n FROM t").one()["n"]
while True:
    db.sql.exec("INSERT INTO t VALUES (?, randomblob(1500))", n)
    db.commit()
    n += 1
    print("ack", n, flush=True)
    if n % 37 == 0:
        print("mark", db.current_bookmark(), n, flush=True)
"""


@pytest.mark.parametrize("acks", [900, 2100])
def test_every_bookmark_restores_exactly_after_a_sigkill_mid_wal(tmp_path, acks):
    path = tmp_path / "o.sqlite"
    env = {**os.environ, "PYTHONPATH": str(CODE_ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    marks: list[tuple[str, int]] = []
    acked = 0
    try:
        assert child.stdout is not None
        while acked < acks:
            line = child.stdout.readline()
            assert line, "the writer stopped early"
            kind, *rest = line.split()
            if kind == "ack":
                acked = int(rest[0])
            else:
                marks.append((rest[0], int(rest[1])))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    db = ObjectDatabase(path)
    try:
        count = db.sql.exec("SELECT count(*) AS n FROM t").one()["n"]
        assert count >= acked  # every acknowledged write is there
        assert db.history is not None
        now = db.history.current_bookmark()
    finally:
        db.close()
    sample = marks[:: max(1, len(marks) // 5)] + marks[-1:] + [(now, count)]
    for bookmark, n in sample:
        db = ObjectDatabase(path)
        assert db.history is not None
        db.history.schedule_restore(bookmark)
        db.close()
        db = ObjectDatabase(path)
        try:
            got = db.sql.exec("SELECT count(*) AS n, max(id) AS top FROM t").one()
            assert (got["n"], got["top"]) == (n, n - 1)
            assert db.sql.exec("PRAGMA quick_check").one()["quick_check"] == "ok"
        finally:
            db.close()
