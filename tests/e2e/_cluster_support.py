"""A real etcd cluster and ``dohost serve --cluster`` nodes on loopback, for the cluster tests.

* :func:`find_etcd` finds Debian's ``etcd`` binary, installing the
  ``etcd-server`` package (``apt-get update`` once, then ``apt-get install``)
  when it is missing; when that is impossible it raises :class:`EtcdMissing`
  with the reason, and :func:`ensure_etcd` (for tests) fails the test with it
  (never a silent skip). ``bench/bench_cluster.py`` uses them too.
* :class:`EtcdCluster` runs 1 or 3 members on free loopback ports; a member
  can be killed and restarted on its data directory; :meth:`EtcdCluster.leader`
  asks the members which one leads; :func:`wait_placed` waits until the
  nodes given own every shard. ``fsync_delay`` makes every member's fsyncs
  that much slower (strace's fault injection; :func:`find_strace` installs
  Debian's ``strace`` if missing): a slow etcd disk.
* :func:`open_node` starts one dohost node (a subprocess; killed on exit).
* :class:`Hammer` drives counters on many objects through random live nodes
  and records every acknowledged value, for the checkers.
"""

from __future__ import annotations

import base64
import os
import random
import re
import shutil
import signal
import socket
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Sequence

import httpx
import pytest
import trio

from _e2e_support import EXAMPLES, DohostProcess, run_dohost

ETCD_CANDIDATES = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
_apt_updated = False


class EtcdMissing(RuntimeError):
    """etcd is not installed and could not be installed; the message says why and what to do."""


def _etcd_on_disk() -> str | None:
    return shutil.which("etcd") or next((p for p in ETCD_CANDIDATES if Path(p).exists()), None)


def _apt_install(package: str) -> None:
    """``apt-get install -y package`` (``apt-get update`` once per session); :class:`EtcdMissing` with apt's words if impossible."""
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise EtcdMissing(f"{package} is not installed and this system has no apt-get: install it")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        update = subprocess.run([*prefix, "apt-get", "update"], capture_output=True, text=True, env=env)
        if update.returncode != 0:
            raise EtcdMissing(f"installing {package}: `apt-get update` failed:\n{update.stderr[-2000:]}")
        _apt_updated = True
    install = subprocess.run([*prefix, "apt-get", "install", "-y", package], capture_output=True, text=True, env=env)
    if install.returncode != 0:
        raise EtcdMissing(f"installing {package}: `apt-get install -y {package}` failed:\n{install.stderr[-2000:]}")


def find_etcd() -> str:
    """The etcd binary, installed from Debian's packages if missing (idempotent); :class:`EtcdMissing` if impossible."""
    found = _etcd_on_disk()
    if found:
        return found
    _apt_install("etcd-server")
    found = _etcd_on_disk()
    if not found:
        raise EtcdMissing("installed etcd-server but found no etcd binary (looked on PATH and in /usr/bin)")
    return found


def find_strace() -> str:
    """strace (to slow etcd's fsyncs down), installed from Debian's packages if missing; :class:`EtcdMissing` if impossible."""
    found = shutil.which("strace")
    if found is None:
        _apt_install("strace")
        found = shutil.which("strace")
    if found is None:
        raise EtcdMissing("installed strace but found no strace binary on PATH")
    return found


def ensure_etcd() -> str:
    """:func:`find_etcd` for a test: a missing etcd fails the test with the reason (never a silent skip)."""
    try:
        return find_etcd()
    except EtcdMissing as exc:
        pytest.fail(str(exc))


def ensure_strace() -> str:
    """:func:`find_strace` for a test: failing the test with the reason if it cannot be had."""
    try:
        return find_strace()
    except EtcdMissing as exc:
        pytest.fail(str(exc))


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class EtcdCluster:
    """``fsync_delay``: every ``fsync``/``fdatasync`` of every member takes that many more
    seconds (strace's fault injection; etcd is a static Go binary, so no ``LD_PRELOAD``):
    a slow etcd disk, on which each raft commit costs at least that. Each member
    then runs in its own process group, killed whole."""

    def __init__(self, binary: str, root: Path, members: int, fsync_delay: float = 0.0) -> None:
        self.binary = binary
        self.fsync_delay = fsync_delay
        self.root = root
        ports = free_ports(2 * members)
        self.client_ports = ports[:members]
        self.peer_ports = ports[members:]
        self.names = [f"e{i}" for i in range(members)]
        self.procs: dict[int, trio.Process] = {}
        self.logs: dict[int, Path] = {}

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.client_ports]

    def member_argv(self, i: int) -> list[str]:
        """The command line of member ``i`` (a new cluster of all members, fast elections)."""
        cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports))
        slow = [
            ensure_strace(), "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf", "-e", "trace=fdatasync,fsync",
            "-e", f"inject=fdatasync,fsync:delay_exit={round(self.fsync_delay * 1e6)}",
        ] if self.fsync_delay else []
        return [
            *slow, self.binary, "--name", self.names[i], "--data-dir", str(self.root / self.names[i]),
            "--listen-client-urls", self.urls[i], "--advertise-client-urls", self.urls[i],
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
            "--initial-cluster", cluster, "--initial-cluster-token", "dohost-test", "--initial-cluster-state", "new",
            "--heartbeat-interval", "100", "--election-timeout", "1000",
        ]

    async def start(self, i: int) -> None:
        log = self.root / f"{self.names[i]}.log"
        self.logs[i] = log
        with open(log, "ab") as out:
            self.procs[i] = await trio.lowlevel.open_process(self.member_argv(i), stdout=out, stderr=subprocess.STDOUT,
                                                             start_new_session=bool(self.fsync_delay))

    async def start_all(self) -> None:
        for i in range(len(self.names)):
            await self.start(i)
        await self.wait_healthy()

    async def wait_healthy(self, timeout: float = 20.0) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            with trio.fail_after(timeout):
                while True:
                    ok = 0
                    for i, url in enumerate(self.urls):
                        if i not in self.procs or self.procs[i].returncode is not None:
                            continue
                        try:
                            r = await http.get(url + "/health")
                            ok += r.status_code == 200 and r.json().get("health") == "true"
                        except httpx.HTTPError:
                            pass
                    if ok == sum(1 for p in self.procs.values() if p.returncode is None) and ok:
                        return
                    await trio.sleep(0.1)

    async def leader(self) -> int:
        async with httpx.AsyncClient(timeout=1.0) as http:
            with trio.fail_after(10):
                while True:
                    for i, url in enumerate(self.urls):
                        try:
                            s = (await http.post(url + "/v3/maintenance/status", json={})).json()
                        except httpx.HTTPError:
                            continue
                        if s.get("leader") and s["leader"] == s["header"]["member_id"]:
                            return i
                    await trio.sleep(0.1)

    async def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        self.signal(proc, signal.SIGKILL)
        await proc.wait()

    def signal(self, proc: trio.Process, signum: int) -> None:
        """Signal a member: with ``fsync_delay``, its whole group (strace's death would leave etcd running)."""
        try:
            if self.fsync_delay:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
        except ProcessLookupError:
            pass

    async def stop_all(self) -> None:
        for i in list(self.procs):
            await self.kill(i)


#: Shards of the key space (runtime.cluster's default).
SHARDS = 64


async def wait_placed(etcd: EtcdCluster, node_ids: set[str], timeout: float = 20.0, *, settled: bool = False) -> None:
    """Until every shard has an owner and each of ``node_ids`` owns some (and no other node does).

    ``settled``: until every shard is with its rendezvous owner among ``node_ids``,
    so no shard is still moving (a node that rejoined takes its shards back one
    by one; a call caught by such a move is refused, never run twice).
    """
    from runtime.cluster import rendezvous_owner

    key = base64.b64encode(b"/dohost/shards/").decode()
    end = base64.b64encode(b"/dohost/shards0").decode()
    nodes = sorted(node_ids)
    async with httpx.AsyncClient(timeout=1.0) as http:
        with trio.fail_after(timeout):
            while True:
                for url in etcd.urls:
                    try:
                        data = (await http.post(url + "/v3/kv/range", json={"key": key, "range_end": end})).json()
                        break
                    except httpx.HTTPError:
                        continue
                else:
                    data = {}
                kvs = data.get("kvs") or []
                owners = [base64.b64decode(kv["value"]).decode() for kv in kvs]
                if len(owners) == SHARDS and set(owners) == node_ids:
                    if not settled:
                        return
                    shards = [int(base64.b64decode(kv["key"]).decode().rsplit("/", 1)[1]) for kv in kvs]
                    if all(owner == rendezvous_owner(shard, nodes) for shard, owner in zip(shards, owners)):
                        return
                await trio.sleep(0.1)


@asynccontextmanager
async def open_etcd(tmp_path: Path, members: int = 3, fsync_delay: float = 0.0) -> AsyncIterator[EtcdCluster]:
    cluster = EtcdCluster(ensure_etcd(), tmp_path / "etcd", members, fsync_delay)
    cluster.root.mkdir(parents=True, exist_ok=True)
    try:
        await cluster.start_all()
        yield cluster
    finally:
        with trio.CancelScope(shield=True):
            for proc in cluster.procs.values():
                if proc.returncode is None:
                    cluster.signal(proc, signal.SIGCONT)
            await cluster.stop_all()
            for i, log in cluster.logs.items():
                elected = [l for l in log.read_text(errors="replace").splitlines() if "elected leader" in l]
                print(f"--- etcd member {i}: {len(elected)} leader elections ---")
                print("\n".join(elected[-5:]))


def node_argv(
    etcd: EtcdCluster, data_dir: Path, node_id: str, port: int, ttl: int, config: Path | None = None, token: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        "dohost", "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
        "--config", str(config or EXAMPLES / "counter" / "wrangler.toml"),
        "--cluster", ",".join(etcd.urls), "--node-id", node_id, "--lease-ttl", str(ttl),
        *(["--token", token] if token else []), *extra,
    ]


@asynccontextmanager
async def open_node(
    etcd: EtcdCluster, data_dir: Path, node_id: str, port: int, ttl: int, config: Path | None = None,
    token: str | None = None,
) -> AsyncIterator[DohostProcess]:
    async with run_dohost(node_argv(etcd, data_dir, node_id, port, ttl, config, token)) as proc:
        try:
            yield proc
        finally:
            if proc.process.returncode is None:
                proc.process.send_signal(signal.SIGCONT)


_OBJECT_FILE = re.compile(r"[0-9a-f]{64}\.sqlite")


def open_sqlite_files(pid: int) -> set[str]:
    """The object files (``*.sqlite``) a process has open now."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        # An object's file is <64 hex digits of its id>.sqlite in its namespace's folder
        # (binding stores under bindings/ and the alarm index are shared by design).
        if _OBJECT_FILE.fullmatch(os.path.basename(target)) and "/bindings/" not in target:
            out.add(target)
    return out


class Hammer:
    """Clients incrementing counters through random nodes; every acknowledged value is kept."""

    def __init__(self, urls: list[str], objects: int, clients: int) -> None:
        self.urls = urls
        self.down: set[str] = set()
        self.names = [f"obj{i}" for i in range(objects)]
        self.clients = clients
        #: (client, name) -> values in the order that client saw them.
        self.seen: dict[tuple[int, str], list[int]] = {}
        #: name -> (monotonic time, value) of every ack.
        self.acks: dict[str, list[tuple[float, int]]] = {n: [] for n in self.names}
        #: name -> (sent, acknowledged, value) of every ack, for the real-time order check.
        self.spans: dict[str, list[tuple[float, float, int]]] = {n: [] for n in self.names}
        self.attempts: dict[str, int] = {n: 0 for n in self.names}
        self.errors = 0
        self.stop = trio.Event()
        self.double_open: list[tuple[str, list[int]]] = []
        #: pid -> the object files the file watcher ever saw it hold (so its check is not vacuous).
        self.files_seen: dict[int, set[str]] = {}

    async def run(self, pids: dict[str, int]) -> None:
        async with trio.open_nursery() as nursery:
            for c in range(self.clients):
                nursery.start_soon(self._client, c)
            nursery.start_soon(self._watch_files, pids)

    async def _client(self, c: int) -> None:
        rng = random.Random(c)
        async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=1.0)) as http:
            i = c
            while not self.stop.is_set():
                name = self.names[i % len(self.names)]
                i += 1
                live = [u for u in self.urls if u not in self.down]
                url = rng.choice(live)
                self.attempts[name] += 1
                sent = trio.current_time()
                try:
                    r = await http.get(f"{url}/{name}")
                except httpx.HTTPError:
                    self.errors += 1
                    await trio.sleep(0.02)
                    continue
                if r.status_code != 200:
                    self.errors += 1
                    await trio.sleep(0.02)
                    continue
                value = int(r.text)
                self.seen.setdefault((c, name), []).append(value)
                self.acks[name].append((trio.current_time(), value))
                self.spans[name].append((sent, trio.current_time(), value))

    async def _watch_files(self, pids: dict[str, int]) -> None:
        while not self.stop.is_set():
            holders: dict[str, list[int]] = {}
            for pid in pids.values():
                for path in open_sqlite_files(pid):
                    holders.setdefault(path, []).append(pid)
                    self.files_seen.setdefault(pid, set()).add(path)
            self.double_open += [(p, h) for p, h in holders.items() if len(h) > 1]
            await trio.sleep(0.05)

    def acked_after(self, t: float) -> set[str]:
        return {n for n, acks in self.acks.items() if any(at > t for at, _ in acks)}

    def acked_sent_after(self, t: float) -> set[str]:
        """Objects that acknowledged a request the client sent after ``t`` (whenever the ack was read)."""
        return {n for n, spans in self.spans.items() if any(sent > t for sent, _, _ in spans)}

    def first_ack_after(self, name: str, t: float) -> float | None:
        return min((at for at, _ in self.acks[name] if at > t), default=None)

    async def final_values(self, url: str) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=20.0) as http:
            return {n: int((await http.get(f"{url}/{n}/get")).text) for n in self.names}

    def check(self, final: dict[str, int]) -> None:
        """The checkers: no value twice, none backwards (per client and in real time), every ack present, no file open twice."""
        for name, acks in self.acks.items():
            values = [v for _, v in acks]
            dupes = sorted({v for v in values if values.count(v) > 1})
            assert not dupes, f"{name}: values returned twice (two live instances?): {dupes[:10]}"
            if values:
                assert final[name] >= max(values), f"{name}: acknowledged {max(values)} but holds {final[name]}"
            assert final[name] <= self.attempts[name], f"{name}: {final[name]} increments from {self.attempts[name]} attempts (one sent twice?)"
        for (c, name), values in self.seen.items():
            assert values == sorted(values), f"client {c} saw {name} go backwards: {values}"
        for name, spans in self.spans.items():
            # Across clients too: a request sent after another was acknowledged sees a larger value.
            by_ack = sorted(spans, key=lambda s: s[1])
            done, highest = 0, 0
            for sent, _, value in sorted(spans):
                while done < len(by_ack) and by_ack[done][1] < sent:
                    highest = max(highest, by_ack[done][2])
                    done += 1
                assert value > highest, f"{name}: {value} answered after {highest} was acknowledged (a stale instance?)"
        assert not self.double_open, f"object files open in two live nodes: {self.double_open[:5]}"
        # The file checker looked at real object files: every node held some at some point.
        assert len(self.files_seen) == len(self.urls), f"the file watcher saw object files in only {sorted(self.files_seen)}"
