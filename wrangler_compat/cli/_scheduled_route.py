"""``dohost dev``'s test route for Cron Triggers, as ``wrangler dev`` has it.

``GET /__scheduled?cron=<expr>&time=<epoch ms>`` (wrangler's
``--test-scheduled`` path) and ``/cdn-cgi/handler/scheduled`` (the path
current wrangler always serves in dev, which Cloudflare's 08-cron example
prints) run the Worker's ``scheduled`` handler once and answer miniflare's
way: the outcome as the body (``ok`` / ``exception``), 200 for ``ok`` and 500
otherwise, or with ``format=json`` the result as JSON. Every other request
passes to the wrapped app untouched. ``dohost serve`` does not mount it: a
server's crons fire on their schedule (``runtime.serve_crons``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable
from urllib.parse import parse_qs

from runtime import run_scheduled

__all__ = ["SCHEDULED_PATHS", "with_scheduled_route"]

# CF: workers-sdk packages/miniflare/src/workers/core/entry.worker.ts (PATH_SCHEDULED, legacy /__scheduled)
SCHEDULED_PATHS = frozenset({"/__scheduled", "/cdn-cgi/handler/scheduled", "/cdn-cgi/mf/scheduled"})

ASGIApp = Callable[[dict[str, Any], Any, Any], Any]


def with_scheduled_route(
    app: ASGIApp,
    get_runtime: Callable[[], Any],
    on_request: Callable[[str, str, int, float], None] | None = None,
) -> ASGIApp:
    """``app`` with the scheduled test route in front of it (``on_request`` as ``build_app``'s)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in SCHEDULED_PATHS:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = await _run(scope, send, get_runtime)
        if on_request is not None:
            on_request(scope["method"], scope["path"], status, time.perf_counter() - started)

    # Keep the marks build_app set on its app (runtime's hypercorn close-code
    # fix applies to marked apps only), so WebSockets behave as without us.
    wrapped.__dict__.update(getattr(app, "__dict__", {}))
    return wrapped


async def _run(scope: dict[str, Any], send: Any, get_runtime: Callable[[], Any]) -> int:
    """Run the handler once as the query says; answer; return the status sent."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    cron = query.get("cron", [""])[0]
    time_text = query.get("time", [""])[0]
    if time_text and not time_text.lstrip("-").isdigit():
        await _answer(send, 400, f"time: expected epoch milliseconds, got {time_text!r}\n", "text/plain")
        return 400
    rt = get_runtime()
    if rt is None:  # between two runtimes of a reload
        await _answer(send, 503, "the Worker is restarting; try again\n", "text/plain")
        return 503
    result = await run_scheduled(rt, cron, float(time_text) if time_text else None)
    status = 200 if result.outcome == "ok" else 500
    if query.get("format", [""])[0] == "json":
        body = json.dumps({"outcome": result.outcome, "noRetry": result.no_retry})
        await _answer(send, status, body, "application/json")
    else:
        await _answer(send, status, result.outcome, "text/plain;charset=UTF-8")
    return status


async def _answer(send: Any, status: int, text: str, content_type: str) -> None:
    data = text.encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
