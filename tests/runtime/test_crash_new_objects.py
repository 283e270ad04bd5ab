"""New objects acknowledged before a SIGKILL keep their write and their name; every file opens.

A subprocess (``_new_objects_server.py``) creates new objects as fast as it
can — eight at a time, each one's first request writing a row — and prints a
line once each write was acknowledged. The test SIGKILLs it right after the
first acknowledgement (first round), then after a random number of them (so
mid-creation, mid-commit, between the name file and the first commit,
wherever it lands), then checks on a copy of the
directory that every object file passes ``quick_check`` and every
acknowledged object has its row and its recorded name. Rounds repeat on the
same directory (each server recovers the last one's leftovers: files created
but never committed start afresh), and at the end a runtime in this process
reads every acknowledged object back by its ID alone, getting its name from
the file.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Literal

import apsw
import pytest
import trio

import runtime
from objects import DurableObject
from persistence import ObjectDatabase
from runtime import open_runtime

SERVER = Path(__file__).resolve().parent / "_new_objects_server.py"
CODE_ROOT = Path(runtime.__file__).resolve().parents[1]
ROUNDS = 3
ROUND_TIMEOUT = 60.0  # real seconds for one server to start and produce its acks (a round takes 2-6 s on a loaded 2-core machine)


async def run_round(data_dir: Path, durability: str, round_no: int, target: int, log: Path) -> list[str]:
    """Start a server, read until ``target`` acks, SIGKILL it; the acknowledged names."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(SERVER), str(data_dir), durability, str(round_no)],
            stdout=subprocess.PIPE, stderr=stderr, env=env,
        )
    acked: list[str] = []
    buffer = b""
    assert proc.stdout is not None
    try:
        with trio.fail_after(ROUND_TIMEOUT):
            while len(acked) < target:
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                acked += [line.split()[1].decode() for line in lines if line.startswith(b"ack ")]
    finally:
        proc.send_signal(signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await proc.wait()
            await proc.stdout.aclose()
    assert len(acked) >= target, f"server exited after {len(acked)}/{target} acks:\n{log.read_text()}"
    assert proc.returncode == -signal.SIGKILL
    return acked


def check_copy(snapshot: Path, acked: set[str]) -> None:
    named: dict[str, set[str]] = {}
    for path in sorted(snapshot.rglob("*.sqlite")):
        conn = apsw.Connection(str(path))
        try:
            assert [r[0] for r in conn.execute("PRAGMA quick_check")] == ["ok"], path.name
        finally:
            conn.close()
        if path.parent == snapshot:
            continue  # the runtime's alarm index
        db = ObjectDatabase(path)
        try:
            tables = {r["name"] for r in db.sql.exec("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            rows = {r["tag"] for r in db.sql.exec("SELECT tag FROM t")} if "t" in tables else set()
            if db.stored_name is not None:
                named[db.stored_name] = rows
            else:
                assert not rows, f"{path.name}: committed rows but no recorded name"
            db.rollback()
        finally:
            db.close()
    lost = sorted(name for name in acked if name not in named.get(name, set()))
    assert not lost, f"{len(lost)} acknowledged new objects lost their write or name, e.g. {lost[:5]}"


class Fresh(DurableObject):
    """A reader with the server's class name, so it maps to the same files."""

    def read(self) -> list[object]:
        return [self.ctx.id.name, [r["tag"] for r in self.ctx.storage.sql.exec("SELECT tag FROM t")]]


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_new_objects_acknowledged_before_a_sigkill_keep_their_write_and_name(
    durability: Literal["full", "normal"], tmp_path: Path
) -> None:
    seed = int(os.environ.get("DOHOST_CRASH_SEED", "11"))
    rng = random.Random(f"{seed}-{durability}")
    data_dir = tmp_path / "data"
    acked: set[str] = set()
    for round_no in range(ROUNDS):
        # The first round is killed right after the first acknowledged write to a new
        # object (its first commit's syncs just returned); the others at random.
        target = 1 if round_no == 0 else rng.randint(3, 120)
        acked |= set(await run_round(data_dir, durability, round_no, target, tmp_path / f"server-{round_no}.log"))
        snapshot = tmp_path / f"copy-{round_no}"
        shutil.copytree(data_dir, snapshot)
        check_copy(snapshot, acked)
    async with open_runtime(bindings={"FRESH": Fresh}, data_dir=data_dir, durability=durability) as rt:
        ns = rt.env["FRESH"]
        for name in sorted(acked):
            by_id = ns.idFromString(ns.idFromName(name).toString())
            assert await ns.get(by_id).read() == [name, [name]]
