"""dohost nodes on etcd: membership, shard ownership with epochs, forwarding to the owner.

See ``docs/cluster.md`` for the design. ``_etcd`` is the etcd v3 client,
``_node`` membership and ownership, ``_route`` the runtime's Placement
(forwarding and fencing).
"""

from __future__ import annotations

from ._etcd import EtcdClient as EtcdClient
from ._etcd import EtcdError as EtcdError
from ._etcd import EtcdUnavailable as EtcdUnavailable
from ._node import ClusterError as ClusterError
from ._node import ClusterNode as ClusterNode
from ._node import ClusterOptions as ClusterOptions
from ._node import NodeIdInUse as NodeIdInUse
from ._node import rendezvous_owner as rendezvous_owner
from ._node import shard_of as shard_of
from ._route import ForwardError as ForwardError
from ._route import NotOwnerError as NotOwnerError
from ._route import Router as Router

__all__ = [
    "EtcdClient",
    "EtcdError",
    "EtcdUnavailable",
    "ClusterError",
    "ClusterNode",
    "ClusterOptions",
    "NodeIdInUse",
    "rendezvous_owner",
    "shard_of",
    "ForwardError",
    "NotOwnerError",
    "Router",
]
