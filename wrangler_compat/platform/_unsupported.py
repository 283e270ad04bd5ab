"""The error for a Python Workers name dohost does not provide, and the module hook raising it.

``from js import HTMLRewriter`` or ``workers.patch_env`` must fail at the
line that names the missing thing, with a message saying dohost does not
provide it and where the compatibility table is — never as an
``AttributeError`` deep inside a call. Each platform module installs
:func:`module_getattr` as its ``__getattr__``.

:class:`NotProvidedError` is an ``ImportError``: Python turns an
``AttributeError`` raised during ``from m import x`` into its own
"cannot import name" message and drops ours, but lets an ``ImportError``
through. Dunder and private names still raise ``AttributeError``, so
``hasattr(js, "__path__")``, pickling and introspection behave normally.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import WranglerCompatError

__all__ = ["NotProvidedError", "README_SECTION", "module_getattr"]

README_SECTION = "README.md, section 'Running your Cloudflare Python Workers code'"


class NotProvidedError(WranglerCompatError, ImportError):
    """A Python Workers name (``js.X``, ``workers.X``, ``pyodide.X``) dohost does not provide."""

    def __init__(self, module: str, name: str, why: str = "") -> None:
        reason = f" ({why})" if why else ""
        super().__init__(
            f"{module}.{name} is not provided by dohost{reason}; "
            f"see the compatibility table in {README_SECTION}",
            name=module,
        )
        self.module = module
        self.attribute = name


def module_getattr(module: str, known_missing: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A module ``__getattr__`` that raises :class:`NotProvidedError` for public names.

    ``known_missing`` maps names Cloudflare provides and dohost doesn't to
    the reason, which goes into the message.
    """
    missing = dict(known_missing or {})

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        raise NotProvidedError(module, name, missing.get(name, ""))

    return __getattr__
