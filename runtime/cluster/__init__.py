"""Objects across processes and nodes sharing one data directory.

``--processes N`` (one machine): ``HashPlacement`` decides which process owns
an object; ``Forwarder`` is the runtime's ``ObjectRouter`` that sends calls
for objects owned elsewhere to their owner over loopback; ``internal_routes``
serves those calls. ``--cluster`` (nodes on etcd, ``docs/cluster.md``):
``_etcd`` is the etcd v3 client, ``_node`` membership and ownership,
``_route`` the runtime's ``Placement`` (forwarding and fencing).
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

from ._forward import CONNECT_PATIENCE_S as CONNECT_PATIENCE_S
from ._forward import INTERNAL_PREFIX as INTERNAL_PREFIX
from ._forward import TOKEN_HEADER as TOKEN_HEADER
from ._forward import Forwarder as Forwarder
from ._forward import HashPlacement as HashPlacement
from ._forward import Placement as ProcessPlacement
from ._forward import internal_routes as internal_routes
from .errors import ForwardingError as ForwardingError

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
    "CONNECT_PATIENCE_S", "INTERNAL_PREFIX", "TOKEN_HEADER", "Forwarder", "HashPlacement", "ProcessPlacement",
    "internal_routes", "ForwardingError",
]
