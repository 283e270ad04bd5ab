"""dohost's ``js`` module: the few JavaScript globals Python Durable Object examples import.

Cloudflare's Python examples write ``from js import WebSocketPair`` and then
either ``client, server = WebSocketPair.new().object_values()`` or plain
unpacking; both work. ``Date.now()`` follows the runtime's clock, so alarms
scheduled from it run under pytest-trio's fake clock too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from objects import Request, Response, WebSocketPair

__all__ = ["WebSocketPair", "Response", "Request", "Date", "console", "Object"]

_log = logging.getLogger("dohost.console")


class Date:
    """``Date.now()``: milliseconds since the epoch on the serving runtime's clock."""

    @staticmethod
    def now() -> float:
        from runtime import current_activation

        act = current_activation()
        if act is not None:
            return float(int(act.runtime.now_ms()))
        return float(int(time.time() * 1000))


class console:
    """``console.log`` and friends, to the ``dohost.console`` logger."""

    @staticmethod
    def log(*args: Any) -> None:
        _log.info(" ".join(map(str, args)))

    info = log

    @staticmethod
    def warn(*args: Any) -> None:
        _log.warning(" ".join(map(str, args)))

    @staticmethod
    def error(*args: Any) -> None:
        _log.error(" ".join(map(str, args)))


class Object:
    """``Object.fromEntries`` — turns pairs into a dict (Pyodide's ``to_js`` target)."""

    @staticmethod
    def fromEntries(pairs: Any) -> dict[Any, Any]:
        return dict(pairs)
