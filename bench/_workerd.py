"""workerd for side-by-side benchmarks: install it once, run it on a loopback port.

``ensure_workerd()`` installs ``workerd`` from npm, pinned to :data:`VERSION`,
into ``~/.cache/dohost-bench/workerd-<version>`` (idempotent: a present binary
is reused) and returns the binary's path. ``start_workerd(js, folder)``
writes a config serving one JS module Worker with a SQLite-backed Durable
Object namespace ``COUNTER`` (class ``Counter``, storage on local disk under
``folder``) and starts workerd on a free ``127.0.0.1`` port; it returns the
process and the base URL. The caller terminates the process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

VERSION = "1.20261117.1"
CACHE = Path(os.environ.get("DOHOST_BENCH_CACHE", Path.home() / ".cache" / "dohost-bench")) / f"workerd-{VERSION}"
BINARY = CACHE / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"

_CONFIG = """\
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "disk", disk = (path = "{storage}", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  compatibilityDate = "2025-06-01",
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  durableObjectNamespaces = [(className = "Counter", uniqueKey = "dohost-bench-counter", enableSql = true)],
  durableObjectStorage = (localDisk = "disk"),
  bindings = [(name = "COUNTER", durableObjectNamespace = "Counter")],
);
"""


def ensure_workerd() -> Path:
    """The pinned workerd binary, installed from npm on first use."""
    if BINARY.exists():
        return BINARY
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"workerd@{VERSION}"],
        check=True, capture_output=True, timeout=600,
    )
    if not BINARY.exists():
        raise RuntimeError(f"npm installed workerd@{VERSION} but {BINARY} is missing")
    return BINARY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until ``url`` answers (any status) or the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def start_workerd(js: str, folder: Path, probe: str = "/") -> tuple[subprocess.Popen[bytes], str]:
    """Serve the module Worker ``js`` (exporting class ``Counter``) from ``folder``."""
    binary = ensure_workerd()
    folder.mkdir(parents=True, exist_ok=True)
    storage = folder / "storage"
    storage.mkdir(exist_ok=True)
    port = free_port()
    (folder / "worker.js").write_text(js)
    (folder / "config.capnp").write_text(_CONFIG.format(storage=storage, port=port))
    log = open(folder / "workerd.log", "wb")
    proc = subprocess.Popen(
        [str(binary), "serve", str(folder / "config.capnp"), "--experimental"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + probe, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise RuntimeError((folder / "workerd.log").read_text()[-2000:]) from None
    return proc, url
