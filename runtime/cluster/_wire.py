"""The wire between dohost processes and nodes: one persistent, multiplexed connection per peer.

A *link* is one stream connection -- a Unix domain socket between the
processes of one server, TCP between cluster nodes -- carrying frames: a
4-byte big-endian length, then one MessagePack-encoded :data:`Frame` (msgspec
tagged Structs). Every call carries an id, so any number of calls (and
relayed WebSockets) share one connection and their answers may come back in
any order.

* Handshake, once per connection: the connecting side sends :class:`Hello`
  with the token; the accepting side answers :class:`Welcome` (``error`` set,
  then closes, when the token is wrong). ``Welcome.pickles`` says whether
  values may travel as pickles: only when both sides share a token, so a
  pickle is never loaded from a peer that did not prove it knows the token.
* The connecting side sends :class:`Call`; the accepting side answers one
  :class:`Reply` with the same id. A ``"ws"`` call that was accepted (status
  101) is followed, both ways, by :class:`WsData` and one :class:`WsClose`
  per side with that id.
* Values: scalars as MessagePack, anything else pickled when the link
  allows it (else plain MessagePack data or refused). An error the object's
  code raised (``objects.errors.RemoteError``, whose classes are made at run
  time and never pickle) travels as its type name, builtin base, message,
  traceback and flags, and is rebuilt as the same kind of error; any other
  error pickled when allowed, its type and text always.
* A link whose connection breaks fails every call waiting on it with
  :class:`LinkBroken` (the call may have reached the other side: a
  :class:`~.errors.CallInDoubt`, never sent again) and closes
  every WebSocket relayed on it with 1006. A frame is written whole under a
  lock: one that could not be written never reaches the other side (a
  partial frame is never decoded), so :class:`NotSent` is safe to retry.
"""

from __future__ import annotations

import builtins
import hmac
import logging
import pickle
from typing import Any, Callable, Union

import msgspec
import trio

from objects.errors import RemoteError, remote_error

from .errors import CallInDoubt, ForwardingError

__all__ = [
    "Hello", "Welcome", "Call", "Reply", "WsData", "WsClose", "Frame", "Link", "ClientLink", "LinkBroken", "NotSent",
    "open_link", "accept_link", "pack_value", "unpack_value", "error_reply", "reply_value", "MAX_FRAME_BYTES",
]

log = logging.getLogger("dohost.wire")

#: The largest frame a link accepts (a request or response body travels whole in one frame).
MAX_FRAME_BYTES = 256 << 20
_PLAIN = frozenset({type(None), bool, int, float, str, bytes})


class Hello(msgspec.Struct, tag="hello", array_like=True):
    token: str | None


class Welcome(msgspec.Struct, tag="welcome", array_like=True):
    pickles: bool
    error: str | None = None


class Call(msgspec.Struct, tag="call", array_like=True):
    """A request to the owner: ``kind`` is ``rpc``, ``fetch``, ``ws`` or ``notice``."""

    id: int
    kind: str
    binding: str = ""
    object: str = ""
    name: str | None = None
    #: The fencing token: the owner runs the call only while it holds this shard at this epoch.
    shard: int = 0
    epoch: int = 0
    method: str = ""
    #: RPC arguments as plain values, or ``pickled`` (``(args, kwargs)``) when they need it.
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    pickled: bytes | None = None
    url: str = ""
    http_method: str = "GET"
    headers: list[tuple[str, str]] = []
    body: bytes | None = None
    #: The caller's W3C ``traceparent`` (tracing on), so the owner's spans join its trace.
    trace: str | None = None


class Reply(msgspec.Struct, tag="reply", array_like=True):
    """The answer to a :class:`Call`: ``outcome`` is ``ok``, ``error``, ``refused`` or ``withheld``.

    ``refused``: the owner did not hold ``(shard, epoch)`` and ran nothing.
    ``withheld``: the owner lost the shard while (or before) running it; it may have run.
    """

    id: int
    outcome: str
    value: Any = None
    #: The value (or, with ``outcome == "error"``, the exception) pickled, when it needs it.
    pickled: bytes | None = None
    error: str = ""
    error_type: str = ""
    #: An error the object's code raised (``objects.errors.RemoteError``): the builtin exception
    #: it derives from, its traceback text, and its flags (1 retryable, 2 overloaded, 4 reset).
    remote_base: str = ""
    traceback: str | None = None
    flags: int = 0
    status: int = 0
    headers: list[tuple[str, str]] = []
    body: bytes | None = None


class WsData(msgspec.Struct, tag="wsd", array_like=True):
    id: int
    data: Any  # str or bytes (MessagePack keeps them apart)


class WsClose(msgspec.Struct, tag="wsc", array_like=True):
    id: int
    code: int
    reason: str


Frame = Union[Hello, Welcome, Call, Reply, WsData, WsClose]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)


class LinkBroken(CallInDoubt):
    """The connection broke while a call was on it: the call may have reached the other side."""


class NotSent(ForwardingError):
    """A frame could not be written: the other side never saw it (a retry is safe)."""


def _scalar(value: Any) -> bool:
    """Whether MessagePack carries ``value`` exactly as it is (a scalar; an int within 64 bits)."""
    return type(value) in _PLAIN and (type(value) is not int or -(1 << 63) <= value < (1 << 64))


def pack_value(value: Any, pickles: bool) -> tuple[Any, bytes | None]:
    """``(plain value, None)`` or ``(None, pickle)``; raises ``TypeError`` for a value neither can carry."""
    if _scalar(value):
        return value, None
    if pickles:
        return None, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        _encoder.encode(value)  # no token, no pickles: plain data only (lists, dicts, scalars)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"cannot be sent to another node without a shared token ({exc})") from None
    return value, None


def unpack_value(value: Any, pickled: bytes | None, pickles: bool) -> Any:
    if pickled is None:
        return value
    if not pickles:
        raise ForwardingError("a pickled value came over a link without a token; refused")
    return pickle.loads(pickled)


def plain_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether every argument is a scalar MessagePack carries exactly (the common case: no pickle)."""
    return all(map(_scalar, args)) and all(map(_scalar, kwargs.values()))


class Link:
    """Frames over one stream, either side; writes are serialized, reads belong to one task."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._send_lock = trio.Lock()
        self._buffer = bytearray()
        self.closed = False
        #: Whether values may be pickled on this link (both sides share a token).
        self.pickles = False

    async def send(self, frame: Any, writing: Callable[[], None] | None = None) -> None:
        """Write one whole frame; :class:`NotSent` if it could not be (the link is then closed).

        ``writing()`` is called just before the first byte may leave: from then
        on the frame may reach the other side (even if this call is cancelled).
        """
        data = _encoder.encode(frame)
        async with self._send_lock:
            if self.closed:
                raise NotSent("the connection is closed")
            if writing is not None:
                writing()
            try:
                await self.stream.send_all(len(data).to_bytes(4, "big") + data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.closed = True
                raise NotSent(f"the connection broke ({exc!r})") from None
            except trio.Cancelled:
                # Part of the frame may be out: the stream is unusable. Its reader
                # fails every call waiting on it (they may have reached the other side).
                self.closed = True
                with trio.CancelScope(shield=True):
                    await self.stream.aclose()
                raise

    async def receive(self) -> Any:
        """The next frame, or ``None`` once the other side closed (or the connection broke)."""
        buf = self._buffer
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if size > MAX_FRAME_BYTES:
                    raise ForwardingError(f"a frame of {size} bytes is larger than {MAX_FRAME_BYTES}")
                if len(buf) >= 4 + size:
                    frame = _decoder.decode(buf[4:4 + size])  # the slice is the one copy
                    del buf[:4 + size]
                    return frame
            try:
                chunk = await self.stream.receive_some(1 << 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                chunk = b""
            if not chunk:
                return None
            buf += chunk

    async def aclose(self) -> None:
        self.closed = True
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: Reply | None = None


#: What a relayed WebSocket does with the frames the other side sends: ``(data | close)``.
StreamSink = Callable[[Union[WsData, WsClose, None]], None]


class ClientLink(Link):
    """The connecting side: calls by id; :meth:`run` (one task) reads the replies."""

    def __init__(self, stream: trio.abc.Stream, label: str) -> None:
        super().__init__(stream)
        self.label = label
        self._next = 0
        self._pending: dict[int, _Pending] = {}
        #: Relayed WebSockets: call id -> what receives the other side's frames (None: the link broke).
        self.streams: dict[int, StreamSink] = {}

    def next_id(self) -> int:
        self._next += 1
        return self._next

    async def handshake(self, token: str | None) -> None:
        await self.send(Hello(token=token))
        welcome = await self.receive()
        if not isinstance(welcome, Welcome):
            raise NotSent(f"{self.label} closed the connection before the handshake")
        if welcome.error is not None:
            raise ForwardingError(f"{self.label} refused the connection: {welcome.error}")
        self.pickles = welcome.pickles

    def start(self, call: Call) -> _Pending:
        """Register ``call`` for its reply (before it is sent: the reply may come at once)."""
        pending = _Pending()
        self._pending[call.id] = pending
        return pending

    async def call(self, call: Call, writing: Callable[[], None] | None = None) -> Reply:
        """Send ``call`` and wait for its reply (``writing`` as for :meth:`Link.send`)."""
        pending = self.start(call)
        try:
            await self.send(call, writing)
            return await self.wait(pending)
        finally:
            self._pending.pop(call.id, None)

    async def wait(self, pending: _Pending) -> Reply:
        await pending.done.wait()
        if pending.reply is None:
            raise LinkBroken(f"the connection to {self.label} broke while the call was on it")
        return pending.reply

    async def run(self) -> None:
        """Read frames until the connection ends; then fail what waits on it."""
        try:
            while True:
                frame = await self.receive()
                if frame is None:
                    break
                if isinstance(frame, Reply):
                    pending = self._pending.pop(frame.id, None)
                    if pending is not None:
                        pending.reply = frame
                        pending.done.set()
                elif isinstance(frame, (WsData, WsClose)):
                    sink = self.streams.get(frame.id)
                    if sink is not None:
                        if isinstance(frame, WsClose):
                            del self.streams[frame.id]
                        sink(frame)
        except ForwardingError as exc:
            log.error("link to %s: %s", self.label, exc)
        finally:
            self.closed = True
            pending_calls, self._pending = self._pending, {}
            for pending in pending_calls.values():
                pending.done.set()
            sinks, self.streams = self.streams, {}
            for sink in sinks.values():
                sink(None)
            with trio.CancelScope(shield=True):
                await self.stream.aclose()


def parse_address(address: str) -> tuple[str, str, int]:
    """``unix:/path`` or ``tcp:host:port`` -> ``(kind, host or path, port)``."""
    kind, _, rest = address.partition(":")
    if kind == "unix":
        return kind, rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return kind, host.strip("[]"), int(port)
    raise ForwardingError(f"a peer address: expected unix:PATH or tcp:HOST:PORT, got {address!r}")


async def open_link(address: str, token: str | None, label: str) -> ClientLink:
    """Connect and shake hands; ``OSError`` if nothing listens, :class:`NotSent` if it closed at once."""
    kind, where, port = parse_address(address)
    stream: trio.abc.Stream
    if kind == "unix":
        stream = await trio.open_unix_socket(where)
    else:
        stream = await trio.open_tcp_stream(where, port)
    link = ClientLink(stream, label)
    try:
        await link.handshake(token)
    except BaseException:
        await link.aclose()
        raise
    return link


async def accept_link(stream: trio.abc.Stream, token: str | None) -> Link | None:
    """The accepting side's handshake: the link, or ``None`` (refused, closed)."""
    link = Link(stream)
    hello = await link.receive()
    if not isinstance(hello, Hello):
        await link.aclose()
        return None
    if token is not None and not hmac.compare_digest((hello.token or "").encode(), token.encode()):
        try:
            await link.send(Welcome(pickles=False, error="wrong token"))
        except NotSent:
            pass
        await link.aclose()
        return None
    link.pickles = token is not None
    await link.send(Welcome(pickles=link.pickles))
    return link


def error_reply(call_id: int, exc: BaseException, pickles: bool) -> Reply:
    """The reply for a call that raised ``exc``; :func:`reply_value` raises it again on the caller's side."""
    # Its type and text always travel: an exception that does not pickle (or unpickle) keeps them.
    reply = Reply(id=call_id, outcome="error", error=str(exc), error_type=type(exc).__name__)
    if isinstance(exc, RemoteError):
        # Raised by the object's code: rebuilt on the caller's side as the same kind of error
        # (its classes are made at run time, so they never pickle).
        reply.error_type, reply.error, reply.traceback = exc.remote_type, exc.message, exc.remote_traceback
        reply.remote_base = next((k.__name__ for k in type(exc).__mro__ if k.__module__ == "builtins"
                                  and issubclass(k, Exception) and k is not Exception), "Exception")
        reply.flags = (1 if getattr(exc, "retryable", False) is True else 0) \
            | (2 if getattr(exc, "overloaded", False) is True else 0) \
            | (4 if getattr(exc, "durableObjectReset", False) is True else 0)
        return reply
    if pickles:
        try:
            reply.pickled = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
    return reply


def reply_value(reply: Reply, link: ClientLink) -> Any:
    """An ``rpc`` reply's value, or the error it carries raised."""
    if reply.outcome == "ok":
        return unpack_value(reply.value, reply.pickled, link.pickles)
    if reply.outcome == "error" and reply.remote_base:
        base = getattr(builtins, reply.remote_base, Exception)
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = Exception
        original = type(reply.error_type, (base,), {})
        raise remote_error(original(reply.error), retryable=bool(reply.flags & 1), overloaded=bool(reply.flags & 2),
                           durable_object_reset=bool(reply.flags & 4), traceback_text=reply.traceback)
    if reply.outcome == "error":
        error: BaseException | None = None
        if reply.pickled is not None and link.pickles:
            try:
                error = pickle.loads(reply.pickled)
            except Exception:
                error = None
        if isinstance(error, BaseException):
            raise error
        raise ForwardingError(f"{reply.error_type}: {reply.error}")
    if reply.outcome == "withheld":  # it may have run (and committed): not sent again
        raise CallInDoubt(f"{link.label} withheld the call: {reply.error}")
    raise ForwardingError(f"{link.label} {reply.outcome} the call: {reply.error}")
