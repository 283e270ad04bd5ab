"""etcd append throughput for the shared-nothing cluster design (docs/cluster.md).

The later design commits an object's WAL pages by appending them to etcd in
one transaction fenced by the shard epoch. This measures exactly that call
through dohost's own client (``runtime.cluster.EtcdClient.txn_append``: a
``Txn`` comparing ``create_revision`` of the shard key, then puts) against a
real 3-member etcd on loopback (Debian's ``etcd-server``; the benchmark says
so and stops if ``etcd`` is not installed), for 4, 16 and 64 KiB values, 1
or 8 values per transaction, 8 concurrent writers. Baseline, side by side:
the single-node path today, one SQLite commit (WAL, ``synchronous=FULL``)
of the same bytes on the same disk.

All members and the benchmark share one machine and one disk (and, right now,
the CPU with other work): figures are noisy and pessimistic for etcd, whose
members would each have their own disk in production.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import apsw
import trio

from _table import print_table

SECONDS = 2.0
WRITERS = 8
SIZES_KIB = (4, 16, 64)
BATCHES = (1, 8)


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_etcd(binary: str, root: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = _ports(6)
    client, peer = ports[:3], ports[3:]
    cluster = ",".join(f"b{i}=http://127.0.0.1:{peer[i]}" for i in range(3))
    procs = []
    for i in range(3):
        url = f"http://127.0.0.1:{client[i]}"
        procs.append(subprocess.Popen([
            binary, "--name", f"b{i}", "--data-dir", str(root / f"b{i}"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer[i]}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--quota-backend-bytes", str(8 << 30),
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs, [f"http://127.0.0.1:{p}" for p in client]


async def _etcd_rows(urls: list[str]) -> list[list[object]]:
    from runtime.cluster import EtcdClient

    rows: list[list[object]] = []
    async with EtcdClient(urls, timeout=10.0) as etcd:
        with trio.fail_after(30):
            while True:
                try:
                    await etcd.put(b"bench/warm", b"1")
                    break
                except Exception:
                    await trio.sleep(0.2)
        lease, _ = await etcd.lease_grant(60)
        guard = b"bench/shards/0"
        epoch = await etcd.create(guard, b"bench", lease=lease)
        assert epoch is not None
        for kib in SIZES_KIB:
            value = os.urandom(kib * 1024)
            sqlite_rate = _sqlite_rate(value)
            for batch in BATCHES:
                done = 0
                latencies: list[float] = []
                deadline = time.perf_counter() + SECONDS

                async def writer(w: int) -> None:
                    nonlocal done
                    n = 0
                    while time.perf_counter() < deadline:
                        items = [(f"bench/log/{w}/{n}/{j}".encode(), value) for j in range(batch)]
                        t0 = time.perf_counter()
                        ok = await etcd.txn_append(guard, epoch, items)
                        latencies.append(time.perf_counter() - t0)
                        assert ok
                        done += 1
                        n += 1

                started = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for w in range(WRITERS):
                        nursery.start_soon(writer, w)
                elapsed = time.perf_counter() - started
                latencies.sort()
                txn_s = done / elapsed
                mib_s = txn_s * batch * kib / 1024
                rows.append([
                    f"{kib} KiB × {batch}", txn_s, mib_s, latencies[len(latencies) // 2] * 1000, sqlite_rate * kib / 1024,
                    mib_s / (sqlite_rate * kib / 1024),
                ])
                # Keep the backend small between runs: drop what we wrote.
                await etcd.call("kv/deleterange", {"key": "YmVuY2gvbG9nLw==", "range_end": "YmVuY2gvbG9nMA=="})
    return rows


def _sqlite_rate(value: bytes) -> float:
    """Commits/s of one SQLite WAL commit (synchronous=FULL) writing ``value``."""
    with tempfile.TemporaryDirectory() as d:
        db = apsw.Connection(str(Path(d) / "b.sqlite"))
        db.execute("PRAGMA journal_mode=WAL").fetchall()
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
        n = 0
        deadline = time.perf_counter() + 1.0
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            with db:
                db.execute("INSERT INTO t VALUES (?, ?)", (n, value))
            n += 1
        rate = n / (time.perf_counter() - started)
        db.close()
    return rate


def main() -> None:
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if binary is None:
        print("bench_etcd_append: etcd is not installed (apt-get install etcd-server); skipped")
        return
    root = Path(tempfile.mkdtemp(prefix="dohost-bench-etcd-"))
    procs, urls = _start_etcd(binary, root)
    try:
        rows = trio.run(_etcd_rows, urls)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)
    print_table(
        f"etcd fenced append (3 members, loopback, {WRITERS} writers, {SECONDS:.0f} s each) vs one SQLite fsync'd commit",
        ["values per txn", "txn/s", "MiB/s", "p50 ms", "SQLite MiB/s", "etcd / SQLite"],
        rows,
    )


if __name__ == "__main__":
    main()
