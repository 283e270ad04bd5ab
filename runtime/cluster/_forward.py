"""Forwarding object calls to the process that owns the object, over loopback.

Several processes serving one data directory split the objects between them
by a fixed function of the object id (:class:`HashPlacement`: the id's hex
as an integer, modulo the number of processes). Any process runs Worker
code; a stub call for an object another process owns is sent to that
process (the :class:`Forwarder` is the runtime's ``ObjectRouter``), which
runs it as a local event and sends the outcome back.

The interface the cluster mode can reuse: a :class:`Placement` (``owner_of``
an id hex -> a peer index; ``self_index``) and the peers' base URLs. The
wire is three token-authenticated routes under ``/__dohost/internal/``
(:func:`internal_routes`):

* ``POST .../rpc`` -- a method call; body and answer are pickles (the peers
  are this server's own processes, authenticated by the token; RPC values are
  already structured-clone copies). The answer is ``("ok", value)`` or
  ``("err", exception)``: the caller sees the exception the object raised.
* ``POST .../fetch`` -- ``stub.fetch(request)``; the response comes back whole.
* ``WS .../ws`` -- ``stub.fetch`` of a WebSocket upgrade: the owner connects
  its object's server end to this internal socket; the sender hands its caller
  the client end of a local pair whose server end relays frames both ways,
  close codes and reasons included (as a Worker proxying a socket would).

Guarantees and limits:

* Nothing leaves before the caller's output gate opens (``hold``): the
  forwarded call waits for the caller's pending commit, and fails with its
  error if that commit fails.
* A request is sent once; it is never retried after it may have reached the
  owner, so a call that fails in flight (the owner died) is an error to the
  caller, never a second execution. Connection attempts are retried while the
  owner restarts (its listening socket stays open in the supervisor).
* E-order across processes: calls are started in the order made, but two
  calls made without awaiting the first may overtake each other on the way.
* Values must pickle; a stub passed as an argument does not (an error names it).
"""

from __future__ import annotations

import hmac
import json
import logging
import pickle
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, Sequence
from urllib.parse import quote

import httpx
import outcome
import trio
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from objects import Request, Response, WebSocketPair, body_bytes

from .._http import StarlettePeer, refuse_upgrade, run_websocket
from .._websockets import HostedSocket
from .errors import ForwardingError

if TYPE_CHECKING:
    from .._runtime import Runtime

__all__ = ["Placement", "HashPlacement", "Forwarder", "internal_routes", "INTERNAL_PREFIX", "TOKEN_HEADER"]

log = logging.getLogger("dohost.forward")

INTERNAL_PREFIX = "/__dohost/internal"
TOKEN_HEADER = "x-dohost-internal-token"
#: Close codes a WebSocket cannot send in a Close frame (RFC 6455 7.4.1).
_UNSENDABLE = {1005, 1006, 1015}
#: How long a forwarded call may wait for the owner to accept the connection (it may be restarting).
CONNECT_PATIENCE_S = 30.0


class Placement(Protocol):
    """Which peer owns an object."""

    self_index: int

    def owner_of(self, hex_id: str) -> int: ...


class HashPlacement:
    """A fixed partition: the id's hex as an integer, modulo the number of processes."""

    def __init__(self, self_index: int, count: int) -> None:
        if not 0 <= self_index < count:
            raise ForwardingError(f"process index: expected 0..{count - 1}, got {self_index!r}")
        self.self_index = self_index
        self.count = count

    def owner_of(self, hex_id: str) -> int:
        return int(hex_id, 16) % self.count


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


def _dumps(value: Any, what: str) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ForwardingError(f"{what} cannot be sent to the process that owns the object: {exc}") from None


def _answer(kind: str, value: Any) -> StarletteResponse:
    try:
        body = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception: its text survives
        body = pickle.dumps(("err", ForwardingError(f"{value!r} could not be sent back: {exc}")))
    return StarletteResponse(body, media_type="application/octet-stream")


class Forwarder:
    """The runtime's ``ObjectRouter`` for objects partitioned among peer processes."""

    def __init__(self, placement: Placement, peers: Sequence[str], token: str) -> None:
        self.placement = placement
        #: Each peer's internal base URL (``http://127.0.0.1:PORT``), by index.
        self.peers = list(peers)
        self.token = token
        self._client: httpx.AsyncClient | None = None

    # -- ObjectRouter ---------------------------------------------------------
    def owns(self, object_id: Any) -> bool:
        return self.placement.owner_of(object_id.toString()) == self.placement.self_index

    def send_method(self, rt: Runtime, binding: str, object_id: Any, method: str, args: tuple[Any, ...],
                    kwargs: dict[str, Any], hold: Any) -> _RemoteCall:
        body = _dumps((binding, object_id.toString(), object_id.name, method, args, kwargs), f"{method}() arguments")
        return self._start(rt, hold, lambda: self._post(object_id, "rpc", body))

    def send_fetch(self, rt: Runtime, binding: str, object_id: Any, request: Any, hold: Any) -> _RemoteCall:
        async def work() -> Any:
            headers = list(request.headers.items())
            if any(k.lower() == "upgrade" and v.lower() == "websocket" for k, v in headers):
                return await self._open_websocket(rt, binding, object_id, request.url, headers)
            payload = await body_bytes(request) if request.body is not None else None
            body = _dumps((binding, object_id.toString(), object_id.name, request.url, request.method, headers,
                           payload), "the request")
            status, out_headers, content = await self._post(object_id, "fetch", body)
            return Response(content if content else None, status=status, headers=out_headers)

        return self._start(rt, hold, work)

    # -- the sending side -----------------------------------------------------
    def _start(self, rt: Runtime, hold: Any, work: Callable[[], Awaitable[Any]]) -> _RemoteCall:
        call = _RemoteCall()

        async def gated() -> Any:
            if hold is not None:
                await hold.wait_committed()  # the output gate: the caller's writes first
            return await work()

        rt._nursery.start_soon(call.run, gated)
        return call

    def _url(self, object_id: Any, route: str) -> str:
        return f"{self.peers[self.placement.owner_of(object_id.toString())]}{INTERNAL_PREFIX}/{route}"

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=CONNECT_PATIENCE_S),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                headers={TOKEN_HEADER: self.token},
            )
        return self._client

    async def _post(self, object_id: Any, route: str, body: bytes) -> Any:
        url = self._url(object_id, route)
        try:
            reply = await self.client().post(url, content=body)
        except httpx.TransportError as exc:
            raise ForwardingError(f"the process that owns object {object_id.toString()} did not answer: {exc!r}") from None
        if reply.status_code != 200:
            raise ForwardingError(f"{url}: the owner answered {reply.status_code}: {reply.text[:200]}")
        kind, value = pickle.loads(reply.content)
        if kind == "err":
            raise value
        return value

    async def broadcast(self, route: str, body: bytes = b"") -> None:
        """POST ``route`` to every other peer (a deploy: they load the new version)."""
        async with trio.open_nursery() as nursery:
            for index, base in enumerate(self.peers):
                if index != self.placement.self_index:
                    nursery.start_soon(self._notify, f"{base}{INTERNAL_PREFIX}/{route}", body)

    async def _notify(self, url: str, body: bytes) -> None:
        try:
            reply = await self.client().post(url, content=body)
            if reply.status_code != 200:
                log.error("%s answered %d: %s", url, reply.status_code, reply.text[:200])
        except httpx.TransportError as exc:
            log.error("%s did not answer: %r (it loads the current version when it restarts)", url, exc)

    async def _open_websocket(self, rt: Runtime, binding: str, object_id: Any, url: str,
                              headers: list[tuple[str, str]]) -> Any:
        from trio_websocket import ConnectionClosed, ConnectionRejected, connect_websocket_url

        target = self._url(object_id, "ws").replace("http://", "ws://", 1) + (
            f"?binding={quote(binding)}&id={object_id.toString()}"
            + (f"&name={quote(object_id.name)}" if object_id.name is not None else "")
        )
        extra = [
            (TOKEN_HEADER.encode(), self.token.encode()),
            (b"x-dohost-url", url.encode()),
            (b"x-dohost-headers", json.dumps(headers).encode()),
        ]
        try:
            conn = await connect_websocket_url(rt._nursery, target, extra_headers=extra, max_message_size=32 << 20)
        except ConnectionRejected as rejected:
            return Response(rejected.body or None, status=rejected.status_code,
                            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in rejected.headers or ()])
        client, server = WebSocketPair()
        server.accept()

        async def to_owner(event: Any) -> None:
            try:
                await conn.send_message(event.data)
            except ConnectionClosed:
                pass

        async def close_owner(event: Any) -> None:
            code = event.code if event.code not in _UNSENDABLE else 1000
            await conn.aclose(code, event.reason or None)

        server.add_event_listener("message", to_owner)
        server.add_event_listener("close", close_owner)

        async def from_owner() -> None:
            try:
                while True:
                    server.send(await conn.get_message())
            except ConnectionClosed as closed:
                code = closed.reason.code if closed.reason is not None else 1005
                reason = (closed.reason.reason if closed.reason is not None else None) or ""
                try:
                    if code in _UNSENDABLE:
                        server.close()
                    else:
                        server.close(code, reason)
                except Exception:  # the client end is gone already
                    pass
            finally:
                # trio-websocket 0.12 leaves its TCP stream open after a close the other side started.
                with trio.CancelScope(shield=True):
                    await conn._stream.aclose()

        rt._nursery.start_soon(from_owner)
        return Response(None, status=101, web_socket=client)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


# -- the owning side ---------------------------------------------------------------

def internal_routes(token: str, in_runtime: Callable[[Callable[[Runtime], Awaitable[Any]]], Awaitable[Any]],
                    extra: Sequence[BaseRoute] = ()) -> list[BaseRoute]:
    """The routes a process serves to its peers; ``in_runtime(fn)`` runs ``fn`` on the current runtime."""

    def allowed(headers: Any) -> bool:
        return hmac.compare_digest(headers.get(TOKEN_HEADER, "").encode(), token.encode())

    async def rpc(request: StarletteRequest) -> StarletteResponse:
        if not allowed(request.headers):
            return StarletteResponse("forbidden\n", status_code=403)
        binding, hex_id, name, method, args, kwargs = pickle.loads(await request.body())

        async def run(rt: Runtime) -> Any:
            return await rt.send_method(binding, rt.object_id_for(binding, hex_id, name), method, args, kwargs)

        try:
            return _answer("ok", await in_runtime(run))
        except Exception as exc:
            return _answer("err", exc)

    async def fetch(request: StarletteRequest) -> StarletteResponse:
        if not allowed(request.headers):
            return StarletteResponse("forbidden\n", status_code=403)
        binding, hex_id, name, url, method, headers, payload = pickle.loads(await request.body())

        async def run(rt: Runtime) -> Any:
            req = Request(url, method=method, headers=headers, body=payload)
            resp = await rt.send_fetch(binding, rt.object_id_for(binding, hex_id, name), req)
            return resp.status, list(resp.headers.items()), await body_bytes(resp) or b""

        try:
            return _answer("ok", await in_runtime(run))
        except Exception as exc:
            return _answer("err", exc)

    async def ws(websocket: WebSocket) -> None:
        if not allowed(websocket.headers):
            await websocket.close(code=1008)
            return
        query = websocket.query_params
        binding, hex_id, name = query["binding"], query["id"], query.get("name")
        req = Request(websocket.headers["x-dohost-url"], headers=json.loads(websocket.headers["x-dohost-headers"]))

        async def run(rt: Runtime) -> Any:
            object_id = rt.object_id_for(binding, hex_id, name)
            result = await rt.open_object_websocket(binding, object_id, req, StarlettePeer(websocket))
            if not isinstance(result, HostedSocket):
                await refuse_upgrade(websocket, result)
                return
            await run_websocket(websocket, result, rt.start_socket)

        try:
            await in_runtime(run)
        except Exception:
            log.exception("forwarded WebSocket upgrade for %s %s failed", binding, hex_id)
            await refuse_upgrade(websocket, None)

    return [
        Route(f"{INTERNAL_PREFIX}/rpc", rpc, methods=["POST"]),
        Route(f"{INTERNAL_PREFIX}/fetch", fetch, methods=["POST"]),
        WebSocketRoute(f"{INTERNAL_PREFIX}/ws", ws),
        *extra,
    ]
