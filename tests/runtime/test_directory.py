"""The directory: one live activation per (namespace, ID), in a process and across processes."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from objects import DurableObject
from persistence import ObjectLockedError
from runtime import open_runtime

REPO = Path(__file__).resolve().parents[2]


class Tracked(DurableObject):
    constructed = 0
    delivered_during_constructor: list[str] = []

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.ready = False
        self.calls = 0

        async def warm_up():
            await trio.sleep(1)  # a timer inside blockConcurrencyWhile: still gated
            self.ready = True

        ctx.blockConcurrencyWhile(warm_up)

    def hit(self):
        if not self.ready:
            type(self).delivered_during_constructor.append("hit")
        self.calls += 1
        return self.calls

    def instance_id(self):
        return id(self)


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    Tracked.constructed = 0
    Tracked.delivered_during_constructor = []


async def test_twenty_concurrent_first_calls_run_one_constructor_under_the_input_gate(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"T": Tracked}) as rt:
        results: list[int] = []

        async def call() -> None:
            results.append(await rt.env.T.getByName("hot").hit())

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(call)
        assert Tracked.constructed == 1
        assert Tracked.delivered_during_constructor == []
        assert sorted(results) == list(range(1, 21))
        assert len(rt.statistics()) == 1


async def test_stubs_for_one_id_reach_one_instance_whatever_their_origin(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(bindings={"T": Tracked}) as rt:
        ns = rt.env.T
        oid = ns.idFromName("x")
        ids = {
            await ns.getByName("x").instance_id(),
            await ns.get(oid).instance_id(),
            await ns.get(ns.idFromString(oid.toString())).instance_id(),
        }
        assert len(ids) == 1
        assert Tracked.constructed == 1


async def test_same_name_in_two_namespaces_is_two_objects(autojump_clock: trio.abc.Clock) -> None:
    class Other(Tracked):
        pass

    async with open_runtime(bindings={"A": Tracked, "B": Other}) as rt:
        a = await rt.env.A.getByName("x").instance_id()
        b = await rt.env.B.getByName("x").instance_id()
        assert a != b
        assert rt.env.A.idFromName("x") != rt.env.B.idFromName("x")
        assert {s.binding for s in rt.statistics()} == {"A", "B"}


_SECOND_PROCESS = textwrap.dedent(
    """
    import sys, trio
    from objects import DurableObject
    from runtime import open_runtime

    class Tracked(DurableObject):      # same class name -> same namespace directory
        def write(self):
            self.ctx.storage.kv.put("k", "from second process")
            return "ok"

    async def main():
        async with open_runtime(bindings={"T": Tracked}, data_dir=sys.argv[1]) as rt:
            try:
                print(await rt.env.T.getByName("shared").write())
            except Exception as exc:
                print(f"{type(exc).__name__}: {exc}")

    trio.run(main)
    """
)


async def _run_second_process(data_dir: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = await trio.run_process(
        [sys.executable, "-c", _SECOND_PROCESS, str(data_dir)],
        capture_stdout=True,
        capture_stderr=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


@pytest.mark.slow
async def test_second_process_cannot_open_a_live_object_until_it_is_released(data_dir: Path) -> None:
    # Named like the subprocess's class, so both hosts use one namespace directory;
    # no timers here, since this test waits on a real subprocess.
    class Tracked(DurableObject):
        def write(self):
            self.ctx.storage.kv.put("k", "v")
            return "ok"

        def still_here(self):
            return self.ctx.storage.kv.get("k")

    async with open_runtime(bindings={"T": Tracked}, data_dir=data_dir) as rt:
        stub = rt.env.T.getByName("shared")
        assert await stub.write() == "ok"
        out = await _run_second_process(data_dir)
        assert out.startswith("ObjectLockedError: ")
        assert "this Durable Object is live in another host" in out
        assert stub.id.toString() in out  # the message names the object, by ID
        assert await stub.still_here() == "v"  # the live object is untouched
        await rt.evict("T", stub.id)
        assert await _run_second_process(data_dir) == "ok"


async def test_a_second_host_in_the_same_process_cannot_open_a_live_object(
    data_dir: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with open_runtime(bindings={"T": Tracked}, data_dir=data_dir) as first:
        async with open_runtime(bindings={"T": Tracked}, data_dir=data_dir) as second:
            await first.env.T.getByName("x").instance_id()
            with pytest.raises(ObjectLockedError, match=r"this Durable Object is live in another host"):
                await second.env.T.getByName("x").instance_id()
            await second.env.T.getByName("y").instance_id()  # other objects are unaffected
            with pytest.raises(ObjectLockedError):
                await first.env.T.getByName("y").instance_id()
