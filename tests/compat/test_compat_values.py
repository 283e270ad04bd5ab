"""Values from storage, RPC and JSON bodies satisfy code of both SDK eras.

Older Python Workers code got ``JsProxy`` objects and calls ``.to_py()``,
``.as_object_map()``, a Map's ``keys()``/``values()``/``entries()``/``get``/
``has``/``size``, ``object_values()``; current code treats the same values
as plain dicts and lists. Both programs below run against one object.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import msgspec
import pytest

from objects import JsArray, JsMap, JsObject, js_value
from tests.compat._platform_support import open_project
from wrangler_compat.platform import install_modules

install_modules()

PROXY_ERA = """
from workers import DurableObject, Response, WorkerEntrypoint
from pyodide.ffi import to_js
from js import Object


class Store(DurableObject):
    async def save(self, profile):
        profile = profile.to_py()                      # an RPC argument was a JsProxy
        await self.ctx.storage.put("profile", profile)
        await self.ctx.storage.put("visits", 3)
        self.ctx.storage.kv.put("settings", {"theme": "dark"})
        return True

    async def report(self):
        profile = await self.ctx.storage.get("profile")
        many = await self.ctx.storage.get(["profile", "visits", "absent"])
        listed = await self.ctx.storage.list()
        settings = self.ctx.storage.kv.get("settings")
        pairs = [list(entry) for entry in self.ctx.storage.kv.list(prefix="s")]
        raw = self.ctx.storage.sql.exec("SELECT 1 AS a, 2 AS b UNION ALL SELECT 3, 4").raw()
        first = raw.next()
        return {
            "name": profile.as_object_map()["name"],
            "tags": profile.to_py()["tags"],
            "values": [len(v) if isinstance(v, list) else v for v in profile.object_values()],
            "size": many.size,
            "has_visits": many.has("visits"),
            "has_absent": many.has("absent"),
            "visits": many.get("visits"),
            "keys": list(listed.keys()),
            "entries": [[k, v.to_py() if hasattr(v, "to_py") else v] for k, v in listed.entries()],
            "theme": settings.theme,
            "pairs": pairs,
            "raw_first": first.value,
            "row_next": self.ctx.storage.sql.exec("SELECT 5 AS five").next().value.five,
            "raw_rest": raw.toArray(),
        }


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        body = (await request.json()).to_py()
        stub = self.env.STORE.getByName("one")
        await stub.save(to_js(body, dict_converter=Object.fromEntries))
        report = await stub.report()
        return Response.json(report.to_py())
"""

PLAIN_ERA = """
from workers import DurableObject, Response, WorkerEntrypoint


class Store(DurableObject):
    async def save(self, profile):
        profile["seen"] = profile.get("seen", 0) + 1
        await self.ctx.storage.put("profile", profile)
        return profile

    async def bump(self):
        profile = await self.ctx.storage.get("profile")
        profile["seen"] += 1                             # read, change, write back
        await self.ctx.storage.put("profile", profile)
        return await self.ctx.storage.get("profile")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        body = await request.json()
        stub = self.env.STORE.getByName("two")
        saved = await stub.save(body)
        bumped = await stub.bump()
        return Response.json({"saved": saved, "bumped": bumped, "equal": bumped == {**body, "seen": 2}})
"""


async def test_proxy_era_code_calls_to_py_and_map_methods_on_storage_and_rpc_values(tmp_path: Path) -> None:
    async with open_project(tmp_path, PROXY_ERA, bindings={"STORE": "Store"}) as dohost:
        response = await dohost.fetch(
            "http://example.com/", method="POST", body=json.dumps({"name": "ada", "tags": ["x", "y"]})
        )
        assert response.status == 200, await response.text()
        report = await response.json()
    assert report == {
        "name": "ada",
        "tags": ["x", "y"],
        "values": ["ada", 2],
        "size": 2,
        "has_visits": True,
        "has_absent": False,
        "visits": 3,
        "keys": ["profile", "settings", "visits"],
        "entries": [["profile", {"name": "ada", "tags": ["x", "y"]}], ["settings", {"theme": "dark"}], ["visits", 3]],
        "theme": "dark",
        "pairs": [["settings", {"theme": "dark"}]],
        "raw_first": [1, 2],
        "raw_rest": [[3, 4]],
        "row_next": 5,
    }


async def test_plain_era_code_treats_the_same_values_as_dicts(tmp_path: Path) -> None:
    async with open_project(tmp_path, PLAIN_ERA, bindings={"STORE": "Store"}) as dohost:
        response = await dohost.fetch("http://example.com/", method="POST", body=json.dumps({"name": "bo"}))
        assert response.status == 200, await response.text()
        assert await response.json() == {
            "saved": {"name": "bo", "seen": 1},
            "bumped": {"name": "bo", "seen": 2},
            "equal": True,
        }


def test_js_shaped_values_are_plain_values_to_json_pickle_and_msgspec() -> None:
    value = js_value({"a": [1, {"b": None}], "c": "x"}, JsMap)
    assert type(value) is JsMap and type(value["a"]) is JsArray and type(value["a"][1]) is JsObject
    plain = {"a": [1, {"b": None}], "c": "x"}
    assert value == plain and value.to_py() == plain and type(value.to_py()["a"][1]) is dict
    assert json.loads(json.dumps(value)) == plain
    assert msgspec.json.decode(msgspec.json.encode(value)) == plain
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(value)) == plain
    again = pickle.loads(pickle.dumps(value))
    assert again == plain and type(again) is JsMap
    assert value["a"][1].b is None and value.a.length == 2
    assert value.as_py_json() is value and value.a.as_py_json() is value.a  # Pyodide 0.28's newer view


def test_no_value_is_a_js_proxy_as_the_current_sdk_promises() -> None:
    from pyodide.ffi import JsProxy

    for value in (js_value({"a": [1]}), js_value([{"b": 2}]), js_value({"c": 3}, JsMap)):
        assert not isinstance(value, JsProxy)
        assert value.to_py() == value  # and still answers the proxy method


def test_scalars_are_returned_as_they_are() -> None:
    for scalar in (1, 1.5, "s", b"b", None, True):
        assert js_value(scalar) is scalar


DOCS_ALARMS_SHAPE = """
from workers import DurableObject, Response, WorkerEntrypoint


class Batcher(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.storage = ctx.storage

        @self.ctx.blockConcurrencyWhile
        async def initialize():
            vals = await self.storage.list(reverse=True, limit=1)
            self.count = 0
            if len(vals) > 0:
                self.count = int(vals.keys().next().value)

    async def fetch(self, request):
        self.count += 1
        await self.storage.put(f"{self.count:04d}", await request.text())
        vals = await self.storage.list()
        return Response.json({"queued": self.count, "values": list(vals.values()), "keys": len(vals.keys())})


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await self.env.BATCHER.getByName("foo").fetch(request)
"""


async def test_a_map_from_list_answers_js_iterator_next_as_cloudflares_alarm_example_uses_it(tmp_path: Path) -> None:
    async with open_project(tmp_path, DOCS_ALARMS_SHAPE, bindings={"BATCHER": "Batcher"}) as dohost:
        first = await dohost.fetch("http://example.com/", method="POST", body="a")
        assert await first.json() == {"queued": 1, "values": ["a"], "keys": 1}
        await dohost.evict(dohost.env.BATCHER.getByName("foo"))  # the constructor reads the last key back
        second = await dohost.fetch("http://example.com/", method="POST", body="b")
        assert await second.json() == {"queued": 2, "values": ["a", "b"], "keys": 2}


def test_js_iterators_give_value_and_done_then_stop() -> None:
    keys = js_value({"a": 1, "b": 2}, JsMap).keys()
    assert "b" in keys and len(keys) == 2
    first = keys.next()
    assert (first.value, first.done) == ("a", False)
    assert list(keys) == ["b"]
    end = keys.next()
    assert (end.value, end.done) == (None, True)


BYTES_PROGRAM = """
from js import TextEncoder, Uint8Array
from workers import DurableObject, Response, WorkerEntrypoint


class Blobs(DurableObject):
    async def keep(self, data):
        await self.ctx.storage.put("raw", data)
        self.ctx.storage.kv.put("enc", TextEncoder.new().encode("hi"))
        return [await self.ctx.storage.get("raw"), self.ctx.storage.kv.get("enc")]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        stub = self.env.BLOBS.getByName("b")
        raw, enc = await stub.keep(Uint8Array.new([1, 2, 3]))
        return Response.json({"raw": list(raw), "enc": bytes(enc).decode(), "type": type(raw).__name__})
"""


async def test_js_byte_arrays_cross_rpc_and_are_stored_as_bytes(tmp_path: Path) -> None:
    async with open_project(tmp_path, BYTES_PROGRAM, bindings={"BLOBS": "Blobs"}) as dohost:
        response = await dohost.fetch("http://example.com/")
        assert await response.json() == {"raw": [1, 2, 3], "enc": "hi", "type": "bytes"}


@pytest.mark.slow
async def test_proxy_era_code_answers_over_real_http_under_dohost_dev(tmp_path: Path) -> None:
    import httpx

    from tests.compat._platform_support import write_project
    from tests.e2e._e2e_support import run_dohost

    root = write_project(tmp_path / "proxy-era", PROXY_ERA, bindings={"STORE": "Store"})
    async with run_dohost(["dohost", "dev", "--port", "0"], cwd=root) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            reply = await client.post("/", json={"name": "web", "tags": ["t"]})
            assert reply.status_code == 200, reply.text
            report = reply.json()
    assert (report["name"], report["tags"], report["size"], report["raw_rest"]) == ("web", ["t"], 2, [[3, 4]])
