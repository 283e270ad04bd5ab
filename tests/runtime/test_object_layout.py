"""What a request to one of many resident objects reads stays compact (README round 8, HTTP over many objects)."""

from __future__ import annotations

from objects import DurableObject
from runtime import open_runtime


class Counter(DurableObject):
    def increment(self) -> int:
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])


async def test_an_activation_keeps_every_field_in_its_slots_not_in_an_instance_dict(tmp_path) -> None:
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path) as rt:
        stub = rt.env.C.getByName("a")
        assert await stub.increment() == 1
        act = rt.live_activation("C", stub.id)
        assert act is not None
        act.park()
        assert await stub.increment() == 2  # reopened through the parked file
        # A field set outside __slots__ would land in a dict of its own (the
        # mixins have none), away from the fields a call reads first.
        assert vars(act) == {}


async def test_an_object_database_keeps_every_field_in_its_slots_through_a_park_and_a_reopen(tmp_path) -> None:
    async with open_runtime(bindings={"C": Counter}, data_dir=tmp_path) as rt:
        stub = rt.env.C.getByName("a")
        assert await stub.increment() == 1
        act = rt.live_activation("C", stub.id)
        assert act is not None and act.db is not None
        act.park()
        assert await stub.increment() == 2
        assert vars(act.db) == {}
