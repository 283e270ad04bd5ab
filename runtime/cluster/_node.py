"""Membership and shard ownership of one dohost node, arbitrated by etcd.

Keys (under ``prefix``, default ``/dohost/``):

* ``nodes/<id>`` -> the node's advertised URL and wire address (JSON
  ``{"url": …, "wire": "tcp:host:port"}``; a plain URL is read too),
  attached to the node's one lease. Created only if absent: a node id already in use is refused
  (:class:`NodeIdInUse`). The set of these keys *is* the membership.
* ``shards/<n>`` -> the owning node id, attached to the owner's lease and
  created only if absent (a txn comparing ``create_revision == 0``). Its
  create revision is the shard's **epoch**, the fencing token every
  forwarded request carries.

Guarantees:

* Placement is rendezvous hashing of the shard over live nodes; the desired
  owner claims a free shard, a current owner that is no longer the desired
  one evicts the shard's objects and then deletes the key (compared on its
  epoch). Two claimants race on the create-if-absent txn; etcd picks one.
* Self-fencing: the lease is taken to be valid until
  ``(monotonic time the keepalive was sent) + TTL - margin``. Past that
  moment :meth:`ClusterNode.holds` is False for every shard, so the node
  starts no event and commits nothing (``Placement.check_commit``); the
  node then resets its objects (``on_lost``), and rejoins: with the same
  lease if etcd still has it (nobody could have taken its shards), else a
  new lease, a new registration and new epochs.
* One keepalive at a time, every ``TTL/4``; an attempt may run until that
  deadline (its answer still renews the lease), so an etcd slower than a
  period but answering within ``(TTL - margin) / 2`` causes no fence. An
  attempt still in flight at the deadline is given up there and the node
  fences on time. Slow and unanswered keepalives are logged as warnings.
* ``deploy/current`` -> the deployed version every node must serve (a
  decimal number; the versions themselves are in the shared data directory).
  The node that took a deploy puts it (:meth:`ClusterNode.publish_deploy`);
  every node watches it and hands each new value to ``on_deploy`` once.
* The owner cache (``owner_of``) is a range read followed by a watch from the
  next revision, re-read whenever the watch breaks or has been silent for
  ``2 x TTL + 2`` s (etcd sends nothing on a quiet watch, so silence is the
  only sign of a member that stopped without closing the stream).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Awaitable, Callable, Sequence, TypeVar

import msgspec
import trio

from ._etcd import EtcdClient, EtcdError, EtcdUnavailable, KeyValue, WatchEvent

__all__ = ["ClusterNode", "ClusterOptions", "NodeIdInUse", "ClusterError", "shard_of", "rendezvous_owner"]

log = logging.getLogger("dohost.cluster")

#: Shard claims or hand-overs in flight to etcd at once (each is one HTTP request and one raft commit).
_ETCD_FANOUT = 16

_T = TypeVar("_T")


class ClusterError(Exception):
    """The root of the cluster package's errors."""


class NodeIdInUse(ClusterError):
    pass


class ClusterOptions(msgspec.Struct, frozen=True, kw_only=True):
    endpoints: list[str]
    node_id: str
    advertise: str
    lease_ttl: int = 3
    shards: int = 64
    prefix: str = "/dohost/"
    #: Seconds before the lease's computed expiry at which the node stops itself.
    margin: float = 0.5
    #: Where other nodes send forwarded calls (``tcp:host:port``; ``_wire.py``); registered with the URL.
    wire: str = ""


def shard_of(object_hex: str, shards: int) -> int:
    """The shard of an object id: a fixed hash, the same on every node."""
    return int.from_bytes(hashlib.blake2b(object_hex.encode(), digest_size=8).digest(), "big") % shards


def rendezvous_owner(shard: int, nodes: list[str]) -> str | None:
    """The node with the highest hash for ``shard`` (highest random weight)."""
    if not nodes:
        return None
    return max(nodes, key=lambda n: hashlib.blake2b(f"{shard}:{n}".encode(), digest_size=8).digest())


def _parse_registration(value: bytes) -> tuple[str, str]:
    """``(url, wire address)`` of a ``nodes/<id>`` value (a JSON object, or a plain URL: no wire)."""
    text = value.decode()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
            return str(parsed.get("url", "")), str(parsed.get("wire", ""))
        except ValueError:
            pass
    return text, ""


class ClusterNode:
    """One node's lease, registration, owned shards and owner cache; see the module docstring."""

    def __init__(self, etcd: EtcdClient, opts: ClusterOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.etcd = etcd
        #: Monotonic seconds for the lease deadline. Not trio's clock: ``holds`` runs in
        #: commit worker threads too. Tests pass ``trio.current_time`` to run on fake time.
        self._clock = clock
        self.opts = opts
        self.node_id = opts.node_id
        self._prefix = opts.prefix.encode()
        self.lease = 0
        #: Monotonic time after which this node must assume its lease expired.
        self.deadline = 0.0
        #: Live nodes: id -> advertised URL.
        self.nodes: dict[str, str] = {}
        #: Live nodes' wire addresses: id -> ``tcp:host:port``.
        self.wires: dict[str, str] = {}
        #: Owner cache: shard -> (node id, epoch).
        self.owners: dict[int, tuple[str, int]] = {}
        #: Shards this node holds: shard -> epoch.
        self.mine: dict[int, int] = {}
        #: The newest revision applied per key: a late watch event never undoes a newer state.
        self._revs: dict[bytes, int] = {}
        self.changed = trio.Event()
        #: Awaited with the shards whose objects must be dropped (None: all of them).
        self.on_lost: Callable[[set[int] | None], Awaitable[None]] | None = None
        #: Awaited with the shards this node took over (or may run again after a fence):
        #: their objects' alarms must be loaded here (``ShardPlacement`` adopts them).
        self.on_gained: Callable[[set[int]], Awaitable[None]] | None = None
        #: The deployed version recorded in etcd (``deploy/current``), if any.
        self.deploy_version: int | None = None
        #: Awaited with each new ``deploy_version`` (the server loads and swaps it in).
        self.on_deploy: Callable[[int], Awaitable[None]] | None = None
        #: Shard -> epoch as last reported to ``on_gained``; a loss removes the shard,
        #: so holding it again (a new epoch, or the same one after a fence) is a gain.
        self._reported: dict[int, int] = {}
        self.fences = 0  # how many times this node fenced itself (statistics)

    # -------------------------------------------------------------- keys
    def _node_key(self, node_id: str) -> bytes:
        return self._prefix + b"nodes/" + node_id.encode()

    def _shard_key(self, shard: int) -> bytes:
        return self._prefix + b"shards/" + str(shard).encode()

    def _deploy_key(self) -> bytes:
        return self._prefix + b"deploy/current"

    def follow_deploys(self, on_deploy: Callable[[int], Awaitable[None]]) -> None:
        """Hand every deployed version recorded in etcd to ``on_deploy``, starting with the current one."""
        self.on_deploy = on_deploy
        self._notify()

    async def publish_deploy(self, version: int) -> None:
        """Record ``version`` as the one every node serves (raises :class:`EtcdError`)."""
        await self.etcd.put(self._deploy_key(), str(version).encode())

    # ---------------------------------------------------------- queries
    def lease_valid(self) -> bool:
        return self._clock() < self.deadline

    def holds(self, shard: int, epoch: int | None = None) -> bool:
        """Whether this node may run (and commit) events of ``shard`` right now."""
        held = self.mine.get(shard)
        return held is not None and (epoch is None or epoch == held) and self._clock() < self.deadline

    def owner_of(self, shard: int) -> tuple[str, str, int] | None:
        """``(node id, url, epoch)`` of the shard's owner as last seen, or ``None``."""
        owner = self.owners.get(shard)
        if owner is None:
            return None
        url = self.nodes.get(owner[0])
        return None if url is None else (owner[0], url, owner[1])

    def wire_of(self, node_id: str) -> str | None:
        """The wire address a live node registered, or ``None``."""
        return self.wires.get(node_id)

    def _registration(self) -> bytes:
        if not self.opts.wire:
            return self.opts.advertise.encode()
        return json.dumps({"url": self.opts.advertise, "wire": self.opts.wire}).encode()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    # ------------------------------------------------------------ joining
    async def join(self) -> None:
        """Take a lease and register; :class:`NodeIdInUse` if another live node has our id."""
        sent = self._clock()
        lease, ttl = await self.etcd.lease_grant(self.opts.lease_ttl)
        created = await self.etcd.create(self._node_key(self.node_id), self._registration(), lease=lease)
        if created is None:
            await self.etcd.lease_revoke(lease)
            holder = await self.etcd.get(self._node_key(self.node_id))
            where = _parse_registration(holder.value)[0] if holder else "?"
            raise NodeIdInUse(f"--node-id {self.node_id!r} is already in use by a live node ({where}); pick another id")
        self.lease = lease
        self.deadline = sent + ttl - self.opts.margin
        self.mine.clear()
        log.info("joined the cluster as %s (lease %x, ttl %ds)", self.node_id, lease, ttl,
                 extra={"fields": {"event": "cluster-joined", "node": self.node_id}})

    async def leave(self) -> None:
        """Revoke the lease: our registration and shard keys go at once."""
        if self.lease:
            with trio.move_on_after(2):
                try:
                    await self.etcd.lease_revoke(self.lease)
                except EtcdError:
                    pass
            self.lease = 0
            self.mine.clear()

    # ------------------------------------------------------- background
    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keepalive, watch and balance until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_loop)
            nursery.start_soon(self._keepalive_loop)
            nursery.start_soon(self._balance_loop)
            nursery.start_soon(self._deploy_loop)
            task_status.started()

    async def _keepalive_loop(self) -> None:
        period = max(self.opts.lease_ttl / 4, 0.2)
        fenced = False
        slow = False  # the last answer came after more than a period (warned once per slow spell)
        granted = self.opts.lease_ttl  # the TTL etcd last reported for our lease
        while True:
            if not fenced and self._clock() >= self.deadline:
                # Our lease may have expired (etcd unreachable or slow, or this process
                # was paused): drop every object before anything else runs.
                fenced = True
                await self._fence()
            sent = self._clock()
            # One keepalive at a time. Its answer is good until sent + TTL - margin, so
            # it may take longer than a period: a slow etcd still renews the lease.
            # It is cut off at the current deadline, so the fence is never late; once
            # fenced, when an answer could no longer give a deadline in the future.
            limit = self.deadline if not fenced else sent + max(granted - self.opts.margin, period)
            ttl: int | None = None  # None: etcd did not answer
            with trio.move_on_at(trio.current_time() + (limit - sent)) as attempt:
                try:
                    ttl = await self.etcd.lease_keepalive(self.lease)
                except EtcdError as exc:
                    log.warning("etcd keepalive failed: %s", exc)
            took = self._clock() - sent
            if attempt.cancelled_caught:
                slow = True
                log.warning("etcd did not answer the keepalive of lease %x within %.2fs: %s", self.lease, took,
                            "an answer now would come too late" if fenced else "given up at the lease's deadline",
                            extra={"fields": {"event": "cluster-keepalive-unanswered", "node": self.node_id}})
            elif ttl is not None and took > period:
                if not slow:
                    slow = True
                    log.warning("etcd answered the keepalive of lease %x after %.2fs (more than the %.2fs period); "
                                "%s fences itself if answers take longer than about %.2fs",
                                self.lease, took, period, self.node_id, (granted - self.opts.margin) / 2,
                                extra={"fields": {"event": "cluster-keepalive-slow", "node": self.node_id}})
            elif ttl is not None and slow:
                slow = False
                log.info("etcd answers keepalives in time again (%.2fs)", took,
                         extra={"fields": {"event": "cluster-keepalive-in-time", "node": self.node_id}})
            if not fenced and self._clock() >= self.deadline:
                fenced = True
                await self._fence()
            if ttl is not None and ttl > 0:
                # etcd still has the lease, so nobody could take our shards: go on with it.
                granted = ttl
                self.deadline = sent + ttl - self.opts.margin
                if fenced:
                    fenced = False
                    log.info("lease %x still held: %s serves again", self.lease, self.node_id,
                             extra={"fields": {"event": "cluster-resumed", "node": self.node_id}})
            elif ttl is not None:
                # The lease is gone, and with it our registration and shards: rejoin.
                self.mine.clear()
                try:
                    await self.join()
                    fenced = False
                except EtcdError as exc:
                    log.warning("cannot rejoin yet: %s", exc)
                self._notify()
            # The next keepalive a period after this one was sent (at once if it was slow),
            # and no later than the deadline, so a fence is never late.
            wake = sent + period if fenced else min(sent + period, self.deadline)
            await trio.sleep(max(0.0, wake - self._clock()))

    async def _fence(self) -> None:
        """Our lease may have expired: stop starting events and drop every object."""
        self.fences += 1
        self.deadline = 0.0
        self._reported.clear()
        log.warning("lease may have expired: fencing %s (dropping its objects)", self.node_id,
                    extra={"fields": {"event": "cluster-fenced", "node": self.node_id}})
        if self.on_lost is not None:
            await self.on_lost(None)

    async def _watch_loop(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                kvs, revision = await self.etcd.get_prefix(self._prefix)
                self._load(kvs)
                if not started:
                    started = True
                    task_status.started()
                # A watch silent that long is re-read (see EtcdClient.watch): a cache left
                # stale by a member that stopped mid-stream would misroute calls for good.
                idle = max(2.0 * self.opts.lease_ttl + 2.0, 5.0)
                async for events in self.etcd.watch(self._prefix, revision + 1, idle=idle):
                    for event in events:
                        self._apply(event)
                    self._notify()
            except EtcdError as exc:
                log.debug("etcd watch: %s", exc)
                await trio.sleep(0.1)

    def _load(self, kvs: list[KeyValue]) -> None:
        self.nodes.clear()
        self.wires.clear()
        self.owners.clear()
        self._revs.clear()
        for kv in kvs:
            self._apply(WatchEvent(kind="PUT", kv=kv))
        for shard in list(self.mine):
            if self.owners.get(shard) != (self.node_id, self.mine[shard]):
                del self.mine[shard]
        self._notify()

    def _apply(self, event: WatchEvent) -> None:
        revision = event.kv.mod_revision
        if revision and revision <= self._revs.get(event.kv.key, 0):
            return
        self._revs[event.kv.key] = revision
        rest = event.kv.key[len(self._prefix):].decode()
        kind, _, name = rest.partition("/")
        if kind == "nodes":
            if event.kind == "DELETE":
                self.nodes.pop(name, None)
                self.wires.pop(name, None)
            else:
                url, wire = _parse_registration(event.kv.value)
                self.nodes[name] = url
                if wire:
                    self.wires[name] = wire
                else:
                    self.wires.pop(name, None)
        elif kind == "deploy" and name == "current":
            value = event.kv.value.decode()
            if event.kind == "PUT" and value.isdigit():
                self.deploy_version = int(value)
        elif kind == "shards" and name.isdigit():
            shard = int(name)
            if event.kind == "DELETE":
                self.owners.pop(shard, None)
                self.mine.pop(shard, None)
            else:
                owner = event.kv.value.decode()
                self.owners[shard] = (owner, event.kv.create_revision)
                if owner == self.node_id and event.kv.lease == self.lease and self.lease:
                    self.mine[shard] = event.kv.create_revision
                elif shard in self.mine:
                    del self.mine[shard]

    async def _balance_loop(self) -> None:
        while True:
            changed = self.changed
            try:
                await self._balance()
            except EtcdError as exc:
                log.debug("balance: %s", exc)
            await self._report_gains()
            with trio.move_on_after(max(self.opts.lease_ttl / 3, 0.2)):
                await changed.wait()

    async def _deploy_loop(self) -> None:
        handed: int | None = None
        while True:
            changed = self.changed
            version = self.deploy_version
            if version is not None and version != handed and self.on_deploy is not None:
                handed = version
                try:
                    await self.on_deploy(version)
                except Exception:  # the server keeps serving what it ran; the next deploy may load
                    log.exception("cannot load deployed version %d", version)
            await changed.wait()

    async def _report_gains(self) -> None:
        held = dict(self.mine) if self.lease_valid() else {}
        gained = {s for s, e in held.items() if self._reported.get(s) != e}
        self._reported = held
        if gained and self.on_gained is not None:
            await self.on_gained(gained)

    async def _balance(self) -> None:
        if not self.lease_valid() or self.node_id not in self.nodes:
            return
        live = sorted(self.nodes)
        claim: list[int] = []
        release: list[int] = []
        for shard in range(self.opts.shards):
            desired = rendezvous_owner(shard, live)
            if desired == self.node_id and shard not in self.owners:
                claim.append(shard)
            elif shard in self.mine and desired != self.node_id:
                release.append(shard)
        # Claims and hand-overs go to etcd side by side: each is a raft commit, and
        # one after another a failover took (shards moved) x (etcd's commit time),
        # seconds on a slow etcd disk, while every call for those shards waited.
        failures: list[EtcdError] = []
        if claim:
            await self._each(claim, self._claim, failures)
        if release:
            # Hand over: once out of ``mine`` this node starts, commits and answers
            # nothing of these shards (holds() is False), so the keys can go at once;
            # the objects are then evicted, and their file locks (one machine,
            # shared files) keep the new owner out until each is closed.
            epochs = {s: self.mine.pop(s) for s in release if s in self.mine}
            for shard in epochs:
                self._reported.pop(shard, None)
            await self._each(list(epochs.items()), self._release, failures)
            if self.on_lost is not None:
                await self.on_lost(set(epochs))
        if failures:
            raise failures[0]  # the balance loop logs it and tries again shortly

    async def _each(self, items: Sequence[_T], job: Callable[[_T], Awaitable[None]], failures: list[EtcdError]) -> None:
        """``job(item)`` for every item, at most ``_ETCD_FANOUT`` at a time; etcd errors collected, not raised."""
        limit = trio.CapacityLimiter(_ETCD_FANOUT)

        async def one(item: _T) -> None:
            async with limit:
                try:
                    await job(item)
                except EtcdError as exc:
                    failures.append(exc)

        async with trio.open_nursery() as nursery:
            for item in items:
                nursery.start_soon(one, item)

    async def _claim(self, shard: int) -> None:
        key = self._shard_key(shard)
        epoch = await self.etcd.create(key, self.node_id.encode(), lease=self.lease)
        if epoch is not None and self.lease_valid() and epoch >= self._revs.get(key, 0):
            self._revs[key] = epoch
            self.mine[shard] = epoch
            self.owners[shard] = (self.node_id, epoch)

    async def _release(self, item: tuple[int, int]) -> None:
        shard, epoch = item
        await self.etcd.delete_if_created(self._shard_key(shard), epoch)
