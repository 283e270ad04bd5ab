"""WebSocket handles and the per-object book of hibernatable WebSockets, without a transport.

This module owns the rules; the runtime owns the sockets. User code sees a
:class:`WebSocketHandle` (``accept``, ``send``, ``close``,
``serializeAttachment``, ``deserializeAttachment``, ``readyState``) and the
``ctx`` methods backed by a :class:`WebSocketBook` (``acceptWebSocket``,
``getWebSockets``, ``getTags``, auto-responses, the event timeout). Bytes
leave through a :class:`WebSocketTransport` the runtime attaches; until then
(between ``acceptWebSocket`` and returning the 101 response) sends queue in
the handle, in order.

Guarantees, with workerd's messages (``api/web-socket.c++``,
``api/actor-state.c++``):

* a handle moves ``AWAITING -> ACCEPTED | HIBERNATABLE | RELEASED`` and
  ``ACCEPTED | HIBERNATABLE -> RELEASED`` only (:data:`_MOVES`);
* ``send`` needs an accepted handle and throws after ``close()``; sends and
  a second ``close()`` after the peer went away are silently dropped;
* tags: at most 10 distinct per socket, each at most 256 bytes, duplicates
  ignored, first-seen order kept;
* an attachment is stored serialized (msgpack; workerd uses V8's format, so
  sizes differ by a few bytes) and may be at most 16,384 bytes; each
  ``deserializeAttachment`` returns a fresh copy, and tuples and sets come
  back as lists;
* auto-response request and response strings are at most 2,048 bytes each;
  the event timeout is at most 604,800,000 ms (7 days).

The book outlives an activation: the runtime keeps it while the object
hibernates, so handles, tags, attachments and auto-response state survive
eviction, as Cloudflare's hibernation manager keeps them.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any, Callable, Final, Iterable, Protocol

import msgspec

from persistence._names import cf_names

from .errors import (
    AutoResponseTooLargeError, DataCloneError, WebSocketError, WebSocketLimitError, WebSocketUsageError,
)  # fmt: skip

__all__ = [
    "WebSocketTransport", "ReadyState", "HandleState", "WebSocketHandle", "WebSocketPair",
    "WebSocketRequestResponsePair", "WebSocketBook", "MessageEvent", "CloseEvent", "ErrorEvent",
]  # fmt: skip

MAX_TAGS: Final = 10  # CF: api/actor-state.h MAX_TAGS_PER_CONNECTION
MAX_TAG_LENGTH: Final = 256  # CF: api/actor-state.h MAX_TAG_LENGTH
MAX_ATTACHMENT_BYTES: Final = 16 * 1024  # CF: api/web-socket.h MAX_ATTACHMENT_SIZE (1024 * 16)
MAX_AUTO_RESPONSE_BYTES: Final = 2048  # CF: api/actor-state.c++ setWebSocketAutoResponse
MAX_EVENT_TIMEOUT_MS: Final = 604_800_000  # CF: api/actor-state.c++ setHibernatableWebSocketEventTimeout
NO_STATUS_CODE: Final = 1005  # close() without a code sends a Close frame with no body
_MAX_REASON_BYTES: Final = 123  # RFC 6455 5.5: control frame payload 125 bytes, 2 for the code
_RESERVED_CLOSE_CODES: Final = frozenset({1004, 1005, 1006, 1015})  # CF: api/web-socket.c++ close

_NOT_ACCEPTED: Final = (  # CF: api/web-socket.c++ send/close
    "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages."
)


class WebSocketTransport(Protocol):
    """What the runtime provides to move frames; calls never block.

    ``close(code, reason)`` with ``code == 1005`` means a Close frame with
    no payload.
    """

    def send_text(self, data: str) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class ReadyState(enum.IntEnum):
    CONNECTING, OPEN, CLOSING, CLOSED = range(4)


class HandleState(enum.Enum):
    AWAITING = "awaiting acceptance or coupling"
    ACCEPTED = "accepted with accept()"
    HIBERNATABLE = "accepted with acceptWebSocket()"
    RELEASED = "released"


_MOVES: Final = {
    HandleState.AWAITING: frozenset({HandleState.ACCEPTED, HandleState.HIBERNATABLE, HandleState.RELEASED}),
    HandleState.ACCEPTED: frozenset({HandleState.RELEASED}),
    HandleState.HIBERNATABLE: frozenset({HandleState.RELEASED}),
    HandleState.RELEASED: frozenset(),
}


def _refuse_attachment(value: Any) -> Any:
    raise DataCloneError(f"{value!r} could not be cloned.")  # CF: V8 ValueSerializer DataCloneError


_ATTACHMENT_ENCODER: Final = msgspec.msgpack.Encoder(enc_hook=_refuse_attachment)
_ATTACHMENT_DECODER: Final = msgspec.msgpack.Decoder()


@cf_names("serializeAttachment", "deserializeAttachment", "readyState", "addEventListener", "removeEventListener")
class WebSocketHandle:
    """The WebSocket object user code holds; frames go through the attached transport."""

    CONNECTING = READY_STATE_CONNECTING = ReadyState.CONNECTING
    OPEN = READY_STATE_OPEN = ReadyState.OPEN
    CLOSING = READY_STATE_CLOSING = ReadyState.CLOSING
    CLOSED = READY_STATE_CLOSED = ReadyState.CLOSED

    def __init__(self, transport: WebSocketTransport | None = None) -> None:
        self._state = HandleState.AWAITING
        self._transport = transport
        self._queued: list[tuple[str, Any]] = []  # frames sent before a transport exists
        self._peer: WebSocketHandle | None = None
        self._closed_outgoing = False
        self._closed_incoming = False
        self._peer_gone = False
        self._attachment: bytes | None = None
        self.auto_response_timestamp: datetime.datetime | None = None
        self.url: str | None = None
        self.protocol: str | None = None
        self.extensions: str | None = None
        self._listeners: dict[str, list[Any]] = {}

    @property
    def state(self) -> HandleState:
        return self._state

    def _move(self, new: HandleState) -> None:
        if new not in _MOVES[self._state]:
            raise WebSocketUsageError(f"WebSocket cannot go from {self._state.value} to {new.value}")
        self._state = new

    # -- user API ----------------------------------------------------------------

    def accept(self) -> None:
        if self._state is HandleState.ACCEPTED:
            return
        if self._state is HandleState.HIBERNATABLE:
            raise WebSocketUsageError("Can't accept() WebSocket after enabling hibernation.")  # CF: api/web-socket.c++ accept
        if self._state is HandleState.RELEASED:
            raise WebSocketUsageError("Can't accept() WebSocket that was already used in a response.")  # CF: api/web-socket.c++ accept
        self._move(HandleState.ACCEPTED)

    def send(self, message: str | bytes) -> None:
        if self._closed_outgoing:
            raise WebSocketUsageError("Can't call WebSocket send() after close().")  # CF: api/web-socket.c++ send
        if self._peer_gone or self._state is HandleState.RELEASED:
            return  # the spec silently drops sends once the connection is gone
        if self._state is HandleState.AWAITING:
            raise WebSocketUsageError(_NOT_ACCEPTED)
        if isinstance(message, str):
            self._emit("text", message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._emit("bytes", bytes(message))
        else:
            raise WebSocketUsageError(f"send: message: expected str or bytes, got {type(message).__name__}")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        # As workerd: the code and reason are checked before the state, so a
        # refused code raises even on a socket that is already closing.
        if code is not None and (
            isinstance(code, bool) or not isinstance(code, int)
            or not 1000 <= code < 5000 or code in _RESERVED_CLOSE_CODES
        ):  # fmt: skip
            raise WebSocketUsageError(f"Invalid WebSocket close code: {code}.")  # CF: api/web-socket.c++ close
        if reason is not None:
            if not isinstance(reason, str):
                raise WebSocketUsageError(f"close: reason: expected str, got {type(reason).__name__}")
            if len(reason.encode()) > _MAX_REASON_BYTES:
                raise WebSocketUsageError(
                    # CF: api/web-socket.c++ close (websocket_close_reason_byte_limit, on from 2026-03-03)
                    "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded."
                )
            if code is None:
                raise WebSocketUsageError(
                    "If you specify a WebSocket close reason, you must also specify a code."  # CF: api/web-socket.c++ close
                )
        if self._closed_outgoing or self._peer_gone or self._state is HandleState.RELEASED:
            return  # a second close() is ignored, per the WebSocket standard
        if self._state is HandleState.AWAITING:
            raise WebSocketUsageError(_NOT_ACCEPTED)
        self._closed_outgoing = True
        self._emit("close", (NO_STATUS_CODE if code is None else code, reason or ""))

    # -- EventTarget (sockets accepted with accept()) ----------------------------

    def add_event_listener(self, type: str, listener: Any, options: Any = None) -> None:
        """Call ``listener(event)`` for each ``"message"``, ``"close"`` or ``"error"`` event.

        Only a socket accepted with ``accept()`` dispatches events; hibernatable
        sockets deliver to ``webSocketMessage``/``webSocketClose`` instead.
        """
        if not isinstance(type, str):
            raise WebSocketUsageError(f"addEventListener: type: expected str, got {type!r}")
        if not callable(listener) and not callable(getattr(listener, "handleEvent", None)):
            raise WebSocketUsageError(
                f"addEventListener: listener: expected a function, got {listener.__class__.__name__}"
            )
        listeners = self._listeners.setdefault(type, [])
        if listener not in listeners:  # EventTarget ignores a repeated (type, listener)
            listeners.append(listener)

    def remove_event_listener(self, type: str, listener: Any, options: Any = None) -> None:
        listeners = self._listeners.get(type, [])
        if listener in listeners:
            listeners.remove(listener)

    addEventListener: Callable[..., None]  # installed by cf_names
    removeEventListener: Callable[..., None]  # installed by cf_names

    def serialize_attachment(self, value: Any) -> None:
        """Keep a serialized copy of ``value`` that survives hibernation."""
        data = _ATTACHMENT_ENCODER.encode(value)
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise WebSocketLimitError(
                # CF: api/web-socket.c++ serializeAttachment (no space after the first period)
                f"A WebSocket 'attachment' cannot be larger than {MAX_ATTACHMENT_BYTES} bytes."
                f"'attachment' was {len(data)} bytes."
            )
        self._attachment = data

    def deserialize_attachment(self) -> Any:
        """A fresh copy of the last attachment, or ``None`` if none was set."""
        if self._attachment is None:
            return None
        return _ATTACHMENT_DECODER.decode(self._attachment)

    @property
    def ready_state(self) -> int:
        if self._closed_incoming and self._closed_outgoing:
            return ReadyState.CLOSED
        if self._closed_incoming or self._closed_outgoing:
            return ReadyState.CLOSING
        return ReadyState.OPEN

    serializeAttachment: Callable[[Any], None]  # installed by cf_names
    deserializeAttachment: Callable[[], Any]  # installed by cf_names
    readyState: int  # installed by cf_names

    # -- runtime API ------------------------------------------------------------

    def attach_transport(self, transport: WebSocketTransport) -> None:
        """Connect the handle to a live socket and flush what was sent meanwhile."""
        self._transport = transport
        queued, self._queued = self._queued, []
        for kind, payload in queued:
            self._deliver(kind, payload)

    def couple(self, transport: WebSocketTransport) -> None:
        """This end was returned in a 101 Response: its peer now talks over ``transport``."""
        if self._state is HandleState.RELEASED:
            raise WebSocketUsageError("Can't return WebSocket that was already used in a response.")  # CF: api/web-socket.c++ couple
        if self._state is HandleState.HIBERNATABLE:
            raise WebSocketUsageError("Can't return WebSocket in a Response after calling acceptWebSocket().")  # CF: api/web-socket.c++ couple
        if self._state is HandleState.ACCEPTED:
            raise WebSocketUsageError("Can't return WebSocket in a Response after calling accept().")  # CF: api/web-socket.c++ couple
        self._move(HandleState.RELEASED)
        if self._peer is not None:
            self._peer.attach_transport(transport)

    def note_close_received(self) -> None:
        """The peer sent a Close frame, and the host has already answered it.

        workerd with ``web_socket_auto_reply_to_close`` (the default from
        compatibility date 2026-04-07) replies to a Close frame with the same
        code before the close event runs, so ``readyState`` is CLOSED there and
        a ``close(code, reason)`` in ``webSocketClose`` is a no-op. dohost's
        front (hypercorn) always replies at once, so it always behaves so.
        """
        self._closed_incoming = True
        self._closed_outgoing = True

    def listeners(self, type: str) -> list[Any]:
        """The listeners for ``type`` events, in the order they were added (runtime API)."""
        return list(self._listeners.get(type, ()))

    @property
    def accepted(self) -> bool:
        """True for a socket accepted with ``accept()`` (it dispatches events to listeners)."""
        return self._state is HandleState.ACCEPTED

    def note_disconnected(self) -> None:
        """The connection is gone: further sends and closes are dropped."""
        self._closed_incoming = True
        self._peer_gone = True

    def _emit(self, kind: str, payload: Any) -> None:
        if self._transport is None:
            self._queued.append((kind, payload))
        else:
            self._deliver(kind, payload)

    def _deliver(self, kind: str, payload: Any) -> None:
        transport = self._transport
        assert transport is not None
        if kind == "close":
            transport.close(*payload)
        else:
            (transport.send_text if kind == "text" else transport.send_bytes)(payload)

    def __repr__(self) -> str:
        return f"<WebSocketHandle {self._state.name} readyState={int(self.ready_state)}>"


class WebSocketPair:
    """Two linked handles: return ``client`` in a 101 Response, accept ``server``."""

    def __init__(self) -> None:
        client, server = WebSocketHandle(), WebSocketHandle()
        client._peer, server._peer = server, client
        self._ends = (client, server)

    @classmethod
    def new(cls) -> WebSocketPair:
        """Python Workers spell construction ``WebSocketPair.new()``."""
        return cls()

    def object_values(self) -> tuple[WebSocketHandle, WebSocketHandle]:
        """``client, server = WebSocketPair.new().object_values()``, as in Python Workers."""
        return self._ends

    def __getitem__(self, index: int) -> WebSocketHandle:
        return self._ends[index]

    def __iter__(self) -> Any:
        return iter(self._ends)


class WebSocketRequestResponsePair:
    """An auto-response: a text ``request`` answered with ``response`` without waking the object."""

    __slots__ = ("request", "response")

    def __init__(self, request: str, response: str) -> None:
        for label, value in (("request", request), ("response", response)):
            if not isinstance(value, str):
                raise WebSocketUsageError(f"{label}: expected str, got {type(value).__name__}")
        self.request, self.response = request, response

    def __repr__(self) -> str:
        return f"WebSocketRequestResponsePair({self.request!r}, {self.response!r})"


@cf_names(
    "acceptWebSocket", "getWebSockets", "getTags",
    "setWebSocketAutoResponse", "getWebSocketAutoResponse", "getWebSocketAutoResponseTimestamp",
    "setHibernatableWebSocketEventTimeout", "getHibernatableWebSocketEventTimeout",
)  # fmt: skip
class WebSocketBook:
    """One object's hibernatable WebSockets, their tags and the shared auto-response."""

    def __init__(self) -> None:
        self._tags: dict[WebSocketHandle, tuple[str, ...]] = {}  # insertion order = accept order
        self._auto_response: WebSocketRequestResponsePair | None = None
        self._event_timeout_ms: int | None = None

    def accept_web_socket(self, ws: WebSocketHandle, tags: Iterable[str] | None = None) -> None:
        if not isinstance(ws, WebSocketHandle):
            raise WebSocketUsageError(f"acceptWebSocket: ws: expected a WebSocket, got {type(ws).__name__}")
        if ws._state in (HandleState.ACCEPTED, HandleState.HIBERNATABLE):
            raise WebSocketError(  # CF: api/actor-state.c++ acceptWebSocket
                "Cannot call `acceptWebSocket()` if the WebSocket was already accepted via `accept()`"
            )
        if ws._state is HandleState.RELEASED or (
            ws._peer is not None and ws._peer._state is not HandleState.AWAITING
        ):
            raise WebSocketError(  # CF: api/actor-state.c++ acceptWebSocket
                "Cannot call `acceptWebSocket()` on this WebSocket because its pair has already "
                "been accepted or used in a Response."
            )
        distinct = _check_tags(tags)
        ws._move(HandleState.HIBERNATABLE)
        self._tags[ws] = distinct

    def get_web_sockets(self, tag: str | None = None) -> list[WebSocketHandle]:
        if tag is None:
            return list(self._tags)
        return [ws for ws, tags in self._tags.items() if tag in tags]

    def get_tags(self, ws: WebSocketHandle) -> list[str]:
        try:
            return list(self._tags[ws])
        except (KeyError, TypeError):
            raise WebSocketUsageError(
                "getTags: the WebSocket was not accepted with acceptWebSocket() by this object"
            ) from None

    def set_web_socket_auto_response(self, pair: WebSocketRequestResponsePair | None = None) -> None:
        if pair is None:
            self._auto_response = None
            return
        if not isinstance(pair, WebSocketRequestResponsePair):
            raise WebSocketUsageError(
                f"setWebSocketAutoResponse: expected a WebSocketRequestResponsePair, got {type(pair).__name__}"
            )
        for label, text in (("Request", pair.request), ("Response", pair.response)):
            size = len(text.encode())
            if size > MAX_AUTO_RESPONSE_BYTES:
                raise AutoResponseTooLargeError(
                    # CF: api/actor-state.c++ setWebSocketAutoResponse
                    f"{label} cannot be larger than {MAX_AUTO_RESPONSE_BYTES} bytes. "
                    f"A {label.lower()} of size {size} was provided."
                )
        self._auto_response = pair

    def get_web_socket_auto_response(self) -> WebSocketRequestResponsePair | None:
        return self._auto_response

    def get_web_socket_auto_response_timestamp(self, ws: WebSocketHandle) -> datetime.datetime | None:
        return ws.auto_response_timestamp

    def set_hibernatable_web_socket_event_timeout(self, timeout_ms: int | None = None) -> None:
        if timeout_ms is None or timeout_ms == 0:  # CF: 0 or nothing unsets the timeout
            self._event_timeout_ms = None
            return
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise WebSocketUsageError(
                f"setHibernatableWebSocketEventTimeout: expected a non-negative int of milliseconds, got {timeout_ms!r}"
            )
        if timeout_ms > MAX_EVENT_TIMEOUT_MS:
            raise WebSocketLimitError("Event timeout should not exceed 604800000 ms.")  # CF: api/actor-state.c++
        self._event_timeout_ms = timeout_ms

    def get_hibernatable_web_socket_event_timeout(self) -> int | None:
        return self._event_timeout_ms

    # -- runtime API ------------------------------------------------------------

    def auto_response_for(self, ws: WebSocketHandle, message: str | bytes, now: datetime.datetime) -> str | None:
        """The reply to send for an incoming ``message`` without waking the object, if any.

        Only a text message equal to the configured request matches; the
        match is stamped on ``ws`` (``getWebSocketAutoResponseTimestamp``).
        """
        pair = self._auto_response
        if pair is None or not isinstance(message, str) or message != pair.request:
            return None
        if ws._closed_outgoing or ws._peer_gone:
            return None
        ws.auto_response_timestamp = now
        return pair.response

    def remove(self, ws: WebSocketHandle) -> None:
        """Forget ``ws`` once its close or error event has been delivered."""
        if self._tags.pop(ws, None) is not None and ws._state is not HandleState.RELEASED:
            ws._move(HandleState.RELEASED)

    def __len__(self) -> int:
        return len(self._tags)

    def __contains__(self, ws: object) -> bool:
        return ws in self._tags


def _check_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, (str, bytes)):
        raise WebSocketUsageError(f"acceptWebSocket: tags: expected a list of str, got {type(tags).__name__}")
    seen: dict[str, None] = {}
    for tag in tags:
        # As workerd: the count is checked before each tag, so any tag after
        # the tenth distinct one fails, even a duplicate.
        if len(seen) >= MAX_TAGS:
            raise WebSocketLimitError(f"a Hibernatable WebSocket cannot have more than {MAX_TAGS} tags")  # CF: api/actor-state.c++ acceptWebSocket
        if not isinstance(tag, str):
            raise WebSocketUsageError(f"acceptWebSocket: tags: expected str items, got {type(tag).__name__}")
        if len(tag.encode()) > MAX_TAG_LENGTH:
            # workerd measures bytes but its message says characters.
            raise WebSocketLimitError(f'"{tag}" is longer than the max tag length ({MAX_TAG_LENGTH} characters).')  # CF: api/actor-state.c++ acceptWebSocket
        seen.setdefault(tag, None)
    return tuple(seen)


# -- events dispatched to listeners of a socket accepted with accept() ----------


class MessageEvent:
    """A ``"message"`` event: ``data`` is a ``str`` for a text frame, ``bytes`` for a binary one."""

    __slots__ = ("type", "data")

    def __init__(self, data: str | bytes) -> None:
        self.type = "message"
        self.data = data

    def __repr__(self) -> str:
        return f"MessageEvent(data={self.data!r})"


@cf_names("wasClean")
class CloseEvent:
    """A ``"close"`` event, as ``webSocketClose`` receives its arguments."""

    __slots__ = ("type", "code", "reason", "was_clean")

    def __init__(self, code: int, reason: str, was_clean: bool) -> None:
        self.type = "close"
        self.code, self.reason, self.was_clean = code, reason, was_clean

    wasClean: bool  # installed by cf_names

    def __repr__(self) -> str:
        return f"CloseEvent(code={self.code}, reason={self.reason!r}, wasClean={self.was_clean})"


class ErrorEvent:
    """An ``"error"`` event: ``message`` and the ``error`` behind it."""

    __slots__ = ("type", "message", "error")

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        self.type = "error"
        self.message, self.error = message, error

    def __repr__(self) -> str:
        return f"ErrorEvent(message={self.message!r})"
