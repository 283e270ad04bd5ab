"""Routing object events to their owner node, and the owner's side of it.

:class:`Router` is the runtime's :class:`runtime.Placement`: for an object
whose shard this node holds, events run here (and every commit and every
answer is checked against the shard's epoch and the lease); for any other
object, the stub call or fetch is sent to the owner's
``POST /__dohost/cluster/call`` with ``(shard, epoch)``.

Guarantees:

* An owner that does not hold that ``(shard, epoch)`` (now) answers 409
  *before running anything*; the sender waits for its owner cache to change
  and retries, up to ``retry_for`` seconds. Unreachable owners are retried
  the same way (their lease expires, another node claims the shard).
* A result leaves the owner only if, after the event's writes committed, it
  still holds the epoch with a valid lease; otherwise the caller gets an
  error (503), never an answer from a fenced node.
* A request that reached the owner and then failed is not retried: it may
  have run (its writes may appear), and retrying a non-idempotent call is
  the caller's choice, as on Cloudflare.
* Values cross nodes as MessagePack (msgspec): RPC arguments and results
  must be plain data (None, bool, int, float, str, bytes, list, dict).
  WebSocket upgrades are not forwarded (see docs/cluster.md).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import httpx
import msgspec
import trio
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from objects import Request, Response, body_bytes

from ._node import ClusterError, ClusterNode, shard_of

__all__ = ["Router", "NotOwnerError", "ForwardError"]

log = logging.getLogger("dohost.cluster")

CALL_PATH = "/__dohost/cluster/call"


class NotOwnerError(ClusterError):
    """This node may not run events of that object now (not its shard, or its lease may have expired)."""


class ForwardError(ClusterError):
    """A forwarded call failed (the owner could not be reached in time, or it refused)."""


class _Call(msgspec.Struct, kw_only=True):
    binding: str
    id: str
    name: str | None
    shard: int
    epoch: int
    kind: str  # "rpc" | "fetch"
    method: str = ""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    url: str = ""
    http_method: str = "GET"
    headers: list[tuple[str, str]] = []
    body: bytes | None = None


class _Answer(msgspec.Struct, kw_only=True):
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    status: int = 200
    headers: list[tuple[str, str]] = []
    body: bytes = b""


_encoder = msgspec.msgpack.Encoder()


class Router:
    """See the module docstring."""

    def __init__(
        self,
        node: ClusterNode,
        get_runtime: Callable[[], Any],
        *,
        token: str | None = None,
        retry_for: float | None = None,
    ) -> None:
        self.node = node
        #: The runtime now serving (it changes on a deploy); settable once the host is open.
        self.get_runtime = get_runtime
        self._token = token
        self.retry_for = retry_for if retry_for is not None else 2 * node.opts.lease_ttl + 2.0
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=1.0))
        node.on_lost = self._drop_objects
        node.on_gained = self._adopt_alarms

    async def aclose(self) -> None:
        await self._http.aclose()

    def routes(self) -> list[BaseRoute]:
        return [Route(CALL_PATH, self._serve_call, methods=["POST"])]

    # ------------------------------------------------- Placement protocol
    def shard(self, key: tuple[str, str]) -> int:
        return shard_of(key[1], self.node.opts.shards)

    def is_local(self, key: tuple[str, str]) -> bool:
        return self.node.holds(self.shard(key))

    def check_start(self, key: tuple[str, str]) -> None:
        if not self.node.holds(self.shard(key)):
            raise NotOwnerError(f"node {self.node.node_id!r} does not own object {key[1][:16]}… now (shard {self.shard(key)})")

    def check_commit(self, key: tuple[str, str]) -> None:
        # Runs just before COMMIT (possibly in the commit's worker thread): reads only.
        if not self.node.holds(self.shard(key)):
            raise NotOwnerError(f"node {self.node.node_id!r} lost shard {self.shard(key)} (or its lease) before commit")

    def confirmed(self, key: tuple[str, str], sent: Awaitable[Any]) -> Awaitable[Any]:
        shard = self.shard(key)
        epoch = self.node.mine.get(shard)

        async def answer() -> Any:
            value = await sent
            if epoch is None or not self.node.holds(shard, epoch):
                raise NotOwnerError(f"node {self.node.node_id!r} lost shard {shard} before answering; the result is withheld")
            return value

        return answer()

    def forward(
        self,
        key: tuple[str, str],
        object_id: Any,
        call: tuple[Any, ...],
        hold: Any,
        local: Callable[[], Awaitable[Any]],
    ) -> Awaitable[Any]:
        return self._forward(key, object_id, call, hold, local)

    # ------------------------------------------------------------ sender
    async def _forward(self, key: tuple[str, str], object_id: Any, call: tuple[Any, ...], hold: Any, local: Callable[[], Awaitable[Any]]) -> Any:
        if hold is not None:
            await hold.wait_committed()  # the output gate of the calling object
        shard = self.shard(key)
        body = await self._encode(key, object_id, shard, call)
        deadline = trio.current_time() + self.retry_for
        last = "no owner known"
        while trio.current_time() < deadline:
            if self.node.holds(shard):
                return await local()
            owner = self.node.owner_of(shard)
            if owner is None or owner[0] == self.node.node_id:
                await self._wait_change(deadline)
                continue
            node_id, url, epoch = owner
            body.shard, body.epoch = shard, epoch
            try:
                resp = await self._post_while_owner(shard, (node_id, url, epoch), url.rstrip("/") + CALL_PATH, _encoder.encode(body))
                if resp is None:
                    # The owner lost the shard meanwhile (its lease expired: it is dead or
                    # paused). It can no longer commit or answer, so ask the new owner.
                    last = f"{node_id} lost shard {shard} while the call waited"
                    continue
            except httpx.ConnectError as exc:
                last = f"{node_id} unreachable ({type(exc).__name__})"
                await self._wait_change(deadline)
                continue
            except httpx.TransportError as exc:
                raise ForwardError(f"the call to {node_id} for shard {shard} broke: {type(exc).__name__}") from exc
            if resp.status_code == 409:
                last = f"{node_id} refused: {resp.text}"
                await self._wait_change(deadline)
                continue
            answer = msgspec.msgpack.decode(resp.content, type=_Answer) if resp.headers.get("content-type") == "application/msgpack" else None
            if answer is None:
                raise ForwardError(f"{node_id} answered {resp.status_code}: {resp.text[:200]}")
            if answer.error is not None:
                raise ForwardError(f"{answer.error_type}: {answer.error}")
            if call[0] == "fetch":
                return Response(answer.body, status=answer.status, headers=answer.headers)
            return answer.value
        raise ForwardError(f"no owner of shard {shard} answered within {self.retry_for:.1f}s ({last})")

    async def _post_while_owner(self, shard: int, owner: tuple[str, str, int], url: str, content: bytes) -> httpx.Response | None:
        """POST to the owner; ``None`` if the shard changed hands before the answer came."""
        result: list[httpx.Response] = []
        async with trio.open_nursery() as nursery:

            async def post() -> None:
                result.append(await self._http.post(url, content=content, headers=self._auth()))
                nursery.cancel_scope.cancel()

            async def watch_owner() -> None:
                while self.node.owner_of(shard) == owner:
                    await self.node.changed.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(post)
            nursery.start_soon(watch_owner)
        return result[0] if result else None

    async def _wait_change(self, deadline: float) -> None:
        with trio.move_on_at(min(deadline, trio.current_time() + 0.25)):
            await self.node.changed.wait()

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"} if self._token else {}

    async def _encode(self, key: tuple[str, str], object_id: Any, shard: int, call: tuple[Any, ...]) -> _Call:
        base = _Call(binding=key[0], id=key[1], name=getattr(object_id, "name", None), shard=shard, epoch=0, kind=call[0])
        if call[0] == "rpc":
            _, method, args, kwargs = call
            base.method, base.args, base.kwargs = method, list(args), dict(kwargs)
            try:
                _encoder.encode(base)
            except (TypeError, msgspec.EncodeError) as exc:
                raise TypeError(f"{key[0]}.{method}(): cannot send these arguments to another cluster node ({exc})") from None
        else:
            request = call[1]
            base.url, base.http_method = request.url, request.method
            base.headers = list(request.headers.items())
            base.body = (await request.bytes()) or None
        return base

    # ------------------------------------------------------------- owner
    async def _serve_call(self, request: StarletteRequest) -> StarletteResponse:
        if self._token is not None and request.headers.get("authorization") != f"Bearer {self._token}":
            return StarletteResponse("cluster calls need the cluster token", status_code=401)
        call = msgspec.msgpack.decode(await request.body(), type=_Call)
        if not self.node.holds(call.shard, call.epoch):
            return StarletteResponse(f"{self.node.node_id} does not hold shard {call.shard} epoch {call.epoch}", status_code=409)
        rt = self.get_runtime()
        try:
            ids = rt._ids[call.binding]
            object_id = ids.id_from_name(call.name) if call.name is not None else ids.id_from_string(call.id)
            if call.kind == "rpc":
                value = await rt.send_method(call.binding, object_id, call.method, tuple(call.args), call.kwargs)
                answer = _Answer(value=value)
            else:
                req = Request(call.url, method=call.http_method, headers=call.headers, body=call.body)
                resp = await rt.send_fetch(call.binding, object_id, req)
                answer = _Answer(status=resp.status, headers=list(resp.headers.items()), body=await body_bytes(resp) or b"")
        except NotOwnerError as exc:
            return StarletteResponse(str(exc), status_code=503)
        except Exception as exc:
            answer = _Answer(error=str(exc), error_type=type(exc).__name__)
        if not self.node.holds(call.shard, call.epoch):
            return StarletteResponse(f"{self.node.node_id} lost shard {call.shard}; the result is withheld", status_code=503)
        try:
            content = _encoder.encode(answer)
        except (TypeError, msgspec.EncodeError) as exc:
            content = _encoder.encode(_Answer(error=f"cannot send the result to another cluster node ({exc})", error_type="TypeError"))
        return StarletteResponse(content, media_type="application/msgpack")

    # ------------------------------------------------------------ fencing
    async def _adopt_alarms(self, shards: set[int]) -> None:
        """This node took over ``shards``: schedule their objects' alarms from the shared index."""
        rt = self.get_runtime()
        if rt is None:
            return  # the runtime loads every indexed alarm when it starts
        adopted = rt.alarms.adopt(lambda key: self.shard(key) in shards)
        if adopted:
            log.info("took over %d alarm(s) of shards %s", adopted, sorted(shards),
                     extra={"fields": {"event": "cluster-alarms-adopted", "node": self.node.node_id, "alarms": adopted}})

    async def _drop_objects(self, shards: set[int] | None) -> None:
        """Evict every live object of ``shards`` (all of them: None); their commits are fenced."""
        rt = self.get_runtime()
        if rt is None:
            return
        # Their alarms fire on the new owner; this node forgets them (the index keeps them).
        rt.alarms.release(lambda key: shards is None or self.shard(key) in shards)
        acts = [a for k, a in list(rt._live.items()) if shards is None or self.shard(k) in shards]
        for act in acts:
            act.request_evict()
        with trio.move_on_after(10):
            for act in acts:
                await act.finished.wait()
