"""workerd as the oracle: install the pinned npm build, serve the oracle Worker.

* :func:`workerd_binary` installs ``workerd@WORKERD_VERSION`` from the npm
  registry with ``npm install`` into ``~/.cache/dohost-tests/workerd-<version>``
  (``$DOHOST_TEST_CACHE`` overrides the root; once: later runs find the binary
  and do nothing) and returns the binary that ships inside the platform
  package (``node_modules/@cloudflare/workerd-linux-64/bin/workerd`` on x86-64 Linux). Without node or
  npm it raises :class:`WorkerdUnavailable` saying how to install them; the
  conformance tests then fail, they are never skipped.
* :class:`Workerd` starts ``workerd serve`` on a free loopback port with
  ``worker/worker.js`` and the config below, and sends it batches of cases.

The config (capnp) — chosen to match what dohost emulates by default:

* ``compatibilityDate = "2026-11-17"`` (the build's own date: every flag
  dated on or before it is on, e.g. ``delete_all_deletes_alarm`` from
  2026-02-24, which dohost's default ``delete_all_deletes_alarm=True`` matches);
  no extra compatibility flags.
* ``SqlObject``: ``enableSql = true`` (a ``new_sqlite_classes`` class);
  ``KvObject``: ``enableSql = false`` (a ``new_classes`` class).
* ``durableObjectStorage = (localDisk = ...)``: a temporary folder, so
  storage goes through workerd's on-disk SQLite exactly as ``wrangler dev``'s.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ._values import to_workerd

__all__ = ["WORKERD_VERSION", "COMPATIBILITY_DATE", "Workerd", "WorkerdUnavailable", "workerd_binary"]

WORKERD_VERSION = "1.20261117.1"
COMPATIBILITY_DATE = "2026-11-17"
WORKER_JS = Path(__file__).parent / "worker" / "worker.js"
#: npm's platform package per (system, machine); the binary ships inside it.
_PLATFORMS = {
    ("linux", "x86_64"): "workerd-linux-64",
    ("linux", "aarch64"): "workerd-linux-arm64",
    ("darwin", "x86_64"): "workerd-darwin-64",
    ("darwin", "arm64"): "workerd-darwin-arm64",
    ("windows", "amd64"): "workerd-windows-64",
}


def platform_binary() -> Path:
    """Where the platform package puts the binary, relative to the install folder."""
    key = (platform.system().lower(), platform.machine().lower())
    package = _PLATFORMS.get(key)
    if package is None:
        raise WorkerdUnavailable(f"workerd publishes no npm binary for {key[0]}/{key[1]}")
    name = "workerd.exe" if key[0] == "windows" else "workerd"
    return Path("node_modules/@cloudflare") / package / "bin" / name

_CONFIG = """\
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "storage", disk = (path = {storage}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "{date}",
  durableObjectNamespaces = [
    (className = "SqlObject", uniqueKey = "dohost-conformance-sql", enableSql = true),
    (className = "KvObject", uniqueKey = "dohost-conformance-kv", enableSql = false),
  ],
  durableObjectStorage = (localDisk = "storage"),
  bindings = [
    (name = "SQL", durableObjectNamespace = "SqlObject"),
    (name = "KV", durableObjectNamespace = "KvObject"),
  ],
);
"""


class WorkerdUnavailable(RuntimeError):
    """workerd could not be installed or started (the message says how to fix it)."""


def cache_dir() -> Path:
    root = os.environ.get("DOHOST_TEST_CACHE") or Path.home() / ".cache" / "dohost-tests"
    return Path(root) / f"workerd-{WORKERD_VERSION}"


def workerd_binary() -> Path:
    """The pinned workerd binary, installed from npm into the cache on first use."""
    folder = cache_dir()
    binary = folder / platform_binary()
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise WorkerdUnavailable(
            "the workerd conformance tests need Node.js and npm to install "
            f"workerd@{WORKERD_VERSION} from the npm registry; install them "
            "(Debian/Ubuntu: `apt-get install nodejs npm`; or https://nodejs.org/) "
            "and run the tests again"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true}\n')
    # --ignore-scripts: the binary ships inside @cloudflare/workerd-linux-64; the
    # package's postinstall only re-checks it.
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", f"workerd@{WORKERD_VERSION}"],
        cwd=folder, capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0 or not binary.is_file():
        raise WorkerdUnavailable(
            f"npm install workerd@{WORKERD_VERSION} failed in {folder} "
            f"(exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Workerd:
    """A running ``workerd serve`` with the oracle Worker; use as a context manager."""

    def __init__(self) -> None:
        self.binary = workerd_binary()
        self._runs = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="dohost-workerd-")
        root = Path(self._tmp.name)
        (root / "storage").mkdir()
        shutil.copy(WORKER_JS, root / "worker.js")
        self.port = _free_port()
        (root / "config.capnp").write_text(
            _CONFIG.format(storage=json.dumps(str(root / "storage")), port=self.port, date=COMPATIBILITY_DATE)
        )
        self._log = open(root / "workerd.log", "w+b")
        self._proc = subprocess.Popen(
            [str(self.binary), "serve", "config.capnp"], cwd=root, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(200):  # bounded: at most ~20 s for workerd to listen
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        log = self.log()
        self.close()
        raise WorkerdUnavailable(f"workerd did not start listening on 127.0.0.1:{self.port}:\n{log}")

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def run(self, cases: list[dict[str, Any]]) -> dict[str, Any]:
        """Run cases (``id``, ``kind``, ``ops``); returns ``{id: [tagged step, ...]}``."""
        out: dict[str, Any] = {}
        # Every run gets fresh objects: the object name is the case id made unique per call.
        self._runs += 1
        tag = f"run{self._runs}:"
        for i in range(0, len(cases), 100):  # batches: one request per 100 cases
            batch = [{**to_workerd(c), "id": tag + c["id"]} for c in cases[i : i + 100]]
            resp = self._client.post("/run", json={"cases": batch})
            if resp.status_code != 200:
                raise WorkerdUnavailable(f"oracle Worker failed ({resp.status_code}): {resp.text}\n{self.log()}")
            out.update((k[len(tag) :], v) for k, v in resp.json()["results"].items())
        return out

    def ids(self, asks: list[dict[str, Any]]) -> list[Any]:
        resp = self._client.post("/ids", json={"asks": asks})
        if resp.status_code != 200:
            raise WorkerdUnavailable(f"oracle Worker failed ({resp.status_code}): {resp.text}\n{self.log()}")
        return list(resp.json()["results"])

    def close(self) -> None:
        self._client.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> Workerd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
