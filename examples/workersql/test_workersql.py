"""WorkerSQL on dohost: tenants, SQL over HTTP, durable transactions, batches, PITR, export.

Most tests use the ``dohost`` fixture (fresh runtime and storage per test,
built from this folder's wrangler.toml) and call the gateway in-process; the
restart and crash tests run ``dohost serve`` and a subprocess on real sockets.
"""

import json

import jwt
import pytest
import trio

SECRET = "dev-only-secret-change-me-in-production-0123456789"


def token(tenant, admin=False, secret=SECRET, claim="tenant_id"):
    claims = {claim: tenant} if tenant is not None else {}
    if admin:
        claims["permissions"] = ["admin"]
    return jwt.encode(claims, secret, algorithm="HS256")


async def call(target, method, path, body=None, *, tenant="acme", admin=False, headers=None, raw=None, auth=True):
    h = {"content-type": "application/json", **(headers or {})}
    if auth and "authorization" not in h:
        h["authorization"] = f"Bearer {token(tenant, admin)}"
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    response = await target.fetch(f"https://sql.example{path}", method=method, body=data, headers=h)
    text = await response.text()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return response.status, parsed, response.headers


async def q(target, sql, *params, tenant="acme"):
    status, body, _ = await call(target, "POST", "/query", {"sql": sql, "params": list(params)}, tenant=tenant)
    assert status == 200, body
    return body["data"]


async def accounts(target, tenant="acme", n=10, balance=100):
    await q(target, "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)", tenant=tenant)
    ops = [{"sql": "INSERT INTO accounts VALUES (?, ?)", "params": [i, balance]} for i in range(n)]
    for start in range(0, n, 500):
        status, body, _ = await call(target, "POST", "/sql/batch", {"batch": ops[start : start + 500]}, tenant=tenant)
        assert status == 200, body


async def total(target, tenant="acme"):
    return (await q(target, "SELECT sum(balance) AS s, count(*) AS n FROM accounts", tenant=tenant))["rows"][0]


def same_shard_tenants():
    from entry import shard_name

    first = shard_name("acme")
    other = next(f"t{i}" for i in range(100) if shard_name(f"t{i}") == first)
    return "acme", other


# -- routing ----------------------------------------------------------------------------
def test_shards_follow_javas_string_hash():
    from entry import java_hash, shard_name

    assert java_hash("hello") == 99162322  # "hello".hashCode() in Java
    assert java_hash("polygenelubricants") == -2147483648  # Integer.MIN_VALUE: abs() stays positive here
    assert java_hash("") == 0
    assert shard_name("polygenelubricants") == "shard_0"
    assert shard_name("hello") == f"shard_{99162322 % 4}"


# -- tenants ----------------------------------------------------------------------------
async def test_a_tenant_never_sees_another_tenants_rows_even_on_the_same_shard(dohost):
    a, b = same_shard_tenants()
    await accounts(dohost, a, n=3, balance=1)
    await accounts(dohost, b, n=5, balance=7)
    assert await total(dohost, a) == {"s": 3, "n": 3}
    assert await total(dohost, b) == {"s": 35, "n": 5}
    from sqlns import namespace

    for probe in ("SELECT * FROM sqlite_schema", f'SELECT * FROM "{namespace(b)}accounts"', "SELECT * FROM _cf_KV"):
        status, body, _ = await call(dohost, "POST", "/query", {"sql": probe}, tenant=a)
        assert status == 400 and body["error"]["code"] == "SQL_ERROR" and "no such table" in body["error"]["message"]
    status, body, _ = await call(dohost, "POST", "/query", {"sql": "DELETE FROM accounts"}, tenant=a)
    assert body["data"]["rowsAffected"] == 3
    assert await total(dohost, b) == {"s": 35, "n": 5}


# -- queries and batches ------------------------------------------------------------------
async def test_query_returns_rows_rows_affected_and_insert_id(dohost):
    await q(dohost, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    data = await q(dohost, "INSERT INTO notes (body) VALUES (?)", "hi")
    assert data == {"rows": [], "rowsAffected": 1, "insertId": 1}
    status, body, headers = await call(dohost, "POST", "/query", {"sql": "SELECT id, body FROM notes"})
    assert status == 200
    assert body["success"] is True and body["cached"] is False and body["executionTime"] >= 0
    assert body["data"]["rows"] == [{"id": 1, "body": "hi"}]


async def test_a_batch_is_all_or_nothing(dohost):
    await accounts(dohost, n=2)
    ops = [
        {"sql": "UPDATE accounts SET balance = balance - 10 WHERE id = 0"},
        {"sql": "INSERT INTO accounts VALUES (1, 5)"},  # duplicate key: the whole batch fails
    ]
    status, body, _ = await call(dohost, "POST", "/sql/batch", {"batch": ops})
    assert (status, body["error"]["code"]) == (409, "CONFLICT_UNIQUE")
    assert await total(dohost) == {"s": 200, "n": 2}
    ops[1] = {"sql": "UPDATE accounts SET balance = balance + 10 WHERE id = 1"}
    status, body, _ = await call(dohost, "POST", "/sql/batch", {"batch": ops})
    assert body == {"success": True, "data": {"results": [{"rowsAffected": 1}, {"rowsAffected": 1}], "totalRowsAffected": 2}}


async def test_an_idempotency_key_replays_the_first_response_byte_for_byte(dohost):
    await accounts(dohost, n=1)
    batch = {"batch": [{"sql": "UPDATE accounts SET balance = balance + 1 WHERE id = 0"}]}
    bodies = []
    for _ in range(3):
        response = await dohost.fetch(
            "https://sql.example/sql/batch", method="POST", body=json.dumps(batch),
            headers={"authorization": f"Bearer {token('acme')}", "Idempotency-Key": "k1"},
        )
        bodies.append(await response.bytes())
    assert bodies[0] == bodies[1] == bodies[2]
    assert await total(dohost) == {"s": 101, "n": 1}  # applied once


async def test_begin_and_commit_sent_as_sql_get_cloudflares_refusal(dohost):
    for sql in ("BEGIN", "COMMIT", "BEGIN TRANSACTION"):
        status, body, _ = await call(dohost, "POST", "/query", {"sql": sql})
        assert status == 400
        assert body["error"]["message"].startswith("To execute a transaction, please use the state.storage.transaction()")


# -- bad input ------------------------------------------------------------------------------
async def test_bad_input_gets_a_clear_error_and_changes_nothing(dohost):
    await accounts(dohost, n=2)
    cases = [
        (dict(raw="{not json"), 400, "INVALID_JSON"),
        (dict(body={"sql": 5}), 400, "INVALID_REQUEST"),
        (dict(body={"sql": "SELECT 1", "params": {"a": 1}}), 400, "INVALID_REQUEST"),
        (dict(body={"sql": "SELEC 1"}), 400, "SQL_SYNTAX_ERROR"),
        (dict(body={"sql": "SELECT * FROM nope"}), 400, "SQL_ERROR"),
        (dict(body={"sql": "INSERT INTO accounts VALUES (0, 1)"}), 409, "CONFLICT_UNIQUE"),
        (dict(body={"sql": "SELECT 1"}, auth=False), 401, "UNAUTHORIZED"),
        (dict(body={"sql": "SELECT 1"}, headers={"authorization": "Bearer nope"}), 401, "UNAUTHORIZED"),
        (dict(body={"sql": "SELECT 1"}, tenant=None), 401, "UNAUTHORIZED"),
    ]
    for kw, status, code in cases:
        got, body, _ = await call(dohost, "POST", "/query", **kw)
        assert (got, body["error"]["code"]) == (status, code), (kw, body)
        assert body["error"]["message"]
    wrong_key = jwt.encode({"tenant_id": "acme"}, "x" * 40, algorithm="HS256")
    got, body, _ = await call(dohost, "POST", "/query", {"sql": "SELECT 1"}, headers={"authorization": f"Bearer {wrong_key}"})
    assert (got, body["error"]["code"]) == (401, "UNAUTHORIZED")
    got, body, _ = await call(dohost, "POST", "/admin/pitr/bookmark", {})
    assert (got, body["error"]["code"]) == (403, "FORBIDDEN")
    got, body, headers = await call(dohost, "GET", "/query")
    assert (got, body["error"]["code"], headers.get("allow")) == (405, "METHOD_NOT_ALLOWED", "POST")
    got, body, _ = await call(dohost, "POST", "/nowhere", {})
    assert (got, body["error"]["code"]) == (404, "NOT_FOUND")
    too_many = {"batch": [{"sql": "DELETE FROM accounts"}] * 501}
    got, body, _ = await call(dohost, "POST", "/sql/batch", too_many)
    assert (got, body["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE") and "Too many operations" in body["error"]["message"]
    too_big = {"batch": [{"sql": "DELETE FROM accounts WHERE id = ?", "params": ["x" * 1_100_000]}]}
    got, body, _ = await call(dohost, "POST", "/sql/batch", too_big)
    assert (got, body["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE") and "Payload too large" in body["error"]["message"]
    got, body, _ = await call(dohost, "POST", "/sql/batch", {"batch": [{"sql": "SELECT 1"}]})
    assert (got, body["error"]["code"]) == (400, "INVALID_REQUEST")
    for path in ("/v1/transactions/txn_nope/commit", "/v1/transactions/txn_nope/rollback"):
        got, body, _ = await call(dohost, "POST", path, {})
        assert (got, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")
    got, body, _ = await call(dohost, "POST", "/v1/query", {"transactionId": "txn_nope", "sql": "SELECT 1"})
    assert (got, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")
    assert await total(dohost) == {"s": 200, "n": 2}


async def test_too_many_requests_from_one_client_get_429_with_retry_after(dohost):
    for _ in range(100):
        status, _, _ = await call(dohost, "POST", "/query", {"sql": "SELECT 1"}, headers={"CF-Connecting-IP": "192.0.2.1"})
        assert status == 200
    status, body, headers = await call(dohost, "POST", "/query", {"sql": "SELECT 1"}, headers={"CF-Connecting-IP": "192.0.2.1"})
    assert (status, body["error"]["code"]) == (429, "RATE_LIMITED")
    assert 1 <= int(headers.get("retry-after")) <= 60
    status, _, _ = await call(dohost, "POST", "/query", {"sql": "SELECT 1"}, headers={"CF-Connecting-IP": "192.0.2.2"})
    assert status == 200


# -- transactions -----------------------------------------------------------------------------
async def begin(target, tenant="acme", headers=None):
    status, body, _ = await call(target, "POST", "/v1/transactions", {}, tenant=tenant, headers=headers)
    assert status == 201, body
    return body["data"]["transactionId"]


async def tq(target, txid, sql, *params, tenant="acme", headers=None):
    body = {"transactionId": txid, "sql": sql, "params": list(params)}
    status, body, _ = await call(target, "POST", "/v1/query", body, tenant=tenant, headers=headers)
    assert status == 200, body
    return body["data"]


async def finish(target, txid, action="commit", tenant="acme", headers=None):
    return await call(target, "POST", f"/v1/transactions/{txid}/{action}", {}, tenant=tenant, headers=headers)


async def test_a_transaction_sees_its_own_writes_nobody_else_does_and_commit_applies_them_at_once(dohost):
    await accounts(dohost, n=2)
    txid = await begin(dohost)
    assert (await tq(dohost, txid, "UPDATE accounts SET balance = balance - 30 WHERE id = 0"))["rowsAffected"] == 1
    await tq(dohost, txid, "UPDATE accounts SET balance = balance + 30 WHERE id = 1")
    inside = await tq(dohost, txid, "SELECT balance FROM accounts ORDER BY id")
    assert inside["rows"] == [{"balance": 70}, {"balance": 130}]
    outside = await q(dohost, "SELECT balance FROM accounts ORDER BY id")
    assert outside["rows"] == [{"balance": 100}, {"balance": 100}]
    status, body, _ = await finish(dohost, txid)
    assert status == 200 and body["data"]["rowsAffected"] == 2
    assert (await q(dohost, "SELECT balance FROM accounts ORDER BY id"))["rows"] == [{"balance": 70}, {"balance": 130}]
    for action in ("commit", "rollback"):
        status, body, _ = await finish(dohost, txid, action)
        assert (status, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")


async def test_a_rolled_back_transaction_changes_nothing_and_is_gone(dohost):
    await accounts(dohost, n=1)
    txid = await begin(dohost)
    await tq(dohost, txid, "DELETE FROM accounts")
    status, _, _ = await finish(dohost, txid, "rollback")
    assert status == 200
    assert await total(dohost) == {"s": 100, "n": 1}
    status, body, _ = await finish(dohost, txid)
    assert (status, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")


async def test_another_tenant_cannot_use_a_transaction_id(dohost):
    a, b = same_shard_tenants()
    await accounts(dohost, a, n=1)
    txid = await begin(dohost, a)
    status, body, _ = await finish(dohost, txid, tenant=b)
    assert (status, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")


async def test_an_open_transaction_survives_eviction_and_an_idle_one_is_rolled_back(dohost, autojump_clock):
    await accounts(dohost, n=1)
    txid = await begin(dohost)
    await tq(dohost, txid, "UPDATE accounts SET balance = 1")
    await dohost.evict_all()
    await trio.sleep(30)  # idle, but within TRANSACTION_TIMEOUT_MS
    assert (await tq(dohost, txid, "SELECT balance FROM accounts"))["rows"] == [{"balance": 1}]
    status, _, _ = await finish(dohost, txid)
    assert status == 200
    assert (await total(dohost))["s"] == 1
    idle = await begin(dohost)
    await tq(dohost, idle, "UPDATE accounts SET balance = 2")
    await dohost.evict_all()
    await trio.sleep(61)  # the alarm rolls it back, waking the evicted shard
    status, body, _ = await finish(dohost, idle)
    assert (status, body["error"]["code"]) == (404, "TRANSACTION_NOT_FOUND")
    assert (await total(dohost))["s"] == 1


async def test_fifty_concurrent_clients_moving_money_keep_the_total(dohost):
    await accounts(dohost, n=10, balance=100)

    async def client(i):
        ip = {"CF-Connecting-IP": f"198.51.100.{i}"}  # each client its own rate-limit window
        for k in range(3):
            src, dst, amount = (i + k) % 10, (i * 7 + k + 1) % 10, 1 + (i + k) % 5
            if src == dst:
                continue
            if (i + k) % 2:
                txid = await begin(dohost, headers=ip)
                await tq(dohost, txid, "SELECT balance FROM accounts WHERE id = ?", src, headers=ip)
                await tq(dohost, txid, "UPDATE accounts SET balance = balance - ? WHERE id = ?", amount, src, headers=ip)
                await tq(dohost, txid, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, dst, headers=ip)
                status, body, _ = await finish(dohost, txid, headers=ip)
                assert status == 200, body
            else:
                ops = [
                    {"sql": "UPDATE accounts SET balance = balance - ? WHERE id = ?", "params": [amount, src]},
                    {"sql": "UPDATE accounts SET balance = balance + ? WHERE id = ?", "params": [amount, dst]},
                ]
                status, body, _ = await call(dohost, "POST", "/sql/batch", {"batch": ops}, headers=ip)
                assert status == 200, body

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(client, i)
    assert await total(dohost) == {"s": 1000, "n": 10}
    balances = (await q(dohost, "SELECT balance FROM accounts ORDER BY id"))["rows"]
    assert balances != [{"balance": 100}] * 10  # money moved


# -- point-in-time recovery, export and import ------------------------------------------------
async def admin(target, path, body=None, tenant="acme", method="POST"):
    status, got, _ = await call(target, method, path, body, tenant=tenant, admin=True)
    assert status == 200, got
    return got["data"]


@pytest.mark.dohost(history=True)  # the plugin keeps no point-in-time history unless asked, as local workerd
async def test_a_pitr_restore_undoes_a_bad_delete_and_the_restore_can_be_undone(dohost):
    await accounts(dohost, n=5)
    good = (await admin(dohost, "/admin/pitr/bookmark", {}))["bookmark"]
    await q(dohost, "DELETE FROM accounts")  # the bad DELETE
    restored = await admin(dohost, "/admin/pitr/restore", {"bookmark": good})
    assert restored["restoredTo"] == good
    assert await total(dohost) == {"s": 500, "n": 5}
    await admin(dohost, "/admin/pitr/restore", {"bookmark": restored["undoBookmark"]})
    assert await total(dohost) == {"s": None, "n": 0}
    status, body, _ = await call(dohost, "POST", "/admin/pitr/restore", {"bookmark": "not-a-bookmark"}, admin=True)
    assert (status, body["error"]["code"]) == (400, "INVALID_BOOKMARK")
    assert await total(dohost) == {"s": None, "n": 0}


async def test_export_then_import_into_a_fresh_shard_gives_equal_tables(dohost):
    await accounts(dohost, n=450)  # three pages of 200
    await q(dohost, "CREATE TABLE notes (body TEXT)")  # no primary key: rowids carry over
    await q(dohost, "INSERT INTO notes VALUES ('a'), ('b')")
    exported = await admin(dohost, "/admin/backup/export", method="GET")
    assert [t["name"] for t in exported["tables"]] == ["accounts", "notes"]
    assert len(exported["tables"][0]["rows"]) == 450
    from entry import shard_name

    fresh = next(f"f{i}" for i in range(100) if shard_name(f"f{i}") != shard_name("acme"))
    imported = await admin(dohost, "/admin/backup/import", {"tables": exported["tables"]}, tenant=fresh)
    assert imported == {"rowsImported": 452}
    again = await admin(dohost, "/admin/backup/export", tenant=fresh, method="GET")
    assert again["tables"] == exported["tables"]


async def test_an_export_is_one_consistent_state_while_transfers_continue(dohost):
    await accounts(dohost, n=600, balance=10)
    exports = []

    async def transfers():
        for i in range(40):
            ops = [
                {"sql": "UPDATE accounts SET balance = balance - 1 WHERE id = ?", "params": [i]},
                {"sql": "UPDATE accounts SET balance = balance + 1 WHERE id = ?", "params": [599 - i]},
            ]
            status, _, _ = await call(dohost, "POST", "/sql/batch", {"batch": ops}, headers={"CF-Connecting-IP": "203.0.113.9"})
            assert status == 200

    async def export():
        for _ in range(3):
            exports.append(await admin(dohost, "/admin/backup/export", method="GET"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transfers)
        nursery.start_soon(export)
    for e in exports:
        assert sum(r["data"]["balance"] for r in e["tables"][0]["rows"]) == 6000


async def test_health_and_metrics(dohost):
    status, body, _ = await call(dohost, "GET", "/health", auth=False)
    assert (status, body["data"]["status"]) == (200, "healthy")
    await accounts(dohost, n=1)
    status, text, headers = await call(dohost, "GET", "/metrics")
    assert status == 200 and "workersql_shard_tables 1" in text
    assert "workersql_queries_total" in text


async def test_a_tenant_pin_overrides_the_hash_and_sharded_tables_hash_tenant_and_table(tmp_path):
    from pathlib import Path

    from entry import shard_name
    from runtime import open_runtime

    project = Path(__file__).resolve().parent
    pinned = next(f"shard_{n}" for n in range(4) if f"shard_{n}" != shard_name("acme"))
    pins = {"TENANT_PINS": json.dumps({"acme": pinned}), "TABLE_SHARDED": "events"}
    async with open_runtime(config=project, data_dir=tmp_path, vars=pins) as rt:
        await q(rt, "CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
        await q(rt, "CREATE TABLE events (id INTEGER PRIMARY KEY)")

        async def tables(name):
            return (await rt.env.SHARD.getByName(name).health("acme"))["tables"]

        expected = {pinned: 1}
        expected[shard_name("acme:events")] = expected.get(shard_name("acme:events"), 0) + 1
        for n in range(4):
            assert await tables(f"shard_{n}") == expected.get(f"shard_{n}", 0)
