"""What the inspector's pages and JSON twins say about objects: plain dicts built from ``runtime.Observer``.

Both the HTML templates and ``?format=json`` render these same dicts, so a
page never shows what its JSON twin does not say. Times are ISO 8601 UTC
strings; stored values pass through ``runtime.jsonable``
(bytes as ``{"$bytes": base64}``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import msgspec

from runtime import Observer, QueryResult, jsonable

__all__ = ["object_list", "object_detail", "query_result", "PAGE_ROWS", "RESTORE_POINTS"]

#: Rows per page of a table.
PAGE_ROWS = 25

#: Restore points listed on an object's page (newest first).
RESTORE_POINTS = 20


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def object_list(observer: Observer, *, binding: str | None, name: str | None) -> dict[str, Any]:
    objects = [msgspec.to_builtins(v) for v in observer.objects(binding, name)]
    return {"bindings": observer.bindings(), "binding": binding, "filter": name or "", "objects": objects,
            "now": now_iso()}


def query_result(result: QueryResult) -> dict[str, Any]:
    return {
        "columns": result.columns,
        "rows": [[jsonable(v) for v in row] for row in result.rows],
        "total": result.total,
        "truncated": result.truncated,
    }


async def object_detail(
    observer: Observer, binding: str, object_id: Any, *, table: str | None, offset: int
) -> dict[str, Any]:
    got = await observer.contents(binding, object_id, table=table, offset=offset, limit=PAGE_ROWS)
    page = None
    if got.table is not None:
        t = got.table
        page = {"name": t.name, "offset": t.offset, "limit": t.limit, "total": t.total, "columns": t.columns,
                "rows": [[jsonable(v) for v in row] for row in t.rows], "truncated": False}
    data = {
        "tables": [{"name": n, "rows": r} for n, r in got.tables],
        "table": page,
        "kv": [{"key": k, "value": jsonable(v)} for k, v in got.kv],
    }
    points = await observer.restore_points(binding, object_id, RESTORE_POINTS)
    view = observer.view(binding, object_id)  # after the reads: the state it is in now
    auto, sockets = observer.websockets(binding, object_id)
    return {
        **msgspec.to_builtins(view),
        **data,
        "websockets": {
            "auto_response": {"request": auto[0], "response": auto[1]} if auto else None,
            "sockets": [msgspec.to_builtins(s) for s in sockets],
        },
        "events": [msgspec.to_builtins(e) for e in observer.events(binding, object_id)[:100]],
        "bookmarks": [msgspec.to_builtins(p) for p in points],
        "now": now_iso(),
    }
