"""``ctx`` for Durable Objects (``DurableObjectState``) and Workers (``ExecutionContext``).

``ctx`` is a thin facade: storage belongs to persistence, gates and lifetime
to the host (through :class:`ActivationHost`), WebSocket bookkeeping to
:class:`WebSocketBook`. Every Cloudflare camelCase name has a snake twin.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from persistence import cf_names

from ._host import ActivationHost, DetachedActivation
from ._storage import DurableObjectStorage

__all__ = ["DurableObjectState", "ExecutionContext"]


@cf_names(
    "waitUntil",
    "blockConcurrencyWhile",
    "acceptWebSocket",
    "getWebSockets",
    "getTags",
    "setWebSocketAutoResponse",
    "getWebSocketAutoResponse",
    "getWebSocketAutoResponseTimestamp",
    "setHibernatableWebSocketEventTimeout",
    "getHibernatableWebSocketEventTimeout",
)
class DurableObjectState:
    """What a Durable Object receives as ``ctx``."""

    def __init__(
        self,
        id: Any,
        storage: DurableObjectStorage,
        host: ActivationHost | None = None,
        websockets: Any = None,
        props: Any = None,
    ) -> None:
        self.id = id
        self.storage = storage
        self._host: ActivationHost = host or DetachedActivation()
        self._websockets = websockets
        self.props = props

    # -- lifetime and gates ---------------------------------------------------
    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        """Keep the object alive until ``awaitable`` finishes."""
        self._host.wait_until(awaitable)

    def blockConcurrencyWhile(self, callback: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """Run ``callback`` with no other event delivered; starts even if not awaited."""
        return self._host.block_concurrency_while(callback)

    def abort(self, reason: str | None = None) -> None:
        """Reset the object now: uncommitted writes are dropped, callers get an error."""
        self._host.abort(reason)

    # -- hibernatable WebSockets (transport arrives with the HTTP front) -------
    def _book(self) -> Any:
        if self._websockets is None:
            raise RuntimeError("WebSockets need a dohost runtime serving HTTP")
        return self._websockets

    def acceptWebSocket(self, ws: Any, tags: Iterable[str] | None = None) -> None:
        self._book().accept_web_socket(ws, tags)

    def getWebSockets(self, tag: str | None = None) -> list[Any]:
        return list(self._book().get_web_sockets(tag))

    def getTags(self, ws: Any) -> list[str]:
        return list(self._book().get_tags(ws))

    def setWebSocketAutoResponse(self, pair: Any = None) -> None:
        self._book().set_web_socket_auto_response(pair)

    def getWebSocketAutoResponse(self) -> Any:
        return self._book().get_web_socket_auto_response()

    def getWebSocketAutoResponseTimestamp(self, ws: Any) -> Any:
        return self._book().get_web_socket_auto_response_timestamp(ws)

    def setHibernatableWebSocketEventTimeout(self, timeout_ms: int | None = None) -> None:
        self._book().set_hibernatable_web_socket_event_timeout(timeout_ms)

    def getHibernatableWebSocketEventTimeout(self) -> int | None:
        return self._book().get_hibernatable_web_socket_event_timeout()  # type: ignore[no-any-return]


@cf_names("waitUntil", "passThroughOnException")
class ExecutionContext:
    """What a Worker entrypoint receives as ``ctx``."""

    def __init__(self, wait_until: Callable[[Awaitable[Any]], None] | None = None, props: Any = None) -> None:
        self._wait_until = wait_until
        self.props = props

    def waitUntil(self, awaitable: Awaitable[Any]) -> None:
        if self._wait_until is None:
            raise RuntimeError("waitUntil() needs a running dohost runtime")
        self._wait_until(awaitable)

    def passThroughOnException(self) -> None:
        """Accepted for compatibility; dohost has no origin to pass through to."""
