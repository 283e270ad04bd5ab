"""Forwarding object calls to the process or node that owns the object: the one path for both modes.

:class:`Forwarder` is the runtime's ``runtime.Placement`` for a server whose
objects are split among peers, whichever way they are split. What differs
is only the :class:`Ownership` plugged in:

* :class:`HashPlacement` (``dohost serve --processes N``): the id's hex as an
  integer, modulo the number of processes; owners never move; peers are the
  sibling processes' Unix sockets.
* ``ShardPlacement`` (``--cluster``, ``_route.py``): shards owned through
  etcd, each with an epoch; peers are the nodes' TCP wire addresses.

A call for an object owned elsewhere travels over the wire (``_wire.py``:
one persistent connection per peer, msgspec frames, calls multiplexed by id)
carrying ``(shard, epoch)`` (``(0, 0)`` for hash placement); the owner runs
it as a local event and sends the outcome back (``_owner.py``).

Guarantees (both modes):

* Nothing leaves before the caller's output gate opens (``hold``): the
  forwarded call waits for the caller's pending commit, and fails with its
  error if that commit fails.
* The owner refuses, *before running anything*, a call for an object it
  does not own or a ``(shard, epoch)`` it does not hold now; the sender
  waits for its view of ownership to change and sends again, up to
  ``Ownership.retry_for`` seconds. A peer that does not accept connections
  (a process restarting, a dead node) is retried the same way.
* A request is sent at most once: once its first byte may have left
  (``Link.send``'s ``writing``), it is never sent again -- not when the
  connection breaks, not when the owner loses the shard while the call
  waits (cluster: the call is then abandoned, as the old owner may have run
  and committed it before it lost the shard) and not when the owner
  withholds its answer. The caller gets :class:`CallInDoubt` (Cloudflare's
  "Network connection lost.", ``retryable``: it may retry an idempotent
  call itself), never a second execution. A call not yet written (the
  owner refused it, did not accept the connection, or lost the shard while
  it was connecting) follows ownership and is sent to the new owner.
* A result leaves the owner only if it still holds the ``(shard, epoch)``
  after the event (its writes committed); otherwise the caller gets an error.
* Errors the object raised arrive as such (pickled, when the peers share a
  token -- always between processes; without a token, as their type and
  text in a :class:`ForwardingError`).
* E-order: calls are started in the order made, but two calls made without
  awaiting the first may overtake each other on the way.
* Values: scalars travel as MessagePack; anything else as a pickle (peers
  sharing a token), else as plain MessagePack data (lists, dicts) or refused.
  A stub passed as an argument does not travel (an error names it).
* ``stub.fetch`` of a WebSocket upgrade: the owner connects its object's
  socket to the link; the sender hands its caller the client end of a local
  pair whose server end relays frames both ways, close codes and reasons
  included (as a Worker proxying a socket would). The upgrade is fenced like
  any call.
"""

from __future__ import annotations

import logging
import pickle
from typing import TYPE_CHECKING, Any, Awaitable, Callable, NamedTuple, Protocol, Sequence

import outcome
import trio

from objects import Response, WebSocketPair, body_bytes
from objects._rpc_values import to_rpc_call

from ._owner import Owner
from ._wire import Call, ClientLink, NotSent, Reply, WsClose, WsData, open_link, pack_value, plain_args, reply_value
from .errors import CallInDoubt, ForwardingError, NotOwnerError

if TYPE_CHECKING:
    from .._runtime import Runtime

__all__ = ["Ownership", "Target", "HashPlacement", "Forwarder", "CONNECT_PATIENCE_S", "NotOwnerError"]

log = logging.getLogger("dohost.forward")

#: Close codes a WebSocket cannot send in a Close frame (RFC 6455 7.4.1).
_UNSENDABLE = {1005, 1006, 1015}
#: How long a forwarded call may wait for the owner to accept it (it may be restarting).
CONNECT_PATIENCE_S = 30.0


class Target(NamedTuple):
    """Where a call goes: the peer's name and wire address, and the fencing token it must hold."""

    peer: str
    address: str
    shard: int
    epoch: int


class Ownership(Protocol):
    """The pluggable part of forwarding: who owns an object, and the fencing checks."""

    #: Whether an owner can change while a call waits (a call not yet written then follows it).
    moves: bool
    #: Seconds a call keeps looking for an owner that accepts it.
    retry_for: float

    def is_local(self, key: tuple[str, str]) -> bool: ...
    def target(self, key: tuple[str, str]) -> Target | None: ...
    def holds(self, key: tuple[str, str], shard: int, epoch: int) -> bool: ...
    def check_start(self, key: tuple[str, str]) -> None: ...
    def check_commit(self, key: tuple[str, str]) -> None: ...
    def confirmed(self, key: tuple[str, str], sent: Awaitable[Any]) -> Awaitable[Any]: ...
    async def wait_change(self, deadline: float) -> None: ...


class HashPlacement:
    """A fixed partition: the id's hex as an integer, modulo the number of processes."""

    moves = False
    retry_for = CONNECT_PATIENCE_S

    def __init__(self, self_index: int, count: int, peers: Sequence[str] = ()) -> None:
        if not 0 <= self_index < count:
            raise ForwardingError(f"process index: expected 0..{count - 1}, got {self_index!r}")
        self.self_index = self_index
        self.count = count
        #: Each process's wire address (``unix:/path``), by index.
        self.peers = list(peers)

    def owner_of(self, hex_id: str) -> int:
        return int(hex_id, 16) % self.count

    def is_local(self, key: tuple[str, str]) -> bool:
        return int(key[1], 16) % self.count == self.self_index

    def target(self, key: tuple[str, str]) -> Target | None:
        index = int(key[1], 16) % self.count
        return Target(f"process {index + 1}", self.peers[index], 0, 0)

    def holds(self, key: tuple[str, str], shard: int, epoch: int) -> bool:
        return self.is_local(key)

    def check_start(self, key: tuple[str, str]) -> None:
        pass

    def check_commit(self, key: tuple[str, str]) -> None:
        pass

    def confirmed(self, key: tuple[str, str], sent: Awaitable[Any]) -> Awaitable[Any]:
        return sent

    async def wait_change(self, deadline: float) -> None:
        # Owners never move; a peer that does not answer is restarting: try again soon.
        await trio.sleep_until(min(deadline, trio.current_time() + 0.05))


class _RemoteCall:
    """A forwarded call: started now, awaited for its result (like ``ObjectEvent``)."""

    __slots__ = ("_done", "_outcome")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._outcome: outcome.Outcome[Any] | None = None

    async def run(self, work: Callable[[], Awaitable[Any]]) -> None:
        self._outcome = await outcome.acapture(work)
        self._done.set()

    async def result(self) -> Any:
        await self._done.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()

    def __await__(self) -> Any:
        return self.result().__await__()


class _Answered(NamedTuple):
    reply: Reply
    link: ClientLink


class _Moved(Exception):
    """The owner lost the shard while the call waited (it can no longer commit or answer)."""


class Forwarder:
    """The runtime's ``Placement`` over an :class:`Ownership`; serves peers' calls too. See the module docstring."""

    def __init__(self, ownership: Ownership, token: str | None, *,
                 in_runtime: Callable[[Callable[[Runtime], Awaitable[Any]]], Awaitable[Any]] | None = None,
                 trace_context: Callable[[], str | None] | None = None,
                 resume_trace: Callable[[str | None], Callable[[], None]] | None = None) -> None:
        self.ownership = ownership
        self.token = token
        #: ``await in_runtime(fn)`` runs ``fn(rt)`` on the runtime now serving (set once the host is open).
        self.in_runtime = in_runtime
        #: The caller's W3C traceparent (tracing on) and how the owner resumes it: ``Telemetry``'s.
        self.trace_context = trace_context
        self.resume_trace = resume_trace
        #: ``await on_notice(name)`` runs a peer's notice (``"reload"``: it deployed).
        self.on_notice: Callable[[str], Awaitable[None]] | None = None
        self._nursery: trio.Nursery | None = None
        self._links: dict[str, ClientLink] = {}
        self._connecting: dict[str, trio.Lock] = {}
        self._owner = Owner(self)

    # -- runtime.Placement ----------------------------------------------------
    def is_local(self, key: tuple[str, str]) -> bool:
        return self.ownership.is_local(key)

    def check_start(self, key: tuple[str, str]) -> None:
        self.ownership.check_start(key)

    def check_commit(self, key: tuple[str, str]) -> None:
        self.ownership.check_commit(key)

    def confirmed(self, key: tuple[str, str], sent: Awaitable[Any]) -> Awaitable[Any]:
        return self.ownership.confirmed(key, sent)

    def forward(self, key: tuple[str, str], object_id: Any, call: tuple[Any, ...], hold: Any,
                local: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        if self._nursery is None:
            raise ForwardingError("the forwarder is not running (Forwarder.run)")
        # Captured here, in the caller's task: the owner's spans join the caller's trace.
        trace = self.trace_context() if self.trace_context is not None else None
        if call[0] == "rpc":
            _, method, args, kwargs = call
            args, kwargs = to_rpc_call(args, kwargs)  # the same copies (and errors) as a local call
            frame = Call(id=0, kind="rpc", binding=key[0], object=key[1], name=object_id.name, method=method,
                         trace=trace)
            work: Callable[[], Awaitable[Any]] = lambda: self._send(key, frame, local, (args, kwargs))  # noqa: E731
        else:
            work = lambda: self._send_fetch(key, object_id, call[1], local, trace)  # noqa: E731
        remote = _RemoteCall()

        async def gated() -> Any:
            if hold is not None:
                await hold.wait_committed()  # the output gate: the caller's writes first
            return await work()

        self._nursery.start_soon(remote.run, gated)
        return remote

    # -- lifetime --------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the links (and the calls on their way) until cancelled; :meth:`serve` adds listeners."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            links, self._links = self._links, {}
            for link in links.values():
                await link.aclose()

    def serve(self, listeners: Sequence[trio.SocketListener]) -> None:
        """Serve peers' calls on ``listeners`` (once ``in_runtime`` is set) until :meth:`run` ends."""
        if self._nursery is None:
            raise ForwardingError("the forwarder is not running (Forwarder.run)")
        for listener in listeners:
            self._nursery.start_soon(self._accept_loop, listener)

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        assert self._nursery is not None
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # EMFILE and friends: wait, keep serving
                    log.error("wire: accept failed: %r", exc)
                    await trio.sleep(0.1)
                    continue
                self._nursery.start_soon(self._owner.serve_link, stream)

    # -- the sending side -----------------------------------------------------
    async def _link(self, target: Target) -> ClientLink:
        link = self._links.get(target.address)
        if link is not None and not link.closed:
            return link
        lock = self._connecting.setdefault(target.address, trio.Lock())
        async with lock:
            link = self._links.get(target.address)
            if link is not None and not link.closed:
                return link
            with trio.fail_after(CONNECT_PATIENCE_S):  # a restarting peer accepts from its backlog later
                link = await open_link(target.address, self.token, target.peer)
            assert self._nursery is not None
            self._nursery.start_soon(link.run)
            self._links[target.address] = link
            return link

    async def _exchange(self, key: tuple[str, str], frame: Call, local: Callable[[], Awaitable[Any]],
                        on_sent: Callable[[ClientLink, Call], None] | None = None) -> _Answered | Any:
        """Send ``frame`` to the owner until one accepts it: its answer, or ``local()``'s result."""
        ownership = self.ownership
        deadline = trio.current_time() + ownership.retry_for
        last = "no owner known"
        unsent = 0
        while True:
            if ownership.is_local(key):
                return await local()
            if trio.current_time() >= deadline:
                raise ForwardingError(f"no owner of object {key[1][:16]}… accepted the call within "
                                      f"{ownership.retry_for:.1f}s ({last})")
            target = ownership.target(key)
            if target is None:
                await ownership.wait_change(deadline)
                continue
            try:
                if ownership.moves:  # a paused owner's socket accepts but never answers: follow the cache
                    link = await self._while_owner(key, target, lambda: self._link(target))
                else:
                    link = await self._link(target)
            except (OSError, NotSent, trio.TooSlowError) as exc:
                last = f"{target.peer} unreachable ({type(exc).__name__})"
                await ownership.wait_change(deadline)
                continue
            except _Moved:
                last = f"{target.peer} lost shard {target.shard} while connecting"
                continue
            frame.id, frame.shard, frame.epoch = link.next_id(), target.shard, target.epoch
            if on_sent is not None:
                on_sent(link, frame)
            written = False

            def writing() -> None:
                nonlocal written
                written = True

            try:
                if ownership.moves:
                    reply = await self._while_owner(key, target, lambda: link.call(frame, writing))
                else:
                    reply = await link.call(frame, writing)
            except NotSent as exc:  # never reached the owner: safe to send again
                last = f"{target.peer}: {exc}"
                unsent += 1
                if unsent > 1:  # a stale connection is replaced at once; a peer that keeps closing is waited for
                    await ownership.wait_change(deadline)
                continue
            except _Moved:
                if written:
                    # The old owner may have run (and committed) it before it lost the shard:
                    # sending it again could run it twice. The caller decides.
                    log.warning("a call to %s %s… was on its way to %s when it lost shard %d: not sent again",
                                key[0], key[1][:16], target.peer, target.shard,
                                extra={"fields": {"event": "forward-in-doubt", "peer": target.peer}})
                    raise CallInDoubt() from None
                # Never written: safe to send to the new owner.
                last = f"{target.peer} lost shard {target.shard} before the call was sent"
                continue
            if reply.outcome == "refused":
                last = f"{target.peer} refused: {reply.error}"
                await ownership.wait_change(deadline)
                continue
            return _Answered(reply, link)

    async def _while_owner(self, key: tuple[str, str], target: Target, work: Callable[[], Awaitable[Any]]) -> Any:
        """``await work()``, given up (:class:`_Moved`) if the object's owner changes meanwhile.

        ``work``'s own error is raised as such (not in an exception group), so
        the caller's ``except`` clauses see it: a refused connection is waited
        out like any unreachable owner.
        """
        got: outcome.Outcome[Any] | None = None
        ownership = self.ownership
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                nonlocal got
                try:
                    got = outcome.Value(await work())
                except Exception as exc:  # Cancelled (BaseException) stays with the nursery
                    got = outcome.Error(exc)
                nursery.cancel_scope.cancel()

            async def watch() -> None:
                while ownership.target(key) == target:
                    await ownership.wait_change(trio.current_time() + 3600)
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            nursery.start_soon(watch)
        if got is None:
            raise _Moved()
        return got.unwrap()

    async def _send(self, key: tuple[str, str], frame: Call, local: Callable[[], Awaitable[Any]],
                    call: tuple[tuple[Any, ...], dict[str, Any]]) -> Any:
        args, kwargs = call
        prepared = False

        def prepare(link: ClientLink, frame: Call) -> None:
            nonlocal prepared
            if prepared:
                return
            prepared = True
            if plain_args(args, kwargs):
                frame.args, frame.kwargs = list(args), kwargs
            elif link.pickles:
                try:
                    frame.pickled = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:
                    raise ForwardingError(f"{frame.method}() arguments cannot be sent to the owner: {exc}") from None
            else:
                try:
                    pack_value([list(args), kwargs], False)
                except TypeError as exc:
                    raise TypeError(f"{frame.binding}.{frame.method}(): the arguments {exc}") from None
                frame.args, frame.kwargs = list(args), kwargs

        got = await self._exchange(key, frame, local, prepare)
        if not isinstance(got, _Answered):
            return got  # the object became local meanwhile: it ran here
        return reply_value(got.reply, got.link)

    async def _send_fetch(self, key: tuple[str, str], object_id: Any, request: Any,
                          local: Callable[[], Awaitable[Any]], trace: str | None) -> Any:
        headers = list(request.headers.items())
        upgrade = any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in headers)
        payload = await body_bytes(request) if request.body is not None else None
        frame = Call(id=0, kind="ws" if upgrade else "fetch", binding=key[0], object=key[1], name=object_id.name,
                     url=request.url, http_method=request.method, headers=headers, body=payload, trace=trace)
        if not upgrade:
            got = await self._exchange(key, frame, local)
            if not isinstance(got, _Answered):
                return got
            reply = got.reply
            if reply.outcome != "ok":
                reply_value(reply, got.link)
            return Response(reply.body or None, status=reply.status, headers=reply.headers)
        return await self._open_websocket(key, frame, local)

    async def _open_websocket(self, key: tuple[str, str], frame: Call, local: Callable[[], Awaitable[Any]]) -> Any:
        # The pair exists before the call is sent: the owner's first frames may
        # arrive right behind its 101, before this task runs again.
        client, server = WebSocketPair()
        server.accept()
        state: dict[str, Any] = {"link": None, "id": 0}

        def sink(frame_in: WsData | WsClose | None) -> None:
            try:
                if isinstance(frame_in, WsData):
                    server.send(frame_in.data)
                elif isinstance(frame_in, WsClose) and frame_in.code not in _UNSENDABLE:
                    server.close(frame_in.code, frame_in.reason)
                else:  # no Close frame (or the link broke)
                    server.close()
            except Exception:  # the client end is gone already
                pass

        def detach() -> None:
            if state["link"] is not None:
                state["link"].streams.pop(state["id"], None)

        def attach(link: ClientLink, call: Call) -> None:
            detach()
            state["link"], state["id"] = link, call.id
            link.streams[call.id] = sink

        try:
            got = await self._exchange(key, frame, local, attach)
        except BaseException:
            detach()
            raise
        if not isinstance(got, _Answered):
            detach()
            return got
        reply, link = got.reply, got.link
        if reply.outcome != "ok" or reply.status != 101:
            detach()
            if reply.outcome != "ok":
                reply_value(reply, link)
            return Response(reply.body or None, status=reply.status, headers=reply.headers)
        stream_id = frame.id

        async def to_owner(event: Any) -> None:
            try:
                await link.send(WsData(id=stream_id, data=event.data))
            except NotSent:
                pass

        async def close_owner(event: Any) -> None:
            code = event.code if event.code not in _UNSENDABLE else 1000
            link.streams.pop(stream_id, None)
            try:
                await link.send(WsClose(id=stream_id, code=code, reason=event.reason or ""))
            except NotSent:
                pass

        server.add_event_listener("message", to_owner)
        server.add_event_listener("close", close_owner)
        return Response(None, status=101, web_socket=client)

    async def broadcast(self, notice: str) -> None:
        """Send ``notice`` to every other process (a deploy: they load the new version)."""
        ownership = self.ownership
        if not isinstance(ownership, HashPlacement):
            return
        async with trio.open_nursery() as nursery:
            for index, address in enumerate(ownership.peers):
                if index != ownership.self_index:
                    nursery.start_soon(self._notify, Target(f"process {index + 1}", address, 0, 0), notice)

    async def _notify(self, target: Target, notice: str) -> None:
        try:
            link = await self._link(target)
            reply = await link.call(Call(id=link.next_id(), kind="notice", method=notice))
            if reply.outcome != "ok":
                log.error("%s could not %s: %s", target.peer, notice, reply.error)
        except (OSError, ForwardingError, trio.TooSlowError) as exc:
            log.error("%s did not answer: %r (it loads the current version when it restarts)", target.peer, exc)

    # -- the owning side ----------------------------------------------------------
    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one peer's connection (accepted here, or handed in by a test) until it ends."""
        await self._owner.serve_link(stream)
