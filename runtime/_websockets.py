"""WebSocket connections held by the host, so they outlive the object (hibernation).

A client connection is a :class:`HostedSocket`: the transport behind the
object's *server* end of a ``WebSocketPair``. The host owns it — not the
activation — so the object can be evicted while clients stay connected, and
an incoming message re-activates the object and calls ``webSocketMessage``.
Per-object WebSocket state (tags, attachments, the auto-response) lives in a
:class:`HostBook` kept by the runtime across evictions.

Guarantees:

* ``ws.send`` goes through the output gate: a frame sent after a write leaves
  only once that write is committed (frames keep their order); if the commit
  fails the frame is dropped and the connection closed with 1011.
* An auto-response is answered by the host without waking the object.
* Messages of one connection are delivered in order. A client close reaches
  ``webSocketClose(ws, code, reason, wasClean)``; an abnormal disconnect
  arrives as code 1006 with ``wasClean`` false and workerd's reason.
* A server end accepted with ``accept()`` (not hibernatable) delivers
  ``MessageEvent``/``CloseEvent``/``ErrorEvent`` to its listeners instead: in
  the object whose ``fetch`` returned it (as an event under its input gate;
  ``HostedSocket.owner``), or directly for a Worker's own socket. Its object
  is pinned in memory (``Activation.pins``) until the socket closes; if the
  object leaves anyway (explicit eviction, reset, shutdown) the socket is
  closed with 1001 and later events are dropped. Auto-responses don't apply.
"""

from __future__ import annotations

import datetime
import inspect
import weakref
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import trio

from objects import (
    CloseEvent, ErrorEvent, MessageEvent, Request, WebSocketBook, WebSocketHandle, find_handler,
)  # fmt: skip

from ._activation import current_activation
from ._events import EventKind, ObjectEvent
from ._gates import CommitTicket
from .errors import RuntimeConfigError

if TYPE_CHECKING:
    from ._activation import Activation
    from ._runtime import Runtime

__all__ = [
    "WebSocketPeer", "HostedSocket", "HostBook", "InProcessWebSocket", "ABNORMAL_CLOSURE", "ABNORMAL_REASON",
    "note_accepted_socket_owner",
]  # fmt: skip

log = logging.getLogger("dohost.websocket")

# RFC 6455 close codes
ABNORMAL_CLOSURE = 1006
INTERNAL_ERROR = 1011
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
#: The reason a close event carries when the client vanished without a Close frame.
ABNORMAL_REASON = "WebSocket disconnected without sending Close frame."  # CF: api/web-socket.c++, io/hibernation-manager.c++


class WebSocketPeer(Protocol):
    """The client side of a connection, as the HTTP front (or a test) provides it."""

    async def send_text(self, data: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int, reason: str) -> None: ...


class HostBook(WebSocketBook):
    """An object's WebSocket book, remembering which object owns each accepted socket."""

    def __init__(self, rt: Runtime, key: tuple[str, str], object_id: Any) -> None:
        super().__init__()
        self._rt = rt
        self.key = key
        self.object_id = object_id

    def accept_web_socket(self, ws: WebSocketHandle, tags: Any = None) -> None:
        super().accept_web_socket(ws, tags)
        self._rt._ws_owners[ws] = self


class HostedSocket:
    """One client connection; implements ``WebSocketTransport`` for the server handle."""

    def __init__(self, rt: Runtime, peer: WebSocketPeer, server: WebSocketHandle, owner: Activation | None = None) -> None:
        self._rt = rt
        self._peer = peer
        self.server = server
        #: The object whose code accept()ed the server end (None: a Worker's, or hibernatable).
        self.owner = owner
        if owner is not None:
            owner.pins += 1  # an open non-hibernatable socket keeps its object in memory
        self._outbox: deque[tuple[CommitTicket | None, str, Any]] = deque()
        self._wake = trio.Event()
        self.closed = False  # we sent (or forwarded) a Close
        self.gone = False  # the client went away
        self.orphaned = False  # the object that accept()ed it left memory

    # -- WebSocketTransport (called by object code; synchronous) -------------
    def send_text(self, data: str) -> None:
        self._queue("text", data)

    def send_bytes(self, data: bytes) -> None:
        self._queue("bytes", data)

    def close(self, code: int, reason: str) -> None:
        self._queue("close", (code, reason))

    @property
    def namespace(self) -> str | None:
        """The binding of the object holding the server end (``None``: a Worker's own socket)."""
        if self.owner is not None:
            return self.owner.key[0]
        book = self._rt._ws_owners.get(self.server)
        return book.key[0] if book is not None else None

    def _queue(self, kind: str, payload: Any) -> None:
        act = current_activation()
        if act is not None and kind != "close":
            act.runtime.telemetry.websocket_message(act.key[0], "out")
        ticket = act._ticket if act is not None and act.db is not None and act.db.dirty else None
        self._outbox.append((ticket, kind, payload))
        self._wake.set()

    # -- the sender -----------------------------------------------------------
    async def pump(self) -> None:
        """Send queued frames in order, each after the commit it waits for."""
        peer = self._peer
        while not self.gone:
            while self._outbox:
                ticket, kind, payload = self._outbox.popleft()
                if ticket is not None:
                    try:
                        await ticket.wait_committed()
                    except Exception as exc:
                        self._outbox.clear()
                        if self.server.accepted:
                            await self._dispatch("error", ErrorEvent("Durable Object storage failed", exc))
                        await self._close_peer(INTERNAL_ERROR, "Durable Object storage failed")
                        return
                try:
                    if kind == "text":
                        await peer.send_text(payload)
                    elif kind == "bytes":
                        await peer.send_bytes(payload)
                    else:
                        await self._close_peer(*payload)
                        return
                except Exception:
                    self.gone = True
                    return
            self._wake = trio.Event()
            await self._wake.wait()

    async def _close_peer(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._peer.close(code, reason)
        except Exception:
            self.gone = True

    # -- incoming (called by the front, in order) -----------------------------
    async def on_message(self, message: str | bytes) -> None:
        namespace = self.namespace
        if namespace is not None:
            self._rt.telemetry.websocket_message(namespace, "in")
        if self.server.accepted:
            # accept()ed, not hibernatable: listeners, no auto-response.
            await self._dispatch("message", MessageEvent(message))
            return
        book = self._rt._ws_owners.get(self.server)
        if book is None:
            log.debug("message for a WebSocket no object accepted with acceptWebSocket(); dropped")
            return
        reply = book.auto_response_for(self.server, message, datetime.datetime.now(datetime.timezone.utc))
        if reply is not None:
            self._rt.telemetry.websocket_message(book.key[0], "out")  # the auto-response
            self._outbox.append((None, "text", reply))
            self._wake.set()
            return
        await self._deliver(book, "webSocketMessage", (self.server, message))

    async def on_close(self, code: int, reason: str, was_clean: bool) -> None:
        if was_clean:
            self.server.note_close_received()
        else:
            self.server.note_disconnected()
        if self.server.accepted:
            try:
                await self._dispatch("close", CloseEvent(code, reason, was_clean))
            finally:
                self._release()
            return
        book = self._rt._ws_owners.get(self.server)
        if book is not None:
            try:
                await self._deliver(book, "webSocketClose", (self.server, code, reason, was_clean))
            finally:
                book.remove(self.server)
                self._rt._ws_owners.pop(self.server, None)
                self._rt._drop_book_if_empty(book)
        self.server.note_disconnected()
        self.gone = True
        self._wake.set()

    def _release(self) -> None:
        self.server.note_disconnected()
        self.gone = True
        self._wake.set()
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.pins -= 1
            owner._wake.set()  # it may be idle now: let its idle timer start again

    def close_for_owner(self, code: int = GOING_AWAY, reason: str = "Durable Object evicted") -> None:
        """The owning object left memory (evicted, reset, shut down): close; its listeners are gone."""
        if self.owner is None:
            return
        self.owner = None  # its pin went with it
        self.orphaned = True
        self.server.note_disconnected()
        self._outbox.append((None, "close", (code, reason)))  # the host's own close: no gate
        self._wake.set()

    async def _dispatch(self, type: str, event: Any) -> None:
        """Call the server end's ``type`` listeners with ``event``: in its object, or here for a Worker's."""
        listeners = self.server.listeners(type)
        if not listeners or self.orphaned:
            return

        def invoke(instance: Any = None) -> Any:
            # Listeners run in the order they were added; an async one is
            # awaited before the next starts (JavaScript would start the next
            # at the first await: the start order is the same).
            for position, listener in enumerate(listeners):
                fn = listener if callable(listener) else listener.handleEvent
                result = fn(event)
                if inspect.isawaitable(result):
                    return _finish(result, listeners[position + 1 :], event)
            return None

        owner = self.owner
        if owner is None:
            try:
                result = invoke()
                if result is not None:
                    await result
            except Exception:
                log.exception("a WebSocket %r listener raised", type)
            return
        if not owner.accepting:
            log.debug("WebSocket %r event for %s dropped: the object left memory", type, owner.key)
            return
        traced = self._rt.telemetry.event_sent(owner.key[0], owner.object_id, "websocket", type, invoke)
        object_event = ObjectEvent(EventKind.WEBSOCKET, traced, convert=False)
        owner.enqueue(object_event)
        try:
            await object_event.result()
        except Exception:
            log.exception("a WebSocket %r listener of %s raised", type, owner.key)

    async def _deliver(self, book: HostBook, handler_name: str, args: tuple[Any, ...]) -> None:
        def invoke(instance: Any) -> Any:
            handler = find_handler(instance, handler_name)
            if handler is None:
                return None
            return handler(*args)

        traced = self._rt.telemetry.event_sent(book.key[0], book.object_id, "websocket", handler_name, invoke)
        event = ObjectEvent(EventKind.WEBSOCKET, traced, convert=False)
        try:
            self._rt._deliver(book.key[0], book.object_id, event)
        except RuntimeConfigError as exc:
            # The runtime is shutting down (SIGTERM, a reload, a deploy): the
            # object is gone; a late client frame must not crash the HTTP front.
            log.debug("%s of %s dropped: %s", handler_name, book.key, exc)
            return
        try:
            await event.result()
        except Exception:
            log.exception("%s of %s raised", handler_name, book.key)


class InProcessWebSocket:
    """A WebSocket client connected through the Worker without a network (tests)."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[tuple[str, Any]](1000)
        self.hosted: HostedSocket | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # WebSocketPeer: frames from the object
    async def send_text(self, data: str) -> None:
        await self._send.send(("text", data))

    async def send_bytes(self, data: bytes) -> None:
        await self._send.send(("bytes", data))

    async def close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        await self._send.send(("close", (code, reason)))

    # the test's side
    async def send(self, message: str | bytes) -> None:
        """Send a message to the object; returns once the object has handled it."""
        assert self.hosted is not None
        await self.hosted.on_message(message)

    async def receive(self) -> str | bytes:
        """The next message from the object; raises ``ConnectionError`` once it closed."""
        kind, payload = await self._receive.receive()
        if kind == "close":
            raise ConnectionError(f"WebSocket closed by the object: code={payload[0]} reason={payload[1]!r}")
        return payload  # type: ignore[no-any-return]

    def receive_nowait(self) -> str | bytes | None:
        try:
            kind, payload = self._receive.receive_nowait()
        except trio.WouldBlock:
            return None
        return payload if kind != "close" else None

    async def disconnect(self, code: int = NORMAL_CLOSURE, reason: str = "", *, clean: bool = True) -> None:
        """Close from the client side; the object's ``webSocketClose`` runs.

        ``clean=False`` is a connection lost without a Close frame: the object
        sees 1006 with workerd's reason, whatever ``code`` says.
        """
        assert self.hosted is not None
        if not clean:
            code, reason = ABNORMAL_CLOSURE, ABNORMAL_REASON
        elif self.close_code is None:
            # The host answers a Close frame with the same code at once (as
            # hypercorn does on the network, and workerd under
            # web_socket_auto_reply_to_close).
            self.close_code, self.close_reason = code, reason
        await self.hosted.on_close(code, reason, clean)


async def _finish(pending: Any, rest: list[Any], event: Any) -> None:
    """The rest of a listener round once one listener turned out to be async."""
    await pending
    for listener in rest:
        fn = listener if callable(listener) else listener.handleEvent
        result = fn(event)
        if inspect.isawaitable(result):
            await result


def note_accepted_socket_owner(owners: weakref.WeakKeyDictionary[Any, Any], response: Any) -> None:
    """An object's fetch returned a 101 whose server end it accept()ed: remember the object.

    Runs inside the object (an ``ObjectEvent.on_success``), so the current
    activation is the one whose listeners the socket's events must reach.
    """
    server = getattr(getattr(response, "web_socket", None), "_peer", None)
    if isinstance(server, WebSocketHandle) and server.accepted:
        act = current_activation()
        if act is not None:
            owners[server] = act


def websocket_request(url: str, headers: Any = None) -> Request:
    """The upgrade request a browser would send for ``url``."""
    if url.startswith("ws://"):
        url = "http://" + url[5:]
    elif url.startswith("wss://"):
        url = "https://" + url[6:]
    hdrs = dict(headers or {})
    hdrs.setdefault("Upgrade", "websocket")
    hdrs.setdefault("Connection", "Upgrade")
    hdrs.setdefault("Sec-WebSocket-Version", "13")
    return Request(url, headers=hdrs)
