"""Objects across processes and nodes sharing one data directory.

One forwarding path for both modes (``_forward.py``): the :class:`Forwarder`
is the runtime's ``Placement``; it sends calls for objects owned elsewhere
over the wire (``_wire.py``: persistent multiplexed connections, msgspec
frames) and serves its peers' calls (``_owner.py``). What differs is the ownership plugged
in: :class:`HashPlacement` for ``--processes N`` (one machine, a fixed hash,
Unix sockets), :class:`ShardPlacement` for ``--cluster`` (nodes on etcd,
``docs/cluster.md``: ``_etcd`` the etcd v3 client, ``_node`` membership and
shard ownership with epochs, ``_route`` the placement and fencing; TCP).
"""

from __future__ import annotations

from ._etcd import EtcdClient as EtcdClient
from ._etcd import EtcdError as EtcdError
from ._etcd import EtcdUnavailable as EtcdUnavailable
from ._forward import CONNECT_PATIENCE_S as CONNECT_PATIENCE_S
from ._forward import Forwarder as Forwarder
from ._forward import HashPlacement as HashPlacement
from ._forward import Ownership as Ownership
from ._forward import Target as Target
from ._node import ClusterError as ClusterError
from ._node import ClusterNode as ClusterNode
from ._node import ClusterOptions as ClusterOptions
from ._node import NodeIdInUse as NodeIdInUse
from ._node import rendezvous_owner as rendezvous_owner
from ._node import shard_of as shard_of
from ._route import ShardPlacement as ShardPlacement
from ._wire import MAX_FRAME_BYTES as MAX_FRAME_BYTES
from .errors import CallInDoubt as CallInDoubt
from .errors import ForwardingError as ForwardingError
from .errors import NotOwnerError as NotOwnerError

__all__ = [
    "EtcdClient", "EtcdError", "EtcdUnavailable",
    "CONNECT_PATIENCE_S", "Forwarder", "HashPlacement", "NotOwnerError", "Ownership", "Target",
    "ClusterError", "ClusterNode", "ClusterOptions", "NodeIdInUse", "rendezvous_owner", "shard_of",
    "ShardPlacement", "MAX_FRAME_BYTES", "ForwardingError", "CallInDoubt",
]
