"""One store's event log in the object's SQLite storage, laid out as LiveStore lays it out.

Tables (both ``STRICT``; ``7`` is LiveStore's ``PERSISTENCE_FORMAT_VERSION``):

* ``eventlog_7_<storeId, every non-[A-Za-z0-9] character as _>``: one row per
  event, keyed by its global sequence number ``seqNum``; ``args`` is JSON text
  (NULL when the event had none); ``createdAt`` is one ISO time per pushed batch.
* ``context_7``: one row per store, ``(storeId, currentHead, backendId)``.
  ``currentHead`` is the ``seqNum`` of the last event (0, the root, when empty);
  ``backendId`` is a random id made the first time the store is opened and
  kept for the object's life, so a client can tell a reset backend.

Guarantees: :meth:`EventLog.append` stores a whole batch and moves the head
in one transaction, or nothing (``transactionSync`` rolls back when a row
fails); reads come in ``seqNum`` order, in pages of 256 rows.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Iterator

FORMAT_VERSION = 7
ROOT_SEQ_NUM = 0
PAGE_ROWS = 256  # LiveStore's DO_PAGE_SIZE (sync-storage.ts)
ROWS_PER_INSERT = 14  # 7 parameters x 14 rows stays under D1's 100 bound parameters, as LiveStore keeps it
CONTEXT_TABLE = f"context_{FORMAT_VERSION}"
_NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"


def table_name(store_id: str) -> str:
    return f"eventlog_{FORMAT_VERSION}_{re.sub(r'[^a-zA-Z0-9]', '_', store_id)}"


def new_backend_id() -> str:
    """A 21-character nanoid, the form LiveStore's backend ids take."""
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(21))


class EventLog:
    """The event log and head of one store; every method is synchronous (storage calls never await)."""

    def __init__(self, storage: Any, store_id: str) -> None:
        self._storage = storage
        self._sql = storage.sql
        self.store_id = store_id
        self.table = table_name(store_id)
        self._sql.exec(
            f'CREATE TABLE IF NOT EXISTS "{self.table}" ('
            '"seqNum" INTEGER PRIMARY KEY NOT NULL, "parentSeqNum" INTEGER NOT NULL, "name" TEXT NOT NULL, '
            '"args" TEXT, "createdAt" TEXT NOT NULL, "clientId" TEXT NOT NULL, "sessionId" TEXT NOT NULL) STRICT'
        )
        self._sql.exec(
            f'CREATE TABLE IF NOT EXISTS "{CONTEXT_TABLE}" ('
            '"storeId" TEXT PRIMARY KEY NOT NULL, "currentHead" INTEGER NOT NULL, "backendId" TEXT NOT NULL) STRICT'
        )
        row = next(iter(self._sql.exec(f'SELECT currentHead, backendId FROM "{CONTEXT_TABLE}" WHERE storeId = ?', store_id)), None)
        if row is None:
            self.head = ROOT_SEQ_NUM
            self.backend_id = new_backend_id()
            self._write_head(ROOT_SEQ_NUM)
        else:
            self.head = int(row["currentHead"])
            self.backend_id = str(row["backendId"])

    def _write_head(self, head: int) -> None:
        self._sql.exec(
            f'INSERT OR REPLACE INTO "{CONTEXT_TABLE}" (storeId, currentHead, backendId) VALUES (?, ?, ?)',
            self.store_id,
            head,
            self.backend_id,
        )

    def append(self, batch: list[dict[str, Any]], created_at: str) -> None:
        """Store ``batch`` and make its last event the head, atomically."""

        def write() -> None:
            for start in range(0, len(batch), ROWS_PER_INSERT):
                rows = batch[start : start + ROWS_PER_INSERT]
                params: list[Any] = []
                for event in rows:
                    args = event.get("args")
                    params += [
                        int(event["seqNum"]),
                        int(event["parentSeqNum"]),
                        None if "args" not in event else json.dumps(args, separators=(",", ":"), ensure_ascii=False),
                        event["name"],
                        created_at,
                        event["clientId"],
                        event["sessionId"],
                    ]
                placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
                self._sql.exec(
                    f'INSERT INTO "{self.table}" (seqNum, parentSeqNum, args, name, createdAt, clientId, sessionId) '
                    f"VALUES {placeholders}",
                    *params,
                )
            self._write_head(int(batch[-1]["seqNum"]))

        self._storage.transactionSync(write)
        self.head = int(batch[-1]["seqNum"])

    def count_after(self, cursor: int | None) -> int:
        if cursor is None:
            return int(self._sql.exec(f'SELECT COUNT(*) AS total FROM "{self.table}"').one()["total"])
        return int(self._sql.exec(f'SELECT COUNT(*) AS total FROM "{self.table}" WHERE seqNum > ?', cursor).one()["total"])

    def pages_after(self, cursor: int | None) -> Iterator[list[tuple[dict[str, Any], str]]]:
        """Pages of ``(event, createdAt)`` after ``cursor``, 256 rows a page, in ``seqNum`` order."""
        while True:
            if cursor is None:
                rows = self._sql.exec(f'SELECT * FROM "{self.table}" ORDER BY seqNum ASC LIMIT ?', PAGE_ROWS).toArray()
            else:
                rows = self._sql.exec(
                    f'SELECT * FROM "{self.table}" WHERE seqNum > ? ORDER BY seqNum ASC LIMIT ?', cursor, PAGE_ROWS
                ).toArray()
            if not rows:
                return
            yield [(_event(row), str(row["createdAt"])) for row in rows]
            cursor = int(rows[-1]["seqNum"])

    def stored(self, seq_nums: list[int]) -> dict[int, dict[str, Any]]:
        """The stored events with these sequence numbers (for recognising a replayed push)."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(seq_nums), 100):
            part = seq_nums[start : start + 100]
            marks = ", ".join("?" * len(part))
            for row in self._sql.exec(f'SELECT * FROM "{self.table}" WHERE seqNum IN ({marks})', *part):
                found[int(row["seqNum"])] = _event(row)
        return found


def _event(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "args": None if row["args"] is None else json.loads(row["args"]),
        "seqNum": int(row["seqNum"]),
        "parentSeqNum": int(row["parentSeqNum"]),
        "clientId": row["clientId"],
        "sessionId": row["sessionId"],
    }
