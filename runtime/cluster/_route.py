"""Cluster placement on etcd: the :class:`ShardPlacement` plugged into the ``Forwarder``.

Objects hash to shards (``shard_of``); :class:`ClusterNode` keeps who owns
each shard and at which epoch. This module answers, for the one forwarding
path (``_forward.py``), who owns an object and whether this node may run,
commit and answer its events now:

* ``is_local``/``check_start``/``check_commit``: this node holds the shard
  with a valid lease (else :class:`NotOwnerError`: nothing starts, nothing
  commits -- the check runs just before COMMIT).
* ``confirmed``: a local event's result leaves only if the node still holds
  the shard at the epoch it had when the event was queued.
* ``target``: the owner's wire address and the ``(shard, epoch)`` the call
  carries; ``holds``: the owner's check of that pair before running a call.
* ``wait_change``: wakes when the owner cache changes (an etcd watch), so a
  refused or unreachable call is retried at the new owner, up to
  ``retry_for`` (2 x TTL + 2 s) seconds.
* When the node takes over shards, their objects' alarms are adopted from
  the shared index; when it hands shards over, their live objects are
  evicted (running events end; their commits are refused) and their alarms
  forgotten here. When it fences itself (its lease may have expired), every
  live object is *reset* at once: its events are aborted and its file
  closed, so another node can open it without waiting for a long event to
  end -- none of their writes could commit, nor any result leave, anyway.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from objects.errors import ObjectResetError

from .._activation import ActivationState
from ._forward import Target
from ._node import ClusterNode, shard_of
from .errors import NotOwnerError

__all__ = ["ShardPlacement", "NotOwnerError"]

log = logging.getLogger("dohost.cluster")


class ShardPlacement:
    """See the module docstring."""

    moves = True

    def __init__(self, node: ClusterNode, get_runtime: Callable[[], Any], *, retry_for: float | None = None) -> None:
        self.node = node
        #: The runtime now serving (it changes on a deploy); settable once the host is open.
        self.get_runtime = get_runtime
        self.retry_for = retry_for if retry_for is not None else 2 * node.opts.lease_ttl + 2.0
        node.on_lost = self._drop_objects
        node.on_gained = self._adopt_alarms

    def shard(self, key: tuple[str, str]) -> int:
        return shard_of(key[1], self.node.opts.shards)

    def is_local(self, key: tuple[str, str]) -> bool:
        return self.node.holds(self.shard(key))

    def target(self, key: tuple[str, str]) -> Target | None:
        shard = self.shard(key)
        owner = self.node.owner_of(shard)
        if owner is None or owner[0] == self.node.node_id:
            return None
        wire = self.node.wire_of(owner[0])
        return None if wire is None else Target(owner[0], wire, shard, owner[2])

    def holds(self, key: tuple[str, str], shard: int, epoch: int) -> bool:
        return shard == self.shard(key) and self.node.holds(shard, epoch)

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

    async def wait_change(self, deadline: float) -> None:
        with trio.move_on_at(min(deadline, trio.current_time() + 0.25)):
            await self.node.changed.wait()

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
        """Drop every live object of ``shards`` (all of them, reset at once: None); their commits are fenced."""
        rt = self.get_runtime()
        if rt is None:
            return
        # Their alarms fire on the new owner; this node forgets them (the index keeps them).
        rt.alarms.release(lambda key: shards is None or self.shard(key) in shards)
        acts = [a for k, a in list(rt._live.items()) if shards is None or self.shard(k) in shards]
        if shards is None:
            # Fenced: nothing can commit or answer here any more, so waiting for running
            # events would only keep their files locked past the failover bound.
            error = ObjectResetError(f"The Durable Object was reset: node {self.node.node_id!r} may have lost "
                                     "its lease (it paused or lost etcd), so another node may run it now.")
            for act in acts:
                if act.state is ActivationState.ACTIVE:
                    act._reset(error)  # as ctx.abort(): fails its events, closes its file now
                else:  # still opening: it stops before running anything
                    act.request_evict()
        else:
            for act in acts:
                act.request_evict()
        with trio.move_on_after(10):
            for act in acts:
                await act.finished.wait()
