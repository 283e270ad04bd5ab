"""The Python Workers platform as dohost provides it: ``workers``, ``js``, ``pyodide``.

:func:`install_modules` puts the modules into ``sys.modules`` under the
names Cloudflare's runtime gives them, before user code is imported (the
loader, the CLI and the pytest plugin call it), so ``from workers import
Response``, ``from js import URL``, ``from pyodide.ffi import to_js``,
``import asgi`` and ``from workers import wsgi`` resolve to dohost's
(``asgi`` only where the project has no ``asgi`` module of its own).
:data:`MODULES` lists them; the README's compatibility table is checked
against it (``tests/compat/test_compat_platform_table.py``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Iterable

from ._unsupported import NotProvidedError as NotProvidedError

__all__ = ["FALLBACK_MODULES", "MODULES", "NotProvidedError", "install_modules", "platform_modules"]

#: The module names user code imports, each installed from the dohost module beside it.
MODULES: tuple[tuple[str, str], ...] = (
    ("workers", "wrangler_compat.platform.workers"),
    ("workers.wsgi", "wrangler_compat.platform.workers.wsgi"),
    ("workers.asgi", "wrangler_compat.platform.workers.asgi"),
    ("workers.workflows", "wrangler_compat.platform.workers.workflows"),
    ("workers.rpc", "wrangler_compat.platform.workers.rpc"),
    ("js", "wrangler_compat.platform.js"),
    ("pyodide", "wrangler_compat.platform.pyodide"),
    ("pyodide.ffi", "wrangler_compat.platform.pyodide.ffi"),
    ("pyodide.http", "wrangler_compat.platform.pyodide.http"),
    ("pyodide.webloop", "wrangler_compat.platform.pyodide.webloop"),
)


#: Names the SDK provides that a project's own module of that name overrides:
#: resolved only when nothing on ``sys.path`` has them (a finder at the end of
#: ``sys.meta_path``). Projects vendoring the SDK's ``asgi.py`` keep theirs.
FALLBACK_MODULES: tuple[tuple[str, str], ...] = (
    ("asgi", "wrangler_compat.platform.workers.asgi"),  # the SDK's top-level alias of workers.asgi
)


def platform_modules() -> dict[str, ModuleType]:
    """The user-visible name → dohost module, imported (fallback names included)."""
    return {name: importlib.import_module(target) for name, target in (*MODULES, *FALLBACK_MODULES)}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its own name


class _FallbackFinder(importlib.abc.MetaPathFinder):
    """Finds :data:`FALLBACK_MODULES` after every other finder has declined."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        for name, dohost_name in FALLBACK_MODULES:
            if fullname == name:
                return importlib.util.spec_from_loader(fullname, _AliasLoader(importlib.import_module(dohost_name)))
        return None


def install_modules(compatibility_date: str | None = None, compatibility_flags: Iterable[str] = ()) -> None:
    """Put dohost's platform modules into ``sys.modules`` (idempotent).

    The date and flags of the project being loaded choose ``pyodide.__version__``.
    """
    sys.modules.update({name: importlib.import_module(target) for name, target in MODULES})
    from . import pyodide

    pyodide.__version__ = pyodide._version_for(compatibility_date, compatibility_flags)
    if not any(isinstance(finder, _FallbackFinder) for finder in sys.meta_path):
        sys.meta_path.append(_FallbackFinder())
