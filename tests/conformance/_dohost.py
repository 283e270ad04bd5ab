"""The same cases inside live dohost objects, written as a Python Worker writes them.

Each case runs in its own object (``getByName(case id)``) of a SQLite-backed
class (kind ``"sql"``) or a KV-backed one (kind ``"kv"``, ``new_classes``),
hosted by ``open_runtime``; the ops call dohost's real ``ctx.storage`` and
each step's value or error is put in the canonical form of ``_values``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from objects import DurableObject
from runtime import NamespaceSpec, open_runtime
from runtime._runtime import default_spec

from ._values import canon, canon_error, from_case

__all__ = ["run_dohost", "Runner"]


def _ok(v: Any) -> list[Any]:
    return ["ok", canon(v)]


def _step_raw_next(cur: Any) -> Any:
    # Python's iterator protocol stands for JS's {done, value} (README mapping).
    it = cur.raw()
    try:
        return {"done": False, "value": next(it)}
    except StopIteration:
        return {"done": True, "value": None}


_STEPS: dict[str, Callable[[Any], Any]] = {
    "toArray": lambda c: c.toArray(),
    "one": lambda c: c.one(),
    "raw": lambda c: list(c.raw()),
    "rawNext": _step_raw_next,
    "next": lambda c: c.next(),
    "iter": lambda c: [r for r in c],
    "columnNames": lambda c: c.columnNames,
    "rowsRead": lambda c: c.rowsRead,
    "rowsWritten": lambda c: c.rowsWritten,
}


def _next_result(v: Any) -> Any:
    # JS iterator results always carry ``value`` (undefined when done).
    if isinstance(v, dict) and v.get("done") is True and "value" not in v:
        return {"done": True, "value": None}
    return v


class Runner:
    """Runs case ops on one ``ctx.storage`` (or a transaction's ``txn``)."""

    def __init__(self, storage: Any) -> None:
        self.s = storage

    async def run(self, ops: list[dict[str, Any]], txn: Any = None) -> list[Any]:
        out = []
        for op in ops:
            try:
                if op["op"] == "transaction":
                    out.append(["ok", await self.transaction(op)])
                else:
                    v = self.op(op, txn)
                    if hasattr(v, "__await__"):
                        v = await v
                    out.append(v if op["op"] in ("exec", "transactionSync") else _ok(v))
            except Exception as exc:  # every error is a result to compare
                out.append(canon_error(exc))
        return out

    def run_sync(self, ops: list[dict[str, Any]]) -> list[Any]:
        out = []
        for op in ops:
            try:
                v = self.op(op, None)
                if hasattr(v, "__await__"):
                    # An async op called (not awaited) inside transactionSync: it has taken effect.
                    close = getattr(v, "close", None)
                    if close is not None:
                        close()
                    out.append(["ok", ["promise"]])
                    continue
                out.append(v if op["op"] in ("exec", "transactionSync") else _ok(v))
            except Exception as exc:
                out.append(canon_error(exc))
        return out

    def op(self, op: dict[str, Any], txn: Any) -> Any:
        s = self.s
        t = txn if txn is not None else s
        name = op["op"]
        a = [from_case(op[k]) for k in ("value",) if k in op]
        opts = [from_case(op["options"])] if "options" in op else []
        if name == "exec":
            cur = s.sql.exec(from_case(op["sql"]), *[from_case(x) for x in op.get("args", [])])
            steps = []
            for step in op.get("steps", []):
                try:
                    v = _STEPS[step](cur)
                    steps.append(_ok(_next_result(v) if step == "next" else v))
                except Exception as exc:
                    steps.append(canon_error(exc))
            return ["ok", ["steps", steps]]
        if name == "databaseSize":
            return s.sql.databaseSize
        if name == "kv.get":
            return s.kv.get(from_case(op["key"]))
        if name == "kv.put":
            return s.kv.put(from_case(op["key"]), *a)
        if name == "kv.delete":
            return s.kv.delete(from_case(op["key"]))
        if name == "kv.list":
            return [list(p) for p in s.kv.list(*opts)]
        if name == "get":
            return t.get(from_case(op["keys"] if "keys" in op else op["key"]), *opts)
        if name == "put":
            if "entries" in op:
                return t.put(from_case(op["entries"]), *opts)
            return t.put(from_case(op["key"]), *a)
        if name == "delete":
            return t.delete(from_case(op["keys"] if "keys" in op else op["key"]))
        if name == "list":
            return t.list(*opts)
        if name == "deleteAll":
            return t.deleteAll()
        if name == "getAlarm":
            return t.getAlarm()
        if name == "setAlarm":
            return t.setAlarm(from_case(op["time"]))
        if name == "deleteAlarm":
            return t.deleteAlarm()
        if name == "bookmark":
            return s.getCurrentBookmark()
        if name == "bookmarkForTime":
            return s.getBookmarkForTime(from_case(op["time"]))
        if name == "rollback":
            return t.rollback()
        if name in ("sql", "kv"):
            getattr(s, name)
            return "object"
        if name == "transactionSync":
            inner: list[Any] = []

            def body() -> str:
                inner.extend(self.run_sync(op["ops"]))
                if op.get("throw"):
                    raise Exception("boom")
                return "done"

            try:
                outcome = _ok(s.transactionSync(body))
            except Exception as exc:
                outcome = canon_error(exc)
            return ["ok", ["txn", inner, outcome]]
        raise AssertionError(f"harness: unknown op {name!r}")

    async def transaction(self, op: dict[str, Any]) -> Any:
        inner: list[Any] = []

        async def body(txn: Any) -> str:
            inner.extend(await self.run(op["ops"], txn))
            if op.get("throw"):
                raise Exception("boom")
            return "done"

        try:
            outcome = _ok(await self.s.transaction(body))
        except Exception as exc:
            outcome = canon_error(exc)
        return ["txn", inner, outcome]


class _Base(DurableObject):
    async def run(self, ops: list[dict[str, Any]]) -> list[Any]:
        return await Runner(self.ctx.storage).run(ops)

    async def alarm(self, info: Any = None) -> None:
        pass


class SqlObject(_Base):
    pass


class KvObject(_Base):
    pass


async def run_dohost(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Run cases in one dohost runtime; returns ``{id: [canonical step, ...]}``."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dohost-conformance-") as tmp:
        root = Path(tmp)
        # A KV-backed namespace is what a ``new_classes`` migration declares.
        kv: NamespaceSpec = default_spec("KV", KvObject, root, sqlite_backed=False)
        # Local workerd keeps no point-in-time history (its bookmarks are a counter and
        # getBookmarkForTime says "does not implement"); dohost's history is a host
        # feature beyond it, so the comparison runs with history off, as local workerd.
        async with open_runtime(
            bindings={"SQL": SqlObject, "KV": kv}, data_dir=root, durability="none", pitr_retention_ms=0
        ) as rt:
            await _run_all(rt, cases, out)
    return out


async def _run_all(rt: Any, cases: list[dict[str, Any]], out: dict[str, Any]) -> None:
    for case in cases:
        ns = rt.env.KV if case.get("kind") == "kv" else rt.env.SQL
        try:
            out[case["id"]] = await ns.getByName(case["id"]).run(case["ops"])
        except Exception as exc:
            out[case["id"]] = [canon_error(exc)]
