"""The Python client (``objectql_client``) against the example's server, in process, on fake time."""

from __future__ import annotations

import pytest

from conftest import server_state
from objectql_client import SyncEngine, SyncRefused


async def test_an_offline_create_is_kept_and_reaches_the_server_on_reconnect(make_client, dohost, clock):
    engine, net = make_client("phone")
    net.offline = True
    engine.create("task", "t1", {"title": "buy milk", "status": "todo"})
    assert engine.view("task") == {"t1": {"title": "buy milk", "status": "todo"}}

    assert await engine.sync() is None  # every retry fails: nothing acknowledged
    assert isinstance(engine.last_error, Exception) and len(engine.pending()) == 1
    assert clock.slept == [1.0, 0.5, 1.0, 2.0, 4.0, 8.0]  # debounce, then backoff

    net.offline = False
    result = await engine.sync()
    assert result is not None and result.applied == 1 and result.checkpoint == "1"
    assert engine.pending() == []
    records = (await server_state(dohost))["records"]["task"]
    assert records == {"t1": {"data": {"title": "buy milk", "status": "todo"}, "version": 1,
                              "updated_at": "2026-01-01T00:00:00.000Z"}}


async def test_the_mutation_log_and_checkpoint_survive_a_client_restart(make_client, tmp_path):
    engine, net = make_client("laptop")
    engine.create("task", "t1", {"title": "a"})
    await engine.sync()
    net.offline = True
    engine.update("task", "t1", {"status": "done"})
    engine.create("note", "n1", {"title": "offline note"})
    engine.store.close()

    again, _ = make_client("laptop")
    assert [m["sequence"] for m in again.pending()] == [2, 3]
    assert again.pending()[0]["baseVersion"] == 1
    assert again.store.checkpoint == "1"
    assert again.view("task") == {"t1": {"title": "a", "status": "done"}}
    result = await again.sync()
    assert result.applied == 2 and again.pending() == []
    with pytest.raises(ValueError, match="belongs to client 'laptop'"):
        SyncEngine(again.http, tmp_path / "laptop.sqlite3", client_id="other")


async def test_sync_waits_for_the_debounce_and_pushes_at_most_fifty(make_client, clock):
    engine, net = make_client("bulk")
    for i in range(120):
        engine.create("note", f"n{i:03}", {"title": str(i)})
    clock.advance(0.25)
    result = await engine.sync()
    assert clock.slept == [0.75] and result.applied == 50
    assert len(engine.pending()) == 70
    results = await engine.sync_until_idle()
    assert [r.applied for r in results] == [50, 20] and net.sent == 3
    assert clock.slept == [0.75]  # no new local mutation: no more waiting


async def test_a_push_cut_after_the_server_applied_it_is_retried_and_applied_once(make_client, dohost):
    engine, net = make_client("train")
    engine.create("task", "t1", {"title": "one"})
    engine.create("task", "t2", {"title": "two"})
    engine.update("task", "t1", {"status": "doing"})
    net.cut_after_send = 1  # the server commits, the client never hears back
    result = await engine.sync()
    assert net.sent == 2 and result.applied == 3
    assert [r for r in result.conflicts] == []
    state = await server_state(dohost)
    assert state["checkpoint"] == "3"  # three change-log rows, not six
    assert state["records"]["task"]["t1"] == {"data": {"title": "one", "status": "doing"}, "version": 2,
                                              "updated_at": state["records"]["task"]["t1"]["updated_at"]}
    assert engine.view("task") == {"t1": {"title": "one", "status": "doing"}, "t2": {"title": "two"}}


async def _conflict(make_client, clock, obj, first, second, base=None, **options):
    """Both clients see ``base``, edit offline (``first`` earlier than ``second``), then sync in that order."""
    a, _ = make_client("a", **options)
    b, _ = make_client("b", **options)
    a.create(obj, "r1", base)
    await a.sync()
    await b.sync()
    clock.advance(5)
    a.update(obj, "r1", first)
    clock.advance(5)
    b.update(obj, "r1", second)
    await b.sync()  # the later edit lands first
    await a.sync()  # the earlier one is now stale
    for _ in range(3):
        await b.sync()
        await a.sync()
    assert a.pending() == [] and b.pending() == []
    assert a.view(obj) == b.view(obj)
    return a.view(obj)["r1"]


async def test_last_write_wins_keeps_the_later_edit_whichever_lands_last(make_client, clock):
    record = await _conflict(make_client, clock, "task", {"title": "from a"}, {"title": "from b"}, {"title": "base"})
    assert record == {"title": "from b"}


async def test_last_write_wins_re_sends_the_later_edit_when_it_is_the_stale_one(make_client, clock):
    a, _ = make_client("a")
    b, _ = make_client("b")
    a.create("task", "r1", {"title": "base"})
    await a.sync()
    await b.sync()
    b.update("task", "r1", {"title": "early"})
    clock.advance(5)
    a.update("task", "r1", {"title": "late"})
    await b.sync()
    result = await a.sync()  # stale, but later: resolved and re-sent with the new baseVersion
    assert [c["conflictingFields"] for c in result.conflicts] == [["title"]]
    assert a.pending()[0]["baseVersion"] == 2
    await a.sync()
    await b.sync()
    assert a.view("task") == b.view("task") == {"r1": {"title": "late"}}


async def test_crdt_merges_edits_of_different_fields_and_the_later_write_of_the_same_field(make_client, clock):
    record = await _conflict(make_client, clock, "note", {"title": "a's title", "body": "a's body"},
                             {"body": "b's body", "pinned": True}, {"title": "t", "body": "x"})
    assert record == {"title": "a's title", "body": "b's body", "pinned": True}


async def test_manual_conflicts_go_to_on_conflict_and_its_answer_is_pushed(make_client, clock):
    seen = []

    def on_conflict(conflict):
        seen.append(conflict)
        server = conflict["serverRecord"]
        return {"assignee": f"{server['assignee']}+{conflict['clientMutation']['data']['assignee']}"}

    record = await _conflict(make_client, clock, "ticket", {"assignee": "ann"}, {"assignee": "bob"},
                             {"subject": "printer", "assignee": "zed"}, on_conflict=on_conflict)
    assert record == {"subject": "printer", "assignee": "bob+ann"}
    assert len(seen) == 1 and seen[0]["conflictingFields"] == ["assignee"]
    assert seen[0]["objectName"] == "ticket" and seen[0]["recordId"] == "r1"


async def test_an_unresolved_manual_conflict_stays_pending(make_client, clock):
    a, _ = make_client("a")  # no on_conflict
    b, _ = make_client("b")
    a.create("ticket", "r1", {"subject": "s", "state": "open"})
    await a.sync()
    await b.sync()
    a.update("ticket", "r1", {"state": "closed"})
    b.update("ticket", "r1", {"state": "pending"})
    await b.sync()
    result = await a.sync()
    assert len(result.conflicts) == 1 and len(a.pending()) == 1


async def test_a_rejected_mutation_is_parked_with_its_reason_and_not_re_sent(make_client, dohost):
    engine, net = make_client("a")
    engine.create("task", "t1", {"title": 42})
    engine.create("task", "t2", {"title": "fine"})
    result = await engine.sync()
    assert result.applied == 1
    assert [m["reason"] for m in engine.rejected()] == ["Validation failed: task.title: expected text, got 42"]
    assert engine.pending() == [] and engine.view("task") == {"t2": {"title": "fine"}}
    await engine.sync()
    assert net.sent == 2  # the rejected one was not in the second push
    assert list((await server_state(dohost))["records"]["task"]) == ["t2"]


async def test_a_refused_request_raises_with_the_servers_message(make_client):
    engine, _ = make_client("a", strategies={"task": "last-write-wins"}, path="/api/sync")
    engine.store.db.execute(  # a corrupted log entry: an object the server does not know
        "INSERT INTO mutations (sequence, id, object_name, record_id, operation, data, timestamp) "
        "VALUES (1, 'x', 'nope', 'r', 'create', '{}', '2026-01-01T00:00:00Z')")
    with pytest.raises(SyncRefused, match=r"^400: invalid SyncPushRequest: \$\.mutations\[0\]\.objectName: unknown object 'nope'"):
        await engine.sync()
