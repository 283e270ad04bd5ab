"""Log output of the CLI: readable lines for ``dohost dev``, JSON lines for ``dohost serve``.

Everything dohost logs goes through loggers under ``dohost``; a record may
carry ``extra={"fields": {...}}`` (``event``, ``method``, ``status``...),
which the JSON format emits as keys and the readable format leaves to the
message. Every record also gets ``request_id`` (the Worker request it
belongs to) and, when logged while an object runs, ``binding``,
``object_id`` and ``object_name`` (``telemetry.LogContextFilter``). One handler on stdout, flushed per line, so a supervisor (or a test
reading the pipe) sees each line as it happens.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

__all__ = ["configured_logging", "warnings_as_log_lines", "log_request", "request_log"]

request_log = logging.getLogger("dohost.request")
_config_log = logging.getLogger("dohost.config")


class DevFormatter(logging.Formatter):
    """``[dohost] GET / 200 (1.2 ms)``; warnings and errors say so; tracebacks follow."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        out = f"[dohost] {text}"
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


@contextmanager
def configured_logging(style: str, stream: TextIO | None = None, level: int = logging.INFO) -> Iterator[None]:
    """Send the ``dohost`` loggers to ``stream`` (stdout) as ``"dev"`` or ``"json"`` lines.

    Undone on exit, so the CLI can run inside another program (or a test).
    """
    from ..telemetry import LogContextFilter

    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(DevFormatter() if style == "dev" else JsonFormatter())
    handler.addFilter(LogContextFilter())  # request id, object binding/id/name as fields
    root = logging.getLogger("dohost")
    quiet = logging.getLogger("dohost.hypercorn")
    saved = (root.level, root.propagate, quiet.level)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # hypercorn announces "Running on ..."; the CLI prints its own ready line.
    quiet.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.level, root.propagate = saved[0], saved[1]
        quiet.setLevel(saved[2])


@contextmanager
def warnings_as_log_lines() -> Iterator[None]:
    """Show each wrangler-file warning once per occurrence as a log line, not as an exception."""
    from ..errors import ConfigWarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        _config_log.warning("%s", message, extra={"fields": {"event": "config-warning"}})

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConfigWarning)
        warnings.showwarning = show
        yield


def log_request(method: str, path: str, status: int, seconds: float, *, websocket: bool = False) -> None:
    """``build_app``'s ``on_request`` (and the host's, for WebSocket upgrades)."""
    ms = seconds * 1000.0
    fields = {"event": "request", "method": method, "path": path, "status": status, "ms": round(ms, 2)}
    if websocket:
        fields["websocket"] = True
    request_log.info(
        "%s %s %d%s (%.1f ms)", method, path, status, " WebSocket" if websocket else "", ms, extra={"fields": fields}
    )
