"""``pyodide.webloop``: the name of Pyodide's event loop class, for code that imports it.

Under Pyodide the running loop is a ``WebLoop``; under dohost it is
``runtime.TrioEventLoop`` (see README "asyncio in Worker and object code").
Code imports ``WebLoop`` mostly to patch it — the Python Workers SDK's and
django-cf's in-Worker test harnesses set ``WebLoop.shutdown_asyncgens`` —
so :class:`WebLoop` is a subclass of dohost's loop class: ``issubclass``
holds, and attributes set on it never change the loop dohost runs.
``PyodideFuture`` is asyncio's future, which the loop hands out. Other
names raise :class:`~wrangler_compat.platform.NotProvidedError`.
"""

from __future__ import annotations

import asyncio

from runtime import TrioEventLoop

from .._unsupported import module_getattr

__all__ = ["PyodideFuture", "WebLoop"]


class WebLoop(TrioEventLoop):
    """Pyodide's loop class name; dohost's running loop is its base class."""


#: The loop's futures are asyncio's.
PyodideFuture = asyncio.Future

__getattr__ = module_getattr("pyodide.webloop", {"WebLoopPolicy": "dohost chooses the event loop", "PyodideTask": "tasks are dohost's own"})
