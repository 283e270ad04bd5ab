"""Errors of ``runtime.cluster``.

ForwardingError            a call could not reach (or come back from) the owner
  NotOwnerError            this node may not run that object's events now (``_route.py``)
  LinkBroken, NotSent      the wire's connection broke with / before a frame (``_wire.py``)
ClusterError               joining or serving a cluster failed (``_node.py``)
  NodeIdInUse
"""

from __future__ import annotations

from ..errors import DohostRuntimeError as _Base

__all__ = ["ForwardingError", "NotOwnerError"]


class ForwardingError(_Base):
    """A forwarded call failed on the way: the owner is unreachable, or a value cannot travel."""

    #: As Cloudflare's errors for a broken connection to an object: the caller may retry.
    retryable = True


class NotOwnerError(ForwardingError):
    """This node may not run events of that object now (not its shard, or its lease may have expired)."""
