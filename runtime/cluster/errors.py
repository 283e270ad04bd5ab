"""Errors of ``runtime.cluster``.

ForwardingError            a call could not reach (or come back from) the owning process
"""

from __future__ import annotations

from ..errors import DohostRuntimeError as _Base

__all__ = ["ForwardingError"]


class ForwardingError(_Base):
    """A forwarded call failed on the way: the owner is unreachable, or a value does not pickle."""

    #: As Cloudflare's errors for a broken connection to an object: the caller may retry.
    retryable = True
