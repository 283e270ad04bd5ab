"""``TableShard``: one SQLite-backed Durable Object holding many tenants' tables.

The gateway calls it over RPC (typed methods instead of the original's
JSON-over-``fetch`` paths; the behaviour is the original's, its defects fixed):

* every statement runs in the calling tenant's namespace (``sqlns``);
* a batch runs in ONE ``transactionSync``: all of it or none of it;
* SQL ``BEGIN``/``COMMIT`` reach ``sql.exec`` as sent and get Cloudflare's
  refusal — this class never sends them itself;
* HTTP transactions are durable: an open transaction is rows in
  ``wsql_txn``/``wsql_txn_ops`` (so it survives eviction and restarts), reads
  inside it run its queued writes first in a ``transactionSync`` that is then
  rolled back (it sees its own writes, nobody else does), its writes are
  checked the same way when queued, and commit replays the queue in one
  ``transactionSync``. An idle transaction is rolled back by the alarm after
  ``TRANSACTION_TIMEOUT_MS``;
* export reads each table by rowid, 200 rows at a time, inside one
  synchronous call: no other event runs in between, so the export is one
  consistent state however many writes are queued behind it;
* point-in-time recovery is Cloudflare's storage API (bookmarks, restore on
  the next session, then ``ctx.abort()``).

Errors come back as values ``{"error": {"code", "message"}}`` with the
original's codes, so they survive the RPC boundary intact.
"""

import json
import re
import secrets

from js import Date
from workers import DurableObject

from sqlns import SqlRefused, namespace, rewrite, statement_kind, strip

EXPORT_PAGE = 200  # as the original's /admin/export
DEFAULT_TXN_TIMEOUT_MS = 60_000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS wsql_txn (
  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_ms REAL NOT NULL, last_ms REAL NOT NULL);
CREATE TABLE IF NOT EXISTS wsql_txn_ops (
  txn TEXT NOT NULL, seq INTEGER NOT NULL, sql TEXT NOT NULL, params TEXT NOT NULL,
  PRIMARY KEY (txn, seq));
"""


class _Rollback(Exception):
    """Raised to leave a transactionSync with nothing changed."""


def sql_error(exc):
    """The original's error codes, by the text of the SQLite message."""
    message = str(exc)
    if "UNIQUE constraint failed" in message:
        code = "CONFLICT_UNIQUE"
    elif re.search(r"database is locked|D1 DB is overloaded|Requests queued for too long", message):
        code = "RETRYABLE"
    elif "syntax error" in message:
        code = "SQL_SYNTAX_ERROR"
    else:
        code = "SQL_ERROR"
    return {"error": {"code": code, "message": message}}


def not_found(txid):
    return {"error": {"code": "TRANSACTION_NOT_FOUND", "message": f"no open transaction {txid!r}"}}


class TableShard(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.timeout_ms = float(getattr(env, "TRANSACTION_TIMEOUT_MS", DEFAULT_TXN_TIMEOUT_MS))
        ctx.storage.sql.exec(SCHEMA)

    # -- running statements ------------------------------------------------------------
    def _exec(self, tenant, sql, params):
        sql_api = self.ctx.storage.sql
        kind = statement_kind(sql)
        cursor = sql_api.exec(rewrite(sql, namespace(tenant)), *params)
        rows = [dict(r) for r in cursor]
        result = {"rows": rows}
        if kind in ("INSERT", "UPDATE", "DELETE"):
            result["rowsAffected"] = int(sql_api.exec("SELECT changes() AS n").one()["n"])
            if kind == "INSERT":
                result["insertId"] = int(sql_api.exec("SELECT last_insert_rowid() AS id").one()["id"])
        return result

    def query(self, tenant, sql, params=()):
        try:
            return self._exec(tenant, sql, list(params))
        except SqlRefused as exc:
            return {"error": {"code": "SQL_ERROR", "message": str(exc)}}
        except Exception as exc:
            return sql_error(exc)

    def batch(self, tenant, ops):
        """All of ``ops`` in one transactionSync, or none of them."""
        results = []

        def run():
            for op in ops:
                results.append({"rowsAffected": self._exec(tenant, op["sql"], list(op.get("params") or [])).get("rowsAffected", 0)})

        try:
            self.ctx.storage.transactionSync(run)
        except SqlRefused as exc:
            return {"error": {"code": "SQL_ERROR", "message": str(exc)}}
        except Exception as exc:
            return sql_error(exc)
        return {"results": results, "totalRowsAffected": sum(r["rowsAffected"] for r in results)}

    # -- durable HTTP transactions ------------------------------------------------------
    def _txn(self, tenant, txid):
        rows = self.ctx.storage.sql.exec("SELECT id FROM wsql_txn WHERE id = ? AND tenant = ?", txid, tenant).toArray()
        return bool(rows)

    def _ops(self, txid):
        return [
            (r["sql"], json.loads(r["params"]))
            for r in self.ctx.storage.sql.exec("SELECT sql, params FROM wsql_txn_ops WHERE txn = ? ORDER BY seq", txid)
        ]

    async def _schedule_expiry(self):
        row = self.ctx.storage.sql.exec("SELECT min(last_ms) AS m FROM wsql_txn").one()
        if row["m"] is None:
            await self.ctx.storage.deleteAlarm()
        else:
            await self.ctx.storage.setAlarm(row["m"] + self.timeout_ms)

    async def begin(self, tenant):
        txid = f"txn_{int(Date.now())}_{secrets.token_hex(6)}"
        now = Date.now()
        self.ctx.storage.sql.exec("INSERT INTO wsql_txn VALUES (?, ?, ?, ?)", txid, tenant, now, now)
        await self._schedule_expiry()
        return {"transactionId": txid}

    async def txn_query(self, tenant, txid, sql, params=()):
        """Run ``sql`` inside the transaction: reads see its writes; writes are queued."""
        if not self._txn(tenant, txid):
            return not_found(txid)
        params = list(params)
        out = {}

        def sandbox():
            for op_sql, op_params in self._ops(txid):
                self._exec(tenant, op_sql, op_params)
            out.update(self._exec(tenant, sql, params))
            raise _Rollback

        try:
            self.ctx.storage.transactionSync(sandbox)
        except _Rollback:
            pass
        except SqlRefused as exc:
            return {"error": {"code": "SQL_ERROR", "message": str(exc)}}
        except Exception as exc:
            return sql_error(exc)
        sql_api = self.ctx.storage.sql
        if statement_kind(sql) != "SELECT":
            seq = sql_api.exec("SELECT count(*) AS n FROM wsql_txn_ops WHERE txn = ?", txid).one()["n"]
            sql_api.exec("INSERT INTO wsql_txn_ops VALUES (?, ?, ?, ?)", txid, seq, sql, json.dumps(params))
        sql_api.exec("UPDATE wsql_txn SET last_ms = ? WHERE id = ?", Date.now(), txid)
        await self._schedule_expiry()
        return out

    def _forget(self, txid):
        self.ctx.storage.sql.exec("DELETE FROM wsql_txn_ops WHERE txn = ?", txid)
        self.ctx.storage.sql.exec("DELETE FROM wsql_txn WHERE id = ?", txid)

    async def commit(self, tenant, txid):
        if not self._txn(tenant, txid):
            return not_found(txid)
        ops = self._ops(txid)
        total = 0

        def apply():
            nonlocal total
            for op_sql, op_params in ops:
                total += self._exec(tenant, op_sql, op_params).get("rowsAffected", 0)
            self._forget(txid)

        try:
            self.ctx.storage.transactionSync(apply)
        except Exception as exc:
            return sql_error(exc)  # nothing applied; the transaction stays open
        await self._schedule_expiry()
        return {"transactionId": txid, "committed": True, "rowsAffected": total}

    async def rollback(self, tenant, txid):
        if not self._txn(tenant, txid):
            return not_found(txid)
        self._forget(txid)
        await self._schedule_expiry()
        return {"transactionId": txid, "rolledBack": True}

    async def alarm(self, alarm_info=None):
        cutoff = Date.now() - self.timeout_ms
        for row in self.ctx.storage.sql.exec("SELECT id FROM wsql_txn WHERE last_ms <= ?", cutoff).toArray():
            self._forget(row["id"])
        await self._schedule_expiry()

    def open_transactions(self):
        return self.ctx.storage.sql.exec("SELECT count(*) AS n FROM wsql_txn").one()["n"]

    # -- export / import ------------------------------------------------------------------
    def _tables(self, tenant):
        prefix = namespace(tenant)
        rows = self.ctx.storage.sql.exec(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND substr(name, 1, ?) = ? ORDER BY name",
            len(prefix),
            prefix,
        )
        return [(strip(r["name"], prefix), r["name"], r["sql"]) for r in rows]

    def export(self, tenant):
        """Every table of the tenant: its schema and its rows, read by rowid 200 at a time."""
        sql_api = self.ctx.storage.sql
        tables = []
        for name, full, ddl in self._tables(tenant):
            rows, cursor = [], None
            while True:
                # The first page has no lower bound: rowids may be zero or negative.
                where = "" if cursor is None else "WHERE rowid > ?"
                args = [] if cursor is None else [cursor]
                page = sql_api.exec(
                    f'SELECT rowid AS __rowid, * FROM "{full}" {where} ORDER BY rowid LIMIT ?', *args, EXPORT_PAGE
                ).toArray()
                for r in page:
                    d = dict(r)
                    rowid = d.pop("__rowid")
                    rows.append({"rowid": rowid, "data": d})
                if len(page) < EXPORT_PAGE:
                    break
                cursor = page[-1]["__rowid"]
            tables.append({"name": name, "schema": ddl.replace(f'"{full}"', f'"{name}"', 1), "rows": rows})
        return {"version": 1, "tenantId": tenant, "exportedAt": Date.now(), "tables": tables}

    def import_(self, tenant, manifest, mode="upsert"):
        """Create missing tables and insert (or upsert) the rows, all in one transactionSync."""
        if mode not in ("upsert", "insert"):
            return {"error": {"code": "INVALID_REQUEST", "message": f"mode: expected 'upsert' or 'insert', got {mode!r}"}}
        verb = "INSERT OR REPLACE" if mode == "upsert" else "INSERT"
        count = 0

        def run():
            nonlocal count
            for table in manifest.get("tables", []):
                name = table["name"]
                if not _IDENT.match(name):
                    raise ValueError(f"tables[].name: {name!r} is not a plain identifier")
                if table.get("schema"):
                    ddl = re.sub(r"^CREATE TABLE", "CREATE TABLE IF NOT EXISTS", table["schema"], count=1)
                    self._exec(tenant, ddl, [])
                for row in table.get("rows", []):
                    data = row["data"]
                    cols = [c for c in data if _IDENT.match(c)]
                    if len(cols) != len(data):
                        raise ValueError(f"{name}: a column name is not a plain identifier")
                    names = ["rowid", *cols] if "rowid" in row else cols
                    values = ([row["rowid"]] if "rowid" in row else []) + [data[c] for c in cols]
                    marks = ", ".join("?" for _ in names)
                    self._exec(tenant, f"{verb} INTO {name} ({', '.join(names)}) VALUES ({marks})", values)
                    count += 1

        try:
            self.ctx.storage.transactionSync(run)
        except (ValueError, KeyError, TypeError, SqlRefused) as exc:
            return {"error": {"code": "INVALID_REQUEST", "message": str(exc)}}
        except Exception as exc:
            return sql_error(exc)
        return {"rowsImported": count}

    # -- point-in-time recovery -----------------------------------------------------------
    async def pitr_bookmark(self, at=None):
        storage = self.ctx.storage
        try:
            bookmark = await (storage.getCurrentBookmark() if at is None else storage.getBookmarkForTime(at))
        except Exception as exc:
            return {"error": {"code": "INVALID_BOOKMARK", "message": str(exc)}}
        return {"bookmark": bookmark}

    async def pitr_restore(self, bookmark):
        try:
            undo = await self.ctx.storage.onNextSessionRestoreBookmark(bookmark)
        except Exception as exc:
            return {"error": {"code": "INVALID_BOOKMARK", "message": str(exc)}}
        return {"restoredTo": bookmark, "undoBookmark": undo}

    def restart(self):
        """End this session now: the next call opens the restored database."""
        self.ctx.abort("restarting to apply a point-in-time restore")

    # -- health and metrics -----------------------------------------------------------------
    def health(self, tenant):
        return {
            "status": "healthy",
            "sizeBytes": self.ctx.storage.sql.databaseSize,
            "tables": len(self._tables(tenant)),
            "transactions": self.open_transactions(),
        }
