"""What public Python Workers programs rely on, in a program of our own (``programs/sdk_era``).

Each route reproduces a breakage found by running public programs on dohost
(the README's "Public programs tried"): an alarm set by an object without an
``alarm()`` handler (cloudflare/workers-py's own DO test does it), the env's
``as_object_map()``/``to_py()`` of the JsProxy era, ``workers.rpc``'s wrapper
classes, KV's ``arrayBuffer`` as a ``memoryview``, binding errors caught as
``JsException``, a D1 session's bookmark, and ``len``/iteration of a binding
refused with the SDK's words, ``run_sync`` blocking on D1 and KV calls
(django-cf's D1 backend runs every query that way), ``toArray().to_py()``
and ``js.Error.new().stack`` (django-cf's Durable Object backend), an R2
``head()`` result's ``to_py().uploaded`` (django-cf's R2 storage),
``pyodide.webloop.WebLoop`` patched as in-Worker test harnesses patch it, and ``request.cf`` — wrangler dev's offline
placeholder under ``dohost dev`` (Cloudflare's in-memory-state example reads
``request.js_object.cf.city``), ``None`` for a request a test builds.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
import pytest

from _e2e_support import run_dohost  # noqa: E402

pytest_plugins = ["pytester"]

PROGRAM = Path(__file__).parent / "programs" / "sdk_era"
INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""

SHAPES = {
    "kv": True,
    "statement": True,
    "stub": True,
    "truthy": True,
    "len": "'KvNamespace' object has no len()",
    "iter": "'KvNamespace' object is not iterable",
}


def test_the_program_passes_its_tests_under_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    shutil.copytree(PROGRAM, pytester.path, dirs_exist_ok=True)
    (pytester.path / "pytest.ini").write_text(INI)
    pytester.makepyfile(
        test_sdk_era=textwrap.dedent(
            f"""
            import trio

            async def test_an_alarm_without_a_handler_is_accepted_then_fails_and_is_dropped(dohost, autojump_clock):
                assert await (await dohost.fetch("http://x/remind")).json() == {{"pending": True}}
                await trio.sleep(3600)  # fires after a minute, fails (no alarm()), retried six times, dropped
                assert await (await dohost.fetch("http://x/pending")).json() == {{"pending": False}}

            async def test_the_env_answers_the_jsproxy_methods(dohost):
                assert await (await dohost.fetch("http://x/env")).json() == {{
                    "greeting": True, "missing": False, "strings": {{"GREETING": "hello"}}
                }}

            async def test_kv_array_buffer_is_a_memoryview(dohost):
                assert await (await dohost.fetch("http://x/bytes")).json() == {{"memoryview": True, "text": "hi there"}}

            async def test_bindings_have_the_sdk_shapes(dohost):
                assert await (await dohost.fetch("http://x/shapes")).json() == {SHAPES!r}

            async def test_a_d1_error_is_caught_as_js_exception(dohost):
                response = await dohost.fetch("http://x/bad-sql")
                assert response.status == 400
                assert (await response.text()).startswith('caught: D1_ERROR: near "SELEKT": syntax error')

            async def test_run_sync_completes_d1_and_kv_calls(dohost):
                assert await (await dohost.fetch("http://x/sync-d1")).json() == {{
                    "rows": [{{"answer": 42}}], "kv": "from KV"
                }}

            async def test_to_array_answers_to_py_and_errors_have_a_stack(dohost):
                assert await (await dohost.fetch("http://x/rows")).json() == {{
                    "raw": [[1, "x"]], "rows": [{{"a": 1, "b": "x"}}]
                }}
                assert await (await dohost.fetch("http://x/error-stack")).text() == "Error: boom"

            async def test_r2_head_to_py_answers_attributes_and_webloop_imports(dohost):
                assert await (await dohost.fetch("http://x/r2-head")).json() == {{"has_uploaded": True, "size": 1}}
                assert await (await dohost.fetch("http://x/webloop")).json() == {{"subclass": True}}

            async def test_a_request_built_by_a_test_has_no_cf(dohost):
                assert await (await dohost.fetch("http://x/where")).text() == "no cf"

            async def test_a_d1_session_has_a_bookmark_after_a_query(dohost):
                assert await (await dohost.fetch("http://x/bookmark")).json() == {{"before": None, "after": "str"}}
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=10)


@pytest.mark.slow
async def test_the_program_serves_over_http_under_dohost_dev(tmp_path: Path) -> None:
    argv = ["dohost", "dev", "--config", str(PROGRAM), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/remind")).json() == {"pending": True}
            assert (await client.get("/env")).json() == {"greeting": True, "missing": False, "strings": {"GREETING": "hello"}}
            assert (await client.get("/bytes")).json() == {"memoryview": True, "text": "hi there"}
            assert (await client.get("/shapes")).json() == SHAPES
            bad = await client.get("/bad-sql")
            assert bad.status_code == 400 and bad.text.startswith("caught: D1_ERROR")
            assert (await client.get("/bookmark")).json() == {"before": None, "after": "str"}
            assert (await client.get("/where")).text == "Austin"  # miniflare's fallbackCf
            assert (await client.get("/sync-d1")).json() == {"rows": [{"answer": 42}], "kv": "from KV"}
