"""The sync endpoint's protocol, limits, hooks, persistence and retention, with raw JSON through the Worker."""

from __future__ import annotations

import json

import pytest
import trio

from conftest import BASE, HEADERS, mutation, push, request, server_state
from runtime import open_runtime

PROJECT = __import__("pathlib").Path(__file__).resolve().parent
DAY = 86_400


def create(mid, rid, title="t", **kw):
    return mutation(mid, "task", rid, "create", {"title": title}, **kw)


async def test_a_create_is_applied_echoed_back_and_the_version_header_is_echoed(dohost):
    response = await dohost.fetch(BASE + "/api/sync", method="POST", headers=HEADERS,
                                  body=json.dumps(request(create("m1", "t1"))))
    assert response.status == 200 and response.headers.get("X-ObjectQL-Sync-Version") == "1"
    body = json.loads(await response.text())
    assert body["results"] == [{"status": "applied", "serverVersion": 1}]
    assert body["checkpoint"] == "1"
    [echo] = body["serverChanges"]
    assert {k: v for k, v in echo.items() if k != "timestamp"} == {
        "objectName": "task", "recordId": "t1", "operation": "create", "data": {"title": "t"}, "serverVersion": 1}
    assert echo["timestamp"].endswith("Z")


async def test_an_empty_push_pulls_and_the_checkpoint_starts_at_zero(dohost):
    assert await push(dohost, request()) == (200, {"results": [], "serverChanges": [], "checkpoint": "0"})


async def test_results_follow_the_request_order_with_objectqls_semantics(dohost):
    status, body = await push(dohost, request(
        create("m1", "t1", "one"),
        mutation("m2", "task", "t1", "update", {"status": "doing"}, base=1, seq=2),
        mutation("m3", "task", "nope", "delete", seq=3),
        create("m4", "t1", "again", seq=4),  # create always applies, even over an existing record
        mutation("m5", "task", "t1", "delete", seq=5),
        mutation("m6", "task", "ghost", "update", {"status": "done"}, seq=6),  # applies even to a missing record
    ))
    assert status == 200
    assert body["results"] == [
        {"status": "applied", "serverVersion": 1},
        {"status": "applied", "serverVersion": 2},
        {"status": "rejected", "reason": "Record not found"},
        {"status": "applied", "serverVersion": 3},
        {"status": "applied", "serverVersion": 4},
        {"status": "applied", "serverVersion": 1},
    ]
    assert [(c["recordId"], c["operation"], c["serverVersion"]) for c in body["serverChanges"]] == [
        ("t1", "create", 1), ("t1", "update", 2), ("t1", "create", 3), ("t1", "delete", 4), ("ghost", "update", 1)]
    assert "data" not in body["serverChanges"][3]
    assert (await server_state(dohost))["records"]["task"] == {
        "ghost": {"data": {"status": "done"}, "version": 1, "updated_at": "2026-01-01T00:00:00.000Z"}}


async def test_a_stale_update_conflicts_only_on_configured_fields_that_differ(dohost):
    await push(dohost, request(create("m1", "t1", "one"), mutation("m2", "task", "t1", "update", {"status": "todo"}, base=1)))
    _, body = await push(dohost, request(
        mutation("m3", "task", "t1", "update", {"title": "one", "priority": 3}, base=1, client="b"), client="b"))
    assert body["results"] == [{"status": "applied", "serverVersion": 3}]  # title unchanged: no conflict
    _, body = await push(dohost, request(
        mutation("m4", "task", "t1", "update", {"title": "two", "status": "todo", "done": True}, base=2, client="b",
                 ts="2026-01-02T00:00:00.000Z"), client="b"))
    [result] = body["results"]
    assert result["status"] == "conflict"
    conflict = result["conflict"]
    assert conflict["objectName"] == "task" and conflict["recordId"] == "t1"
    assert conflict["conflictingFields"] == ["title"]
    assert conflict["clientMutation"]["id"] == "m4" and conflict["clientMutation"]["data"]["title"] == "two"
    assert conflict["serverRecord"] == {"id": "t1", "title": "one", "status": "todo", "priority": 3,
                                        "updated_at": "2026-01-01T00:00:00.000Z"}
    assert conflict["serverVersion"] == 3
    assert (await server_state(dohost))["records"]["task"]["t1"]["version"] == 3  # nothing applied


async def test_without_conflict_fields_every_key_of_a_stale_update_conflicts(dohost):
    note = mutation("m1", "note", "n1", "create", {"title": "x", "body": "y"})
    await push(dohost, request(note, mutation("m2", "note", "n1", "update", {"body": "z"}, base=1)))
    _, body = await push(dohost, request(mutation("m3", "note", "n1", "update", {"title": "x", "pinned": True}, base=1)))
    conflict = body["results"][0]["conflict"]
    assert conflict["conflictingFields"] == ["title", "pinned"]
    assert set(conflict["serverFieldTimestamps"]) == {"title", "body"}


@pytest.mark.parametrize(("checkpoint", "expected"), [(None, ["t1", "t2", "t3"]), ("1", ["t2", "t3"]),
                                                      ("3", []), ("abc", ["t1", "t2", "t3"])])
async def test_server_changes_are_everything_after_the_checkpoint(dohost, checkpoint, expected):
    await push(dohost, request(create("m1", "t1"), create("m2", "t2"), create("m3", "t3")))
    _, body = await push(dohost, request(checkpoint=checkpoint))
    assert [c["recordId"] for c in body["serverChanges"]] == expected and body["checkpoint"] == "3"


async def test_more_than_a_hundred_mutations_are_all_rejected_and_nothing_is_applied(dohost):
    _, body = await push(dohost, request(*[create(f"m{i}", f"t{i}", seq=i) for i in range(101)]))
    assert body == {"results": [{"status": "rejected", "reason": "Exceeds maximum mutations per request (100)"}] * 101,
                    "serverChanges": [], "checkpoint": "0"}
    assert (await server_state(dohost))["records"]["task"] == {}
    _, body = await push(dohost, request(*[create(f"m{i}", f"t{i}", seq=i) for i in range(100)]))
    assert [r["status"] for r in body["results"]] == ["applied"] * 100


async def test_a_retried_push_is_answered_with_the_original_versions_and_applied_once(dohost):
    body = request(create("m1", "t1"), mutation("m2", "task", "t1", "update", {"done": True}, base=1, seq=2))
    _, first = await push(dohost, body)
    _, again = await push(dohost, body)
    assert again["results"] == first["results"] == [{"status": "applied", "serverVersion": 1},
                                                    {"status": "applied", "serverVersion": 2}]
    assert again["checkpoint"] == "2" and len(again["serverChanges"]) == 2


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "missing X-ObjectQL-Sync-Version header; supported versions: 1"),
    ({"X-ObjectQL-Sync-Version": "2"}, "unsupported X-ObjectQL-Sync-Version '2'; supported versions: 1"),
])
async def test_a_missing_or_other_protocol_version_is_refused_naming_the_supported_ones(dohost, headers, message):
    status, body = await push(dohost, request(create("m1", "t1")), headers=headers)
    assert (status, body) == (400, {"error": message})
    assert (await server_state(dohost))["checkpoint"] == "0"


GOOD = create("m1", "t1")


@pytest.mark.parametrize(("body", "message"), [
    ('{"clientId": "a", "mutations": [', r"^malformed JSON: "),
    ({"clientId": "a", "mutations": {}}, r"^invalid SyncPushRequest: Expected `array`, got `object` - at `\$\.mutations`$"),
    (request(GOOD, {**GOOD, "id": "m2", "recordId": True}),
     r"^invalid SyncPushRequest: Expected `int \| str`, got `bool` - at `\$\.mutations\[1\]\.recordId`$"),
    (request(GOOD, {**GOOD, "id": "m2", "operation": "upsert"}),
     r"^invalid SyncPushRequest: Invalid enum value 'upsert' - at `\$\.mutations\[1\]\.operation`$"),
    (request(GOOD, {**GOOD, "id": "m2", "sequence": "2"}),
     r"^invalid SyncPushRequest: Expected `int`, got `str` - at `\$\.mutations\[1\]\.sequence`$"),
    (request(GOOD, mutation("m2", "invoice", "i1", "create", {})),
     r"^invalid SyncPushRequest: \$\.mutations\[1\]\.objectName: unknown object 'invoice' \(objects: draft, note, reading, task, ticket\)$"),
    (request(GOOD, mutation("m2", "draft", "d1", "create", {})),
     r"^invalid SyncPushRequest: \$\.mutations\[1\]\.objectName: object 'draft' does not have sync enabled$"),
    (request(GOOD, mutation("m2", "task", "t2", "update")),
     r"^invalid SyncPushRequest: \$\.mutations\[1\]\.data: expected an object for 'update', got nothing$"),
    (request(GOOD, {**GOOD, "id": "m2", "timestamp": "yesterday"}),
     r"^invalid SyncPushRequest: \$\.mutations\[1\]\.timestamp: expected an ISO 8601 timestamp, got 'yesterday'$"),
    (request(GOOD, {**GOOD, "id": "m2", "clientId": "b"}),
     r"^invalid SyncPushRequest: \$\.mutations\[1\]\.clientId: expected the request's clientId 'a', got 'b'$"),
])
async def test_bad_input_gets_a_clear_400_and_changes_nothing(dohost, body, message):
    status, answer = await push(dohost, body)
    assert status == 400 and answer.keys() == {"error"}
    assert __import__("re").match(message, answer["error"]), answer["error"]
    assert await server_state(dohost) == {"checkpoint": "0", "records": {
        "draft": {}, "note": {}, "reading": {}, "task": {}, "ticket": {}}}


@pytest.mark.parametrize(("data", "reason"), [
    ({"title": 42}, "Validation failed: task.title: expected text, got 42"),
    ({"status": "todo"}, "Validation failed: task.title: required"),
    ({"title": "x", "status": "later"}, "Validation failed: task.status: expected one of todo, doing, done, got 'later'"),
    ({"title": "x", "priority": "high"}, "Validation failed: task.priority: expected a number, got 'high'"),
    ({"title": "x", "done": 1}, "Validation failed: task.done: expected true or false, got 1"),
    ({"title": "x", "owner": "me"}, "Validation failed: task.owner: no such field (fields: title, status, priority, done)"),
])
async def test_the_validation_hook_rejects_a_bad_mutation_and_applies_the_others(dohost, data, reason):
    _, body = await push(dohost, request(mutation("m1", "task", "t1", "create", data), create("m2", "t2", seq=2)))
    assert body["results"] == [{"status": "rejected", "reason": reason}, {"status": "applied", "serverVersion": 1}]
    assert list((await server_state(dohost))["records"]["task"]) == ["t2"]


async def test_bodies_over_one_mebibyte_are_refused_with_413(dohost):
    big = request(mutation("m1", "note", "n1", "create", {"title": "x", "body": "y" * (1024 * 1024)}))
    assert (await push(dohost, big))[0] == 413
    response = await dohost.fetch(BASE + "/api/sync", method="POST",
                                  headers={**HEADERS, "Content-Length": str(2 * 1024 * 1024)}, body=b"{}")
    assert response.status == 413
    assert (await server_state(dohost))["checkpoint"] == "0"


async def test_the_docs_path_works_and_other_methods_and_paths_are_refused(dohost):
    assert (await push(dohost, request(GOOD), path="/api/sync/push"))[0] == 200
    response = await dohost.fetch(BASE + "/api/sync")
    assert response.status == 405 and response.headers.get("Allow") == "POST"
    assert (await dohost.fetch(BASE + "/elsewhere")).status == 404


async def test_each_space_is_its_own_object_chosen_by_query_header_or_default(dohost):
    await push(dohost, request(create("m1", "t1")), path="/api/sync?space=alpha")
    await push(dohost, request(create("m2", "t2")), headers={**HEADERS, "X-ObjectQL-Space": "beta"})
    await push(dohost, request(create("m3", "t3")))
    for space, ids in (("alpha", ["t1"]), ("beta", ["t2"]), ("default", ["t3"])):
        assert list((await server_state(dohost, space))["records"]["task"]) == ids
    assert len(dohost.list_object_ids("SYNC")) == 3


async def test_push_only_objects_are_not_sent_back(dohost):
    reading = mutation("m1", "reading", "r1", "create", {"sensor": "s", "value": 1.5})
    _, body = await push(dohost, request(reading, create("m2", "t1", seq=2)))
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]
    assert [c["objectName"] for c in body["serverChanges"]] == ["task"]


async def test_the_change_log_and_versions_survive_eviction_and_a_restart(tmp_path):
    async with open_runtime(config=PROJECT, data_dir=tmp_path) as rt:
        await push(rt, request(create("m1", "t1")))
        assert await rt.evict("SYNC", rt.env.SYNC.idFromName("default"))
        _, body = await push(rt, request(mutation("m2", "task", "t1", "update", {"done": True}, base=1, seq=2)))
        assert body["results"] == [{"status": "applied", "serverVersion": 2}]
    async with open_runtime(config=PROJECT, data_dir=tmp_path) as rt:
        _, body = await push(rt, request(mutation("m3", "task", "t1", "update", {"title": "new"}, base=1, seq=3),
                                         create("m1", "t1"), checkpoint="1"))
        assert body["results"][0]["status"] == "conflict"  # version 2 remembered
        assert body["results"][1] == {"status": "applied", "serverVersion": 1}  # mutation id remembered
        assert body["checkpoint"] == "2" and [c["serverVersion"] for c in body["serverChanges"]] == [2]


async def test_the_owner_policy_lets_only_a_records_creator_change_it(tmp_path):
    async with open_runtime(config=PROJECT, data_dir=tmp_path, vars={"OBJECTQL_ACCESS_POLICY": "owner"}) as rt:
        await push(rt, request(create("m1", "t1")))
        _, body = await push(rt, request(mutation("m2", "task", "t1", "update", {"done": True}, client="b"),
                                          mutation("m3", "task", "t1", "delete", client="b"), client="b"))
        assert [r["reason"] for r in body["results"]] == [
            "Access denied: client 'b' may not update task 't1' (owned by 'a')",
            "Access denied: client 'b' may not delete task 't1' (owned by 'a')"]
        _, body = await push(rt, request(mutation("m4", "task", "t1", "update", {"done": True})))
        assert body["results"] == [{"status": "applied", "serverVersion": 2}]


async def test_pushes_over_the_rate_limit_get_429_with_retry_after(tmp_path, autojump_clock):
    async with open_runtime(config=PROJECT, data_dir=tmp_path, vars={"OBJECTQL_RATE_LIMIT": "2"}) as rt:
        assert [(await push(rt, request()))[0] for _ in range(2)] == [200, 200]
        response = await rt.fetch(BASE + "/api/sync", method="POST", headers=HEADERS, body=json.dumps(request(GOOD)))
        assert response.status == 429 and response.headers.get("Retry-After") == "30"
        assert "rate limit exceeded for client 'a': 2 requests per minute" in (await response.text())
        assert (await push(rt, request(client="b")))[0] == 200  # per client
        await trio.sleep(30)
        assert (await push(rt, request(GOOD)))[0] == 200


async def test_old_change_log_rows_are_pruned_by_an_alarm_and_old_checkpoints_get_a_full_resync(dohost, autojump_clock):
    await push(dohost, request(create("m1", "t1"), create("m2", "t2", seq=2)))
    await trio.sleep(20 * DAY)
    await push(dohost, request(mutation("m3", "task", "t1", "update", {"done": True}, base=1, seq=3),
                               mutation("m4", "task", "t2", "delete", seq=4)))
    await trio.sleep(11 * DAY)  # the first two rows are now 31 days old
    stub = dohost.env.SYNC.getByName("default")

    def log_ids(instance, ctx):
        return [r["id"] for r in ctx.storage.sql.exec("SELECT id FROM _objectql_change_log")]

    assert await dohost.run_in_durable_object(stub, log_ids) == [3, 4]
    _, body = await push(dohost, request(checkpoint="3"))  # recent enough: a normal delta
    assert [(c["recordId"], c["operation"]) for c in body["serverChanges"]] == [("t2", "delete")] and "resync" not in body
    for old in ("1", None):
        _, body = await push(dohost, request(checkpoint=old))
        assert body["resync"] is True and body["checkpoint"] == "4"
        assert [(c["recordId"], c["operation"], c["data"]) for c in body["serverChanges"]] == [
            ("t1", "create", {"title": "t", "done": True})]
    await trio.sleep(20 * DAY)
    assert await dohost.run_in_durable_object(stub, log_ids) == []
    _, body = await push(dohost, request(create("m5", "t5", seq=5)))
    assert body["checkpoint"] == "5"  # the counter never goes back
