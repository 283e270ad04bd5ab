"""Running ``dohost`` as a real subprocess for end-to-end tests.

:func:`run_dohost` starts the console script (the same one a user runs, from
this interpreter's environment), collects its merged stdout/stderr line by
line, and always kills it on exit. Tests wait for log lines with
:meth:`DohostProcess.wait_for`, bounded on the real clock: these are real
processes on real sockets, so fake time does not apply.

:data:`SERVE_COMMAND` is the command the Docker image runs; the Dockerfile
test checks the two agree, and the serve tests run exactly it (configured
through the same environment variables the image sets).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Mapping, Sequence

import trio

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

#: ENTRYPOINT + CMD of the Dockerfile, as argv.
SERVE_COMMAND = ["dohost", "serve"]
#: The path of the Dockerfile's HEALTHCHECK.
HEALTH_PATH = "/__dohost/health"
#: Real seconds a subprocess gets to start, or to produce an awaited line.
STARTUP_TIMEOUT = 20.0
READY = r"Ready on (http://[^\s\"]+)"


def resolve_command(argv: Sequence[str]) -> list[str]:
    """``dohost ...`` from this interpreter's environment (else ``python -m``)."""
    if argv and argv[0] == "dohost":
        script = Path(sys.executable).parent / "dohost"
        head = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
        return head + list(argv[1:])
    return list(argv)


class DohostProcess:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = trio.Event()
        self.url = ""
        self.eof = False

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode("utf-8", "replace") for line in complete)
            self._changed.set()
            self._changed = trio.Event()
        if buffer:
            self.lines.append(buffer.decode("utf-8", "replace"))
        self.eof = True
        self._changed.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def mark(self) -> int:
        """A position in the output; ``wait_for(..., after=mark)`` looks only past it."""
        return len(self.lines)

    def find(self, pattern: str, after: int = 0) -> re.Match[str] | None:
        regex = re.compile(pattern)
        for line in self.lines[after:]:
            m = regex.search(line)
            if m is not None:
                return m
        return None

    async def wait_for(self, pattern: str, *, after: int = 0, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        """The first line past ``after`` matching ``pattern`` (waiting for it)."""
        with trio.fail_after(timeout):
            while True:
                m = self.find(pattern, after)
                if m is not None:
                    return m
                if self.eof:
                    raise AssertionError(
                        f"dohost exited before printing {pattern!r}:\n{self.output()}"
                    )
                changed = self._changed
                with trio.move_on_after(0.2):
                    await changed.wait()

    async def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(timeout):
            return await self.process.wait()


@asynccontextmanager
async def run_dohost(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, wait_ready: bool = True
) -> AsyncIterator[DohostProcess]:
    """Start ``dohost`` (killed on exit); with ``wait_ready``, wait for its URL line."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DOHOST_")}
    full_env = {**inherited, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    process = await trio.lowlevel.open_process(
        resolve_command(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
    )
    proc = DohostProcess(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc._read)
            try:
                if wait_ready:
                    proc.url = (await proc.wait_for(READY))[1]
                yield proc
            finally:
                if process.returncode is None:
                    process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        # Shown by pytest when the test fails.
        print(f"--- output of {' '.join(argv)} ---\n{proc.output()}")


# --- the Dockerfile ---------------------------------------------------------------


def dockerfile_instructions(path: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_healthcheck_argv(port: int) -> list[str]:
    """The HEALTHCHECK command of the Dockerfile, pointed at ``port`` on loopback."""
    import json

    (args,) = [a for k, a in dockerfile_instructions() if k == "HEALTHCHECK"]
    argv = json.loads(args[args.index("CMD") + 3 :].strip())
    return [re.sub(r"//127\.0\.0\.1:\d+/", f"//127.0.0.1:{port}/", a) for a in argv]
