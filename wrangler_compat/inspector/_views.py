"""What the inspector's pages and JSON twins say about objects: plain dicts built from ``runtime.Observer``.

Both the HTML templates and ``?format=json`` render these same dicts, so a
page never shows what its JSON twin does not say. Times are ISO 8601 UTC
strings; stored values pass through ``persistence.inspect_file.jsonable``
(bytes as ``{"$bytes": base64}``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import msgspec

from persistence import inspect_file
from runtime import Observer

__all__ = ["object_list", "object_detail", "query_result", "PAGE_ROWS", "PITR_NOTE"]

#: Rows per page of a table.
PAGE_ROWS = 25

#: Bookmarks and "restore here" wait for point-in-time recovery in persistence.
PITR_NOTE = "point-in-time recovery is not in this build of dohost; bookmarks will be listed here once it is"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def object_list(observer: Observer, *, binding: str | None, name: str | None) -> dict[str, Any]:
    objects = [msgspec.to_builtins(v) for v in observer.objects(binding, name)]
    return {"bindings": observer.bindings(), "binding": binding, "filter": name or "", "objects": objects,
            "now": now_iso()}


def query_result(result: inspect_file.QueryResult) -> dict[str, Any]:
    return {
        "columns": result.columns,
        "rows": [[inspect_file.jsonable(v) for v in row] for row in result.rows],
        "total": result.total,
        "truncated": result.truncated,
    }


async def object_detail(
    observer: Observer, binding: str, object_id: Any, *, table: str | None, offset: int
) -> dict[str, Any]:
    def look(conn: Any) -> dict[str, Any]:
        tables = inspect_file.user_tables(conn)
        chosen = table if table is not None else (tables[0][0] if tables else None)
        page = None
        if chosen is not None and chosen in dict(tables):
            result = inspect_file.table_page(conn, chosen, offset=offset, limit=PAGE_ROWS)
            page = {"name": chosen, "offset": offset, "limit": PAGE_ROWS, **query_result(result)}
        kv = [{"key": k, "value": inspect_file.jsonable(v)} for k, v in inspect_file.kv_entries(conn, limit=500)]
        return {"tables": [{"name": n, "rows": r} for n, r in tables], "table": page, "kv": kv}

    data = await observer.read(binding, object_id, look) or {"tables": [], "table": None, "kv": []}
    view = observer.view(binding, object_id)  # after the read: the state it is in now
    auto, sockets = observer.websockets(binding, object_id)
    return {
        **msgspec.to_builtins(view),
        **data,
        "websockets": {
            "auto_response": {"request": auto[0], "response": auto[1]} if auto else None,
            "sockets": [msgspec.to_builtins(s) for s in sockets],
        },
        "events": [msgspec.to_builtins(e) for e in observer.events(binding, object_id)[:100]],
        "bookmarks": {"available": False, "note": PITR_NOTE, "items": []},
        "now": now_iso(),
    }
