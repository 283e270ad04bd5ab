"""A caller waiting for its call's commit parks on the commit ticket inline, as ``Event.wait()`` would.

``ObjectEvent.__await__`` parks the task in ``ticket.parked`` and yields
trio's trap itself; ``CommitTicket.succeed``/``fail`` reschedule those tasks
directly (``runtime/_gates.py``). Each test runs both that path and the
general one (``_INLINE_PARK`` off: ``ticket._done.wait()``) and expects the
same results, errors and cancellations.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from objects import DurableObject
from runtime import CommitTicket, open_runtime
from runtime import _events, _gates
from runtime._events import EventKind, ObjectEvent


@pytest.fixture(params=["inline park", "Event.wait"])
def wait_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "Event.wait":
        monkeypatch.setattr(_events, "_INLINE_PARK", False)
    return str(request.param)


def _settled_event(value: Any, ticket: CommitTicket) -> ObjectEvent:
    event = ObjectEvent(EventKind.RPC, lambda instance: None)
    event.settle_value(value, ticket)
    return event


def test_the_installed_trio_takes_the_inline_park_and_its_trap_without_attrs_init() -> None:
    # Not a silent fallback: the shortcuts are what a request actually runs.
    assert _gates._INLINE_PARK and _gates._TRAP_BY_DICT


async def test_every_caller_parked_on_a_ticket_gets_its_value_once_the_commit_succeeds(wait_path: str) -> None:
    ticket = CommitTicket()
    got: list[Any] = []

    async def caller(i: int) -> None:
        got.append(await _settled_event(i, ticket))

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(caller, i)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # the output gate: nothing before the commit
        assert len(ticket.parked) == (5 if wait_path == "inline park" else 0)
        ticket.succeed()
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert ticket.parked == {}
    assert await _settled_event("late", ticket) == "late"  # settled already: no park


async def test_every_caller_parked_on_a_ticket_gets_the_commits_error_when_it_fails(wait_path: str) -> None:
    ticket = CommitTicket()
    errors: list[BaseException] = []
    failure = RuntimeError("the commit failed")

    async def caller() -> None:
        try:
            await _settled_event("never seen", ticket)
        except RuntimeError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        ticket.fail(failure)
    assert errors == [failure, failure, failure]
    assert ticket.parked == {}


async def test_a_parked_caller_that_is_cancelled_leaves_the_ticket_and_the_others_still_get_their_values(
    wait_path: str,
) -> None:
    ticket = CommitTicket()
    got: list[Any] = []
    cancelled: list[bool] = []

    async def caller(i: int, scope: trio.CancelScope | None = None) -> None:
        if scope is None:
            got.append(await _settled_event(i, ticket))
            return
        with scope:
            got.append(await _settled_event(i, ticket))
        cancelled.append(scope.cancelled_caught)

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller, 0)
        nursery.start_soon(caller, 1, scope)
        nursery.start_soon(caller, 2)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert cancelled == [True]
        assert len(ticket.parked) == (2 if wait_path == "inline park" else 0)
        ticket.succeed()
    assert sorted(got) == [0, 2]


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

    def increment(self) -> int:
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])


async def test_concurrent_writing_calls_each_get_their_own_count_after_their_commit(wait_path: str) -> None:
    async with open_runtime(bindings={"C": Counter}, durability="full") as rt:
        stub = rt.env.C.getByName("a")
        got: list[int] = []

        async def caller() -> None:
            for _ in range(4):
                got.append(await stub.increment())

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(caller)
        assert sorted(got) == list(range(1, 33))
        act = rt.live_activation("C", stub.id)
        assert act is not None and act.commits >= 1  # the counts left through commits (in its thread: "full")


async def test_ctx_storage_sql_is_the_databases_own_sql_object() -> None:
    class Probe(DurableObject):
        def same(self) -> bool:
            return self.ctx.storage.sql is self.ctx.storage._db.sql

    async with open_runtime(bindings={"P": Probe}) as rt:
        assert await rt.env.P.getByName("a").same() is True
