"""What the in-process HTTP benches drive an ASGI app with: a GET scope, an empty body, a send that drops.

Plain ASGI, nothing of dohost's: each bench imports its app from the checkout
it measures and calls it with these, so the scaffolding is the same for every
checkout. The headers are what ``wrk`` sends.
"""

from __future__ import annotations

from typing import Any

WRK_HEADERS = [(b"host", b"127.0.0.1:8787"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]


def get_scope(path: str, headers: list[tuple[bytes, bytes]] = WRK_HEADERS) -> dict[str, Any]:
    """A fresh HTTP/1.1 ``GET path`` scope, as hypercorn builds one per request."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8787)}


async def receive_empty() -> dict[str, Any]:
    """The request body: empty, in one message."""
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: dict[str, Any]) -> None:
    """A ``send`` that drops the answer."""
