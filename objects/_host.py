"""What the object API needs from the host, as Protocols with no-op defaults.

``objects`` sits below ``runtime`` and may not import it. The runtime hands
each ``ctx`` an :class:`ActivationHost` and each ``env`` namespace a
:class:`NamespaceHost`; the defaults let the object API be used (and unit
tested) with no host at all, e.g. ``DurableObjectState`` over a bare
``ObjectDatabase``.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Protocol

__all__ = ["ActivationHost", "NamespaceHost", "DetachedActivation", "Completed"]


class Completed:
    """An awaitable that is already done, like a settled JS promise.

    Cloudflare's async storage methods do their work when called; Python code
    copied from Cloudflare's examples sometimes never awaits them. Awaiting
    this never yields to the scheduler (so it cannot let another event in,
    exactly as storage awaits are gated on Cloudflare) and not awaiting it
    warns about nothing, unlike a coroutine.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # pragma: no cover - makes this a generator that finishes at once

    def __repr__(self) -> str:
        return f"Completed({self.value!r})"


class ActivationHost(Protocol):
    """Per-object services: gates, alarms, lifetime. Implemented by the runtime."""

    def block_concurrency_while(self, fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]: ...

    def run_transaction(self, fn: Callable[[Any], Awaitable[Any]], txn: Any) -> Awaitable[Any]: ...

    def wait_until(self, awaitable: Awaitable[Any]) -> None: ...

    def abort(self, reason: str | None) -> None: ...

    def wait_committed(self) -> Awaitable[None]: ...

    def now_ms(self) -> float: ...

    def constructing(self) -> bool: ...

    def alarm_running(self) -> bool: ...

    def alarm_written(self) -> None: ...


class DetachedActivation:
    """The no-host default: a ctx used outside any runtime (unit tests, scripts)."""

    def block_concurrency_while(self, fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        return fn()

    def run_transaction(self, fn: Callable[[Any], Awaitable[Any]], txn: Any) -> Awaitable[Any]:
        raise RuntimeError("transaction() needs a running dohost runtime")

    def wait_until(self, awaitable: Awaitable[Any]) -> None:
        raise RuntimeError("waitUntil() needs a running dohost runtime")

    def abort(self, reason: str | None) -> None:
        raise RuntimeError("abort() needs a running dohost runtime")

    def wait_committed(self) -> Awaitable[None]:
        return Completed(None)

    def now_ms(self) -> float:
        return time.time() * 1000.0

    def constructing(self) -> bool:
        return False

    def alarm_running(self) -> bool:
        return False

    def alarm_written(self) -> None:
        pass


class NamespaceHost(Protocol):
    """How a stub reaches its object. Implemented by the runtime's directory.

    Both methods are synchronous: they queue the event *now* and return an
    awaitable of its result. That gives E-order — calls through one stub are
    delivered in the order they were made, whichever task awaits them, as a
    JS stub call sends before returning its promise.
    """

    def send_method(self, binding: str, object_id: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]: ...

    def send_fetch(self, binding: str, object_id: Any, request: Any) -> Awaitable[Any]: ...
