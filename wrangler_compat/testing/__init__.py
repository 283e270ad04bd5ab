"""Testing Durable Object code offline: the harness behind the ``dohost`` pytest fixture, and the plugin (entry point ``pytest11``)."""

from __future__ import annotations

from ._harness import Harness as Harness
from ._harness import UnknownBindingError as UnknownBindingError
from ._harness import WebSocketClient as WebSocketClient

__all__ = [
    "Harness",
    "UnknownBindingError",
    "WebSocketClient",
]
