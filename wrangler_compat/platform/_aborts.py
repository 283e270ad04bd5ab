"""Unwinding ``ctx.abort()`` out of the nurseries platform code opens.

``ctx.abort()`` resets the object and raises ``AbortError`` (a
``BaseException``) to unwind the object's own code. Raised inside a trio
nursery (an ASGI app, a WebSocket listener), it arrives wrapped in a
``BaseExceptionGroup``, which the activation does not recognise and which
would end the runtime. :func:`unwrap_abort` turns such a group back into the
bare ``AbortError``; any other group is re-raised unchanged (``Cancelled``
included, which trio's cancel scopes take apart themselves).
"""

from __future__ import annotations

from typing import NoReturn

from objects.errors import AbortError

__all__ = ["unwrap_abort"]


def unwrap_abort(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    aborted, _ = group.split(AbortError)
    if aborted is None:
        raise group
    leaf: BaseException = aborted
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    raise leaf from None
