"""Three clients and one server converge after any interleaving (a Hypothesis state machine).

Three ``SyncEngine``s share one fake clock and talk to the example's server in
process (one runtime for the whole test, a fresh space per example). Rules
interleave offline writes to ``task`` (last-write-wins on ``title``/``status``)
and ``note`` (crdt, every field conflicts), pushes, pushes whose response is
lost (the engine retries), client restarts from their SQLite files, and clock
ticks. At the end every client syncs until nothing is pending; then every
client's view must equal the server's records, and the server's change log
must hold each applied mutation once.

Hypothesis drives a synchronous state machine, so the runtime lives in a trio
loop on a helper thread and each rule calls into it (``trio.from_thread``).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import BASE, InProcessTransport, server_state
from objectql_client import FakeClock, SyncEngine
from runtime import open_runtime

PROJECT = Path(__file__).resolve().parent
OBJECTS = ("task", "note")
IDS = ("r0", "r1", "r2")
CLIENTS = ("c0", "c1", "c2")
VALUES = {
    "task": {"title": st.sampled_from(["a", "b", "c"]), "status": st.sampled_from(["todo", "doing", "done"]),
             "priority": st.integers(0, 3)},
    "note": {"title": st.sampled_from(["x", "y"]), "body": st.sampled_from(["1", "2", "3"]), "pinned": st.booleans()},
}


class Portal:
    """A trio loop on a thread holding one runtime of the example."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._ready.wait(60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        with tempfile.TemporaryDirectory(dir=RAM) as data_dir:
            await self._serve(data_dir)

    async def _serve(self, data_dir: str) -> None:
        async with open_runtime(config=PROJECT, data_dir=data_dir) as rt:
            self.rt = rt
            self.token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()

    def run(self, fn: Any, *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def close(self) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
        self.thread.join(60)


PORTAL: Portal | None = None
RAM = "/dev/shm" if Path("/dev/shm").is_dir() else None  # no fsync cost for throwaway files
SPACES = itertools.count()


def data_for(obj: str, create: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields = VALUES[obj]
    if create:  # a create must carry the required title
        return st.fixed_dictionaries({"title": fields["title"]}, optional={k: v for k, v in fields.items() if k != "title"})
    return st.dictionaries(st.sampled_from(sorted(fields)), st.none(), min_size=1).flatmap(
        lambda keys: st.fixed_dictionaries({k: fields[k] for k in keys}))


class Convergence(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        assert PORTAL is not None
        self.space = f"h{next(SPACES)}"
        self.folder = tempfile.TemporaryDirectory(dir=RAM)
        self.clock = FakeClock()
        self.transports: dict[str, InProcessTransport] = {}
        self.engines = {name: self._open(name) for name in CLIENTS}
        self.acknowledged = 0  # mutations the server answered `applied` (a retried one counts once)

    def _open(self, name: str) -> SyncEngine:
        transport = self.transports.setdefault(name, InProcessTransport(PORTAL.rt))
        http = httpx.AsyncClient(transport=transport, base_url=f"{BASE}")
        return SyncEngine(http, Path(self.folder.name) / f"{name}.sqlite3", client_id=name, space=self.space,
                          clock=self.clock, strategies={"task": "last-write-wins", "note": "crdt"})

    def _sync(self, name: str) -> None:
        result = PORTAL.run(self.engines[name].sync)
        self.acknowledged += 0 if result is None else result.applied

    @rule(client=st.sampled_from(CLIENTS), obj=st.sampled_from(OBJECTS), rid=st.sampled_from(IDS), data=st.data())
    def create(self, client: str, obj: str, rid: str, data: st.DataObject) -> None:
        self.engines[client].create(obj, rid, data.draw(data_for(obj, create=True)))

    @rule(client=st.sampled_from(CLIENTS), obj=st.sampled_from(OBJECTS), rid=st.sampled_from(IDS), data=st.data())
    def update(self, client: str, obj: str, rid: str, data: st.DataObject) -> None:
        self.engines[client].update(obj, rid, data.draw(data_for(obj, create=False)))

    @rule(client=st.sampled_from(CLIENTS), obj=st.sampled_from(OBJECTS), rid=st.sampled_from(IDS))
    def delete(self, client: str, obj: str, rid: str) -> None:
        self.engines[client].delete(obj, rid)

    @rule(client=st.sampled_from(CLIENTS))
    def sync(self, client: str) -> None:
        self._sync(client)

    @rule(client=st.sampled_from(CLIENTS))
    def sync_with_the_response_lost(self, client: str) -> None:
        self.transports[client].cut_after_send = 1
        self._sync(client)

    @rule(client=st.sampled_from(CLIENTS))
    def restart(self, client: str) -> None:
        self.engines[client].store.close()
        self.engines[client] = self._open(client)

    @rule(seconds=st.sampled_from([0.0, 0.001, 1.0, 5.0]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def nothing_pending_is_lost(self) -> None:
        for engine in getattr(self, "engines", {}).values():
            assert len(engine.pending()) + len(engine.rejected()) <= 1000

    def teardown(self) -> None:
        if not hasattr(self, "engines"):
            return
        try:
            for _ in range(10):
                for name in CLIENTS:
                    self._sync(name)
                if not any(e.pending() for e in self.engines.values()):
                    break
            for name in CLIENTS:  # one more pull each, so everyone has the last changes
                self._sync(name)
            assert {n: e.pending() for n, e in self.engines.items()} == {n: [] for n in CLIENTS}
            state = PORTAL.run(server_state, PORTAL.rt, self.space)
            for obj in OBJECTS:
                server = {rid: r["data"] for rid, r in state["records"][obj].items()}
                for name, engine in self.engines.items():
                    assert engine.view(obj) == server, (name, obj)
            assert int(state["checkpoint"]) == self.acknowledged  # one change-log row per acknowledged mutation
        finally:
            for engine in self.engines.values():
                engine.store.close()
            self.folder.cleanup()


def test_three_clients_and_one_server_converge_after_any_interleaving() -> None:
    global PORTAL
    PORTAL = Portal()
    try:
        Convergence.TestCase.settings = settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        Convergence.TestCase().runTest()
    finally:
        PORTAL.close()
        PORTAL = None
