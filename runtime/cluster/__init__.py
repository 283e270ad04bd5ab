"""Several processes (and later nodes) sharing the objects of one data directory.

``HashPlacement`` decides which process owns an object; ``Forwarder`` is the
runtime's ``ObjectRouter`` that sends calls for objects owned elsewhere to
their owner over loopback; ``internal_routes`` serves those calls.
"""

from __future__ import annotations

from ._forward import CONNECT_PATIENCE_S as CONNECT_PATIENCE_S
from ._forward import INTERNAL_PREFIX as INTERNAL_PREFIX
from ._forward import TOKEN_HEADER as TOKEN_HEADER
from ._forward import Forwarder as Forwarder
from ._forward import HashPlacement as HashPlacement
from ._forward import Placement as Placement
from ._forward import internal_routes as internal_routes
from .errors import ForwardingError as ForwardingError

__all__ = [
    "CONNECT_PATIENCE_S", "INTERNAL_PREFIX", "TOKEN_HEADER", "Forwarder", "HashPlacement", "Placement",
    "internal_routes", "ForwardingError",
]
