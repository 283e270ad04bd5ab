"""The Python Workers platform as dohost provides it: ``workers``, ``js``, ``pyodide``.

:func:`install_modules` puts the modules into ``sys.modules`` under the
names Cloudflare's runtime gives them, before user code is imported (the
loader, the CLI and the pytest plugin call it), so ``from workers import
Response``, ``from js import URL``, ``from pyodide.ffi import to_js``,
``import asgi`` and ``from workers import wsgi`` resolve to dohost's.
:data:`MODULES` lists them; the README's compatibility table is checked
against it (``tests/compat/test_compat_platform_table.py``).
"""

from __future__ import annotations

import sys
from types import ModuleType

from ._unsupported import NotProvidedError as NotProvidedError

__all__ = ["MODULES", "NotProvidedError", "install_modules", "platform_modules"]

#: The module names user code imports, each installed from the dohost module beside it.
MODULES: tuple[tuple[str, str], ...] = (
    ("workers", "wrangler_compat.platform.workers"),
    ("workers.wsgi", "wrangler_compat.platform.workers.wsgi"),
    ("workers.asgi", "wrangler_compat.platform.workers.asgi"),
    ("asgi", "wrangler_compat.platform.workers.asgi"),  # the SDK keeps a top-level alias
    ("js", "wrangler_compat.platform.js"),
    ("pyodide", "wrangler_compat.platform.pyodide"),
    ("pyodide.ffi", "wrangler_compat.platform.pyodide.ffi"),
    ("pyodide.http", "wrangler_compat.platform.pyodide.http"),
)


def platform_modules() -> dict[str, ModuleType]:
    """The user-visible name → dohost module, imported."""
    import importlib

    return {name: importlib.import_module(target) for name, target in MODULES}


def install_modules() -> None:
    """Put dohost's platform modules into ``sys.modules`` (idempotent)."""
    sys.modules.update(platform_modules())
