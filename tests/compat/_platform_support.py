"""Helpers for the platform compatibility tests: a project in a folder, a harness over it, an echo server.

:func:`open_project` writes a Cloudflare-style project (``wrangler.toml`` +
``src/entry.py``) and opens it the way the pytest plugin's ``dohost``
fixture does (``ProjectSource.load`` → ``prepare`` → ``open_harness``).
Every project gets a module name of its own, so projects never share a
``sys.modules`` entry. :func:`serve_echo` runs a small ASGI echo app on a
loopback port with hypercorn, as the target of outbound ``fetch``.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from wrangler_compat.config._project import forget_modules_under
from wrangler_compat.testing._harness import Harness, ProjectSource, open_harness

_names = itertools.count()

WRANGLER = """\
name = "{name}"
main = "src/{module}.py"
compatibility_date = "2026-11-01"
compatibility_flags = ["python_workers"]
{extra}
"""


def write_project(
    root: Path, source: str, *, bindings: dict[str, str] | None = None, vars: dict[str, str] | None = None
) -> Path:
    """A project folder whose ``main`` is ``source``; ``bindings`` maps binding name → DO class."""
    module = f"compat_entry_{next(_names)}"
    extra = "\n[vars]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in vars.items()) if vars else ""
    classes = list((bindings or {}).values())
    for name, cls in (bindings or {}).items():
        extra += f'\n[[durable_objects.bindings]]\nname = "{name}"\nclass_name = "{cls}"\n'
    if classes:
        extra += f'\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = {json.dumps(classes)}\n'
    root.mkdir(parents=True, exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    (root / "wrangler.toml").write_text(WRANGLER.format(name=module.replace("_", "-"), module=module, extra=extra))
    (root / "src" / f"{module}.py").write_text(textwrap.dedent(source))
    return root


@asynccontextmanager
async def open_project(
    root: Path, source: str, *, bindings: dict[str, str] | None = None, vars: dict[str, str] | None = None
) -> AsyncIterator[Harness]:
    write_project(root / "project", source, bindings=bindings, vars=vars)
    try:
        prepared = ProjectSource.load(root / "project").prepare(root / "data")
        async with open_harness(prepared) as harness:
            yield harness
    finally:
        forget_modules_under(root / "project")  # leave sys.path and sys.modules as they were


async def _echo(scope: dict[str, Any], receive: Any, send: Any, on_request: Any = None) -> None:
    """Answers with what it got: method, path, query, content-type and body (base64-free: latin-1)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await _echo_websocket(receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if on_request is not None:
        on_request(scope["path"])
    if scope["path"] == "/redirect":
        await send({"type": "http.response.start", "status": 302, "headers": [(b"location", b"/landed")]})
        await send({"type": "http.response.body", "body": b""})
        return
    status = int(headers.get("x-status", "200"))
    reply = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "content_type": headers.get("content-type"),
            "x_test": headers.get("x-test"),
            "body": body.decode("latin-1"),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"x-echo", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": reply})


async def _echo_websocket(receive: Any, send: Any) -> None:
    """Echoes each message back; ``close-me`` closes with 4001 "bye"."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
                return
            await send({"type": "websocket.send", **{k: message[k] for k in ("text", "bytes") if message.get(k) is not None}})
        else:
            return


@asynccontextmanager
async def serve_echo(on_request: Any = None) -> AsyncIterator[str]:
    """The base URL of an echo server on 127.0.0.1 (stopped on exit); ``on_request(path)`` sees each request."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await _echo(scope, receive, send, on_request)

        binds = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]
        )
        try:
            yield binds[0]
        finally:
            shutdown.set()
