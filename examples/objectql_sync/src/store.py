"""ObjectQL's ``SyncHandler.handlePush``, persisted in the space object's SQLite storage.

ObjectQL keeps its change log and version store in memory; here both live
in the Durable Object's own SQLite database (through ``ctx.storage.sql``),
and the caller runs :meth:`SyncStore.push` inside one
``ctx.storage.transactionSync``, so a request is applied whole or not at all
and survives eviction and restarts. Tables:

* ``_objectql_change_log`` — the seed's columns (``id``, ``object_name``,
  ``record_id``, ``operation``, ``data`` JSON, ``version``, ``client_id``,
  ``created_at``, here milliseconds since the epoch) and its two indexes;
  ``id`` is the checkpoint sequence.
* ``_objectql_records`` — each record's fields, its version (ObjectQL's
  version store: the row goes when the record is deleted), the ISO time of the
  last write and of each field's last write (for the client's resolvers),
  and the client that created it (for the ``owner`` access policy).
* ``_objectql_applied`` — mutation ids already applied, with the version
  they got: a retried push answers ``applied`` with the original
  ``serverVersion`` and applies nothing again.
* ``_objectql_sync_meta`` — the change-log counter (the checkpoint, from
  ``"0"``; never reused after pruning) and the highest pruned id.

Semantics are ObjectQL's (research note §2.3): results in request order;
more than 100 mutations → all rejected, nothing applied; create always
applies; delete of an unknown record → ``Record not found``; an update whose
``baseVersion`` is behind conflicts on the configured ``conflict_fields``
whose values differ, or on every data key when none are configured (a
missing record → ``Record not found``); otherwise it applies, even to a
missing record. ``serverChanges`` are the change-log rows after
``lastCheckpoint`` (``null`` or non-numeric → all), the client's own echo
included, except objects whose direction is ``push-only``.

Additions: the validation and access hooks run on every mutation and reject
it with a reason; ``pull-only`` objects refuse pushes. A client whose
checkpoint is older than the pruned part of the log (or that has none, once
anything was pruned) gets a full resync: every record as a ``create``
change, and ``"resync": true`` in the response.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from objectdefs import ObjectDef, validate_data
from protocol import MAX_MUTATIONS, MutationLogEntry, SyncPushRequest

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS _objectql_change_log (
        id INTEGER PRIMARY KEY, object_name TEXT NOT NULL, record_id TEXT NOT NULL,
        operation TEXT NOT NULL, data TEXT, version INTEGER NOT NULL, client_id TEXT,
        created_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS idx_object_version ON _objectql_change_log(object_name, version)",
    "CREATE INDEX IF NOT EXISTS idx_created_at ON _objectql_change_log(created_at)",
    """CREATE TABLE IF NOT EXISTS _objectql_records (
        object_name TEXT NOT NULL, record_id TEXT NOT NULL, data TEXT NOT NULL,
        field_ts TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL,
        owner TEXT, PRIMARY KEY (object_name, record_id))""",
    """CREATE TABLE IF NOT EXISTS _objectql_applied (
        mutation_id TEXT PRIMARY KEY, server_version INTEGER NOT NULL, created_at INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS idx_applied_created_at ON _objectql_applied(created_at)",
    "CREATE TABLE IF NOT EXISTS _objectql_sync_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

ACCESS_POLICIES = ("open", "owner")
NOT_FOUND = "Record not found"


def iso(ms: float) -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's ``toISOString()``."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SyncStore:
    def __init__(self, sql: Any, objects: dict[str, ObjectDef], access_policy: str = "open") -> None:
        if access_policy not in ACCESS_POLICIES:
            raise ValueError(f"OBJECTQL_ACCESS_POLICY: expected one of {', '.join(ACCESS_POLICIES)}, got {access_policy!r}")
        self.sql = sql
        self.objects = objects
        self.access_policy = access_policy
        self._push_only = tuple(n for n, o in objects.items() if o.sync.direction == "push-only")
        for statement in SCHEMA:
            sql.exec(statement)

    # -- counters --------------------------------------------------------------------
    def _meta(self, key: str) -> int:
        rows = self.sql.exec("SELECT value FROM _objectql_sync_meta WHERE key = ?", key).toArray()
        return int(rows[0]["value"]) if rows else 0

    def _set_meta(self, key: str, value: int) -> None:
        self.sql.exec(
            "INSERT INTO _objectql_sync_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            key, value,
        )

    def checkpoint(self) -> str:
        return str(self._meta("seq"))

    # -- the handler -------------------------------------------------------------------
    def push(self, request: SyncPushRequest, now_ms: float) -> dict[str, Any]:
        """``SyncPushResponse`` for ``request``; call inside one ``transactionSync``."""
        if len(request.mutations) > MAX_MUTATIONS:
            reason = f"Exceeds maximum mutations per request ({MAX_MUTATIONS})"
            return {"results": [{"status": "rejected", "reason": reason} for _ in request.mutations],
                    "serverChanges": [], "checkpoint": self.checkpoint()}
        seq = self._meta("seq")
        done = self._already_applied([m.id for m in request.mutations])
        results = []
        for m in request.mutations:
            if m.id in done:  # a retried push: the original answer, nothing applied again
                results.append({"status": "applied", "serverVersion": done[m.id]})
                continue
            result, seq = self._process(m, request.clientId, seq, now_ms)
            if result["status"] == "applied":
                done[m.id] = result["serverVersion"]  # the same id twice in one request
            results.append(result)
        self._set_meta("seq", seq)
        response: dict[str, Any] = {"results": results}
        response.update(self.changes_since(request.lastCheckpoint))
        return response

    def _already_applied(self, ids: list[str]) -> dict[str, int]:
        """``{mutation id: serverVersion}`` of those of ``ids`` applied before (one query per request)."""
        if not ids:
            return {}
        rows = self.sql.exec(
            f"SELECT mutation_id, server_version FROM _objectql_applied WHERE mutation_id IN ({','.join('?' * len(ids))})",
            *ids,
        )
        return {r["mutation_id"]: r["server_version"] for r in rows}

    def _process(self, m: MutationLogEntry, client_id: str, seq: int, now_ms: float) -> tuple[dict[str, Any], int]:
        obj = self.objects[m.objectName]
        if obj.sync.direction == "pull-only":
            return {"status": "rejected", "reason": f"Object {obj.name!r} is pull-only: clients may not push to it"}, seq
        problem = validate_data(obj, m.operation, m.data)
        if problem is not None:
            return {"status": "rejected", "reason": problem}, seq
        record_id = str(m.recordId)
        rows = self.sql.exec(
            "SELECT data, field_ts, updated_at, version, owner FROM _objectql_records WHERE object_name = ? AND record_id = ?",
            obj.name, record_id,
        ).toArray()
        row = rows[0] if rows else None
        denied = self._access(m, client_id, row)
        if denied is not None:
            return {"status": "rejected", "reason": denied}, seq
        current = row["version"] if row else 0

        if m.operation == "delete":
            if current == 0:
                return {"status": "rejected", "reason": NOT_FOUND}, seq
            version = current + 1
            self.sql.exec("DELETE FROM _objectql_records WHERE object_name = ? AND record_id = ?", obj.name, record_id)
            return self._log(m, client_id, version, seq, now_ms, None)

        data = m.data or {}
        if m.operation == "update" and m.baseVersion is not None and m.baseVersion < current:
            if row is None:  # unreachable while versions live in the records table; ObjectQL checks it
                return {"status": "rejected", "reason": NOT_FOUND}, seq
            server = json.loads(row["data"])
            if obj.sync.conflict_fields:
                fields = [f for f in obj.sync.conflict_fields if f in data and data[f] != server.get(f)]
            else:
                fields = list(data)
            if fields:
                conflict = {
                    "objectName": obj.name, "recordId": record_id, "clientMutation": _entry_json(m),
                    "serverRecord": {**server, "id": record_id, "updated_at": row["updated_at"]},
                    "conflictingFields": fields,
                    # dohost addition: each field's last-write time, for the crdt (per-field LWW) resolver.
                    "serverFieldTimestamps": json.loads(row["field_ts"]),
                    "serverVersion": current,
                }
                return {"status": "conflict", "conflict": conflict}, seq

        version = current + 1
        stamps = {k: m.timestamp for k in data}
        if m.operation == "create" or row is None:
            merged, field_ts = dict(data), stamps
            owner = client_id if row is None else row["owner"]
        else:
            merged = {**json.loads(row["data"]), **data}
            field_ts = {**json.loads(row["field_ts"]), **stamps}
            owner = row["owner"]
        self.sql.exec(
            "INSERT INTO _objectql_records VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(object_name, record_id) DO UPDATE SET "
            "data = excluded.data, field_ts = excluded.field_ts, updated_at = excluded.updated_at, version = excluded.version",
            obj.name, record_id, json.dumps(merged), json.dumps(field_ts), m.timestamp, version, owner,
        )
        return self._log(m, client_id, version, seq, now_ms, data)

    def _access(self, m: MutationLogEntry, client_id: str, row: Any) -> str | None:
        """The access hook: ``open`` lets every client write; ``owner`` lets only a record's creator change it."""
        if self.access_policy == "open" or m.operation == "create" or row is None or row["owner"] == client_id:
            return None
        return f"Access denied: client {client_id!r} may not {m.operation} {m.objectName} {str(m.recordId)!r} (owned by {row['owner']!r})"

    def _log(self, m: MutationLogEntry, client_id: str, version: int, seq: int, now_ms: float,
             data: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        seq += 1
        self.sql.exec(
            "INSERT INTO _objectql_change_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            seq, m.objectName, str(m.recordId), m.operation, None if data is None else json.dumps(data),
            version, client_id, int(now_ms),
        )
        self.sql.exec("INSERT INTO _objectql_applied VALUES (?, ?, ?)", m.id, version, int(now_ms))
        return {"status": "applied", "serverVersion": version}, seq

    # -- deltas ------------------------------------------------------------------------
    def changes_since(self, last_checkpoint: str | None) -> dict[str, Any]:
        """``serverChanges`` and ``checkpoint`` for a client at ``last_checkpoint``."""
        after = int(last_checkpoint) if last_checkpoint is not None and last_checkpoint.isdecimal() else None
        pruned = self._meta("pruned_through")
        if pruned and (after is None or after < pruned):
            return {"serverChanges": self.snapshot(), "checkpoint": self.checkpoint(), "resync": True}
        skip = ",".join("?" * len(self._push_only))
        rows = self.sql.exec(
            "SELECT object_name, record_id, operation, data, version, created_at FROM _objectql_change_log "
            f"WHERE id > ? AND object_name NOT IN ({skip}) ORDER BY id",
            after or 0, *self._push_only,
        )
        changes = []
        for r in rows:
            change = {"objectName": r["object_name"], "recordId": r["record_id"], "operation": r["operation"],
                      "serverVersion": r["version"], "timestamp": iso(r["created_at"])}
            if r["data"] is not None:
                change["data"] = json.loads(r["data"])
            changes.append(change)
        return {"serverChanges": changes, "checkpoint": self.checkpoint()}

    def snapshot(self) -> list[dict[str, Any]]:
        skip = ",".join("?" * len(self._push_only))
        rows = self.sql.exec(
            f"SELECT * FROM _objectql_records WHERE object_name NOT IN ({skip}) ORDER BY object_name, record_id",
            *self._push_only,
        )
        return [{"objectName": r["object_name"], "recordId": r["record_id"], "operation": "create",
                 "data": json.loads(r["data"]), "serverVersion": r["version"], "timestamp": r["updated_at"]}
                for r in rows]

    def records(self) -> dict[str, dict[str, Any]]:
        """Every record as ``{object: {id: {"data", "version", "updated_at"}}}`` (for inspection)."""
        out: dict[str, dict[str, Any]] = {name: {} for name in self.objects}
        for r in self.sql.exec("SELECT * FROM _objectql_records ORDER BY object_name, record_id"):
            out.setdefault(r["object_name"], {})[r["record_id"]] = {
                "data": json.loads(r["data"]), "version": r["version"], "updated_at": r["updated_at"]}
        return out

    # -- retention ---------------------------------------------------------------------
    def prune(self, now_ms: float, retention_ms: float) -> int | None:
        """Drop change-log rows (and applied ids) older than the retention; the time the next one expires."""
        cutoff = int(now_ms - retention_ms)
        top = self.sql.exec("SELECT max(id) AS id FROM _objectql_change_log WHERE created_at < ?", cutoff).one()["id"]
        if top is not None:
            self.sql.exec("DELETE FROM _objectql_change_log WHERE id <= ?", top)
            self._set_meta("pruned_through", max(top, self._meta("pruned_through")))
        self.sql.exec("DELETE FROM _objectql_applied WHERE created_at < ?", cutoff)
        return self.oldest_expiry(retention_ms)

    def oldest_expiry(self, retention_ms: float) -> int | None:
        oldest = self.sql.exec("SELECT min(created_at) AS t FROM _objectql_change_log").one()["t"]
        return None if oldest is None else int(oldest + retention_ms)


def _entry_json(m: MutationLogEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "objectName": m.objectName, "recordId": m.recordId, "operation": m.operation,
                           "timestamp": m.timestamp, "clientId": m.clientId, "sequence": m.sequence,
                           "baseVersion": m.baseVersion}
    if m.data is not None:
        out["data"] = m.data
    return out

