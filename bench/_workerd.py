"""workerd for side-by-side benchmarks: install it once, run it on a loopback port.

``ensure_workerd()`` returns the pinned workerd binary (:data:`VERSION`),
installed from npm on first use by the conformance suite's installer
(``tests/conformance/_workerd.py``, cached in ``~/.cache/dohost-tests``). ``start_workerd(js, folder)``
writes a config serving one JS module Worker with a SQLite-backed Durable
Object namespace ``COUNTER`` (class ``Counter``, storage on local disk under
``folder``) and starts workerd on a free ``127.0.0.1`` port; it returns the
process and the base URL. The caller terminates the process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# One pinned workerd and one installer for tests and benchmarks: the conformance
# suite's (tests/conformance/_workerd.py), cached in ~/.cache/dohost-tests.
_TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))
from conformance._workerd import WORKERD_VERSION as VERSION  # noqa: E402
from conformance._workerd import workerd_binary  # noqa: E402

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
    return workerd_binary()


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
