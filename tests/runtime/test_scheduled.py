"""The Worker's scheduled handler: run once (``run_scheduled``) and on a schedule (``serve_crons``)."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from objects import WorkerEntrypoint
from runtime import ScheduledController, next_cron_ms, open_runtime, run_scheduled, serve_crons

SEEN: list[tuple[str, Any]] = []


class SdkStyle(WorkerEntrypoint):
    async def scheduled(self, controller: Any) -> None:  # the current SDK's signature
        SEEN.append(("sdk", (controller.cron, controller.scheduled_time, controller.type)))


class DocsStyle(WorkerEntrypoint):
    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        async def later() -> None:
            await trio.sleep(60)
            SEEN.append(("waitUntil", env.GREETING))

        ctx.waitUntil(later())
        controller.noRetry()


class FetchOnly(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        return None


@pytest.fixture(autouse=True)
def _clear() -> Iterator[None]:
    SEEN.clear()
    yield
    SEEN.clear()


async def test_sdk_style_method_gets_a_controller_with_cron_and_time() -> None:
    async with open_runtime(entrypoint=SdkStyle) as rt:
        result = await run_scheduled(rt, "*/5 * * * *", 1_800_000_000_123.7)
    assert SEEN == [("sdk", ("*/5 * * * *", 1_800_000_000_123.0, "scheduled"))]
    assert (result.outcome, result.no_retry, result.error) == ("ok", False, None)


async def test_event_lasts_until_its_wait_until_work_is_done(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(entrypoint=DocsStyle, vars={"GREETING": "hi"}) as rt:
        result = await run_scheduled(rt, "0 * * * *")
        assert SEEN == [("waitUntil", "hi")]
    assert result.no_retry


async def test_function_style_on_scheduled_in_the_entrypoint_module() -> None:
    module = types.ModuleType("dohost_test_cron_functions")
    exec(textwrap.dedent("""
        SEEN = []

        async def on_fetch(request, env):
            return None

        def on_scheduled(controller, env, ctx):
            SEEN.append((controller.cron, env.WHO))
    """), module.__dict__)
    sys.modules[module.__name__] = module
    try:
        async with open_runtime(entrypoint=module.on_fetch, vars={"WHO": "me"}) as rt:
            assert (await run_scheduled(rt, "0 0 * * *")).outcome == "ok"
        assert module.SEEN == [("0 0 * * *", "me")]
    finally:
        del sys.modules[module.__name__]


async def test_worker_without_a_scheduled_handler_ends_in_exception() -> None:
    async with open_runtime(entrypoint=FetchOnly) as rt:
        result = await run_scheduled(rt, "* * * * *")
        with pytest.raises(TypeError, match=r"^Handler does not export a scheduled\(\) function\.$"):
            await run_scheduled(rt, "* * * * *", raise_errors=True)
    assert (result.outcome, result.error) == ("exception", "TypeError: Handler does not export a scheduled() function.")


async def test_serve_crons_fires_each_cron_at_its_utc_times(autojump_clock: trio.abc.Clock) -> None:
    async with open_runtime(entrypoint=SdkStyle) as rt:
        start = rt.now_ms()
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_crons, rt, ["*/15 * * * *", "0 * * * *"])
            await trio.sleep(2 * 3600)
            nursery.cancel_scope.cancel()
    fired = [info for kind, info in SEEN if kind == "sdk"]
    quarter = [t for cron, t, _ in fired if cron == "*/15 * * * *"]
    hourly = [t for cron, t, _ in fired if cron == "0 * * * *"]
    assert len(quarter) == 8 and len(hourly) == 2
    assert all(t % 900_000 == 0 and t > start for t in quarter) and all(t % 3_600_000 == 0 for t in hourly)


async def test_serve_crons_skips_the_times_another_process_or_node_fires(autojump_clock: trio.abc.Clock) -> None:
    mine = False  # e.g. this node holds shard 0 only for the second hour

    async with open_runtime(entrypoint=SdkStyle) as rt:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: serve_crons(rt, ["0 * * * *"], when=lambda: mine, task_status=task_status))
            await trio.sleep(3600)
            mine = True
            await trio.sleep(3600)
            nursery.cancel_scope.cancel()
    assert len([info for kind, info in SEEN if kind == "sdk"]) == 1


def test_next_cron_time_is_strictly_after_the_given_time() -> None:
    assert next_cron_ms("0 * * * *", 3_600_000.0) == 7_200_000.0
    assert next_cron_ms("0 * * * *", 3_599_999.0) == 3_600_000.0


def test_controller_has_cloudflare_and_snake_case_names() -> None:
    controller = ScheduledController("0 3 * * *", 5.9)
    assert (controller.scheduledTime, controller.scheduled_time, controller.cron) == (5.0, 5.0, "0 3 * * *")
    controller.no_retry()
    assert controller.retry is False
