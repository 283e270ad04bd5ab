"""Review of the request path's shortcuts: edges the shortcut tests leave out.

A handler's asyncio task enters ``asyncio.all_tasks()`` as a plain weak
reference put straight into asyncio's set; it must leave it on every way
out, not only when the handler returns.
"""

from __future__ import annotations

import asyncio

import pytest
import trio
import trio.testing

from objects import Response, WorkerEntrypoint
from runtime import open_runtime
from runtime._asyncio import _task as task_module


class Exits(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/raise"):
            await asyncio.sleep(0)
            raise ValueError("the handler failed")
        await asyncio.sleep(100)  # until its caller is cancelled
        return Response("not reached")


async def test_a_worker_handler_task_leaves_all_tasks_when_it_raises_or_its_caller_is_cancelled() -> None:
    refs = task_module._TASK_REFS
    before = set(refs) if refs is not None else set()
    async with open_runtime(bindings={}, entrypoint=Exits) as rt:
        with pytest.raises(ValueError, match="the handler failed"):
            await rt.fetch("http://w/raise")
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(rt.fetch, "http://w/wait")
                await trio.testing.wait_all_tasks_blocked()
                assert any(not task.done() for task in asyncio.all_tasks(rt.loop))
                scope.cancel()
        assert scope.cancelled_caught
        assert not any(not task.done() for task in asyncio.all_tasks(rt.loop))
    if refs is not None:
        assert set(refs) == before  # no entry left behind, dead or alive
