"""Bad input, end to end through the pytest plugin: Cloudflare's error, and nothing changed.

The issue's list: an over-limit KV value, an over-long R2 key, a binding
kind dohost does not provide, a body that is not JSON handed to
``request.json()``, a WebSocket close code Cloudflare refuses. The project
(``programs/bad_input``) is written the way Python Workers code is; each
route reports the error the code caught and what is stored afterwards.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROGRAM = Path(__file__).parent / "programs" / "bad_input"
# dohost names each binding it does not provide with a ConfigWarning at start;
# shown (not raised) so the run goes on and its summary can be checked.
INI = """\
[pytest]
trio_mode = true
addopts = --strict-markers -p no:cacheprovider
filterwarnings =
    error
    always::wrangler_compat.errors.ConfigWarning
"""

TESTS = '''
import re

async def test_an_over_limit_kv_value_is_refused_with_kvs_413_and_not_stored(dohost):
    result = await (await dohost.fetch("http://x/kv-too-big")).json()
    # CF: workerd src/workerd/api/kv.c++ (the 25 MiB value limit and KV's message)
    assert result == {
        "error": "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400.",
        "stored": None,
    }

async def test_an_over_long_r2_key_is_refused_with_r2s_10020_and_not_stored(dohost):
    result = await (await dohost.fetch("http://x/r2-key-too-long")).json()
    # CF: R2's error 10020 for a key over 1024 bytes
    assert result == {"error": "put: The specified object name is not valid. (10020)", "stored": 0}

async def test_a_binding_kind_dohost_does_not_provide_fails_at_first_use_naming_it(dohost):
    result = await (await dohost.fetch("http://x/queue")).json()
    assert re.match(r"^UnsupportedBindingError: env.JOBS: this queues binding is not provided by dohost", result["error"])

async def test_a_body_that_is_not_json_raises_the_sdks_error_and_stores_nothing(dohost):
    bad = await dohost.fetch("http://x/json", method="POST", body="{not json")
    assert await bad.json() == {"error": "JSONDecodeError", "stored": None}
    good = await dohost.fetch("http://x/json", method="POST", body='{"n": 1}')
    assert await good.json() == {"error": None, "stored": {"n": 1}}

async def test_a_close_code_cloudflare_refuses_raises_and_leaves_the_socket_open(dohost):
    for code in (1005, 1006, 1015, 999, 5000):
        result = await (await dohost.fetch(f"http://x/close/{code}")).json()
        # CF: workerd src/workerd/api/web-socket.c++ WebSocket::close
        assert result == {"error": f"Invalid WebSocket close code: {code}.", "readyState": 1}
    assert await (await dohost.fetch("http://x/close/4001")).json() == {"error": None, "readyState": 2}
'''


def test_bad_input_gets_cloudflares_errors_and_changes_nothing(pytester: pytest.Pytester) -> None:
    shutil.copytree(PROGRAM, pytester.path / "project")
    (pytester.path / "pytest.ini").write_text(INI + f"dohost_config = {pytester.path / 'project'}\n")
    pytester.makepyfile(test_bad_input=textwrap.dedent(TESTS))
    result = pytester.runpytest()
    result.assert_outcomes(passed=5, warnings=1)
    result.stdout.fnmatch_lines(["*queues.producers[[]0[]]: queues binding 'JOBS' is not provided by dohost*"])


def test_an_unknown_wrangler_key_is_named_at_start_and_the_rest_loads(pytester: pytest.Pytester) -> None:
    project = pytester.path / "project"
    shutil.copytree(PROGRAM, project)
    with (project / "wrangler.toml").open("a") as f:
        f.write('\n[[frobnicators]]\nbinding = "FROB"\n')
    (pytester.path / "pytest.ini").write_text(INI + f"dohost_config = {project}\n")
    pytester.makepyfile(
        test_unknown=textwrap.dedent(
            """
            async def test_the_project_still_serves(dohost):
                assert (await dohost.fetch("http://x/nothing")).status == 404
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=2)
    result.stdout.fnmatch_lines(["*wrangler.toml: frobnicators: unknown key, ignored*"])
