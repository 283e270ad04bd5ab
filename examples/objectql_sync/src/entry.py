"""ObjectQL's offline-first sync endpoint as a Worker and one Durable Object per space.

HTTP API (JSON)::

    POST /api/sync           SyncPushRequest -> SyncPushResponse   (also POST /api/sync/push, the docs' path)
         headers: X-ObjectQL-Sync-Version: 1 (required; echoed), X-ObjectQL-Space: <space> or ?space=<space>
    GET  /api/sync/objects   the object definitions' sync settings (for clients)
    GET  /api/sync/state     ?space= -> {"checkpoint", "records": {object: {id: {data, version, updated_at}}}}

Each space (``?space=``, else the ``X-ObjectQL-Space`` header, else
``default``) is one ``SyncSpace`` object holding its change log and records
in its own SQLite storage (see ``store.py``). The Worker checks the version
header, the body size (1 MiB → 413) and the request's shape (``protocol.py``:
malformed JSON, wrong types, unknown or unsynced objects → 400 naming the
JSON path) before the object is reached, so a bad request changes nothing.
The object applies the push in one ``transactionSync``, rate-limits per
client (``OBJECTQL_RATE_LIMIT`` requests per minute, default 600 → 429 with
``Retry-After``), and keeps an alarm that prunes the change log after
``OBJECTQL_RETENTION_DAYS`` (default 30, ObjectQL's
``changeLogRetentionDays``).

``OBJECTQL_ACCESS_POLICY``: ``open`` (default) lets every client write every
record; ``owner`` lets a client update or delete only records it created.

The definitions are ``src/objects/*.object.yml`` (inside ``src/``, so they
are bundled with the Worker; a top-level ``objects/`` folder would also
shadow dohost's ``objects`` package when ``python -m pytest`` runs here under
an editable install). Runs on dohost as is; on Cloudflare, PyYAML and msgspec
come from Pyodide's package set.
"""

import json
import math
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from js import Date
from workers import DurableObject, Response, WorkerEntrypoint

from objectdefs import load_definitions
from protocol import MAX_BODY_BYTES, SUPPORTED_VERSIONS, VERSION_HEADER, BadRequest, check_version, decode_push
from store import SyncStore

OBJECTS = load_definitions(Path(__file__).resolve().parent / "objects")
SYNC_PATHS = ("/api/sync", "/api/sync/push")
DAY_MS = 86_400_000


def _json(data, status=200, headers=None):
    text = data if isinstance(data, str) else json.dumps(data)
    return Response(text, status=status, headers={"content-type": "application/json",
                                                  VERSION_HEADER: SUPPORTED_VERSIONS[-1], **(headers or {})})


def _error(message, status=400, headers=None):
    return _json({"error": message}, status=status, headers=headers)


def _var(env, name, default):
    return str(getattr(env, name, None) or default)


class SyncSpace(DurableObject):
    """One space's sync state: the change log, record versions, applied ids; rate-limit buckets in memory."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.store = SyncStore(ctx.storage.sql, OBJECTS, _var(env, "OBJECTQL_ACCESS_POLICY", "open"))
        self.rate_per_minute = float(_var(env, "OBJECTQL_RATE_LIMIT", "600"))
        self.retention_ms = float(_var(env, "OBJECTQL_RETENTION_DAYS", "30")) * DAY_MS
        self.buckets = {}  # clientId -> (tokens, at_ms): lost on eviction, which only forgives

    def _admit(self, client_id, now):
        """Token bucket per client: ``rate_per_minute`` tokens, refilled continuously. Seconds to wait, or 0."""
        capacity = self.rate_per_minute
        tokens, at = self.buckets.get(client_id, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * capacity / 60_000)
        if tokens < 1:
            self.buckets[client_id] = (tokens, now)
            return max(1, math.ceil((1 - tokens) * 60 / capacity))
        self.buckets[client_id] = (tokens - 1, now)
        return 0

    async def push(self, body):
        """``{"status", "headers", "body"}`` for a raw, not yet decoded request body; ``body`` is JSON text
        (a string crosses RPC without the deep copy a large dict of changes would need)."""
        try:
            request = decode_push(body, OBJECTS)
        except BadRequest as exc:
            return {"status": exc.status, "headers": {}, "body": {"error": str(exc)}}
        now = Date.now()
        wait = self._admit(request.clientId, now)
        if wait:
            message = (f"rate limit exceeded for client {request.clientId!r}: "
                       f"{self.rate_per_minute:g} requests per minute; retry after {wait} s")
            return {"status": 429, "headers": {"Retry-After": str(wait)}, "body": {"error": message}}
        response = self.ctx.storage.transactionSync(lambda: self.store.push(request, now))
        if any(r["status"] == "applied" for r in response["results"]) and await self.ctx.storage.getAlarm() is None:
            expiry = self.store.oldest_expiry(self.retention_ms)
            if expiry is not None:
                await self.ctx.storage.setAlarm(expiry)
        return {"status": 200, "headers": {}, "body": json.dumps(response)}

    def state(self):
        return {"checkpoint": self.store.checkpoint(), "records": self.store.records()}

    async def alarm(self, alarm_info=None):
        now = Date.now()
        expiry = self.ctx.storage.transactionSync(lambda: self.store.prune(now, self.retention_ms))
        if expiry is not None:
            await self.ctx.storage.setAlarm(max(expiry, now + 1))


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        query = parse_qs(url.query)
        space = (query.get("space") or [None])[0] or request.headers.get("X-ObjectQL-Space") or "default"
        stub = self.env.SYNC.getByName(space)
        if url.path == "/api/sync/objects" and request.method == "GET":
            return _json({"objects": [o.to_json() for o in OBJECTS.values()]})
        if url.path == "/api/sync/state" and request.method == "GET":
            return _json(await stub.state())
        if url.path not in SYNC_PATHS:
            return _error(f"no route for {request.method} {url.path}; the sync endpoint is POST /api/sync", 404)
        if request.method != "POST":
            return _error(f"{url.path} takes POST, got {request.method}", 405, {"Allow": "POST"})
        try:
            check_version(request.headers.get(VERSION_HEADER))
        except BadRequest as exc:
            return _error(str(exc))
        length = request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _error(f"request body exceeds {MAX_BODY_BYTES} bytes", 413)
        body = bytes(await request.bytes())
        result = await stub.push(body)
        return _json(result["body"], status=result["status"], headers=result["headers"])
