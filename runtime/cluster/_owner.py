"""The owner's side of forwarding: running the calls peers send over the wire.

:class:`Owner` serves the connections a :class:`~._forward.Forwarder`
accepts: after the handshake (``_wire.accept_link``: the token, once per
connection), each :class:`Call` runs as a local event on the runtime now
serving (``Forwarder.in_runtime``) and is answered by one :class:`Reply`
with the call's id; calls on one connection run concurrently.

Guarantees:

* A call whose ``(shard, epoch)`` the ownership does not hold now (or for
  an object it does not own) is ``refused`` before anything runs.
* A result leaves only if the ownership still holds that ``(shard, epoch)``
  after the event (its writes committed); otherwise it is ``withheld``.
* Errors travel as ``_wire.error_reply`` describes (the object's own errors
  as the same kind of error).
* A ``ws`` call connects the object's socket (hibernation included) to the
  connection: the 101 goes only while the shard is held; then the peer's
  frames reach the object in order, and the object's frames and close go
  back with the call's id. A connection that ends closes its sockets with
  1006 (no close frame).
* The caller's ``traceparent`` is the current trace context while the call
  is queued (``Telemetry.resume_trace``), so the owner's spans join its trace.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import trio

from objects import Request, body_bytes

from .._websockets import ABNORMAL_CLOSURE, ABNORMAL_REASON, HostedSocket
from ._wire import Call, Link, NotSent, Reply, WsClose, WsData, accept_link, error_reply, pack_value, unpack_value
from .errors import ForwardingError, NotOwnerError

if TYPE_CHECKING:
    from .._runtime import Runtime
    from ._forward import Forwarder

__all__ = ["Owner"]

log = logging.getLogger("dohost.forward")


class Owner:
    """See the module docstring; reads its settings from the ``Forwarder`` at each call."""

    def __init__(self, forwarder: Forwarder) -> None:
        self._f = forwarder

    async def serve_link(self, stream: trio.abc.Stream) -> None:
        try:
            link = await accept_link(stream, self._f.token)
        except Exception as exc:
            log.debug("wire: handshake failed: %r", exc)
            await stream.aclose()
            return
        if link is None:
            return
        inbound: dict[int, trio.MemorySendChannel[WsData | WsClose | None]] = {}
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    frame = await link.receive()
                    if frame is None:
                        break
                    if isinstance(frame, Call):
                        nursery.start_soon(self._serve_call, link, frame, inbound)
                    elif isinstance(frame, (WsData, WsClose)):
                        channel = inbound.get(frame.id)
                        if channel is not None:
                            channel.send_nowait(frame)
                            if isinstance(frame, WsClose):
                                del inbound[frame.id]
                # The link ended: relayed sockets see the peer gone; running calls finish
                # (their writes commit), their replies have nowhere to go.
                for channel in inbound.values():
                    channel.send_nowait(None)
                inbound.clear()
        except ForwardingError as exc:
            log.error("wire: %s", exc)
        finally:
            await link.aclose()

    async def _serve_call(self, link: Link, call: Call,
                          inbound: dict[int, trio.MemorySendChannel[WsData | WsClose | None]]) -> None:
        try:
            reply = await self._run_call(link, call, inbound)
        except Exception as exc:
            reply = error_reply(call.id, exc, link.pickles)
        if reply is None:
            return  # a WebSocket relay: it answered itself
        try:
            await link.send(reply)
        except NotSent:
            pass
        except Exception as exc:  # an answer that does not encode: its text goes instead
            try:
                await link.send(error_reply(call.id, ForwardingError(f"the result could not be sent back: {exc}"), False))
            except NotSent:
                pass

    async def _run_call(self, link: Link, call: Call,
                        inbound: dict[int, trio.MemorySendChannel[WsData | WsClose | None]]) -> Reply | None:
        if call.kind == "notice":
            if self._f.on_notice is not None:
                await self._f.on_notice(call.method)
            return Reply(id=call.id, outcome="ok")
        key = (call.binding, call.object)
        ownership = self._f.ownership
        if not ownership.holds(key, call.shard, call.epoch):
            return Reply(id=call.id, outcome="refused",
                         error=f"does not hold object {call.object[:16]}… (shard {call.shard} epoch {call.epoch})")
        assert self._f.in_runtime is not None
        if call.kind == "ws":
            await self._serve_websocket(link, call, inbound)
            return None

        async def run(rt: Runtime) -> Reply:
            object_id = rt.object_id_for(call.binding, call.object, call.name)
            if call.kind == "rpc":
                if call.pickled is not None:
                    args, kwargs = unpack_value(None, call.pickled, link.pickles)
                else:
                    args, kwargs = call.args, call.kwargs
                with self._resumed(call.trace):  # the event captures the caller's trace as it is queued
                    sent = rt.send_method(call.binding, object_id, call.method, tuple(args), kwargs)
                value = await sent
                plain, pickled = pack_value(value, link.pickles)
                return Reply(id=call.id, outcome="ok", value=plain, pickled=pickled)
            request = Request(call.url, method=call.http_method, headers=call.headers, body=call.body)
            with self._resumed(call.trace):
                sent_fetch = rt.send_fetch(call.binding, object_id, request)
            response = await sent_fetch
            return Reply(id=call.id, outcome="ok", status=response.status, headers=list(response.headers.items()),
                         body=await body_bytes(response))

        try:
            reply: Reply = await self._f.in_runtime(run)
        except NotOwnerError as exc:
            return Reply(id=call.id, outcome="withheld", error=str(exc))
        if not ownership.holds(key, call.shard, call.epoch):
            return Reply(id=call.id, outcome="withheld", error=f"lost shard {call.shard}; the result is withheld")
        return reply

    def _resumed(self, trace: str | None) -> _Resumed:
        return _Resumed(self._f.resume_trace, trace)

    async def _serve_websocket(self, link: Link, call: Call,
                               inbound: dict[int, trio.MemorySendChannel[WsData | WsClose | None]]) -> None:
        assert self._f.in_runtime is not None
        request = Request(call.url, method=call.http_method, headers=call.headers, body=call.body)
        send, receive = trio.open_memory_channel[WsData | WsClose | None](float("inf"))
        # Registered before the 101 goes: the sender may write right behind it.
        inbound[call.id] = send
        peer = _LinkPeer(link, call.id)
        ownership, key = self._f.ownership, (call.binding, call.object)

        async def run(rt: Runtime) -> None:
            object_id = rt.object_id_for(call.binding, call.object, call.name)
            with self._resumed(call.trace):
                opened = rt.open_object_websocket(call.binding, object_id, request, peer)
                result = await opened
            if not isinstance(result, HostedSocket):
                inbound.pop(call.id, None)
                if not ownership.holds(key, call.shard, call.epoch):
                    await link.send(Reply(id=call.id, outcome="withheld", error=f"lost shard {call.shard}"))
                    return
                status = getattr(result, "status", None)
                if result is None or status is None or status == 101:
                    await link.send(Reply(id=call.id, outcome="ok", status=500, body=b"Internal Server Error\n"))
                    return
                await link.send(Reply(id=call.id, outcome="ok", status=status, headers=list(result.headers.items()),
                                      body=await body_bytes(result)))
                return
            if not ownership.holds(key, call.shard, call.epoch):
                inbound.pop(call.id, None)
                await result.on_close(ABNORMAL_CLOSURE, ABNORMAL_REASON, False)
                await link.send(Reply(id=call.id, outcome="withheld", error=f"lost shard {call.shard}"))
                return
            await link.send(Reply(id=call.id, outcome="ok", status=101))
            rt.start_socket(result)
            code, reason, clean = ABNORMAL_CLOSURE, ABNORMAL_REASON, False
            try:
                async for frame in receive:
                    if frame is None:
                        break
                    if isinstance(frame, WsClose):
                        code, reason, clean = frame.code, frame.reason, True
                        break
                    await result.on_message(frame.data)
            finally:
                with trio.CancelScope(shield=True):
                    await result.on_close(code, reason, clean)

        try:
            await self._f.in_runtime(run)
        except NotSent:
            inbound.pop(call.id, None)
        except Exception as exc:
            inbound.pop(call.id, None)
            log.exception("forwarded WebSocket upgrade for %s %s failed", call.binding, call.object)
            try:
                await link.send(error_reply(call.id, exc, link.pickles))
            except NotSent:
                pass
        return None


class _Resumed:
    """While entered, the current trace context is the caller's (``Telemetry.resume_trace``)."""

    __slots__ = ("_resume", "_trace", "_undo")

    def __init__(self, resume: Callable[[str | None], Callable[[], None]] | None, trace: str | None) -> None:
        self._resume, self._trace = resume, trace
        self._undo: Callable[[], None] | None = None

    def __enter__(self) -> None:
        if self._resume is not None and self._trace:
            self._undo = self._resume(self._trace)

    def __exit__(self, *exc: object) -> None:
        if self._undo is not None:
            self._undo()


class _LinkPeer:
    """``WebSocketPeer`` for a socket whose client is on the other end of a link."""

    def __init__(self, link: Link, stream_id: int) -> None:
        self._link = link
        self._id = stream_id

    async def send_text(self, data: str) -> None:
        await self._send(WsData(id=self._id, data=data))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(WsData(id=self._id, data=data))

    async def close(self, code: int, reason: str) -> None:
        await self._send(WsClose(id=self._id, code=code, reason=reason))

    async def _send(self, frame: WsData | WsClose) -> None:
        try:
            await self._link.send(frame)
        except NotSent:
            pass  # the link broke: the relay on this side sees it and closes with 1006
