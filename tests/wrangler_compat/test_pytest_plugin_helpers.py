"""Every helper of the ``dohost`` fixture, run by pytester on the sample counter project.

Each test writes a user test module exercising one helper (the counterparts
of Cloudflare's ``cloudflare:test``), runs pytest in process and expects it
to pass: the assertions that matter are in the user module.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SAMPLES = Path(__file__).parent / "sample_projects"
INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def run_user_tests(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    shutil.copytree(SAMPLES / "counter", pytester.path, dirs_exist_ok=True)
    (pytester.path / "pytest.ini").write_text(INI)
    pytester.makepyfile(test_user=textwrap.dedent(source))
    return pytester.runpytest()


def test_run_in_durable_object_runs_a_function_inside_the_object(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest
        from worker import Counter

        async def test_sync_function_sees_instance_and_ctx(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment(4)

            def inside(instance, ctx):
                assert isinstance(instance, Counter)
                assert ctx.id.name == "a" and ctx.id.equals(stub.id)
                ctx.storage.kv.put("written-inside", True)
                return instance.get(), ctx.storage.sql.exec("SELECT value FROM counts").one()["value"]

            assert await dohost.run_in_durable_object(stub, inside) == (4, 4)
            assert await dohost.run_in_durable_object(stub, lambda i, c: c.storage.kv.get("written-inside"))

        async def test_async_function_and_uncopied_result(dohost):
            stub = dohost.env.COUNTER.getByName("a")

            async def inside(instance, ctx):
                await ctx.storage.put("k", "v")
                return instance

            instance = await dohost.run_in_durable_object(stub, inside)
            assert isinstance(instance, Counter) and instance.generation == "fresh"
            assert await dohost.run_in_durable_object(stub, lambda i, c: i) is instance

        async def test_exceptions_reach_the_test_as_they_are(dohost):
            def inside(instance, ctx):
                raise KeyError("from inside")

            with pytest.raises(KeyError, match="from inside"):
                await dohost.run_in_durable_object(dohost.env.COUNTER.getByName("a"), inside)

        async def test_events_queue_behind_it(dohost, nursery):
            import trio
            stub = dohost.env.COUNTER.getByName("a")
            order = []

            async def slow(instance, ctx):
                order.append("start")
                await ctx.blockConcurrencyWhile(lambda: trio.sleep(0.01))
                order.append("end")

            async def call():
                await stub.increment()
                order.append("rpc")

            async with trio.open_nursery() as n:
                n.start_soon(dohost.run_in_durable_object, stub, slow)
                await trio.sleep(0)
                n.start_soon(call)
            assert order == ["start", "end", "rpc"]

        async def test_a_stub_is_required(dohost):
            with pytest.raises(TypeError, match=r"^run_in_durable_object\\(\\): expected a Durable Object stub"):
                await dohost.run_in_durable_object("COUNTER", lambda i, c: None)
        """,
    ).assert_outcomes(passed=5)


def test_run_alarm_runs_a_pending_alarm_now_with_full_semantics(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest
        import trio

        async def test_an_alarm_hours_ahead_runs_now_and_is_deleted(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.schedule(5 * 3_600_000)
            scheduled = await dohost.run_in_durable_object(stub, lambda i, c: c.storage.kv.get("__never__"))
            due = await dohost.run_in_durable_object(stub, lambda i, c: c.storage.getAlarm())
            assert await dohost.run_alarm(stub) is True
            assert await stub.get() == 100
            assert await stub.last_alarm() == {"retry": 0, "at": due}
            assert await dohost.run_in_durable_object(stub, lambda i, c: c.storage.getAlarm()) is None
            assert await dohost.run_alarm(stub) is False

        async def test_no_alarm_means_false_and_nothing_runs(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            assert await dohost.run_alarm(stub) is False
            assert await stub.get() == 0

        async def test_the_scheduler_does_not_run_it_again(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.schedule(1000)
            assert await dohost.run_alarm(stub) is True
            await trio.sleep(10)
            assert await stub.get() == 100

        async def test_a_failing_alarm_raises_and_is_retried_with_backoff(dohost, autojump_clock):
            stub = dohost.env.FLAKY.getByName("f")
            await stub.arm(2)
            with pytest.raises(RuntimeError, match=r"^alarm failure #1$"):
                await dohost.run_alarm(stub)
            with pytest.raises(RuntimeError, match=r"^alarm failure #2$"):
                await dohost.run_alarm(stub)        # the retry, run early
            assert await stub.attempts() == [0, 1]
            await trio.sleep(4.5)                    # the scheduler runs retry 2 after 2 s * 2
            assert await stub.attempts() == [0, 1, 2]
            assert await dohost.run_alarm(stub) is False

        async def test_the_alarm_is_dropped_after_six_retries(dohost, autojump_clock):
            stub = dohost.env.FLAKY.getByName("f")
            await stub.arm(100)
            for attempt in range(7):
                with pytest.raises(RuntimeError):
                    await dohost.run_alarm(stub)
            assert await stub.attempts() == [0, 1, 2, 3, 4, 5, 6]
            assert await dohost.run_alarm(stub) is False
            await trio.sleep(3600)
            assert len(await stub.attempts()) == 7
        """,
    ).assert_outcomes(passed=5)


def test_evict_and_evict_all_drop_instances_and_keep_storage(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest

        async def test_evict_one(dohost):
            a, b = dohost.env.COUNTER.getByName("a"), dohost.env.COUNTER.getByName("b")
            await a.increment(); await a.mark("old")
            await b.mark("old")
            assert await dohost.evict(a) is True
            assert dohost.statistics(a).state == "evicted"
            assert dohost.statistics(b).state == "idle"
            assert await a.generation_now() == "fresh"
            assert await a.get() == 1
            assert await b.generation_now() == "old"

        async def test_evicting_an_object_not_in_memory_returns_false(dohost):
            assert await dohost.evict(dohost.env.COUNTER.getByName("never")) is False

        async def test_evict_all(dohost):
            stubs = [dohost.env.COUNTER.getByName(n) for n in "abc"]
            for stub in stubs:
                await stub.increment()
                await stub.mark("old")
            await dohost.evict_all()
            assert {s.state for s in dohost.statistics()} == {"evicted"}
            for stub in stubs:
                assert await stub.generation_now() == "fresh"
                assert await stub.get() == 1

        async def test_web_sockets_option_is_checked(dohost):
            with pytest.raises(ValueError, match=r"^web_sockets: expected 'hibernate' or 'close', got 'drop'$"):
                await dohost.evict(dohost.env.COUNTER.getByName("a"), web_sockets="drop")
        """,
    ).assert_outcomes(passed=4)


def test_list_object_ids_lists_objects_with_storage(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        async def test_ids(dohost):
            assert dohost.list_object_ids("COUNTER") == []
            a, b = dohost.env.COUNTER.getByName("a"), dohost.env.COUNTER.getByName("b")
            await a.increment(); await b.increment()
            ids = dohost.list_object_ids("COUNTER")
            assert sorted(i.toString() for i in ids) == sorted([a.id.toString(), b.id.toString()])
            assert dohost.list_object_ids(dohost.env.COUNTER) == ids     # the namespace works too
            assert any(i.equals(a.id) for i in ids)
            assert dohost.list_object_ids("FLAKY") == []
        """,
    ).assert_outcomes(passed=1)


def test_reset_wipes_data_alarms_and_instances(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest
        import trio

        async def test_reset(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment()
            await stub.mark("old")
            await stub.schedule(60_000)
            await dohost.reset()
            assert dohost.list_object_ids("COUNTER") == []
            assert dohost.statistics() == []
            await trio.sleep(120)                      # the alarm would have fired by now
            assert await stub.get() == 0
            assert await stub.generation_now() == "fresh"
            assert await dohost.run_alarm(stub) is False
            assert await stub.increment() == 1        # the namespace still works after the wipe

        async def test_reset_closes_web_sockets(dohost):
            ws = await dohost.connect_websocket("ws://example.com/room/r1")
            await ws.send("hi")
            assert await ws.receive() == "echo hi #1"
            await dohost.reset()
            with pytest.raises(ConnectionError):
                await ws.receive()
            assert dohost.list_object_ids("ROOMS") == []
        """,
    ).assert_outcomes(passed=2)


def test_abort_all_resets_instances_and_keeps_data(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest
        import trio
        from objects import ObjectResetError

        async def test_abort_all(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment()
            await stub.mark("old")
            await stub.schedule(60_000)
            await dohost.abort_all()
            assert await stub.generation_now() == "fresh"
            assert await stub.get() == 1
            await trio.sleep(61)
            assert await stub.get() == 101              # the alarm survived

        async def test_a_call_in_flight_gets_a_reset_error(dohost, autojump_clock):
            stuck = dohost.env.STUCK.getByName("s")
            async with trio.open_nursery() as nursery:
                async def call():
                    with pytest.raises(ObjectResetError):
                        await stuck.wait_forever()
                nursery.start_soon(call)
                await trio.sleep(1)
                await dohost.abort_all()
        """,
    ).assert_outcomes(passed=2)


def test_connect_websocket_talks_to_the_object_and_survives_hibernation(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        import pytest

        async def test_echo_through_the_worker(dohost):
            ws = await dohost.connect_websocket("ws://example.com/room/r1")
            await ws.send("hi")
            assert await ws.receive() == "echo hi #1"
            room = dohost.env.ROOMS.getByName("r1")
            assert dohost.statistics(room).state == "idle"

            assert await dohost.evict(room) is True
            assert dohost.statistics(room).state == "hibernated"
            await ws.send("again")                       # wakes the room up
            assert await ws.receive() == "echo again #2"
            assert dohost.statistics(room).state == "idle"

            await ws.close(1000, "bye")
            assert await room.closed_with() == [1000, "bye"]

        async def test_evict_with_close_closes_the_sockets(dohost):
            ws = await dohost.connect_websocket("ws://example.com/room/r2")
            await ws.send("hi")
            await ws.receive()
            await dohost.evict(dohost.env.ROOMS.getByName("r2"), web_sockets="close")
            with pytest.raises(ConnectionError):
                await ws.receive()
            assert ws.close_code == 1001

        async def test_a_refused_upgrade_is_an_error(dohost):
            with pytest.raises(ConnectionError, match="status 200"):
                await dohost.connect_websocket("ws://example.com/get/a")
        """,
    ).assert_outcomes(passed=3)


def test_statistics_reports_each_objects_state(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        async def test_states(dohost):
            a, b = dohost.env.COUNTER.getByName("a"), dohost.env.COUNTER.getByName("b")
            assert dohost.statistics() == [] and dohost.statistics(a) is None
            await a.increment()
            await b.increment()
            await dohost.evict(b)
            record = dohost.statistics(a)
            assert (record.binding, record.id, record.name, record.state) == ("COUNTER", a.id.toString(), "a", "idle")
            assert record.events >= 1 and record.commits >= 1
            assert dohost.statistics(b).state == "evicted"

            async def inside(instance, ctx):
                return dohost.statistics(a).state
            assert await dohost.run_in_durable_object(a, inside) == "active"
        """,
    ).assert_outcomes(passed=1)


def test_fetch_goes_through_the_worker_entrypoint(pytester: pytest.Pytester) -> None:
    run_user_tests(
        pytester,
        """
        from workers import Request

        async def test_fetch(dohost):
            first = await dohost.fetch("http://example.com/increment/x")
            assert (first.status, await first.text()) == (200, "1")
            second = await dohost.fetch(Request("http://example.com/increment/x", method="POST"))
            assert await second.text() == "2"
            third = await dohost.fetch("http://example.com/get/x", method="GET", headers={"x-test": "1"})
            assert await third.text() == "2"
            assert await dohost.env.COUNTER.getByName("x").get() == 2
        """,
    ).assert_outcomes(passed=1)
