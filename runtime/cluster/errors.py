"""Errors of ``runtime.cluster``.

ForwardingError            a call could not reach (or come back from) the owner
  NotOwnerError            this node may not run that object's events now (``_forward.py``)
  LinkBroken, NotSent      the wire's connection broke with / before a frame (``_wire.py``)
ClusterError               joining or serving a cluster failed (``_node.py``)
  NodeIdInUse
"""

from __future__ import annotations

from ..errors import DohostRuntimeError as _Base

__all__ = ["ForwardingError"]


class ForwardingError(_Base):
    """A forwarded call failed on the way: the owner is unreachable, or a value cannot travel."""

    #: As Cloudflare's errors for a broken connection to an object: the caller may retry.
    retryable = True
