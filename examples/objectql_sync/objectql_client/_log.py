"""The client's own SQLite file: its mutation log, the server state it has confirmed, its checkpoint.

ObjectQL's ``MutationLogger`` keeps the log in memory; here it is a SQLite
file (stdlib ``sqlite3``), so pending mutations, the client id, the
``sequence`` counter and the last checkpoint survive the client's restart.

Tables: ``mutations`` (the log, ordered by ``sequence``; ``status`` is
``pending``, or ``rejected`` for a mutation the server refused for good,
kept for the application to inspect and never re-sent), ``records`` (the
server's records as the client last heard of them, with their versions),
``meta`` (``client_id``, ``sequence``, ``checkpoint``).

What the application sees (:meth:`ClientStore.view`) is the confirmed
records with the pending mutations applied on top, in order; once nothing is
pending, it is exactly the server's state as of the checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS mutations (
    sequence INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, object_name TEXT NOT NULL, record_id TEXT NOT NULL,
    operation TEXT NOT NULL, data TEXT, timestamp TEXT NOT NULL, base_version INTEGER,
    status TEXT NOT NULL DEFAULT 'pending', reason TEXT);
CREATE TABLE IF NOT EXISTS records (
    object_name TEXT NOT NULL, record_id TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (object_name, record_id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def _apply(records: dict[str, Any] | None, operation: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record after one operation, as the server applies it (update of a missing record creates it)."""
    if operation == "delete":
        return None
    if operation == "create" or records is None:
        return dict(data or {})
    return {**records, **(data or {})}


class ClientStore:
    def __init__(self, path: str | Path, client_id: str | None = None) -> None:
        # check_same_thread=False: an engine may be driven from another thread than the one that opened it
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            self.db.row_factory = sqlite3.Row
            # WAL: a commit is one append; synchronous=NORMAL still survives a crash of the process.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            stored = self._meta("client_id")
            if stored is None:
                stored = client_id or f"client-{uuid.uuid4()}"
                self._set_meta("client_id", stored)
            elif client_id is not None and client_id != stored:
                raise ValueError(f"{path}: belongs to client {stored!r}, not {client_id!r}")
            self.client_id = stored
        except BaseException:
            self.db.close()  # (a file of another client, or not a store): nothing left open
            raise

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def _set_meta(self, key: str, value: str | None) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, value))

    @property
    def checkpoint(self) -> str | None:
        return self._meta("checkpoint")

    # -- the log -------------------------------------------------------------------------
    def append(self, object_name: str, record_id: str, operation: str, data: dict[str, Any] | None,
               timestamp: str) -> dict[str, Any]:
        """Record a local mutation; its ``baseVersion`` is the version the record will have on the
        server once this client's earlier pending mutations of it are applied (None if none)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            base = self.expected_version(object_name, record_id)
            sequence = int(self._meta("sequence") or 0) + 1
            self._set_meta("sequence", str(sequence))
            entry = {"id": str(uuid.uuid4()), "objectName": object_name, "recordId": record_id,
                     "operation": operation, "timestamp": timestamp, "clientId": self.client_id,
                     "sequence": sequence, "baseVersion": None if operation == "create" or base == 0 else base}
            if data is not None:
                entry["data"] = data
            self.db.execute(
                "INSERT INTO mutations (sequence, id, object_name, record_id, operation, data, timestamp, base_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sequence, entry["id"], object_name, record_id, operation,
                 None if data is None else json.dumps(data), timestamp, entry["baseVersion"]),
            )
        return entry

    def _entry(self, row: sqlite3.Row) -> dict[str, Any]:
        entry = {"id": row["id"], "objectName": row["object_name"], "recordId": row["record_id"],
                 "operation": row["operation"], "timestamp": row["timestamp"], "clientId": self.client_id,
                 "sequence": row["sequence"], "baseVersion": row["base_version"]}
        if row["data"] is not None:
            entry["data"] = json.loads(row["data"])
        return entry

    def pending(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM mutations WHERE status = 'pending' ORDER BY sequence LIMIT ?",
                               (-1 if limit is None else limit,))
        return [self._entry(r) for r in rows]

    def pending_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM mutations WHERE status = 'pending'").fetchone()[0])

    def rejected(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM mutations WHERE status = 'rejected' ORDER BY sequence")
        return [{**self._entry(r), "reason": r["reason"]} for r in rows]

    def expected_version(self, object_name: str, record_id: str) -> int:
        version = self.confirmed_version(object_name, record_id)
        for row in self.db.execute("SELECT operation FROM mutations WHERE status = 'pending' AND object_name = ? "
                                   "AND record_id = ? ORDER BY sequence", (object_name, record_id)):
            version = 0 if row["operation"] == "delete" else version + 1
        return version

    def confirmed_version(self, object_name: str, record_id: str) -> int:
        row = self.db.execute("SELECT version FROM records WHERE object_name = ? AND record_id = ?",
                              (object_name, record_id)).fetchone()
        return 0 if row is None else int(row["version"])

    # -- one sync response, in one local transaction ----------------------------------------
    def settle(self, acknowledged: Iterable[str], rejected: Iterable[tuple[str, str]],
               resolved: Iterable[tuple[str, dict[str, Any] | None]], changes: list[dict[str, Any]],
               resync: bool, checkpoint: str) -> None:
        """Drop acknowledged mutations, park rejected ones, apply the server's changes, store the
        checkpoint, then rewrite each resolved conflict (``None``: dropped, the server's value stands;
        a dict: re-sent as an update based on the now-confirmed version)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM mutations WHERE id = ?", [(i,) for i in acknowledged])
            self.db.executemany("UPDATE mutations SET status = 'rejected', reason = ? WHERE id = ?",
                                [(reason, i) for i, reason in rejected])
            if resync:
                self.db.execute("DELETE FROM records")
            for c in changes:
                key = (c["objectName"], str(c["recordId"]))
                row = self.db.execute("SELECT data FROM records WHERE object_name = ? AND record_id = ?", key).fetchone()
                after = _apply(None if row is None else json.loads(row["data"]), c["operation"], c.get("data"))
                if after is None:
                    self.db.execute("DELETE FROM records WHERE object_name = ? AND record_id = ?", key)
                else:
                    self.db.execute("INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT(object_name, record_id) "
                                    "DO UPDATE SET data = excluded.data, version = excluded.version",
                                    (*key, json.dumps(after), c["serverVersion"]))
            self._set_meta("checkpoint", checkpoint)
            for mutation_id, data in resolved:
                if data is None:
                    self.db.execute("DELETE FROM mutations WHERE id = ?", (mutation_id,))
                    continue
                row = self.db.execute("SELECT object_name, record_id FROM mutations WHERE id = ?", (mutation_id,)).fetchone()
                base = self.confirmed_version(row["object_name"], row["record_id"])
                self.db.execute("UPDATE mutations SET operation = 'update', data = ?, base_version = ? WHERE id = ?",
                                (json.dumps(data), base or None, mutation_id))

    # -- what the application reads -------------------------------------------------------
    def confirmed(self, object_name: str) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT record_id, data FROM records WHERE object_name = ? ORDER BY record_id",
                               (object_name,))
        return {r["record_id"]: json.loads(r["data"]) for r in rows}

    def view(self, object_name: str) -> dict[str, dict[str, Any]]:
        """The records of ``object_name`` as this client sees them: confirmed state plus pending mutations."""
        records = self.confirmed(object_name)
        for m in self.db.execute("SELECT * FROM mutations WHERE status = 'pending' AND object_name = ? "
                                 "ORDER BY sequence", (object_name,)):
            after = _apply(records.get(m["record_id"]), m["operation"],
                           None if m["data"] is None else json.loads(m["data"]))
            if after is None:
                records.pop(m["record_id"], None)
            else:
                records[m["record_id"]] = after
        return dict(sorted(records.items()))
