"""Log fields for what is running: the request id, and the object's binding, id and name.

:class:`RequestIds` is a :class:`runtime.Telemetry` that gives each Worker
request an id (its ``cf-ray`` or ``x-request-id`` header when the client or a
proxy sent one, else a fresh random one) and carries it, like a trace
context, into every object call the request causes. :class:`LogContextFilter`
adds to each log record ``request_id`` and, for records logged while an
object runs, ``binding``, ``object_id`` and ``object_name``: JSON log lines
(``dohost serve``) show them as keys.

The id stays set in the task that ran the request after the Worker returned,
so the front's request log line carries it too; the HTTP front runs each
request in a task of its own, so it never leaks into another request.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from runtime import NullTelemetry, current_activation

if TYPE_CHECKING:
    from runtime import Runtime

__all__ = ["RequestIds", "LogContextFilter", "current_request_id"]

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dohost_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the Worker request being handled (or that caused the running object call)."""
    return _request_id.get()


class RequestIds(NullTelemetry):
    """See the module docstring; every method but the two below is the no-op default's."""

    def request_started(self, worker: str | None, request: Any) -> Any:
        headers = getattr(request, "headers", None)
        given = (headers.get("cf-ray") or headers.get("x-request-id")) if headers is not None else None
        _request_id.set(given[:128] if given else uuid.uuid4().hex[:16])
        return None

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        pass

    def event_sent(
        self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        rid = _request_id.get()
        if rid is None:
            return invoke

        def with_request_id(instance: Any = None) -> Any:
            token = _request_id.set(rid)
            try:
                result = invoke(instance)
            finally:
                _request_id.reset(token)
            if inspect.isawaitable(result):
                return _awaited_with(rid, result)
            return result

        return with_request_id


async def _awaited_with(rid: str, awaitable: Awaitable[Any]) -> Any:
    token = _request_id.set(rid)
    try:
        return await awaitable
    finally:
        _request_id.reset(token)


class LogContextFilter(logging.Filter):
    """Adds ``request_id``, ``binding``, ``object_id``, ``object_name`` to a record's ``fields``."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(getattr(record, "fields", None) or {})
        rid = _request_id.get()
        if rid is not None:
            fields.setdefault("request_id", rid)
        act = current_activation()
        if act is not None:
            fields.setdefault("binding", act.key[0])
            fields.setdefault("object_id", act.key[1])
            name = act.object_id.name
            if name is not None:
                fields.setdefault("object_name", name)
        if fields:
            record.fields = fields
        return True
