"""open_runtime: arguments, several runtimes per process, shutdown, temporary storage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
import trio.testing

from objects import DurableObject
from persistence import ObjectDatabase
from runtime import RuntimeConfigError, open_runtime


class Box(DurableObject):
    def put(self, value):
        self.ctx.storage.kv.put("v", value)
        return value

    def get(self):
        return self.ctx.storage.kv.get("v")

    async def slow_put(self, value, seconds):
        await trio.sleep(seconds)
        self.ctx.storage.kv.put("v", value)
        return value


async def test_open_runtime_takes_bindings_data_dir_durability_and_idle_timeout(
    data_dir: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with open_runtime(bindings={"BOX": Box}, data_dir=data_dir, durability="full", idle_timeout=3) as rt:
        assert rt.data_dir == data_dir and rt.durability == "full" and rt.idle_timeout == 3
        stub = rt.env.BOX.getByName("a")
        assert await stub.put(1) == 1
        await trio.sleep(4)
        assert rt.live_activation("BOX", stub.id) is None
    assert any(data_dir.rglob("*.sqlite"))


async def test_several_runtimes_live_in_one_process_independently(tmp_path: Path) -> None:
    async with open_runtime(bindings={"BOX": Box}, data_dir=tmp_path / "one") as one:
        async with open_runtime(bindings={"BOX": Box}, data_dir=tmp_path / "two") as two:
            await one.env.BOX.getByName("a").put("one")
            await two.env.BOX.getByName("a").put("two")
            assert await one.env.BOX.getByName("a").get() == "one"
            assert await two.env.BOX.getByName("a").get() == "two"
            assert one.env.BOX is not two.env.BOX


async def test_shutdown_drains_in_flight_and_queued_events_and_commits_them(
    data_dir: Path, autojump_clock: trio.abc.Clock
) -> None:
    results: list[object] = []

    async def call(stub, value, seconds) -> None:
        results.append(await stub.slow_put(value, seconds))

    async with trio.open_nursery() as outside:
        async with open_runtime(bindings={"BOX": Box}, data_dir=data_dir) as rt:
            stub = rt.env.BOX.getByName("a")
            outside.start_soon(call, stub, "first", 5)
            await trio.testing.wait_all_tasks_blocked()
            outside.start_soon(call, stub, "second", 1)
            await trio.testing.wait_all_tasks_blocked()
            act = rt.live_activation("BOX", stub.id)
        assert sorted(results) == ["first", "second"]
        assert act.db.closed
    async with open_runtime(bindings={"BOX": Box}, data_dir=data_dir) as rt:
        assert await rt.env.BOX.getByName("a").get() == "first"  # "second" slept less


async def test_shutdown_closes_every_object_file(data_dir: Path) -> None:
    async with open_runtime(bindings={"BOX": Box}, data_dir=data_dir) as rt:
        acts = []
        for name in "abc":
            stub = rt.env.BOX.getByName(name)
            await stub.put(name)
            acts.append(rt.live_activation("BOX", stub.id))
    assert all(act.db.closed for act in acts)
    for act in acts:
        ObjectDatabase(act.db.path).close()  # the lock is free


async def test_calls_after_shutdown_are_refused(data_dir: Path) -> None:
    async with open_runtime(bindings={"BOX": Box}, data_dir=data_dir) as rt:
        stub = rt.env.BOX.getByName("a")
    with pytest.raises(RuntimeConfigError, match=r"^the runtime is shutting down$"):
        await stub.get()


async def test_without_data_dir_storage_is_a_temporary_directory_removed_on_exit() -> None:
    async with open_runtime(bindings={"BOX": Box}) as rt:
        await rt.env.BOX.getByName("a").put(1)
        tmp = rt.data_dir
        assert tmp.is_dir() and any(tmp.rglob("*.sqlite"))
    assert not tmp.exists()


async def test_the_callers_exception_leaves_open_runtime_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_runtime(bindings={"BOX": Box}) as rt:
            await rt.env.BOX.getByName("a").put(1)
            raise KeyError("mine")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"durability": "fast"}, "durability: expected 'full', 'normal' or 'none', got 'fast'"),
        ({"idle_timeout": 0}, "idle_timeout: expected a positive number of seconds, got 0"),
        ({"bindings": {"BOX": "Box"}}, "bindings['BOX']: expected a Durable Object class, got str"),
    ],
)
async def test_bad_arguments_are_refused_with_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(RuntimeConfigError, match=rf"^{re.escape(message)}$"):
        async with open_runtime(**kwargs):
            pass  # pragma: no cover


async def test_an_unknown_binding_is_a_clear_error() -> None:
    async with open_runtime(bindings={"BOX": Box}) as rt:
        with pytest.raises(RuntimeConfigError, match=r"^no Durable Object binding named 'NOPE'$"):
            await rt.run_in_object("NOPE", rt.env.BOX.idFromName("a"), lambda inst, ctx: None)


def test_the_default_resident_cap_fits_the_process_file_limit() -> None:
    import resource

    from runtime import FILES_PER_OBJECT, default_max_resident

    cap = default_max_resident()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 16 <= cap <= 10_000
    if soft != resource.RLIM_INFINITY:
        assert cap * FILES_PER_OBJECT < soft


async def test_durability_none_is_throwaway_storage_without_wal_files_unless_history_is_kept(tmp_path) -> None:
    from objects import DurableObject

    class K(DurableObject):
        def put(self) -> int:
            self.ctx.storage.kv.put("k", 1)
            return self.ctx.storage.kv.get("k")

    async with open_runtime(bindings={"K": K}, data_dir=tmp_path / "off", durability="none", pitr_retention_ms=0) as rt:
        assert await rt.env.K.getByName("a").put() == 1
        assert not list((tmp_path / "off").rglob("*-wal"))
    # Point-in-time history archives the WAL's frames: with it, "none" is WAL mode, unsynced.
    async with open_runtime(bindings={"K": K}, data_dir=tmp_path / "kept", durability="none") as rt:
        assert await rt.env.K.getByName("a").put() == 1
        assert list((tmp_path / "kept").rglob("*-wal"))


async def test_an_unknown_env_name_says_what_the_env_holds() -> None:
    from objects import DurableObject

    class K(DurableObject):
        pass

    async with open_runtime(bindings={"K": K}, vars={"MODE": "test"}) as rt:
        with pytest.raises(AttributeError, match=r"^env has no binding or var named 'NOPE' \(it has: K, MODE\)$"):
            rt.env.NOPE
        assert "K" in rt.env and rt.env["MODE"] == "test"


@pytest.mark.parametrize("arity", [1, 2, 3])
async def test_a_module_level_on_fetch_gets_as_many_arguments_as_it_declares(arity: int) -> None:
    from objects import Response

    seen: list[int] = []

    def one(request):
        seen.append(1)
        return Response("1")

    def two(request, env):
        seen.append(2 if env.MODE == "t" else -1)
        return Response("2")

    async def three(request, env, ctx):
        ctx.waitUntil(trio.sleep(0))
        seen.append(3)
        return Response("3")

    entry = {1: one, 2: two, 3: three}[arity]
    async with open_runtime(bindings={}, vars={"MODE": "t"}, entrypoint=entry) as rt:
        for _ in range(2):
            assert await (await rt.fetch("http://example.com/")).text() == str(arity)
    assert seen == [arity, arity]
