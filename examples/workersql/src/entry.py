"""WorkerSQL on dohost: a gateway Worker in front of SQLite-backed ``TableShard`` objects.

Routes (JSON; ``Authorization: Bearer <JWT>``, HS256 with ``JWT_SECRET``)::

    POST /query                        {sql, params?}  -> {success, data:{rows, rowsAffected?, insertId?}, cached, executionTime}
    POST /sql/batch                    {batch:[{sql, params?}]} -> {success, data:{results:[{rowsAffected}], totalRowsAffected}}
    POST /v1/transactions              -> {success, data:{transactionId}}
    POST /v1/query                     {transactionId, sql, params?} -> as /query, inside the transaction
    POST /v1/transactions/{id}/commit  | /rollback
    POST /admin/pitr/bookmark          {at?} -> {success, data:{bookmark}}
    POST /admin/pitr/restore           {bookmark} -> {success, data:{restoredTo, undoBookmark}}
    GET  /admin/backup/export          -> {success, data:{version, tenantId, exportedAt, tables:[{name, schema, rows}]}}
    POST /admin/backup/import          {tables, mode?} -> {success, data:{rowsImported}}
    GET  /health, GET /metrics

Errors: ``{success:false, error:{code, message}}`` with the original's codes.
Routing: tenant -> ``shard_<abs(int32 Java hash(tenant)) % 4>`` through
``idFromName``; ``TENANT_PINS`` (JSON ``{tenant: shard}``) overrides the hash;
tables listed in ``TABLE_SHARDED`` hash ``tenant:table`` instead.
"""

import json
import time
from urllib.parse import urlparse

import jwt
from js import Date
from workers import DurableObject, Response, WorkerEntrypoint

from shard import TableShard
from sqlns import first_table, statement_kind

__all__ = ["Gateway", "TableShard", "EdgeState", "java_hash", "shard_name"]

SHARD_COUNT = 4  # hard-coded in the original's RouterService
BATCH_MAX_OPS = 500
BATCH_MAX_BYTES = 1_048_576
IDEMPOTENCY_TTL_MS = 300_000
RATE_WINDOW_MS = 60_000
DEFAULT_RATE_LIMIT = 100

_METRICS = {"requests": 0, "errors": 0, "queries": 0, "batches": 0, "rate_limited": 0}


def java_hash(text):
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h = (h * 31 + int.from_bytes(data[i : i + 2], "little")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def shard_name(key):
    return f"shard_{abs(java_hash(key)) % SHARD_COUNT}"


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def ok(data, status=200, **extra):
    return Response(json.dumps({"success": True, "data": data, **extra}), status=status, headers={"content-type": "application/json"})


def fail(status, code, message, headers=None):
    _METRICS["errors"] += 1
    body = json.dumps({"success": False, "error": {"code": code, "message": message}})
    return Response(body, status=status, headers={"content-type": "application/json", **(headers or {})})


_STATUS = {"CONFLICT_UNIQUE": 409, "RETRYABLE": 503, "TRANSACTION_NOT_FOUND": 404}


def from_shard(result):
    """A shard's result, or ApiError for its ``{"error": ...}``."""
    if isinstance(result, dict) and "error" in result:
        err = result["error"]
        raise ApiError(_STATUS.get(err["code"], 400), err["code"], err["message"])
    return result


class EdgeState(DurableObject):
    """Per-client rate limit windows and per-tenant idempotency replays."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS idem (key TEXT PRIMARY KEY, status INTEGER, body TEXT, expires REAL)"
        )
        self.window = (0, 0)

    def hit(self, limit):
        """Count one request in this minute; return seconds to wait, or 0."""
        now = Date.now()
        start, count = self.window
        if now - start >= RATE_WINDOW_MS:
            start, count = now, 0
        if count >= limit:
            return max(1, int((start + RATE_WINDOW_MS - now) / 1000) + 1)
        self.window = (start, count + 1)
        return 0

    def replay(self, key):
        sql = self.ctx.storage.sql
        sql.exec("DELETE FROM idem WHERE expires <= ?", Date.now())
        rows = sql.exec("SELECT status, body FROM idem WHERE key = ?", key).toArray()
        return [rows[0]["status"], rows[0]["body"]] if rows else None

    def remember(self, key, status, body):
        self.ctx.storage.sql.exec(
            "INSERT OR REPLACE INTO idem VALUES (?, ?, ?, ?)", key, status, body, Date.now() + IDEMPOTENCY_TTL_MS
        )


class Gateway(WorkerEntrypoint):
    async def fetch(self, request):
        _METRICS["requests"] += 1
        started = time.perf_counter()
        try:
            return await self._route(request, started)
        except ApiError as exc:
            return fail(exc.status, exc.code, exc.message, exc.headers)

    # -- plumbing ---------------------------------------------------------------------------
    def _claims(self, request, admin=False):
        auth = request.headers.get("authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise ApiError(401, "UNAUTHORIZED", "missing Authorization: Bearer <token>")
        try:
            claims = jwt.decode(auth[7:].strip(), str(self.env.JWT_SECRET), algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            raise ApiError(401, "UNAUTHORIZED", f"invalid token: {exc}") from None
        tenant = claims.get("tenant_id") or claims.get("tid")
        if not isinstance(tenant, str) or not tenant:
            raise ApiError(401, "UNAUTHORIZED", "the token names no tenant (tenant_id or tid)")
        perms = claims.get("permissions") or claims.get("roles") or []
        if admin and "admin" not in perms:
            raise ApiError(403, "FORBIDDEN", "this route needs the admin permission")
        return tenant

    async def _body(self, request):
        text = await request.text()
        try:
            body = json.loads(text) if text else {}
        except ValueError as exc:
            raise ApiError(400, "INVALID_JSON", f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_REQUEST", f"expected a JSON object, got {type(body).__name__}")
        return body

    def _shard(self, tenant, table=None):
        pins = json.loads(getattr(self.env, "TENANT_PINS", "") or "{}")
        sharded = {t.strip().lower() for t in (getattr(self.env, "TABLE_SHARDED", "") or "").split(",") if t.strip()}
        if table is not None and table in sharded:
            name = shard_name(f"{tenant}:{table}")
        else:
            name = pins.get(tenant) or shard_name(tenant)
        ns = self.env.SHARD
        return ns.get(ns.idFromName(name))

    async def _rate_limit(self, request):
        ip = request.headers.get("cf-connecting-ip") or request.headers.get("x-forwarded-for") or "local"
        limit = int(getattr(self.env, "RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_LIMIT))
        ns = self.env.EDGE
        wait = await ns.get(ns.idFromName(f"ip:{ip}")).hit(limit)
        if wait:
            _METRICS["rate_limited"] += 1
            raise ApiError(429, "RATE_LIMITED", "too many requests", {"Retry-After": str(wait)})

    @staticmethod
    def _statement(body):
        sql, params = body.get("sql"), body.get("params", [])
        if not isinstance(sql, str) or not sql.strip():
            raise ApiError(400, "INVALID_REQUEST", "sql: expected a non-empty string")
        if not isinstance(params, list):
            raise ApiError(400, "INVALID_REQUEST", f"params: expected an array, got {type(params).__name__}")
        return sql, params

    # -- routes -----------------------------------------------------------------------------
    async def _route(self, request, started):
        path = urlparse(request.url).path or "/"
        method = request.method
        if path == "/health" and method == "GET":
            return ok({"status": "healthy"})
        await self._rate_limit(request)
        if path == "/metrics" and method == "GET":
            tenant = self._claims(request)
            shard = from_shard(await self._shard(tenant).health(tenant))
            lines = [f"workersql_{k}_total {v}" for k, v in _METRICS.items()]
            lines += [f"workersql_shard_size_bytes {shard['sizeBytes']}", f"workersql_shard_tables {shard['tables']}",
                      f"workersql_shard_transactions_active {shard['transactions']}"]
            return Response("\n".join(lines) + "\n", headers={"content-type": "text/plain; version=0.0.4"})
        if method != "POST" and not (path == "/admin/backup/export" and method == "GET"):
            if path in ("/query", "/sql/batch", "/v1/query", "/v1/transactions"):
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} {path}: use POST", {"Allow": "POST"})
            raise ApiError(404, "NOT_FOUND", f"{method} {path}: no such route")
        admin = path.startswith("/admin/")
        tenant = self._claims(request, admin=admin)
        if path == "/admin/backup/export":
            return ok(await self._shard(tenant).export(tenant))
        body = await self._body(request)
        if path == "/query":
            sql, params = self._statement(body)
            _METRICS["queries"] += 1
            result = from_shard(await self._shard(tenant, first_table(sql)).query(tenant, sql, params))
            return ok(result, cached=False, executionTime=round((time.perf_counter() - started) * 1000, 3))
        if path == "/sql/batch":
            return await self._batch(request, tenant, body)
        if path == "/v1/transactions":
            return ok(from_shard(await self._shard(tenant).begin(tenant)), status=201)
        if path == "/v1/query":
            txid = body.get("transactionId")
            sql, params = self._statement(body)
            if not isinstance(txid, str):
                raise ApiError(400, "INVALID_REQUEST", "transactionId: expected a string")
            return ok(from_shard(await self._shard(tenant).txn_query(tenant, txid, sql, params)))
        if path.startswith("/v1/transactions/") and path.endswith(("/commit", "/rollback")):
            txid, action = path[len("/v1/transactions/"):].rsplit("/", 1)
            shard = self._shard(tenant)
            call = shard.commit if action == "commit" else shard.rollback
            return ok(from_shard(await call(tenant, txid)))
        if path == "/admin/pitr/bookmark":
            at = body.get("at")
            if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float))):
                raise ApiError(400, "INVALID_REQUEST", "at: expected milliseconds since the epoch")
            return ok(from_shard(await self._shard(tenant).pitr_bookmark(at)))
        if path == "/admin/pitr/restore":
            bookmark = body.get("bookmark")
            if not isinstance(bookmark, str):
                raise ApiError(400, "INVALID_REQUEST", "bookmark: expected a string")
            shard = self._shard(tenant)
            result = from_shard(await shard.pitr_restore(bookmark))
            try:
                await shard.restart()  # ctx.abort(): the restore happens as the shard starts again
            except Exception:
                pass
            return ok(result)
        if path == "/admin/backup/import":
            result = await self._shard(tenant).import_(tenant, body, body.get("mode", "upsert"))
            return ok(from_shard(result))
        raise ApiError(404, "NOT_FOUND", f"{method} {path}: no such route")

    async def _batch(self, request, tenant, body):
        raw = json.dumps(body)
        ops = body.get("batch")
        if not isinstance(ops, list):
            raise ApiError(400, "INVALID_REQUEST", "batch: expected an array of {sql, params}")
        if len(ops) > BATCH_MAX_OPS:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"Too many operations in batch ({len(ops)} > {BATCH_MAX_OPS})")
        if len(raw.encode()) > BATCH_MAX_BYTES:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"Payload too large (more than {BATCH_MAX_BYTES} bytes)")
        key = request.headers.get("idempotency-key") or request.headers.get("x-idempotency-key")
        edge = None
        if key:
            ns = self.env.EDGE
            edge = ns.get(ns.idFromName(f"tenant:{tenant}"))
            cached = await edge.replay(key)
            if cached is not None:
                return Response(cached[1], status=cached[0], headers={"content-type": "application/json", "Idempotent-Replay": "true"})
        groups = {}
        for i, op in enumerate(ops):
            if not isinstance(op, dict):
                raise ApiError(400, "INVALID_REQUEST", f"batch[{i}]: expected an object")
            sql, params = self._statement(op)
            if statement_kind(sql) not in ("INSERT", "UPDATE", "DELETE"):
                raise ApiError(400, "INVALID_REQUEST", f"batch[{i}]: only INSERT, UPDATE and DELETE are allowed")
            table = first_table(sql)
            stub = self._shard(tenant, table)
            groups.setdefault(str(stub.id), (stub, []))[1].append((i, {"sql": sql, "params": params}))
        results = [None] * len(ops)
        for stub, items in groups.values():
            out = from_shard(await stub.batch(tenant, [op for _, op in items]))
            for (i, _), r in zip(items, out["results"]):
                results[i] = r
        _METRICS["batches"] += 1
        text = json.dumps({"success": True, "data": {"results": results, "totalRowsAffected": sum(r["rowsAffected"] for r in results)}})
        if edge is not None:
            await edge.remember(key, 200, text)
        return Response(text, headers={"content-type": "application/json"})


# Cloudflare's Python Workers export the Worker as ``Default``.
Default = Gateway
