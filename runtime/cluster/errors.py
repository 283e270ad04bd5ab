"""Errors of ``runtime.cluster``.

ForwardingError            a call could not reach (or come back from) the owner
  NotOwnerError            this node may not run that object's events now (``_route.py``)
  CallInDoubt              the call may have run on the owner; it is not sent again
    LinkBroken             the wire's connection broke with the call on it (``_wire.py``)
  NotSent                  the wire's connection broke before the frame went (``_wire.py``)
ClusterError               joining or serving a cluster failed (``_node.py``)
  NodeIdInUse

:class:`CallInDoubt` is also an ``objects.errors.NetworkLostError``: a Worker
sees Cloudflare's error for a call whose connection to the object was lost
after the call may have reached it (``retryable`` true, ``overloaded``
false), and may retry it itself if the call is idempotent.
"""

from __future__ import annotations

from objects.errors import NetworkLostError

from ..errors import DohostRuntimeError as _Base

__all__ = ["ForwardingError", "NotOwnerError", "CallInDoubt"]


class ForwardingError(_Base):
    """A forwarded call failed on the way: the owner is unreachable, or a value cannot travel."""

    #: As Cloudflare's errors for a broken connection to an object: the caller may retry.
    retryable = True


class NotOwnerError(ForwardingError):
    """This node may not run events of that object now (not its shard, or its lease may have expired)."""


class CallInDoubt(ForwardingError, NetworkLostError):
    """The call may have reached the owner (and run there): it is never sent again; the caller decides.

    # CF: developers.cloudflare.com/durable-objects/best-practices/automatic-retries -- a call whose
    # connection dropped after it may have reached the object is not run a second time; the caller
    # gets the error, ``retryable`` set, and retries it itself if it is idempotent.
    """

    def __init__(self, message: str = NetworkLostError.MESSAGE) -> None:
        super().__init__(message)
