"""The inspector's JSON twins and API, in-process: what they say, who may ask, what they refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from runtime import build_app, open_runtime
from wrangler_compat.inspector import InspectorOptions, inspector_routes

PROJECT = Path(__file__).with_name("project") / "wrangler.toml"


@pytest.fixture
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    options = getattr(request, "param", InspectorOptions())
    async with open_runtime(config=PROJECT, data_dir=tmp_path) as rt:
        app = build_app(lambda: rt, extra_routes=inspector_routes(lambda: rt, options))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inspected") as client:
            for title in ("alpha", "beta"):
                await client.get(f"/ada/add?title={title}&stars=4")
            await client.get("/ada/set?key=theme&value=dark")
            await client.get(f"/ada/remind?at={rt.now_ms() + 3_600_000}")
            await client.get("/grace/add?title=gamma")
            yield rt, client


async def test_the_object_list_names_each_object_with_binding_id_name_and_state(served: Any) -> None:
    rt, client = served
    listing = (await client.get("/__dohost/api/objects")).json()
    twin = (await client.get("/__dohost/inspector?format=json")).json()
    ids = {o["name"]: o["id"] for o in listing["objects"]}
    assert ids == {"ada": rt.env.NOTEBOOK.idFromName("ada").toString(), "grace": rt.env.NOTEBOOK.idFromName("grace").toString()}
    assert {(o["binding"], o["state"]) for o in listing["objects"]} == {("NOTEBOOK", "idle")}
    assert twin["objects"] == listing["objects"]
    ada = next(o for o in listing["objects"] if o["name"] == "ada")
    assert ada["alarm"].endswith("Z") and ada["last_activity"].endswith("Z") and ada["storage_bytes"] > 0


async def test_the_name_filter_keeps_matching_objects(served: Any) -> None:
    _rt, client = served
    listing = (await client.get("/__dohost/api/objects?name=GRA")).json()
    assert [o["name"] for o in listing["objects"]] == ["grace"]


async def test_the_object_twin_shows_tables_rows_kv_alarm_and_events(served: Any) -> None:
    rt, client = served
    await rt.evict("NOTEBOOK", rt.env.NOTEBOOK.idFromName("ada"))
    data = (await client.get("/__dohost/inspector/NOTEBOOK/ada?format=json")).json()
    assert data["state"] == "evicted"
    assert data["tables"] == [{"name": "notes", "rows": 2}]
    assert data["table"]["columns"] == ["id", "title", "stars"]
    assert [r[1] for r in data["table"]["rows"]] == ["alpha", "beta"]
    assert data["kv"] == [{"key": "theme", "value": "dark"}]
    assert data["alarm"] is not None
    assert {e["kind"] for e in data["events"]} == {"fetch"}
    assert data["bookmarks"] and data["bookmarks"][0]["at"].endswith("Z")
    # Looking did not wake it.
    assert (await client.get("/__dohost/api/objects/NOTEBOOK/ada")).json()["state"] == "evicted"


async def test_the_query_box_reads_and_refuses_writes_without_the_dev_switch(served: Any) -> None:
    _rt, client = served
    read = await client.post("/__dohost/inspector/NOTEBOOK/ada/query?format=json", data={"sql": "SELECT title FROM notes ORDER BY id"})
    write = await client.post("/__dohost/inspector/NOTEBOOK/ada/query?format=json", data={"sql": "DELETE FROM notes"})
    assert read.json()["rows"] == [["alpha"], ["beta"]]
    assert write.status_code == 400 and "--inspector-writes" in write.json()["error"]
    count = await client.post("/__dohost/inspector/NOTEBOOK/ada/query?format=json", data={"sql": "SELECT count(*) FROM notes"})
    assert count.json()["rows"] == [[2]]


@pytest.mark.parametrize("served", [InspectorOptions(allow_writes=True)], indirect=True)
async def test_with_the_dev_switch_the_query_box_writes_through_the_object(served: Any) -> None:
    _rt, client = served
    write = await client.post("/__dohost/inspector/NOTEBOOK/ada/query?format=json", data={"sql": "DELETE FROM notes WHERE title = 'alpha'"})
    assert write.json()["wrote"] is True and write.json()["rows_written"] == 1
    assert (await client.get("/ada/count")).text == "1"


async def test_the_alarm_buttons_run_and_delete_it(served: Any) -> None:
    _rt, client = served
    ran = (await client.post("/__dohost/inspector/NOTEBOOK/ada/alarm-run?format=json")).json()
    assert ran["ran"] is True
    kv = (await client.get("/__dohost/api/objects/NOTEBOOK/ada/kv")).json()["entries"]
    assert {"key": "reminded", "value": True} in kv
    await client.get("/ada/remind?at=99999999999999")
    await client.post("/__dohost/inspector/NOTEBOOK/ada/alarm-delete")
    assert (await client.get("/__dohost/api/objects/NOTEBOOK/ada/alarm")).json() == {"alarm": None}


async def test_evict_and_abort_take_the_object_out_of_memory(served: Any) -> None:
    _rt, client = served
    evicted = (await client.post("/__dohost/inspector/NOTEBOOK/ada/evict?format=json")).json()
    assert (evicted["evicted"], evicted["state"]) == (True, "evicted")
    await client.get("/grace/count")
    aborted = (await client.post("/__dohost/inspector/NOTEBOOK/grace/abort?format=json")).json()
    assert aborted["aborted"] is True and aborted["state"] == "evicted"
    assert (await client.get("/grace/count")).text == "1"  # a new instance, storage kept


async def test_a_post_from_another_origin_is_refused(served: Any) -> None:
    _rt, client = served
    reply = await client.post("/__dohost/inspector/NOTEBOOK/ada/evict", headers={"Origin": "http://evil.example"})
    assert reply.status_code == 403
    assert (await client.get("/__dohost/api/objects/NOTEBOOK/ada")).json()["state"] == "idle"


async def test_an_unknown_binding_is_a_404_naming_it(served: Any) -> None:
    _rt, client = served
    reply = await client.get("/__dohost/api/objects/NOPE/ada")
    assert reply.status_code == 404 and "'NOPE'" in reply.json()["error"]


@pytest.mark.parametrize("served", [InspectorOptions(token="s3cret", token_required=True)], indirect=True)
async def test_on_serve_the_inspector_wants_the_token(served: Any) -> None:
    _rt, client = served
    assert (await client.get("/__dohost/api/objects")).status_code == 401
    assert (await client.get("/__dohost/api/objects", headers={"Authorization": "Bearer nope"})).status_code == 401
    ok = await client.get("/__dohost/api/objects", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and len(ok.json()["objects"]) == 2
    # A browser brings it once in the URL; a cookie carries it from then on.
    first = await client.get("/__dohost/inspector?token=s3cret&name=ada")
    assert first.status_code == 303 and first.headers["location"] == "/__dohost/inspector?name=ada"
    page = await client.get(first.headers["location"], headers={"Accept": "text/html"})
    assert page.status_code == 200 and ">ada<" in page.text


@pytest.mark.parametrize("served", [InspectorOptions(token=None, token_required=True)], indirect=True)
async def test_on_serve_without_a_token_the_inspector_is_off(served: Any) -> None:
    _rt, client = served
    reply = await client.get("/__dohost/api/objects")
    assert reply.status_code == 403 and "--token" in reply.json()["error"]


async def test_table_rows_come_in_pages_of_25(served: Any) -> None:
    _rt, client = served
    for i in range(30):
        await client.get(f"/paged/add?title=n{i}")
    first = (await client.get("/__dohost/api/objects/NOTEBOOK/paged")).json()["table"]
    second = (await client.get("/__dohost/api/objects/NOTEBOOK/paged?table=notes&offset=25")).json()["table"]
    assert (first["total"], len(first["rows"]), first["rows"][0][1]) == (30, 25, "n0")
    assert [r[1] for r in second["rows"]] == [f"n{i}" for i in range(25, 30)]
    page = await client.get("/__dohost/inspector/NOTEBOOK/paged?table=notes&offset=25", headers={"Accept": "text/html"})
    assert "rows 26–30 of 30" in page.text and 'id="prev"' in page.text and 'id="next"' not in page.text


async def test_an_object_without_storage_has_nothing_to_export(served: Any) -> None:
    _rt, client = served
    reply = await client.get("/__dohost/api/objects/NOTEBOOK/nobody/export")
    assert reply.status_code == 404 and "no storage" in reply.json()["error"]


async def test_restore_here_brings_back_a_bookmarked_state_and_offers_the_undo(served: Any) -> None:
    _rt, client = served
    api = "/__dohost/api/objects/NOTEBOOK/ada"
    before = (await client.get(api + "/bookmark")).json()["bookmark"]
    await client.get("/ada/add?title=gamma&stars=1")
    twin = (await client.get("/__dohost/inspector/NOTEBOOK/ada?format=json")).json()
    assert twin["state"] == "idle"  # read through its history, between events
    assert before in [b["bookmark"] for b in twin["bookmarks"]]
    assert all(b["at"].endswith("Z") for b in twin["bookmarks"])
    assert twin["events"][0]["rows_written"] >= 1 and "rows_read" in twin["events"][0]

    done = await client.post("/__dohost/inspector/NOTEBOOK/ada/restore?format=json", data={"bookmark": before})
    assert done.status_code == 200 and done.json()["state"] == "evicted"
    undo = done.json()["undo"]
    after = (await client.get("/__dohost/inspector/NOTEBOOK/ada?format=json")).json()
    assert [r[1] for r in after["table"]["rows"]] == ["alpha", "beta"]
    assert after["state"] == "evicted"  # looking at the restored file did not wake it
    assert undo in [b["bookmark"] for b in after["bookmarks"]]  # read from the side file

    back = (await client.post(api + "/restore", json={"bookmark": undo})).json()
    assert back["restored"] == undo
    notes = (await client.post(api + "/sql", json={"sql": "SELECT title FROM notes"})).json()
    assert [r[0] for r in notes["rows"]] == ["alpha", "beta", "gamma"]


async def test_a_bookmark_of_another_object_is_refused_and_changes_nothing(served: Any) -> None:
    _rt, client = served
    grace = (await client.get("/__dohost/api/objects/NOTEBOOK/grace/bookmark")).json()["bookmark"]
    refused = await client.post("/__dohost/api/objects/NOTEBOOK/ada/restore", json={"bookmark": grace})
    assert refused.status_code == 400 and "does not belong" in refused.json()["error"]
    page = await client.post("/__dohost/inspector/NOTEBOOK/ada/restore", data={"bookmark": "nonsense"})
    assert "is not a bookmark" in page.text
    notes = (await client.post("/__dohost/api/objects/NOTEBOOK/ada/sql", json={"sql": "SELECT count(*) FROM notes"})).json()
    assert notes["rows"] == [[2]]

