"""``.dev.vars`` secrets and a binding kind dohost lacks, in ``dohost dev`` and under the plugin."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _compat_bindings_support import dev, run_dohost, run_plugin, write

pytest_plugins = ["pytester"]

WRANGLER = """\
name = "secrets"
main = "src/entry.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]

[vars]
API_HOST = "api.example.com"
API_TOKEN = "placeholder"

[ai]
binding = "AI"
"""

ENTRY = """\
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/ai"):
            answer = await self.env.AI.run("@cf/meta/llama", {"prompt": "hi"})
            return Response(str(answer))
        return Response.json({"host": self.env.API_HOST, "token": self.env.API_TOKEN})
"""

DEV_VARS = """\
# local secrets, never committed
API_TOKEN="s3cret local token"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path / "secrets", {"wrangler.toml": WRANGLER, "src/entry.py": ENTRY, ".dev.vars": DEV_VARS})


@pytest.mark.slow
async def test_dev_vars_override_vars_and_an_unsupported_binding_fails_where_used(
    tmp_path: Path, project: Path
) -> None:
    async with run_dohost(dev(tmp_path / "state", project)) as proc:
        await proc.wait_for(r"ai binding 'AI' is not provided by dohost; env\.AI raises when used")
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/")).json() == {"host": "api.example.com", "token": "s3cret local token"}
            mark = proc.mark()
            assert (await client.get("/ai")).status_code == 500
            await proc.wait_for(r"env\.AI: this ai binding is not provided by dohost", after=mark)


def test_the_plugin_keeps_wrangler_vars_and_names_the_unsupported_binding(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = run_plugin(pytester, project, """
        import pytest
        from wrangler_compat.bindings import UnsupportedBindingError

        async def test_vars_and_ai(dohost):
            assert await (await dohost.fetch("http://w/")).json() == {"host": "api.example.com", "token": "placeholder"}
            with pytest.raises(UnsupportedBindingError, match="env.AI: this ai binding is not provided by dohost"):
                await dohost.fetch("http://w/ai")
    """, filterwarnings="error; ignore:.*not provided by dohost:UserWarning")
    result.assert_outcomes(passed=1)
