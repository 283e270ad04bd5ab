"""The runtime's error tree.

::

    DohostRuntimeError                      root of errors the host raises on purpose
    └── RuntimeConfigError                  bad arguments to open_runtime / unknown binding

Errors raised *inside* objects reach callers as ``objects.RemoteError``
subclasses; storage errors come from ``persistence.errors``.
"""

from __future__ import annotations

__all__ = ["DohostRuntimeError", "RuntimeConfigError"]


class DohostRuntimeError(Exception):
    """Root of the runtime package's errors."""


class RuntimeConfigError(DohostRuntimeError, ValueError):
    """open_runtime() or a binding lookup was given something it cannot use."""
