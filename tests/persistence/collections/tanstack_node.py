"""TanStack DB's own SQLite persistence adapter under Node, for the file-format tests.

Installs ``@tanstack/db-sqlite-persistence-core`` (the adapter that
``@tanstack/cloudflare-durable-objects-db-sqlite-persistence`` wraps around
``ctx.storage.sql``) and ``sql.js`` (SQLite as wasm: no native build) from the
npm registry into ``~/.cache/dohost-tests/tanstack-<version>`` once, then runs
``tanstack_bridge.cjs`` against a SQLite file. A missing ``node``/``npm`` is a
failure that says how to install them, never a silent skip.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Any

import pytest

TANSTACK_VERSION = "0.2.21"  # @tanstack/db-sqlite-persistence-core; its layout is 0.2.15's (TanStack/db@32ca264b)
SQLJS_VERSION = "1.17.0"
BRIDGE = pathlib.Path(__file__).with_name("tanstack_bridge.cjs")
_INSTALL_TIMEOUT = 300
_RUN_TIMEOUT = 60


def cache_dir() -> pathlib.Path:
    root = pathlib.Path(os.environ.get("DOHOST_TEST_CACHE", pathlib.Path.home() / ".cache" / "dohost-tests"))
    return root / f"tanstack-{TANSTACK_VERSION}"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool!r} is not on PATH: the TanStack file-format tests need Node.js 20+ and npm "
                    "(e.g. `apt-get install nodejs npm`, or https://nodejs.org/)", pytrace=False)
    return found


def install() -> pathlib.Path:
    """The node_modules folder with the pinned packages (installed on first use)."""
    target = cache_dir()
    ready = target / "node_modules" / ".dohost-ready"
    if ready.exists():
        return target / "node_modules"
    _require("node")
    npm = _require("npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        (staging / "package.json").write_text(json.dumps({"private": True, "dependencies": {
            "@tanstack/db-sqlite-persistence-core": TANSTACK_VERSION, "sql.js": SQLJS_VERSION}}))
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"],
                              cwd=staging, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT)
        if done.returncode != 0:
            pytest.fail(f"npm install of TanStack's packages failed:\n{done.stderr[-2000:]}", pytrace=False)
        (staging / "node_modules" / ".dohost-ready").write_text(TANSTACK_VERSION)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


def run(modules: pathlib.Path, db: pathlib.Path, steps: list[dict[str, Any]], **options: Any) -> list[Any]:
    """Run ``steps`` with TanStack's adapter on ``db``; each result, or raise on a step's error."""
    request = {"db": str(db), "steps": steps, **options}
    done = subprocess.run([_require("node"), str(BRIDGE), str(modules)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=_RUN_TIMEOUT)
    if done.returncode != 0:
        raise AssertionError(f"the TanStack bridge failed:\n{done.stderr[-4000:]}")
    out = []
    for step, result in zip(steps, json.loads(done.stdout)["results"]):
        if "error" in result:
            raise AssertionError(f"TanStack's adapter refused {step['op']}: {result['error']}")
        out.append(from_wire(result["ok"]))
    return out


def to_wire(value: Any) -> Any:
    """Python values as the bridge's JSON (bigint, Date, NaN/±Infinity/-0 markers)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else {"$bigint": str(value)}
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"$num": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        return {"$num": "-0"} if value == 0 and math.copysign(1, value) < 0 else value
    if isinstance(value, dt.datetime):
        return {"$date": value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    raise TypeError(f"no wire form for {value!r}")


def from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if "$bigint" in value:
            return int(value["$bigint"])
        if "$date" in value:
            return dt.datetime.fromisoformat(value["$date"])
        if "$num" in value:
            return -0.0 if value["$num"] == "-0" else float(value["$num"].replace("Infinity", "inf"))
        return {k: from_wire(v) for k, v in value.items()}
    return value
