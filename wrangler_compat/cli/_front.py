"""Running the HTTP front until a signal, shared by ``dohost dev`` and ``dohost serve``.

:func:`serve_until_signal` serves a starlette app on hypercorn's trio worker
and handles SIGTERM/SIGINT gracefully: the first signal stops accepting
connections, lets hypercorn drain the open ones (closing client WebSockets
first via ``on_signal``, so they don't hold the drain up), then returns;
the caller's ``open_runtime_host`` then commits and closes every object. A
second signal cuts the drain short (the runtime still commits).
"""

from __future__ import annotations

import ipaddress
import logging
import signal
from functools import partial
from typing import Any, Awaitable, Callable, Sequence

import trio

# runtime/__init__ does not export the HTTP front (yet); the CLI is its one user.
from runtime._http import serve_http, tune_gc_for_serving

__all__ = ["serve_until_signal", "parse_listen", "is_loopback"]

log = logging.getLogger("dohost.server")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``:PORT`` (loopback) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_until_signal(
    app: Any,
    *,
    host: str,
    port: int,
    on_ready: Callable[[Sequence[str]], None],
    background: Sequence[Callable[[], Awaitable[None]]] = (),
    on_signal: Callable[[], Awaitable[None]] | None = None,
    binds: Sequence[str] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; see the module docstring."""
    tune_gc_for_serving()  # this process is a server from now on
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:

        async def run_http(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
            await serve_http(app, host=host, port=port, shutdown_trigger=shutdown.wait, binds=binds, task_status=task_status)
            nursery.cancel_scope.cancel()  # the server drained: stop the watchers too

        async def on_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                task_status.started()
                async for signum in signals:
                    if shutdown.is_set():
                        log.warning("second %s: stopping now", signal.Signals(signum).name)
                        nursery.cancel_scope.cancel()
                        return
                    log.info(
                        "%s received: draining connections, then committing and closing",
                        signal.Signals(signum).name,
                        extra={"fields": {"event": "shutdown", "signal": signal.Signals(signum).name}},
                    )
                    shutdown.set()
                    if on_signal is not None:
                        nursery.start_soon(on_signal)

        await nursery.start(on_signals)
        binds = await nursery.start(run_http)
        on_ready(binds)
        for task in background:
            nursery.start_soon(partial(task))
