"""The dohost pytest plugin, run by pytester on sample projects: set-up, isolation, errors.

Every test copies a project from ``sample_projects/`` into pytester's folder,
writes the user's test module, runs pytest in process and checks what the
user would see. The helpers themselves are covered in
``test_pytest_plugin_helpers.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def use_project(pytester: pytest.Pytester, name: str = "counter", *, ini: str | None = INI, into: str = ".") -> Path:
    target = pytester.path / into
    shutil.copytree(SAMPLES / name, target, dirs_exist_ok=True)
    if ini is not None:
        (pytester.path / "pytest.ini").write_text(ini)
    return target


def write_tests(pytester: pytest.Pytester, source: str, name: str = "test_user") -> None:
    pytester.makepyfile(**{name: textwrap.dedent(source)})


# ----------------------------------------------------------------- the basics
def test_the_example_from_the_issue_passes(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_counter_increments(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            assert await stub.increment() == 1
            response = await dohost.fetch("http://example.com/increment")   # through the Worker entrypoint
            assert await response.text() == "2"
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_workers_is_importable_in_conftest_and_test_modules(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    pytester.makeconftest("from workers import DurableObject as FromConftest\n")
    write_tests(
        pytester,
        """
        from workers import DurableObject, Response
        from js import Date

        async def test_the_module_is_dohosts(dohost):
            import wrangler_compat.workers
            import workers
            assert workers is wrangler_compat.workers
            assert isinstance(Date.now(), float)
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_env_has_the_wrangler_vars_and_the_namespaces(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_env(dohost):
            assert dohost.env.GREETING == "hello"
            assert "COUNTER" in dohost.env and "NOPE" not in dohost.env
            assert dohost.env["FLAKY"].getByName("x").name == "x"
            response = await dohost.fetch("http://example.com/greeting")
            assert await response.text() == "hello"
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


# ------------------------------------------------------------------ isolation
def test_a_write_in_one_test_is_invisible_in_the_next(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_first_writes(dohost):
            assert await dohost.env.COUNTER.getByName("shared").increment(5) == 5
            assert len(dohost.list_object_ids("COUNTER")) == 1

        async def test_second_sees_nothing(dohost):
            assert dohost.list_object_ids("COUNTER") == []
            assert await dohost.env.COUNTER.getByName("shared").get() == 0
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_an_alarm_set_in_one_test_never_fires_in_another(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import trio

        async def test_sets_an_alarm_and_ends(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.schedule(60_000)
            await stub.increment()

        async def test_waits_past_it(dohost, autojump_clock):
            await trio.sleep(7200)
            stub = dohost.env.COUNTER.getByName("a")
            assert await stub.get() == 0          # the alarm would have added 100
            assert await stub.last_alarm() is None
            assert await dohost.run_alarm(stub) is False
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_in_memory_state_does_not_outlive_its_test(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest

        pytestmark = pytest.mark.dohost(storage="module")

        async def test_first_marks_the_instance(dohost):
            await dohost.env.COUNTER.getByName("a").mark("from the first test")

        async def test_second_gets_a_new_instance(dohost):
            assert await dohost.env.COUNTER.getByName("a").generation_now() == "fresh"
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_storage_marker_shares_storage_within_a_module_only(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest

        pytestmark = pytest.mark.dohost(storage="module")

        async def test_one(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            assert await stub.increment() == 1
            await stub.schedule(1000)

        async def test_two_sees_the_write_and_the_alarm(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            assert await stub.increment() == 2
            assert await dohost.run_alarm(stub) is True
            assert await stub.get() == 102

        @pytest.mark.dohost(storage="test")
        async def test_the_closest_marker_wins(dohost):
            assert dohost.list_object_ids("COUNTER") == []
        """,
        name="test_shared",
    )
    write_tests(
        pytester,
        """
        async def test_other_module_starts_empty(dohost):
            assert dohost.list_object_ids("COUNTER") == []
        """,
        name="test_other",
    )
    pytester.runpytest().assert_outcomes(passed=4)


# ------------------------------------------------------------------------ time
def test_alarms_hours_ahead_and_idle_eviction_run_under_autojump_clock(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import trio

        async def test_alarm_three_hours_ahead(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.schedule(3 * 3_600_000)
            await trio.sleep(3 * 3600 + 1)
            assert await stub.get() == 100
            assert (await stub.last_alarm())["retry"] == 0

        async def test_idle_object_is_evicted_after_ten_seconds(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment()
            await trio.sleep(9)
            assert dohost.statistics(stub).state == "idle"
            await trio.sleep(2)
            assert dohost.statistics(stub).state == "evicted"
            assert await stub.get() == 1

        async def test_failed_alarm_is_retried_with_backoff(dohost, autojump_clock):
            stub = dohost.env.FLAKY.getByName("f")
            await stub.arm(2, delay_ms=1000)
            start = trio.current_time()
            await trio.sleep(1 + 2 + 4 + 0.5)   # first run, retry after 2 s, then after 4 s
            assert await stub.attempts() == [0, 1, 2]
        """,
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_idle_timeout_comes_from_the_marker(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest
        import trio

        @pytest.mark.dohost(idle_timeout=60)
        async def test_stays_in_memory_longer(dohost, autojump_clock):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment()
            await trio.sleep(30)
            assert dohost.statistics(stub).state == "idle"
            await trio.sleep(31)
            assert dohost.statistics(stub).state == "evicted"
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


# --------------------------------------------------------- finding the project
def test_missing_wrangler_file_is_reported_with_how_to_fix_it(pytester: pytest.Pytester) -> None:
    (pytester.path / "pytest.ini").write_text(INI)
    write_tests(
        pytester,
        """
        async def test_needs_a_project(dohost):
            pass

        def test_unrelated_tests_still_run():
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*dohost: *: no wrangler configuration file (looked for wrangler.toml, wrangler.jsonc, wrangler.json)",
            "The dohost fixture looked for the project in * (pytest's rootdir).*`dohost_config`*--dohost-config*`dohost_bindings`*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_dohost_config_ini_option_names_a_subfolder(pytester: pytest.Pytester) -> None:
    use_project(pytester, into="service", ini=INI + "dohost_config = service\n")
    write_tests(
        pytester,
        """
        async def test_found(dohost):
            assert await dohost.env.COUNTER.getByName("a").increment() == 1
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_dohost_config_command_line_option_names_the_file(pytester: pytest.Pytester) -> None:
    use_project(pytester, into="service")
    write_tests(
        pytester,
        """
        async def test_found(dohost):
            assert "COUNTER" in dohost.env
        """,
    )
    pytester.runpytest("--dohost-config", "service/wrangler.toml").assert_outcomes(passed=1)
    result = pytester.runpytest("--dohost-config", "nowhere")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*dohost: */nowhere (from --dohost-config) does not exist"])


def test_a_wrangler_environment_is_chosen_by_option(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    with (pytester.path / "wrangler.toml").open("a") as f:
        f.write(
            textwrap.dedent(
                """
                [env.staging.vars]
                GREETING = "hello from staging"

                [[env.staging.durable_objects.bindings]]
                name = "COUNTER"
                class_name = "Counter"
                """
            )
        )
    write_tests(
        pytester,
        """
        async def test_greeting(dohost, request):
            expected = request.config.getoption("dohost_env") or request.config.getini("dohost_env") or "top"
            greeting = dohost.env.GREETING if "GREETING" in dohost.env else "top"
            assert {"staging": "hello from staging", "top": "hello"}[expected] == greeting
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("--dohost-env", "staging").assert_outcomes(passed=1)
    (pytester.path / "pytest.ini").write_text(INI + "dohost_env = staging\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_dohost_bindings_override_hosts_classes_without_a_wrangler_file(pytester: pytest.Pytester) -> None:
    use_project(pytester, "bare_classes")
    pytester.makeconftest(
        """
        import pytest

        from classes import Tally

        @pytest.fixture
        def dohost_bindings():
            return {"TALLY": Tally}
        """
    )
    write_tests(
        pytester,
        """
        async def test_tally(dohost):
            stub = dohost.env.TALLY.getByName("t")
            assert await stub.add(2) == 2
            assert await stub.add(3) == 5
            assert [i.toString() for i in dohost.list_object_ids("TALLY")] == [stub.id.toString()]
            response = await dohost.fetch("http://example.com/")   # no Worker: dohost's default router
            assert response.status == 404

        async def test_fresh_again(dohost):
            assert await dohost.env.TALLY.getByName("t").add(1) == 1
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_broken_wrangler_file_is_reported_without_a_traceback(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    (pytester.path / "wrangler.toml").write_text('name = "x"\nmain = 3\ncompatibility_date = "2026-01-01"\n')
    write_tests(
        pytester,
        """
        async def test_one(dohost):
            pass

        async def test_two(dohost):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*dohost: wrangler.toml: main: expected str, got int*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_an_import_error_in_the_worker_shows_its_traceback(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    worker = pytester.path / "src" / "worker.py"
    worker.write_text(worker.read_text() + "\nraise ImportError('the worker cannot start')\n")
    write_tests(
        pytester,
        """
        async def test_one(dohost):
            pass

        async def test_two(dohost):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*src/worker.py:*", "E   ImportError: the worker cannot start"])


def test_an_unknown_binding_names_the_ones_that_exist(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_typo(dohost):
            dohost.env.COUNTR.getByName("a")

        async def test_typo_in_a_helper(dohost):
            dohost.list_object_ids("COUNTR")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E   *UnknownBindingError: env.COUNTR: wrangler.toml defines no binding named 'COUNTR'"
            # (3.12+ prints an AttributeError's "Did you mean: 'COUNTER'?" after it)
            " (Durable Object namespaces: COUNTER, FLAKY, ROOMS, STUCK; other bindings and vars: GREETING)*",
            "E   *UnknownBindingError: list_object_ids(): wrangler.toml defines no Durable Object namespace"
            " named 'COUNTR' (namespaces: COUNTER, FLAKY, ROOMS, STUCK)",
        ]
    )


# ---------------------------------------------------------------------- trio
def test_using_dohost_outside_trio_says_how_to_enable_it(pytester: pytest.Pytester) -> None:
    use_project(pytester, ini="[pytest]\naddopts = -p no:cacheprovider\n")
    write_tests(
        pytester,
        """
        def test_sync(dohost):
            pass

        async def test_async_without_trio_mode(dohost):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*dohost: test_sync uses the async dohost fixture but is not a trio test: write it as `async def`"
            " and set `trio_mode = true` in your pytest configuration (or mark the test with @pytest.mark.trio)",
            "*dohost: test_async_without_trio_mode uses the async dohost fixture but is not a trio test*",
        ]
    )


def test_a_test_marked_trio_works_without_trio_mode(pytester: pytest.Pytester) -> None:
    use_project(pytester, ini="[pytest]\naddopts = --strict-markers -p no:cacheprovider\nfilterwarnings = error\n")
    write_tests(
        pytester,
        """
        import pytest

        @pytest.mark.trio
        async def test_marked(dohost):
            assert await dohost.env.COUNTER.getByName("a").increment() == 1
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


# ------------------------------------------------------------------ failures
def test_a_failing_assertion_inside_an_object_shows_the_objects_traceback(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_rpc_method_asserts(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment()
            await stub.must_be_42()

        async def test_function_run_inside_asserts(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            await stub.increment(3)

            def check(instance, ctx):
                assert instance.get() == 4

            await dohost.run_in_durable_object(stub, check)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_rpc_method_asserts _*",
            "    def must_be_42(self):",
            "        value = self.get()",
            ">       assert value == 42, f\"the counter should be 42, found {value}\"",
            "E       AssertionError: the counter should be 42, found 1",
            "src/worker.py:*: AssertionError",
            "The above exception was the direct cause of the following exception:",
            ">       await stub.must_be_42()",
            "E           *AssertionError: the counter should be 42, found 1",
            "*_ test_function_run_inside_asserts _*",
            ">       await dohost.run_in_durable_object(stub, check)",
            "*",
            "    def check(instance, ctx):",
            ">       assert instance.get() == 4",
            "E       assert 3 == 4",
        ]
    )
    result.stdout.no_fnmatch_line("*ExceptionGroup*")


def test_point_in_time_history_is_kept_only_when_the_marker_asks(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest

        async def restore_to_now(dohost):
            async def fn(instance, ctx):
                bookmark = await ctx.storage.getCurrentBookmark()
                return await ctx.storage.onNextSessionRestoreBookmark(bookmark)
            return await dohost.run_in_durable_object(dohost.env.COUNTER.getByName("a"), fn)

        async def test_none_by_default_as_in_local_workerd(dohost):
            with pytest.raises(Exception, match="does not implement point-in-time recovery"):
                await restore_to_now(dohost)

        @pytest.mark.dohost(history=True)
        async def test_kept_when_asked(dohost):
            assert isinstance(await restore_to_now(dohost), str)
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_marker_options_are_checked(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest

        @pytest.mark.dohost(storage="session")
        async def test_bad_storage(dohost):
            pass

        @pytest.mark.dohost(idle=3)
        async def test_bad_key(dohost):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*dohost: @pytest.mark.dohost: storage: expected 'test' or 'module', got 'session'",
            "*dohost: @pytest.mark.dohost: unknown option(s) idle; expected storage, idle_timeout, alarm_jitter, max_resident, telemetry, history",
        ]
    )


def test_storage_can_live_in_tmp_path(pytester: pytest.Pytester) -> None:
    use_project(pytester, ini=INI + "dohost_storage_dir = tmp_path\n")
    write_tests(
        pytester,
        """
        async def test_files_are_under_tmp_path(dohost, tmp_path):
            await dohost.env.COUNTER.getByName("a").increment()
            assert dohost.data_dir == tmp_path / "dohost"
            [object_id] = dohost.list_object_ids("COUNTER")
            assert list(tmp_path.glob(f"dohost/*/{object_id.toString()}.sqlite"))
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_ram_storage_is_removed_after_each_test(pytester: pytest.Pytester) -> None:
    use_project(pytester, ini=INI + "dohost_storage_dir = auto\n")
    write_tests(
        pytester,
        """
        seen = []

        async def test_one(dohost):
            await dohost.env.COUNTER.getByName("a").increment()
            seen.append(dohost.data_dir)

        async def test_two(dohost):
            assert not seen[0].exists()
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a RAM file system")
def test_ram_folders_of_dead_sessions_are_removed(pytester: pytest.Pytester) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = Path("/dev/shm") / f"dohost-pytest-{finished.stdout.strip()}-orphan"
    orphan.mkdir()
    try:
        use_project(pytester)
        write_tests(
            pytester,
            """
            async def test_uses_ram(dohost):
                assert str(dohost.data_dir).startswith("/dev/shm/dohost-pytest-")
            """,
        )
        pytester.runpytest().assert_outcomes(passed=1)
        assert not orphan.exists()
    finally:
        shutil.rmtree(orphan, ignore_errors=True)


def test_a_handler_that_never_returns_does_not_hang_the_session(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        async def test_leaves_a_call_running(dohost, autojump_clock, nursery):
            nursery.start_soon(dohost.env.STUCK.getByName("s").wait_forever)

        async def test_next_one_runs(dohost):
            assert dohost.statistics() == []
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)


# ------------------------------------------------------------------- telemetry
def test_the_telemetry_marker_option_sees_the_test_s_calls(pytester: pytest.Pytester) -> None:
    use_project(pytester)
    write_tests(
        pytester,
        """
        import pytest
        from wrangler_compat.telemetry import PrometheusTelemetry

        metrics = PrometheusTelemetry()

        @pytest.mark.dohost(telemetry=metrics)
        async def test_counted(dohost):
            stub = dohost.env.COUNTER.getByName("a")
            assert await stub.increment() == 1
            assert 'dohost_rpc_calls_total{namespace="COUNTER"} 1.0' in metrics.scrape().decode()

        async def test_not_counted_without_it(dohost):
            await dohost.env.COUNTER.getByName("a").increment()
            assert 'dohost_rpc_calls_total{namespace="COUNTER"} 1.0' in metrics.scrape().decode()
        """,
    )
    pytester.runpytest().assert_outcomes(passed=2)
