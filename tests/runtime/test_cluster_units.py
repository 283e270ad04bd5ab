"""runtime.cluster without etcd: placement hashing, the owner cache, self-fencing, the wire, the owner's refusal."""

from __future__ import annotations

import re
import time
from collections import Counter
from functools import partial
from typing import Any, cast

import msgspec
import pytest

import trio
import trio.testing

from runtime.cluster import (
    ClusterNode, ClusterOptions, EtcdClient, Forwarder, ForwardingError, HashPlacement, NotOwnerError, ShardPlacement,
    rendezvous_owner, shard_of,
)
from runtime.cluster._etcd import EtcdUnavailable, KeyValue, WatchEvent, prefix_end
from runtime.cluster._wire import Call, ClientLink, LinkBroken, Reply, accept_link


def make_node(node_id: str = "a") -> ClusterNode:
    opts = ClusterOptions(endpoints=["http://127.0.0.1:9"], node_id=node_id, advertise="http://127.0.0.1:1", lease_ttl=3)
    return ClusterNode(EtcdClient(opts.endpoints), opts)


def put(key: str, value: str, create: int, mod: int, lease: int = 0) -> WatchEvent:
    return WatchEvent(kind="PUT", kv=KeyValue(key=key.encode(), value=value.encode(), create_revision=create, mod_revision=mod, lease=lease))


def delete(key: str, mod: int) -> WatchEvent:
    return WatchEvent(kind="DELETE", kv=KeyValue(key=key.encode(), value=b"", create_revision=0, mod_revision=mod, lease=0))


def test_an_object_id_maps_to_the_same_shard_on_every_node() -> None:
    hex_id = "ab" * 32
    assert shard_of(hex_id, 64) == shard_of(hex_id, 64)
    spread = Counter(shard_of(f"{i:064x}", 64) for i in range(6400))
    assert len(spread) == 64 and min(spread.values()) > 50


def test_rendezvous_moves_only_the_shards_of_a_node_that_leaves() -> None:
    before = {s: rendezvous_owner(s, ["a", "b", "c"]) for s in range(64)}
    after = {s: rendezvous_owner(s, ["a", "c"]) for s in range(64)}
    moved = {s for s in range(64) if before[s] != after[s]}
    assert moved == {s for s in range(64) if before[s] == "b"}
    assert rendezvous_owner(0, []) is None


def test_prefix_end_selects_exactly_the_keys_under_a_prefix() -> None:
    assert prefix_end(b"/dohost/") == b"/dohost0"
    assert prefix_end(b"a\xff") == b"b"


def test_a_late_watch_event_never_undoes_a_newer_owner() -> None:
    node = make_node("a")
    node.lease = 7
    node._apply(put("/dohost/shards/3", "a", create=20, mod=20, lease=7))
    assert node.mine == {3: 20} and node.owners[3] == ("a", 20)
    node._apply(put("/dohost/shards/3", "b", create=10, mod=10))  # older than what we know
    assert node.owners[3] == ("a", 20) and node.mine == {3: 20}
    node._apply(delete("/dohost/shards/3", mod=25))
    assert 3 not in node.owners and node.mine == {}


def test_a_shard_key_of_another_lease_is_not_ours_even_with_our_name() -> None:
    node = make_node("a")
    node.lease = 7
    node._apply(put("/dohost/shards/1", "a", create=5, mod=5, lease=6))  # our previous lease's key
    assert node.owners[1] == ("a", 5) and node.mine == {}


def test_a_node_holds_nothing_once_its_lease_may_have_expired() -> None:
    node = make_node("a")
    node.mine = {3: 20}
    node.deadline = time.monotonic() + 60
    assert node.holds(3) and node.holds(3, 20) and not node.holds(3, 19) and not node.holds(4)
    node.deadline = time.monotonic() - 0.001
    assert not node.holds(3)


def test_the_owner_cache_names_the_owner_url_only_while_the_owner_is_a_member() -> None:
    node = make_node("a")
    node._apply(put("/dohost/nodes/b", "http://b:1", create=2, mod=2))
    node._apply(put("/dohost/shards/9", "b", create=4, mod=4))
    assert node.owner_of(9) == ("b", "http://b:1", 4)
    node._apply(delete("/dohost/nodes/b", mod=6))
    assert node.owner_of(9) is None


async def test_starting_or_committing_an_object_of_a_shard_not_held_raises() -> None:
    node = make_node("a")
    router = ShardPlacement(node, lambda: None)
    key = ("COUNTER", "cd" * 32)
    shard = router.shard(key)
    with pytest.raises(NotOwnerError, match=r"^node 'a' does not own object cdcdcdcdcdcdcdcd… now \(shard \d+\)$"):
        router.check_start(key)
    node.mine = {shard: 11}
    node.deadline = time.monotonic() + 60
    router.check_start(key)
    router.check_commit(key)
    node.deadline = 0.0
    with pytest.raises(NotOwnerError, match=r"lost shard \d+ \(or its lease\) before commit$"):
        router.check_commit(key)
    await node.etcd.aclose()


async def test_an_owner_refuses_a_call_for_an_epoch_it_does_not_hold_before_running_it() -> None:
    node = make_node("a")
    ran: list[Any] = []

    async def in_runtime(fn: Any) -> Any:
        ran.append("runtime asked")

    forwarder = Forwarder(ShardPlacement(node, lambda: None), None, in_runtime=in_runtime)
    node.mine = {5: 11}
    node.deadline = time.monotonic() + 60
    hex_id = next(f"{i:064x}" for i in range(10_000) if shard_of(f"{i:064x}", 64) == 5)
    async with trio.open_nursery() as nursery:
        link = await _linked(nursery, forwarder, None)
        stale = await link.call(Call(id=link.next_id(), kind="rpc", binding="COUNTER", object=hex_id, shard=5, epoch=10,
                                     method="increment"))
        other_shard = await link.call(Call(id=link.next_id(), kind="rpc", binding="COUNTER", object="cd" * 32, shard=5,
                                           epoch=11, method="increment"))
        nursery.cancel_scope.cancel()
    assert (stale.outcome, stale.error) == ("refused", f"does not hold object {hex_id[:16]}… (shard 5 epoch 10)")
    assert other_shard.outcome == "refused"  # the object is not in the shard the call names
    assert ran == []
    await node.etcd.aclose()


async def _linked(nursery: trio.Nursery, forwarder: Forwarder, token: str | None) -> ClientLink:
    """A client link to ``forwarder``'s owning side over an in-memory stream."""
    ours, theirs = trio.testing.memory_stream_pair()
    nursery.start_soon(forwarder.serve_stream, theirs)
    link = ClientLink(ours, "peer")
    await link.handshake(token)
    nursery.start_soon(link.run)
    return link


async def test_a_link_with_a_wrong_token_is_refused_at_the_handshake() -> None:
    forwarder = Forwarder(HashPlacement(0, 2), "secret")
    async with trio.open_nursery() as nursery:
        with pytest.raises(ForwardingError, match="^peer refused the connection: wrong token$"):
            await _linked(nursery, forwarder, "guess")
        link = await _linked(nursery, forwarder, "secret")
        assert link.pickles  # both sides share the token: values may travel as pickles
        nursery.cancel_scope.cancel()


async def test_calls_on_one_link_get_their_own_replies_in_whatever_order_they_finish() -> None:
    release = trio.Event()

    async def in_runtime(fn: Any) -> Any:
        return await fn(None)

    class _Runtime:
        def object_id_for(self, binding: str, hex_id: str, name: str | None) -> Any:
            return hex_id

        def send_method(self, binding: str, object_id: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            async def run() -> Any:
                if method == "slow":
                    await release.wait()
                if method == "fail":
                    raise KeyError("no such thing")
                return (method, args, kwargs)
            return run()

    async def runtime_in(fn: Any) -> Any:
        return await fn(_Runtime())

    forwarder = Forwarder(HashPlacement(0, 1), "t", in_runtime=runtime_in)
    replies: dict[str, Reply] = {}
    async with trio.open_nursery() as nursery:
        link = await _linked(nursery, forwarder, "t")

        async def call(method: str, *args: Any) -> None:
            replies[method] = await link.call(Call(id=link.next_id(), kind="rpc", binding="B", object="0" * 64,
                                                   method=method, args=list(args)))

        nursery.start_soon(call, "slow", 1)
        await trio.testing.wait_all_tasks_blocked()
        await call("fast", "x")
        assert list(replies) == ["fast"]  # not stuck behind the slow call on the same connection
        await call("fail")
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    import pickle

    assert pickle.loads(replies["fast"].pickled or b"") == ("fast", ("x",), {})  # a tuple: it needs a pickle
    assert pickle.loads(replies["slow"].pickled or b"") == ("slow", (1,), {})
    error = pickle.loads(replies["fail"].pickled or b"")
    assert isinstance(error, KeyError) and error.args == ("no such thing",)  # the object's error, as such


async def test_a_call_on_a_link_that_breaks_fails_and_is_not_sent_again() -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    got: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def owner() -> None:
            link = await accept_link(theirs, None)
            assert link is not None
            got.append(await link.receive())
            await link.aclose()  # dies with the call taken

        nursery.start_soon(owner)
        client = ClientLink(ours, "peer")
        await client.handshake(None)
        nursery.start_soon(client.run)
        with pytest.raises(LinkBroken, match="^the connection to peer broke while the call was on it$"):
            await client.call(Call(id=client.next_id(), kind="rpc", binding="B", object="0" * 64, method="m"))
    assert [type(frame).__name__ for frame in got] == ["Call"]


async def test_without_a_shared_token_a_pickled_value_is_refused() -> None:
    ran: list[str] = []

    class _Runtime:
        def object_id_for(self, binding: str, hex_id: str, name: str | None) -> Any:
            return hex_id

        def send_method(self, *args: Any) -> Any:
            ran.append("ran")

    async def runtime_in(fn: Any) -> Any:
        return await fn(_Runtime())

    forwarder = Forwarder(HashPlacement(0, 1), None, in_runtime=runtime_in)
    async with trio.open_nursery() as nursery:
        link = await _linked(nursery, forwarder, None)
        assert not link.pickles
        import pickle

        reply = await link.call(Call(id=link.next_id(), kind="rpc", binding="B", object="0" * 64, method="m",
                                     pickled=pickle.dumps(((), {}))))
        nursery.cancel_scope.cancel()
    assert (reply.outcome, reply.error_type) == ("error", "ForwardingError")
    assert reply.error == "a pickled value came over a link without a token; refused"
    assert ran == []


class _Switch:
    """A Placement whose one switch says whether every object is local (this node owns it)."""

    def __init__(self) -> None:
        self.local = True

    def is_local(self, key: tuple[str, str]) -> bool:
        return self.local

    def check_start(self, key: tuple[str, str]) -> None:
        if not self.local:
            raise NotOwnerError("not ours")

    check_commit = check_start

    def confirmed(self, key: tuple[str, str], sent: Any) -> Any:
        return sent

    def forward(self, key: tuple[str, str], object_id: Any, call: Any, hold: Any, local: Any) -> Any:
        return local()


async def test_an_alarm_of_an_object_another_node_owns_is_not_fired_here_until_adopted(autojump_clock: Any) -> None:
    import trio

    from objects import DurableObject
    from runtime import open_runtime

    fired: list[float] = []

    class Timer(DurableObject):
        async def arm(self, ms: float) -> None:
            await self.ctx.storage.setAlarm(self.env.NOW() + ms)

        async def alarm(self, alarm_info: Any = None) -> None:
            fired.append(self.env.NOW())

    switch = _Switch()
    holder: dict[str, Any] = {}
    async with open_runtime(bindings={"T": Timer}, vars={"NOW": lambda: holder["rt"].now_ms()}, placement=switch) as rt:
        holder["rt"] = rt
        await rt.env.T.getByName("t").arm(5000)
        switch.local = False  # the shard moved to another node
        await trio.sleep(10)
        assert fired == []  # not fired (nor retried) by a node that does not own the object
        assert rt.alarms.adopt(lambda key: False) == 0
        switch.local = True  # this node took the shard (back) over
        assert rt.alarms.adopt(lambda key: key[0] == "T") == 1
        await trio.sleep(0.1)
        assert len(fired) == 1
        assert rt.alarms.adopt(lambda key: True) == 0  # the alarm ran: the index forgot it


async def test_a_node_reports_shards_it_holds_again_after_a_fence_as_gained() -> None:
    node = make_node("a")
    reported: list[set[int]] = []

    async def gained(shards: set[int]) -> None:
        reported.append(shards)

    node.on_gained = gained
    node.mine = {1: 10, 2: 11}
    node.deadline = time.monotonic() + 60

    await node._report_gains()
    await node._report_gains()  # nothing new
    node._reported.clear()  # what _fence does
    await node._report_gains()
    node.mine[2] = 15  # lost and claimed again: a new epoch
    await node._report_gains()
    node.deadline = 0.0  # fenced: holds nothing, reports nothing
    await node._report_gains()
    assert reported == [{1, 2}, {1, 2}, {2}]
    await node.etcd.aclose()


class _SlowEtcd:
    """Only what the keepalive loop calls: each keepalive is answered (TTL 3, as etcd renewed the lease) after ``delay`` s."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.answered = 0

    async def lease_keepalive(self, lease: int) -> int:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await trio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.answered += 1
        return 3


async def _keepalive_for(seconds: float, etcd: _SlowEtcd) -> tuple[ClusterNode, list[tuple[float, bool]]]:
    """Run a node's keepalive loop (TTL 3 s, margin 0.5 s: period 0.75 s) on fake time; ``(fence time, still held)`` per fence."""
    opts = ClusterOptions(endpoints=["http://127.0.0.1:9"], node_id="a", advertise="http://127.0.0.1:1", lease_ttl=3)
    node = ClusterNode(cast(EtcdClient, etcd), opts, clock=trio.current_time)
    node.lease, node.mine = 7, {1: 10}
    node.deadline = trio.current_time() + 3 - 0.5  # as join() leaves it
    fences: list[tuple[float, bool]] = []

    async def lost(shards: set[int] | None) -> None:
        fences.append((trio.current_time(), node.holds(1)))

    node.on_lost = lost
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node._keepalive_loop)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    return node, fences


async def test_a_keepalive_answered_later_than_its_period_but_before_the_deadline_keeps_the_node_serving(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    etcd = _SlowEtcd(delay=1.0)  # more than the 0.75 s period, well within the 2.5 s the lease is good for
    with caplog.at_level("WARNING", logger="dohost.cluster"):
        node, fences = await _keepalive_for(30, etcd)
    assert fences == [] and node.fences == 0 and node.holds(1)
    assert etcd.answered >= 25 and etcd.most_in_flight == 1  # renewed all along, one keepalive at a time
    slow = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "cluster-keepalive-slow"]
    assert len(slow) == 1  # once per slow spell, not per keepalive
    assert re.search(r"etcd answered the keepalive of lease 7 after 1\.00s \(more than the 0\.75s period\); "
                     r"a fences itself if answers take longer than about 1\.25s", slow[0].getMessage())


async def test_a_keepalive_that_never_answers_fences_the_node_at_its_deadline_and_says_so(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    etcd = _SlowEtcd(delay=float("inf"))
    start = trio.current_time()
    with caplog.at_level("WARNING", logger="dohost.cluster"):
        node, fences = await _keepalive_for(10, etcd)
    assert len(fences) == 1 and node.fences == 1 and not node.holds(1)
    fenced_at, held_while_fencing = fences[0]
    assert fenced_at - start == pytest.approx(2.5)  # the deadline join() set, not a moment later
    assert not held_while_fencing and etcd.most_in_flight == 1
    events = [getattr(r, "fields", {}).get("event") for r in caplog.records]
    assert events[:2] == ["cluster-keepalive-unanswered", "cluster-fenced"]
    assert "given up at the lease's deadline" in caplog.records[0].getMessage()


async def test_a_fenced_node_serves_again_when_a_slow_etcd_answers_that_it_still_has_the_lease(autojump_clock: Any) -> None:
    etcd = _SlowEtcd(delay=float("inf"))
    opts = ClusterOptions(endpoints=["http://127.0.0.1:9"], node_id="a", advertise="http://127.0.0.1:1", lease_ttl=3)
    node = ClusterNode(cast(EtcdClient, etcd), opts, clock=trio.current_time)
    node.lease, node.mine = 7, {1: 10}
    node.deadline = trio.current_time() + 2.5
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node._keepalive_loop)
        await trio.sleep(5)
        assert node.fences == 1 and not node.holds(1)
        etcd.delay = 1.0  # slower than a period, yet in time
        await trio.sleep(10)
        assert node.fences == 1 and node.holds(1)
        nursery.cancel_scope.cancel()


async def test_a_watch_that_stays_silent_past_its_idle_time_ends_so_the_cache_is_read_again(autojump_clock: Any) -> None:
    async def member(stream: trio.SocketStream) -> None:
        # An etcd member that confirms the watch, then stops without closing the connection.
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some()
        created = b'{"result":{"header":{"revision":"5"},"created":true}}'
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + b"%x\r\n%s\r\n" % (len(created), created))
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, member, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with EtcdClient([f"http://127.0.0.1:{port}"]) as etcd:
            start = trio.current_time()
            with pytest.raises(EtcdUnavailable, match=r"^etcd watch on http://127\.0\.0\.1:\d+/v3/watch was silent for 8\.0s$"):
                async for _ in etcd.watch(b"/dohost/", 6, idle=8.0):
                    pass
            assert trio.current_time() - start == pytest.approx(8.0, abs=0.5)
        nursery.cancel_scope.cancel()


# -- two runtimes in this process, split by HashPlacement, forwarding over Unix sockets --------------

from contextlib import asynccontextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import AsyncIterator  # noqa: E402

from objects import DurableObject, Response, WorkerEntrypoint  # noqa: E402


class Ledger(DurableObject):
    def record(self, n: int) -> list[Any]:
        total = (self.ctx.storage.kv.get("total") or 0) + n
        self.ctx.storage.kv.put("total", total)
        return [total, {"added": n, "at": b"\x00"}]

    def fail(self) -> None:
        raise ValueError("no such entry")

    async def fetch(self, request: Any) -> Any:
        return Response(request.headers.get("traceparent") or "none")


class Front(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        name = request.url.rsplit("/", 1)[1]
        return await self.env.LEDGER.getByName(name).fetch(request)


@asynccontextmanager
async def two_processes(tmp_path: Path, telemetries: list[Any] | None = None) -> AsyncIterator[list[Any]]:
    """Two runtimes, each owning half the objects (``HashPlacement``), forwarding to each other."""
    from runtime import open_runtime

    paths = [tmp_path / f"p{i}.sock" for i in range(2)]
    listeners = []
    for path in paths:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(str(path))
        sock.listen(16)
        listeners.append(trio.SocketListener(sock))
    telemetries = telemetries or [None, None]
    forwarders = [
        Forwarder(HashPlacement(i, 2, [f"unix:{p}" for p in paths]), "token",
                  trace_context=getattr(telemetries[i], "trace_context", None),
                  resume_trace=getattr(telemetries[i], "resume_trace", None))
        for i in range(2)
    ]
    async with trio.open_nursery() as nursery:
        for forwarder in forwarders:
            await nursery.start(forwarder.run)
        async with open_runtime(bindings={"LEDGER": Ledger}, entrypoint=Front, data_dir=tmp_path / "d0",
                                placement=forwarders[0], telemetry=telemetries[0]) as rt0, \
                open_runtime(bindings={"LEDGER": Ledger}, entrypoint=Front, data_dir=tmp_path / "d1",
                             placement=forwarders[1], telemetry=telemetries[1]) as rt1:
            for forwarder, rt, listener in zip(forwarders, (rt0, rt1), listeners):
                forwarder.in_runtime = (lambda r: lambda fn: fn(r))(rt)
                forwarder.serve([listener])
            yield [rt0, rt1]
        nursery.cancel_scope.cancel()


def owned_by(rt: Any, index: int) -> str:
    """An object name whose object the process ``index`` (of 2) owns."""
    return next(n for n in (f"o{i}" for i in range(100))
                if HashPlacement(0, 2).owner_of(rt.env.LEDGER.idFromName(n).toString()) == index)


async def test_a_call_to_an_object_another_process_owns_runs_there_and_its_error_arrives_as_such(tmp_path: Path) -> None:
    async with two_processes(tmp_path) as (rt0, rt1):
        name = owned_by(rt0, 1)
        stub = rt0.env.LEDGER.getByName(name)
        assert await stub.record(5) == [5, {"added": 5, "at": b"\x00"}]  # a container: it travels pickled
        assert await stub.record(2) == [7, {"added": 2, "at": b"\x00"}]
        with pytest.raises(ValueError, match="^no such entry$"):
            await stub.fail()
        live = {(k[0], k[1]) for k in rt1._live}
        assert ("LEDGER", rt0.env.LEDGER.idFromName(name).toString()) in live
        assert not rt0._live  # nothing of it ran here


async def test_a_forwarded_stub_fetch_carries_the_callers_traceparent_and_the_owners_spans_join_its_trace(
    tmp_path: Path,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from wrangler_compat.telemetry import build_telemetry

    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    telemetries = []
    for exporter in exporters:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        telemetries.append(build_telemetry(worker="front", metrics=False, tracer_provider=provider))
    async with two_processes(tmp_path, telemetries) as (rt0, rt1):
        name = owned_by(rt0, 1)
        response = await rt0.fetch(f"http://shop.test/{name}")
        seen = await response.text()
    caller = exporters[0].get_finished_spans()
    owner = exporters[1].get_finished_spans()
    request = next(s for s in caller if s.name == f"GET /{name}")
    trace_id = format(request.context.trace_id, "032x")
    # The caller's span, as W3C trace context (version-trace id-parent id-flags).
    assert re.fullmatch(f"00-{trace_id}-{request.context.span_id:016x}-0[13]", seen), seen
    assert {s.name for s in owner} >= {"LEDGER.fetch", "LEDGER fetch fetch"}
    assert {s.context.trace_id for s in owner} == {request.context.trace_id}  # one trace across both processes
    client = next(s for s in owner if s.name == "LEDGER.fetch")
    assert client.parent is not None and client.parent.span_id == request.context.span_id


# -- following ownership: what is sent again, and what never is --------------------------------------

from types import SimpleNamespace  # noqa: E402

from runtime.cluster import CallInDoubt, Target  # noqa: E402
from objects.errors import NetworkLostError  # noqa: E402


class _Moving:
    """An ``Ownership`` whose owner (of every object, never this node) the test moves."""

    moves = True
    retry_for = 30.0

    def __init__(self, target: Target) -> None:
        self.current = target
        self._changed = trio.Event()

    def move(self, target: Target) -> None:
        self.current = target
        self._changed.set()
        self._changed = trio.Event()

    def is_local(self, key: tuple[str, str]) -> bool:
        return False

    def target(self, key: tuple[str, str]) -> Target | None:
        return self.current

    def holds(self, key: tuple[str, str], shard: int, epoch: int) -> bool:
        return False

    def check_start(self, key: tuple[str, str]) -> None:
        pass

    check_commit = check_start

    def confirmed(self, key: tuple[str, str], sent: Any) -> Any:
        return sent

    async def wait_change(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._changed.wait()


class _Peer:
    """A node's wire on a Unix socket that records the calls it receives; answers them if ``answers``."""

    def __init__(self, path: Path, answers: bool) -> None:
        self.path, self.answers = path, answers
        self.calls: list[Call] = []
        self.received = trio.Event()

    async def serve(self, accept: bool = True, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(str(self.path))
        sock.listen(16)
        async with trio.SocketListener(sock) as listener, trio.open_nursery() as nursery:
            task_status.started()
            if not accept:  # connections wait in the backlog: connecting never ends
                await trio.sleep_forever()
            while True:
                nursery.start_soon(self._serve_link, await listener.accept())

    async def _serve_link(self, stream: trio.abc.Stream) -> None:
        async with stream:
            link = await accept_link(stream, None)
            assert link is not None
            while (frame := await link.receive()) is not None:
                self.calls.append(frame)
                self.received.set()
                if self.answers:
                    await link.send(Reply(id=frame.id, outcome="ok", value="ran"))

    @property
    def target(self) -> Target:
        return Target(self.path.stem, f"unix:{self.path}", 1, 1)


async def _forwarded(forwarder: Forwarder) -> Any:
    return forwarder.forward(("COUNTER", "ab" * 32), SimpleNamespace(name="x"), ("rpc", "increment", (), {}), None,
                             lambda: None)


async def test_a_call_that_may_have_reached_an_owner_that_then_lost_the_shard_fails_and_is_not_sent_again(
    tmp_path: Path,
) -> None:
    old, new = _Peer(tmp_path / "old", answers=False), _Peer(tmp_path / "new", answers=True)
    ownership = _Moving(old.target)
    forwarder = Forwarder(ownership, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(old.serve)
        await nursery.start(new.serve)
        await nursery.start(forwarder.run)
        call = await _forwarded(forwarder)
        await old.received.wait()  # the old owner has it (it may run it, and commit)
        ownership.move(new.target)  # ... and loses the shard before answering
        with pytest.raises(CallInDoubt, match=r"^Network connection lost\.$") as caught:
            await call
        nursery.cancel_scope.cancel()
    assert isinstance(caught.value, NetworkLostError)
    assert (caught.value.retryable, caught.value.overloaded) == (True, False)  # the caller may retry it itself
    assert [c.method for c in old.calls] == ["increment"] and new.calls == []  # sent once, to one owner


async def test_a_call_not_yet_sent_when_its_owner_lost_the_shard_goes_to_the_new_owner(tmp_path: Path) -> None:
    old, new = _Peer(tmp_path / "old", answers=False), _Peer(tmp_path / "new", answers=True)
    ownership = _Moving(old.target)
    forwarder = Forwarder(ownership, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(old.serve, False)  # a paused node: it never completes the handshake
        await nursery.start(new.serve)
        await nursery.start(forwarder.run)
        call = await _forwarded(forwarder)
        await trio.testing.wait_all_tasks_blocked()
        ownership.move(new.target)
        assert await call == "ran"
        nursery.cancel_scope.cancel()
    assert old.calls == [] and [c.method for c in new.calls] == ["increment"]


async def test_a_call_to_an_owner_that_refuses_connections_waits_for_the_new_owner(tmp_path: Path) -> None:
    dead, new = _Peer(tmp_path / "dead", answers=True), _Peer(tmp_path / "new", answers=True)
    ownership = _Moving(dead.target)  # nothing listens there: a node just killed
    forwarder = Forwarder(ownership, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(new.serve)
        await nursery.start(forwarder.run)
        call = await _forwarded(forwarder)
        await trio.testing.wait_all_tasks_blocked()
        ownership.move(new.target)  # the failover
        assert await call == "ran"
        nursery.cancel_scope.cancel()
    assert [c.method for c in new.calls] == ["increment"]


class _CommitEtcd:
    """Only what ``_balance`` calls: each create or delete is one raft commit taking ``commit`` s; ``fail`` shards error."""

    def __init__(self, commit: float, fail: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.commit, self.fail = commit, fail
        self.revision = 100
        self.created: list[int] = []
        self.deleted: list[int] = []

    async def _one(self, key: bytes) -> int:
        await trio.sleep(self.commit)
        shard = int(key.rsplit(b"/", 1)[1])
        if shard in self.fail:
            raise EtcdUnavailable(f"etcd unreachable (shard {shard})")
        self.revision += 1
        return shard

    async def create(self, key: bytes, value: bytes, *, lease: int = 0) -> int | None:
        self.created.append(await self._one(key))
        return self.revision

    async def delete_if_created(self, key: bytes, create_revision: int) -> bool:
        self.deleted.append(await self._one(key))
        return True


def _balancing_node(etcd: _CommitEtcd, live: list[str]) -> ClusterNode:
    opts = ClusterOptions(endpoints=["http://127.0.0.1:9"], node_id="a", advertise="http://127.0.0.1:1", lease_ttl=3)
    node = ClusterNode(cast(EtcdClient, etcd), opts, clock=trio.current_time)
    node.lease, node.deadline = 7, trio.current_time() + 60
    node.nodes = {n: f"http://{n}" for n in live}
    return node


async def test_a_node_taking_over_a_dead_nodes_shards_claims_them_side_by_side_not_one_commit_after_another(
    autojump_clock: Any,
) -> None:
    # "b" died: its registration and shard keys are gone, so every shard "a" is now desired
    # for and nobody owns is claimed. One after another that took (shards) x (etcd's commit).
    etcd = _CommitEtcd(commit=0.3)
    node = _balancing_node(etcd, ["a", "c"])
    wanted = {s for s in range(64) if rendezvous_owner(s, ["a", "c"]) == "a"}
    start = trio.current_time()
    await node._balance()
    assert set(node.mine) == wanted and sorted(etcd.created) == sorted(wanted)
    assert trio.current_time() - start == pytest.approx(0.3 * -(-len(wanted) // 16))  # 16 at a time
    assert all(node.owners[s] == ("a", node.mine[s]) for s in wanted)


async def test_an_etcd_error_on_one_claim_leaves_the_others_claimed_and_is_raised_for_a_retry(autojump_clock: Any) -> None:
    wanted = sorted(s for s in range(64) if rendezvous_owner(s, ["a", "c"]) == "a")
    etcd = _CommitEtcd(commit=0.1, fail={wanted[0]})
    node = _balancing_node(etcd, ["a", "c"])
    with pytest.raises(EtcdUnavailable, match=f"shard {wanted[0]}"):
        await node._balance()
    assert set(node.mine) == set(wanted[1:])
    etcd.fail = set()
    await node._balance()  # the balance loop's next round
    assert set(node.mine) == set(wanted)


async def test_a_node_handing_shards_over_evicts_their_objects_even_when_deleting_a_key_fails(autojump_clock: Any) -> None:
    # "c" joined: "a" holds every shard, and hands over those "c" is now desired for.
    handed = {s for s in range(64) if rendezvous_owner(s, ["a", "c"]) == "c"}
    etcd = _CommitEtcd(commit=0.3, fail={min(handed)})
    node = _balancing_node(etcd, ["a", "c"])
    node.mine = {s: 10 + s for s in range(64)}
    node.owners = {s: ("a", 10 + s) for s in range(64)}
    lost: list[set[int] | None] = []

    async def on_lost(shards: set[int] | None) -> None:
        lost.append(shards)

    node.on_lost = on_lost
    start = trio.current_time()
    with pytest.raises(EtcdUnavailable):
        await node._balance()
    assert lost == [handed] and not handed & set(node.mine)  # held by nobody here: nothing runs, commits or answers
    assert sorted(etcd.deleted) == sorted(handed - {min(handed)})
    assert trio.current_time() - start == pytest.approx(0.3 * -(-len(handed) // 16))
