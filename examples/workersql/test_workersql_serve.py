"""WorkerSQL under ``dohost serve`` on real sockets: restarts and SIGKILL.

Each test starts the console script a user runs (``dohost serve``, fsync on
commit) on a loopback port, talks HTTP to it with httpx, and stops it: with
SIGTERM for a restart, with SIGKILL for a crash.
"""

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from test_workersql import token

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parent
STARTUP_S = 30  # real seconds to start a server (a busy machine)


@asynccontextmanager
async def serve(data_dir):
    script = Path(sys.executable).parent / "dohost"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    argv = head + ["serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--config", str(PROJECT)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOHOST_", "PYTEST_"))}
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    lines = []
    try:
        url = None
        buffer = b""
        with trio.fail_after(STARTUP_S):
            while url is None:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    raise AssertionError("dohost serve exited:\n" + "\n".join(lines))
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                lines.extend(line.decode() for line in complete)
                for line in complete:
                    m = re.search(rb"Ready on (http://[^\s\"]+)", line)
                    if m:
                        url = m[1].decode()
        async with trio.open_nursery() as nursery:

            async def drain():
                async for _ in proc.stdout:
                    pass

            nursery.start_soon(drain)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield proc, client
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()


async def post(client, path, body, tenant="acme", **headers):
    response = await client.post(path, content=json.dumps(body), headers={"authorization": f"Bearer {token(tenant)}", **headers})
    return response.status_code, response.json()


async def test_a_transaction_open_across_a_serve_restart_commits_correctly(tmp_path):
    data = tmp_path / "data"
    async with serve(data) as (proc, client):
        await post(client, "/query", {"sql": "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)"})
        await post(client, "/query", {"sql": "INSERT INTO accounts VALUES (1, 100), (2, 100)"})
        status, body = await post(client, "/v1/transactions", {})
        txid = body["data"]["transactionId"]
        for sql in ("UPDATE accounts SET balance = balance - 40 WHERE id = 1",
                    "UPDATE accounts SET balance = balance + 40 WHERE id = 2"):
            status, body = await post(client, "/v1/query", {"transactionId": txid, "sql": sql})
            assert status == 200, body
        proc.send_signal(signal.SIGTERM)  # a graceful restart: every object is evicted
        with trio.fail_after(STARTUP_S):
            await proc.wait()
    async with serve(data) as (proc, client):
        status, body = await post(client, "/query", {"sql": "SELECT balance FROM accounts ORDER BY id"})
        assert body["data"]["rows"] == [{"balance": 100}, {"balance": 100}]  # not visible before commit
        status, body = await post(client, "/v1/query", {"transactionId": txid, "sql": "SELECT balance FROM accounts ORDER BY id"})
        assert body["data"]["rows"] == [{"balance": 60}, {"balance": 140}]  # the transaction still sees its writes
        status, body = await post(client, f"/v1/transactions/{txid}/commit", {})
        assert status == 200 and body["data"]["rowsAffected"] == 2
        status, body = await post(client, "/query", {"sql": "SELECT balance FROM accounts ORDER BY id"})
        assert body["data"]["rows"] == [{"balance": 60}, {"balance": 140}]


# httpx leaves a request's body generator unfinished when the server dies under it.
@pytest.mark.filterwarnings("ignore:Async generator 'httpx:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_sigkill_during_batches_leaves_each_batch_all_or_nothing(tmp_path):
    data = tmp_path / "data"
    rows = 100
    acked = []
    enough = trio.Event()
    async with serve(data) as (proc, client):
        await post(client, "/query", {"sql": "CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER)"})
        values = ", ".join(f"({i}, 0)" for i in range(rows))
        await post(client, "/query", {"sql": f"INSERT INTO c VALUES {values}"})
        batch = {"batch": [{"sql": "UPDATE c SET n = n + 1 WHERE id = ?", "params": [i]} for i in range(rows)]}

        async def writer(w):
            for k in range(1000):
                try:
                    status, _ = await post(client, "/sql/batch", batch, **{"CF-Connecting-IP": f"192.0.2.{w}.{k}"})
                except httpx.HTTPError:
                    return
                if status == 200:
                    acked.append(w)
                    if len(acked) >= 5:
                        enough.set()

        async with trio.open_nursery() as nursery:
            for w in range(4):
                nursery.start_soon(writer, w)
            with trio.fail_after(STARTUP_S):
                await enough.wait()
            proc.kill()  # SIGKILL, mid-batch
    async with serve(data) as (proc, client):
        status, body = await post(client, "/query", {"sql": "SELECT DISTINCT n FROM c"})
        counts = [r["n"] for r in body["data"]["rows"]]
        assert len(counts) == 1, counts  # every row moved together: no half-applied batch
        assert counts[0] >= len(acked)  # and nothing acknowledged was lost
