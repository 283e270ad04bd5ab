"""``dohost serve --processes N``: a supervisor and N serving child processes.

The supervisor (this module) serves nothing itself. It binds the public
listening socket, one private loopback socket per child (its health checks)
and one Unix socket per child (the wire: calls forwarded between children,
``runtime.cluster._wire``; in a private 0700 folder), then starts the
children (``dohost serve`` again, told their place by environment variables)
with those sockets passed down, one after another (each waits for the
previous to answer its health check, so migrations run once, not racing).

* Every child accepts on the shared public socket; objects are split among
  the children by ``runtime.cluster.HashPlacement``; a call for an object
  another child owns is forwarded to that child's wire socket.
* The sockets stay open in the supervisor, so while a child is restarted
  connections to it wait in the kernel's backlog instead of being refused.
* A child that exits unexpectedly (a crash, ``kill -9``) is started again
  (back-off from 0.1 s to 5 s if it keeps failing); its objects come back on
  the new process. The per-object file lock is the fence: the kernel dropped
  the dead child's locks, and no other child opens objects it does not own.
* SIGTERM/SIGINT: the signal goes to every child (each drains, commits and
  closes its objects), then the supervisor exits 0. A second signal kills them.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from functools import partial
from typing import Sequence

import httpx
import trio

__all__ = ["run_processes", "CHILD_ENV", "strip_processes_flag", "watch_supervisor"]

log = logging.getLogger("dohost.processes")

#: The environment variable telling a child its place: a JSON ``ProcessSlot``.
CHILD_ENV = "DOHOST_PROCESS_SLOT"
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.1, 5.0
#: A child that served this long before dying restarts at once again.
_HEALTHY_AFTER_S = 10.0
_STARTUP_TIMEOUT_S = 60.0


async def watch_supervisor() -> None:
    """In a child: stop gracefully (SIGTERM to itself) once the supervisor is gone, even after ``kill -9``.

    (``PR_SET_PDEATHSIG`` does not fit: it fires when the *thread* that
    spawned the child exits, and trio spawns from its worker threads.)
    """
    parent = os.getppid()
    while os.getppid() == parent:
        await trio.sleep(1.0)
    log.warning("the supervisor is gone: stopping", extra={"fields": {"event": "orphaned"}})
    os.kill(os.getpid(), signal.SIGTERM)


def strip_processes_flag(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--processes N`` / ``--processes=N`` (what a child is started with)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return out


def _listening(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _listening_unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _wait_healthy(proc: trio.Process, url: str) -> None:
    """Return once the child answers ``/__dohost/health``; raise if it exits first."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        with trio.fail_after(_STARTUP_TIMEOUT_S):
            while proc.returncode is None:
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)
    raise RuntimeError(f"a serving process exited with status {proc.returncode} while starting")


async def run_processes(count: int, argv: Sequence[str], host: str, port: int) -> int:
    """Supervise ``count`` children of ``dohost serve argv``; see the module docstring."""
    from ._serve import ProcessSlot

    public = _listening(host, port)
    port = public.getsockname()[1]
    public_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    private = [_listening("127.0.0.1", 0) for _ in range(count)]
    peers = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in private]
    folder = tempfile.mkdtemp(prefix="dohost-wire-")  # 0700: only this user reaches the sockets
    wire_paths = [os.path.join(folder, f"p{i}.sock") for i in range(count)]
    wire = [_listening_unix(path) for path in wire_paths]
    token = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "wrangler_compat.cli", *strip_processes_flag(argv)]
    procs: dict[int, trio.Process] = {}
    stopping = False

    async def supervise(index: int, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        slot = ProcessSlot(index=index, count=count, public_fd=public.fileno(), private_fd=private[index].fileno(),
                           peers=peers, wire_fd=wire[index].fileno(), wires=[f"unix:{p}" for p in wire_paths],
                           token=token, public_url=public_url)
        import msgspec

        env = {**os.environ, CHILD_ENV: msgspec.json.encode(slot).decode()}
        backoff = _BACKOFF_MIN_S
        started = False
        while True:
            async with trio.open_nursery() as nursery:
                proc: trio.Process = await nursery.start(partial(
                    trio.run_process, command, env=env, check=False, pass_fds=(public.fileno(), private[index].fileno(), wire[index].fileno()),
                    stdin=None, deliver_cancel=_terminate,
                ))
                procs[index] = proc
                born = trio.current_time()
                if not started:
                    await _wait_healthy(proc, f"{peers[index]}/__dohost/health")
                    started = True
                    task_status.started()
            code = proc.returncode
            if stopping:
                return
            if trio.current_time() - born > _HEALTHY_AFTER_S:
                backoff = _BACKOFF_MIN_S
            log.warning(
                "process %d exited with status %s; starting it again in %.1f s",
                index + 1, code, backoff,
                extra={"fields": {"event": "process-restart", "process": index + 1, "status": code}},
            )
            await trio.sleep(backoff)
            if stopping:
                return
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def on_signals(cancel: trio.CancelScope, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal stopping
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if stopping:
                    log.warning("second %s: killing the serving processes", signal.Signals(signum).name)
                    for proc in procs.values():
                        if proc.returncode is None:
                            proc.kill()
                    continue
                stopping = True
                log.info("%s received: stopping %d processes", signal.Signals(signum).name, count,
                         extra={"fields": {"event": "shutdown"}})
                for proc in procs.values():
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGTERM)
                if not procs:
                    cancel.cancel()

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(on_signals, nursery.cancel_scope)
            async with trio.open_nursery() as children:
                for index in range(count):
                    await children.start(supervise, index)
                log.info(
                    "Ready on %s (%d processes; data shared)", public_url, count,
                    extra={"fields": {"event": "listening", "url": public_url, "processes": count}},
                )
            nursery.cancel_scope.cancel()  # every child stopped: stop the signal watcher
    finally:
        for sock in (public, *private, *wire):
            sock.close()
        shutil.rmtree(folder, ignore_errors=True)
    log.info("stopped: every process committed and closed", extra={"fields": {"event": "stopped"}})
    return 0


async def _terminate(proc: trio.Process) -> None:
    """Cancelled (the supervisor is failing): ask the child to stop, then insist."""
    proc.send_signal(signal.SIGTERM)
    with trio.move_on_after(10):
        await proc.wait()
        return
    proc.kill()
