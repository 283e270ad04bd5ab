"""asyncio's public coroutine and task API inside hosted code: each call, where code runs."""

from __future__ import annotations

import asyncio

import pytest
import trio

from objects import DurableObject, Response, WorkerEntrypoint
from runtime import open_runtime


async def _later(value, seconds):
    await asyncio.sleep(seconds)
    return value


class Api(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        # Synchronous code sees the running loop too, as under Pyodide.
        self.loop_at_construction = asyncio.get_running_loop()
        self.event = asyncio.Event()

    async def sleep_for(self, seconds):
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(seconds)
        return asyncio.get_running_loop().time() - start

    async def sleep_result(self):
        return await asyncio.sleep(0, "zero") + await asyncio.sleep(1, "-one")

    async def gather_values(self):
        return await asyncio.gather(_later("a", 2), _later("b", 1), asyncio.sleep(0, "c"))

    async def gather_errors(self):
        async def fails():
            await asyncio.sleep(1)
            raise ValueError("boom")

        results = await asyncio.gather(_later("ok", 2), fails(), return_exceptions=True)
        return [r if isinstance(r, str) else f"{type(r).__name__}: {r}" for r in results]

    async def task_roundtrip(self):
        task = asyncio.create_task(_later(41, 5), name="adder")
        assert isinstance(task, asyncio.Future) and task.get_name() == "adder"
        assert not task.done()
        return await task + 1

    async def wait_for_in_time(self):
        return await asyncio.wait_for(_later("fast", 1), timeout=5)

    async def wait_for_too_slow(self):
        try:
            await asyncio.wait_for(_later("slow", 10), timeout=1)
        except TimeoutError as exc:
            return type(exc).__name__
        return "no timeout"

    async def timeout_block(self):
        try:
            async with asyncio.timeout(1):
                await asyncio.sleep(10)
        except TimeoutError:
            return "timed out"
        return "no timeout"

    async def timeout_around_a_call(self):
        try:
            async with asyncio.timeout(1):
                await self.env.API.getByName("slow").sleep_for(100)
        except TimeoutError:
            return "timed out"
        return "no timeout"

    async def task_group(self):
        async with asyncio.TaskGroup() as tg:
            first = tg.create_task(_later(1, 2))
            second = tg.create_task(_later(2, 1))
        return [first.result(), second.result()]

    async def task_group_failure(self):
        async def fails():
            await asyncio.sleep(1)
            raise KeyError("child")

        slow = None
        try:
            async with asyncio.TaskGroup() as tg:
                slow = tg.create_task(asyncio.sleep(100))
                tg.create_task(fails())
        except ExceptionGroup as group:
            return [repr(group.exceptions[0]), slow.cancelled()]
        return "no error"

    async def shielded(self):
        inner = asyncio.create_task(_later("inner done", 3))
        try:
            await asyncio.wait_for(asyncio.shield(inner), 1)
        except TimeoutError:
            pass
        return [inner.cancelled(), await inner]

    async def primitives(self):
        lock, sem, queue, cond = asyncio.Lock(), asyncio.Semaphore(2), asyncio.Queue(), asyncio.Condition()
        order = []

        async def producer():
            for i in range(3):
                await asyncio.sleep(1)
                await queue.put(i)
            await queue.put(None)

        async def consumer():
            while (item := await queue.get()) is not None:
                async with sem, lock:
                    order.append(item)

        async def notifier():
            await asyncio.sleep(1)
            async with cond:
                cond.notify_all()

        async def waiter():
            async with cond:
                await cond.wait()
            order.append("notified")

        await asyncio.gather(producer(), consumer(), notifier(), waiter())
        return ["notified" in order, [item for item in order if item != "notified"]]

    async def events(self):
        async def setter():
            await asyncio.sleep(2)
            self.event.set()

        task = asyncio.create_task(setter())
        await self.event.wait()
        await task
        return self.event.is_set()

    async def futures_and_callbacks(self):
        loop = asyncio.get_running_loop()
        assert loop is self.loop_at_construction and asyncio.get_event_loop() is loop
        fut = loop.create_future()
        seen = []
        loop.call_soon(seen.append, "soon")
        loop.call_later(2, fut.set_result, "later")
        loop.call_at(loop.time() + 1, seen.append, "at")
        cancelled = loop.call_later(1, seen.append, "never")
        cancelled.cancel()
        seen.append(await fut)
        return seen

    async def current_and_all_tasks(self):
        me = asyncio.current_task()
        child = asyncio.create_task(asyncio.sleep(1))
        tasks = asyncio.all_tasks()
        await child
        return [me is not None, me in tasks, child in tasks, child not in asyncio.all_tasks()]

    async def wait_and_as_completed(self):
        tasks = [asyncio.create_task(_later(n, n)) for n in (3, 1, 2)]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = [t.result() for t in done]
        order = [await f for f in asyncio.as_completed(tasks)]
        return [first, len(pending), order]

    async def cancel_a_task(self):
        async def victim():
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                await asyncio.sleep(1)  # cleanup may still await
                raise

        task = asyncio.create_task(victim())
        await asyncio.sleep(1)
        task.cancel("stop it")
        try:
            await task
        except asyncio.CancelledError as exc:
            return [task.cancelled(), str(exc)]
        return "not cancelled"

    async def cancel_a_call_to_another_object(self):
        # A wait in trio (another object's call) is interrupted by cancel() as well.
        task = asyncio.create_task(self.env.API.getByName("other").sleep_for(100))
        await asyncio.sleep(1)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return task.cancelled()
        return "not cancelled"

    async def lifecycle_calls_change_nothing(self):
        loop = asyncio.get_running_loop()
        loop.stop()
        loop.close()
        fut = loop.run_until_complete(_later("scheduled", 1))
        return [loop.is_running(), loop.is_closed(), await fut]

    async def to_thread(self):
        return await asyncio.to_thread(sum, [1, 2, 3])

    async def run_in_executor(self):
        return await asyncio.get_running_loop().run_in_executor(None, lambda: "ran")

    def sync_method_starts_a_task(self):
        asyncio.get_event_loop().create_task(self._note_later())
        return "started"

    async def _note_later(self):
        await asyncio.sleep(1)
        await self.ctx.storage.put("noted", True)

    async def noted(self):
        return await self.ctx.storage.get("noted")

    async def cancel_myself(self):
        asyncio.current_task().cancel()
        await asyncio.sleep(1)

    async def no_network(self):
        try:
            await asyncio.open_connection("127.0.0.1", 1)
        except NotImplementedError as exc:
            return str(exc)
        return "connected?"

    async def nested_run_refused(self):
        coro = asyncio.sleep(0)
        try:
            asyncio.run(coro)
        except RuntimeError as exc:
            return str(exc)
        finally:
            coro.close()


@pytest.fixture
async def api():
    async with open_runtime(bindings={"API": Api}) as rt:
        yield rt.env.API.getByName("a")


async def test_asyncio_sleep_of_an_hour_is_instant_under_the_fake_clock(api, autojump_clock) -> None:
    before = trio.current_time()
    assert await api.sleep_for(3600) == 3600
    assert trio.current_time() - before >= 3600


async def test_sleep_returns_its_result(api, autojump_clock) -> None:
    assert await api.sleep_result() == "zero-one"


async def test_gather_returns_results_in_argument_order(api, autojump_clock) -> None:
    assert await api.gather_values() == ["a", "b", "c"]


async def test_gather_with_return_exceptions_collects_the_error(api, autojump_clock) -> None:
    assert await api.gather_errors() == ["ok", "ValueError: boom"]


async def test_create_task_returns_an_awaitable_task(api, autojump_clock) -> None:
    assert await api.task_roundtrip() == 42


async def test_wait_for_returns_a_result_in_time(api, autojump_clock) -> None:
    assert await api.wait_for_in_time() == "fast"


async def test_wait_for_raises_timeout_error_when_too_slow(api, autojump_clock) -> None:
    assert await api.wait_for_too_slow() == "TimeoutError"


async def test_asyncio_timeout_turns_cancellation_into_timeout_error(api, autojump_clock) -> None:
    assert await api.timeout_block() == "timed out"


async def test_asyncio_timeout_interrupts_a_call_to_another_object(api, autojump_clock) -> None:
    assert await api.timeout_around_a_call() == "timed out"


async def test_task_group_waits_for_its_tasks(api, autojump_clock) -> None:
    assert await api.task_group() == [1, 2]


async def test_task_group_cancels_siblings_when_one_fails(api, autojump_clock) -> None:
    assert await api.task_group_failure() == ["KeyError('child')", True]


async def test_shield_keeps_the_inner_task_running_past_a_timeout(api, autojump_clock) -> None:
    assert await api.shielded() == [False, "inner done"]


async def test_lock_semaphore_queue_and_condition_work_together(api, autojump_clock) -> None:
    assert await api.primitives() == [True, [0, 1, 2]]


async def test_an_event_set_by_a_task_wakes_the_handler(api, autojump_clock) -> None:
    assert await api.events() is True


async def test_loop_futures_and_callbacks_run_on_the_loop_clock(api, autojump_clock) -> None:
    assert await api.futures_and_callbacks() == ["soon", "at", "later"]


async def test_current_task_and_all_tasks_see_hosted_tasks(api, autojump_clock) -> None:
    assert await api.current_and_all_tasks() == [True, True, True, True]


async def test_wait_and_as_completed_follow_completion_order(api, autojump_clock) -> None:
    assert await api.wait_and_as_completed() == [[1], 2, [1, 2, 3]]


async def test_cancel_throws_cancelled_error_into_the_task(api, autojump_clock) -> None:
    assert await api.cancel_a_task() == [True, "stop it"]


async def test_cancel_interrupts_a_task_waiting_on_another_object(api, autojump_clock) -> None:
    assert await api.cancel_a_call_to_another_object() is True


async def test_a_handler_cancelling_its_own_task_fails_the_call_without_a_reset(api, autojump_clock) -> None:
    with pytest.raises(Exception, match="^the asyncio task running this handler was cancelled$") as info:
        await api.cancel_myself()
    assert not getattr(info.value, "durableObjectReset", False)
    assert await api.sleep_result() == "zero-one"


async def test_stop_close_and_run_until_complete_behave_as_in_pyodide(api, autojump_clock) -> None:
    assert await api.lifecycle_calls_change_nothing() == [True, False, "scheduled"]


async def test_to_thread_and_run_in_executor_run_the_function_inline(api, autojump_clock) -> None:
    assert await api.to_thread() == 6
    assert await api.run_in_executor() == "ran"


async def test_a_synchronous_method_may_start_a_task_that_writes(api, autojump_clock) -> None:
    assert await api.sync_method_starts_a_task() == "started"
    await trio.sleep(2)
    assert await api.noted() is True


async def test_sockets_are_refused_with_a_message_naming_the_alternative(api, autojump_clock) -> None:
    assert "not provided by dohost" in await api.no_network()


async def test_asyncio_run_inside_a_handler_is_refused_as_on_a_running_loop(api, autojump_clock) -> None:
    assert "running event loop" in await api.nested_run_refused()


class Holding(DurableObject):
    async def bcw_gather(self):
        async def load():
            return await asyncio.gather(_later(1, 1), _later(2, 2))

        return await self.ctx.blockConcurrencyWhile(load)

    async def txn_gather(self):
        await self.ctx.storage.put({"a": 1, "b": 2})

        async def body(txn):
            values = await asyncio.gather(txn.get("a"), txn.get("b"))
            await asyncio.sleep(1)
            await txn.put("sum", sum(values))
            return values

        return [await self.ctx.storage.transaction(body), await self.ctx.storage.get("sum")]

    async def alarm(self, info=None):
        await asyncio.sleep(30)
        await self.ctx.storage.put("alarm slept", True)

    async def arm(self):
        await self.ctx.storage.setAlarm(1)

    async def alarm_done(self):
        return await self.ctx.storage.get("alarm slept")

    async def wait_until_task(self):
        async def later():
            await asyncio.sleep(5)
            await self.ctx.storage.put("background", "done")

        self.ctx.waitUntil(asyncio.create_task(later()))
        return "queued"

    async def background(self):
        return await self.ctx.storage.get("background")


async def test_tasks_gathered_inside_block_concurrency_while_run_under_its_gate(autojump_clock) -> None:
    async with open_runtime(bindings={"H": Holding}) as rt:
        assert await rt.env.H.getByName("a").bcw_gather() == [1, 2]


async def test_gather_and_sleep_inside_a_transaction_callback(autojump_clock) -> None:
    async with open_runtime(bindings={"H": Holding}) as rt:
        assert await rt.env.H.getByName("a").txn_gather() == [[1, 2], 3]


async def test_an_alarm_handler_may_sleep_with_asyncio(autojump_clock) -> None:
    async with open_runtime(bindings={"H": Holding}) as rt:
        stub = rt.env.H.getByName("a")
        await stub.arm()
        await trio.sleep(60)
        assert await stub.alarm_done() is True


async def test_wait_until_keeps_an_asyncio_task_running_after_the_response(autojump_clock) -> None:
    async with open_runtime(bindings={"H": Holding}) as rt:
        stub = rt.env.H.getByName("a")
        assert await stub.wait_until_task() == "queued"
        assert await stub.background() is None
        await trio.sleep(10)
        assert await stub.background() == "done"


class Front(WorkerEntrypoint):
    async def fetch(self, request):
        path = request.url.rsplit("/", 1)[-1]
        if path == "gather":
            a, b = await asyncio.gather(self.env.H.getByName("x").background(), asyncio.sleep(1, "slept"))
            return Response(f"{a}|{b}")
        if path == "wait-until":
            self.ctx.waitUntil(asyncio.create_task(self.env.H.getByName("y").wait_until_task()))
            return Response("ok")
        if path == "timeout":
            try:
                await asyncio.wait_for(asyncio.Event().wait(), 2)
            except TimeoutError:
                return Response("timeout", status=504)
        return Response("?", status=404)


async def test_worker_code_uses_asyncio_in_its_fetch_handler(autojump_clock) -> None:
    async with open_runtime(bindings={"H": Holding}, entrypoint=Front) as rt:
        assert await (await rt.fetch("http://w/gather")).text() == "None|slept"
        resp = await rt.fetch("http://w/timeout")
        assert resp.status == 504
        assert (await rt.fetch("http://w/wait-until")).status == 200
        await trio.sleep(10)
        assert await rt.env.H.getByName("y").background() == "done"


class Waits(DurableObject):
    async def many_quick_waits(self, n):
        for i in range(n):
            assert await asyncio.wait_for(asyncio.sleep(0, i), timeout=3600) == i
        return len(asyncio.get_running_loop()._timers)


async def test_timers_cancelled_by_wait_for_do_not_pile_up(autojump_clock) -> None:
    async with open_runtime(bindings={"W": Waits}) as rt:
        assert await rt.env.W.getByName("a").many_quick_waits(1000) <= 250
