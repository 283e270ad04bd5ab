"""IDs as objects see them: names inside the object, across eviction and restart."""

from __future__ import annotations

from pathlib import Path

from objects import DurableObject
from runtime import open_runtime


class Named(DurableObject):
    def who(self):
        oid = self.ctx.id
        return [oid.toString(), oid.name, oid.jurisdiction]

    def touch(self):
        self.ctx.storage.kv.put("touched", True)


async def test_id_from_name_is_stable_and_routes_to_the_same_object() -> None:
    async with open_runtime(bindings={"N": Named}) as rt:
        ns = rt.env.N
        a, b = ns.idFromName("x"), ns.id_from_name("x")
        assert a == b and a.equals(b) and a.name == "x"
        assert ns.idFromName("y") != a
        assert await ns.get(a).who() == [a.toString(), "x", None]


async def test_id_from_string_round_trips_and_reaches_the_same_object() -> None:
    async with open_runtime(bindings={"N": Named}) as rt:
        ns = rt.env.N
        unique = ns.newUniqueId()
        parsed = ns.idFromString(unique.toString())
        assert parsed == unique and parsed.name is None
        await ns.get(unique).touch()
        assert await ns.get(parsed).who() == [unique.toString(), None, None]
        assert len(rt.statistics()) == 1


async def test_new_unique_id_and_jurisdiction_views_carry_their_jurisdiction() -> None:
    async with open_runtime(bindings={"N": Named}) as rt:
        ns = rt.env.N
        eu_id = ns.newUniqueId(jurisdiction="eu")
        assert eu_id.jurisdiction == "eu"
        assert ns.new_unique_id({"jurisdiction": "eu"}).jurisdiction == "eu"
        eu = ns.jurisdiction("eu")
        by_name = eu.idFromName("x")
        assert by_name.jurisdiction == "eu" and by_name != ns.idFromName("x")
        assert await eu.get(by_name).who() == [by_name.toString(), "x", "eu"]
        assert ns.idFromString(by_name.toString()).jurisdiction == "eu"


async def test_id_name_survives_eviction() -> None:
    async with open_runtime(bindings={"N": Named}) as rt:
        ns = rt.env.N
        oid = ns.idFromName("keep")
        await ns.get(oid).touch()
        assert await rt.evict("N", oid) is True
        assert [s.state for s in rt.statistics()] == ["evicted"]
        by_string = ns.get(ns.idFromString(oid.toString()))
        assert await by_string.who() == [oid.toString(), "keep", None]


async def test_id_name_survives_restart_even_through_id_from_string(data_dir: Path) -> None:
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir) as rt:
        oid = rt.env.N.idFromName("persisted")
        await rt.env.N.get(oid).touch()
        hex_id = oid.toString()
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir) as rt:
        stub = rt.env.N.get(rt.env.N.idFromString(hex_id))
        assert stub.name is None  # the caller's ID was parsed, so it carries no name
        assert await stub.who() == [hex_id, "persisted", None]


async def test_name_is_recorded_even_when_the_object_never_writes(data_dir: Path) -> None:
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir) as rt:
        oid = rt.env.N.idFromName("reader")
        await rt.env.N.get(oid).who()
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir) as rt:
        assert await rt.env.N.get(rt.env.N.idFromString(oid.toString())).who() == [oid.toString(), "reader", None]


async def test_object_files_are_named_by_id_never_by_name(data_dir: Path) -> None:
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir) as rt:
        oid = rt.env.N.idFromName("../../etc/passwd")
        await rt.env.N.get(oid).touch()
        assert rt.object_ids("N") == [oid.toString()]
    names = {p.name for p in data_dir.rglob("*")}
    assert not any("passwd" in n for n in names)
    assert f"{oid.toString()}.sqlite" in names


async def test_name_written_with_a_full_durability_commit_survives_restart(data_dir: Path) -> None:
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir, durability="full") as rt:
        oid = rt.env.N.idFromName("durable")
        await rt.env.N.get(oid).touch()
        assert await rt.env.N.get(oid).who() == [oid.toString(), "durable", None]
    async with open_runtime(bindings={"N": Named}, data_dir=data_dir, durability="full") as rt:
        assert await rt.env.N.get(rt.env.N.idFromString(oid.toString())).who() == [oid.toString(), "durable", None]
