"""Tests of the todos example: persisted collections inside a Durable Object.

Most tests use the ``dohost`` fixture (a fresh runtime and fresh storage per
test, built from this folder's wrangler.toml). Tests that close the runtime
and open it again on the same data directory — a restart, or a deploy with a
new schema version in ``vars`` — use ``open_runtime`` directly.
"""

import json
from pathlib import Path

import pytest
import trio

from runtime import open_runtime

PROJECT = Path(__file__).resolve().parent
MISMATCH = (
    r'^Schema version mismatch for collection "todos": found 1, expected 2\. '
    r'Set schema_mismatch_policy to "reset" to allow automatic reset\.$'
)


# -- helpers ------------------------------------------------------------------------
async def call(target, method, path, body=None):
    """``(status, JSON body)`` of a request to the Worker (``target``: the fixture or a runtime)."""
    data = None if body is None else json.dumps(body)
    response = await target.fetch(f"https://todos.example{path}", method=method, body=data)
    text = await response.text()
    return response.status, (json.loads(text) if text else None)


async def add(target, title, todo_list="home"):
    status, todo = await call(target, "POST", f"/{todo_list}/todos", {"title": title})
    assert status == 201
    return todo


async def titles(target, query="", todo_list="home"):
    status, page = await call(target, "GET", f"/{todo_list}/todos{query}")
    assert status == 200
    return [t["title"] for t in page["items"]]


def tx(term, seq, rows, *, truncate=False):
    """A committed transaction from the sync source: ``rows`` maps keys to values."""
    mutations = [{"type": "insert", "key": key, "value": value} for key, value in rows.items()]
    return {"tx_id": f"t{term}.{seq}", "term": term, "seq": seq, "truncate": truncate, "mutations": mutations}


async def sync(target, transaction, todo_list="home"):
    status, result = await call(target, "POST", f"/{todo_list}/shared/sync", transaction)
    assert status == 200
    return result


async def shared(target, todo_list="home"):
    status, result = await call(target, "GET", f"/{todo_list}/shared")
    assert status == 200
    return result


def runtime(data_dir, **versions):
    """The project on ``data_dir``, with ``TODOS=2``-style schema version overrides."""
    overrides = {f"{name}_SCHEMA_VERSION": str(v) for name, v in versions.items()}
    return open_runtime(config=PROJECT, data_dir=data_dir, vars=overrides)


# -- the HTTP API ---------------------------------------------------------------------
async def test_todos_are_added_read_updated_and_deleted_over_http(dohost):
    milk = await add(dohost, "buy milk")
    assert milk["id"] == "1" and milk["done"] is False and milk["seq"] == 1

    assert await call(dohost, "PATCH", "/home/todos/1", {"done": True}) == (200, {**milk, "done": True})
    assert await call(dohost, "GET", "/home/todos/1") == (200, {**milk, "done": True})
    assert await call(dohost, "DELETE", "/home/todos/1") == (204, None)
    assert (await call(dohost, "GET", "/home/todos/1"))[0] == 404
    assert (await call(dohost, "DELETE", "/home/todos/1"))[0] == 404
    assert (await call(dohost, "PATCH", "/home/todos/1", {"done": False}))[0] == 404
    assert (await add(dohost, "next"))["id"] == "2"  # ids are never reused


async def test_each_list_is_its_own_object_with_its_own_todos(dohost):
    await add(dohost, "home chore", todo_list="home")
    await add(dohost, "work task", todo_list="work")
    assert await titles(dohost, todo_list="home") == ["home chore"]
    assert await titles(dohost, todo_list="work") == ["work task"]
    assert len(dohost.list_object_ids("TODOS")) == 2


async def test_listing_filters_orders_and_pages_with_a_cursor_without_skipping_or_repeating(dohost):
    for title in ["d", "b", "f", "a", "e", "c", "g"]:
        await add(dohost, title)
    for todo_id in ("2", "5"):  # "b" and "e"
        await call(dohost, "PATCH", f"/home/todos/{todo_id}", {"done": True})

    assert await titles(dohost) == ["d", "b", "f", "a", "e", "c", "g"]
    assert await titles(dohost, "?order=-created") == ["g", "c", "e", "a", "f", "b", "d"]
    assert await titles(dohost, "?done=true&order=title") == ["b", "e"]

    seen, cursor, pages = [], None, 0
    while True:
        query = "?done=false&order=title&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await call(dohost, "GET", f"/home/todos{query}")
        assert status == 200 and len(page["items"]) <= 2
        seen += [t["title"] for t in page["items"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
        if pages == 1:
            await add(dohost, "zz added while paging")  # sorts last: seen once, at the end
    assert seen == ["a", "c", "d", "f", "g", "zz added while paging"]
    assert pages == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/home/todos", {"title": ""}, 'expected {"title": "<non-empty text>"}'),
        ("POST", "/home/todos", {"title": "x", "done": True}, 'expected {"title": "<non-empty text>"}'),
        ("PATCH", "/home/todos/1", {"done": "yes"}, "done: expected bool"),
        ("PATCH", "/home/todos/1", {"owner": "me"}, 'expected some of {"title": "<text>", "done": true|false}'),
        ("GET", "/home/todos?done=maybe", None, "done: expected true or false"),
        ("GET", "/home/todos?limit=0", None, "limit: expected 1 to 100"),
        ("GET", "/home/todos?order=priority", None, "order: expected one of created, -created, title, -title"),
        ("GET", "/home/todos?cursor=bogus", None,
         "cursor: not a cursor of this listing (same order) returned by this API"),
        ("POST", "/home/shared/sync", {"term": 1, "seq": "one"},
         "invalid transaction: seq: expected an integer, got 'one'"),
    ],
)
async def test_bad_requests_get_a_400_and_change_nothing(dohost, method, path, body, message):
    await add(dohost, "keep me")
    before = await call(dohost, "GET", "/home/todos/1")
    assert await call(dohost, method, path, body) == (400, {"error": message})
    assert await call(dohost, "GET", "/home/todos/1") == before
    assert await titles(dohost) == ["keep me"]
    assert (await shared(dohost))["items"] == []


async def test_a_cursor_from_another_order_is_refused(dohost):
    for title in "abc":
        await add(dohost, title)
    _, page = await call(dohost, "GET", "/home/todos?order=title&limit=1")
    status, body = await call(dohost, "GET", f"/home/todos?order=created&cursor={page['cursor']}")
    assert status == 400 and body["error"].startswith("cursor: ")


async def test_the_collections_live_in_the_objects_own_sqlite_storage(dohost):
    await add(dohost, "inspect me")
    stub = dohost.env.TODOS.getByName("home")

    def inspect(instance, ctx):
        registry = ctx.storage.sql.exec(
            "SELECT collection_id, schema_version FROM collection_registry ORDER BY collection_id"
        )
        rows = instance.todos.load_subset()  # the object's own handle, under its input gate
        return [(r["collection_id"], r["schema_version"]) for r in registry], [r.value["title"] for r in rows]

    assert await dohost.run_in_durable_object(stub, inspect) == ([("shared", 1), ("todos", 1)], ["inspect me"])


# -- durability -----------------------------------------------------------------------
async def test_todos_and_shared_rows_survive_eviction(dohost):
    await add(dohost, "survive eviction")
    await sync(dohost, tx(1, 1, {"s1": {"name": "from the source"}}))
    stub = dohost.env.TODOS.getByName("home")

    assert await dohost.evict(stub) is True
    assert dohost.statistics(stub).state == "evicted"

    assert await titles(dohost) == ["survive eviction"]  # the constructor ran again, same storage
    assert [r["name"] for r in (await shared(dohost))["items"]] == ["from the source"]
    assert (await add(dohost, "after"))["id"] == "2"


async def test_todos_survive_a_restart_of_the_runtime(tmp_path):
    async with runtime(tmp_path) as rt:
        await add(rt, "written before the restart")
        await call(rt, "PATCH", "/home/todos/1", {"done": True})
        await sync(rt, tx(1, 1, {"s1": {"name": "synced"}}))

    async with runtime(tmp_path) as rt:
        status, page = await call(rt, "GET", "/home/todos?done=true")
        assert [(t["id"], t["title"], t["done"]) for t in page["items"]] == [("1", "written before the restart", True)]
        assert [r["name"] for r in (await shared(rt))["items"]] == ["synced"]
        assert (await shared(rt))["position"]["reset_epoch"] == 0


# -- schema versions ------------------------------------------------------------------
async def test_the_sync_source_is_idempotent_per_term_and_seq(dohost):
    first = await sync(dohost, tx(1, 1, {"a": {"name": "one"}}))
    again = await sync(dohost, tx(1, 1, {"a": {"name": "changed?"}}))
    assert first["applied"] is True and again["applied"] is False
    assert [r["name"] for r in (await shared(dohost))["items"]] == ["one"]
    assert again["position"] == {"reset_epoch": 0, "latest_term": 1, "latest_seq": 1, "latest_row_version": 1}


async def test_a_new_todos_schema_version_stops_the_object_and_changes_nothing(tmp_path):
    async with runtime(tmp_path) as rt:
        await add(rt, "precious")
        await sync(rt, tx(1, 1, {"s1": {"name": "synced"}}))

    # Both versions bumped: `todos` refuses, so `shared` is not reset either (one transaction).
    async with runtime(tmp_path, TODOS=2, SHARED=2) as rt:
        for _ in range(2):  # every request fails the same way; nothing is half-done
            with pytest.raises(Exception, match=MISMATCH) as caught:
                await call(rt, "GET", "/home/todos")
            assert type(caught.value).__name__ == "SchemaVersionMismatchError"

    async with runtime(tmp_path) as rt:  # reverted: everything is still there
        assert await titles(rt) == ["precious"]
        result = await shared(rt)
        assert [r["name"] for r in result["items"]] == ["synced"]
        assert result["position"]["reset_epoch"] == 0


async def test_a_new_shared_schema_version_resets_shared_only_and_it_resyncs(tmp_path):
    history = [tx(1, 1, {"a": {"name": "alpha"}}), tx(1, 2, {"b": {"name": "beta"}})]
    async with runtime(tmp_path) as rt:
        await add(rt, "local todo")
        for t in history:
            await sync(rt, t)

    async with runtime(tmp_path, SHARED=2) as rt:
        assert await shared(rt) == {
            "items": [],
            "position": {"reset_epoch": 1, "latest_term": 0, "latest_seq": 0, "latest_row_version": 3},
        }
        assert await titles(rt) == ["local todo"]  # the local-only collection is untouched
        # The source sees latest_seq 0 and replays its history; (term, seq) are new again.
        assert [(await sync(rt, t))["applied"] for t in history] == [True, True]
        assert [r["name"] for r in (await shared(rt))["items"]] == ["alpha", "beta"]

    async with runtime(tmp_path, SHARED=2) as rt:  # same version again: no second reset
        result = await shared(rt)
        assert [r["name"] for r in result["items"]] == ["alpha", "beta"]
        assert result["position"]["reset_epoch"] == 1


# -- bursts ---------------------------------------------------------------------------
OLD = {f"k{i:02d}": {"name": f"k{i:02d}", "gen": "old"} for i in range(10)}
NEW = {f"k{i:02d}": {"name": f"k{i:02d}", "gen": "new"} for i in range(12)}


def state_of(items):
    """'old' or 'new' (the whole snapshot), 'empty', or 'MIXED' for anything else."""
    gens = {r["gen"] for r in items}
    names = [r["name"] for r in items]
    if not items:
        return "empty"
    if gens == {"old"} and names == sorted(OLD):
        return "old"
    if gens == {"new"} and names == sorted(NEW):
        return "new"
    return "MIXED"


async def burst(target, resync, seen):
    """50 concurrent GETs of /home/shared, with ``resync`` started in the middle.

    The GETs wait 0 to 6 scheduling rounds before they start and the resync
    3, so some requests reach the object before the resync and some after.
    """

    async def get(i):
        for _ in range(i % 7):  # spread the requests over several scheduling rounds
            await trio.lowlevel.checkpoint()
        seen.append(state_of((await shared(target))["items"]))

    async def resync_midway():
        for _ in range(3):
            await trio.lowlevel.checkpoint()
        await resync()

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(get, i)
            if i == 25:
                nursery.start_soon(resync_midway)


async def test_a_burst_of_reads_during_a_resync_sees_all_old_or_all_new_rows(dohost):
    await sync(dohost, tx(1, 1, OLD))
    seen = []
    await burst(dohost, lambda: sync(dohost, tx(2, 1, NEW, truncate=True)), seen)
    # Requests before the resync see the old snapshot, after it the new one; nothing else.
    assert len(seen) == 50 and set(seen) == {"old", "new"}, seen
    assert state_of((await shared(dohost))["items"]) == "new"


async def test_requests_queued_behind_a_schema_reset_see_neither_old_rows_nor_half_a_resync(tmp_path):
    async with runtime(tmp_path) as rt:
        await sync(rt, tx(1, 1, OLD))

    seen = []
    async with runtime(tmp_path, SHARED=2) as rt:
        # The first request activates the object; its constructor resets `shared`
        # while the other requests (and the resync) wait behind the input gate.
        await burst(rt, lambda: sync(rt, tx(1, 1, NEW)), seen)
        assert state_of((await shared(rt))["items"]) == "new"
    # Never an old row: the reset ran before any request. Never part of the new snapshot.
    assert len(seen) == 50 and set(seen) == {"empty", "new"}, seen
