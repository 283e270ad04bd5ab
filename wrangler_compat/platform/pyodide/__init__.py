"""dohost's ``pyodide`` package: the parts of Pyodide's Python API Workers code imports.

Installed as ``sys.modules["pyodide"]`` (with ``pyodide.ffi``,
``pyodide.http`` and ``pyodide.webloop``). ``__version__`` is the Pyodide release Cloudflare would
run the project with (:func:`_version_for`, set when the project loads):
0.28.2 (CPython 3.13) by default — the bundle of ``python_workers_20250116``,
implied for compatibility dates from 2025-10-16 —, 0.26.0a2 before that,
and 314.0.4 / 314.0.5 with the explicit flags ``python_workers_20260610`` /
``python_workers_20260817``. The Python code is the same either way: dohost
runs on its own interpreter; code that branches on the version gets the
branch Cloudflare would take.
"""

from __future__ import annotations

from typing import Iterable

from .._unsupported import module_getattr
from . import ffi as ffi
from . import http as http
from . import webloop as webloop

__all__ = ["__version__", "ffi", "http", "webloop"]

_DEFAULT_VERSION = "0.28.2"
__version__ = _DEFAULT_VERSION

# CF: workerd build/python_metadata.bzl BUNDLE_VERSION_INFO; io/compatibility-date.capnp
# (pythonWorkers20250116 $impliedByAfterDate 2025-10-16; the 2026 bundles need their flag)
_EXPLICIT = (("python_workers_20260817", "314.0.5"), ("python_workers_20260610", "314.0.4"))
_IMPLIED_FROM = "2025-10-16"


def _version_for(compatibility_date: str | None, compatibility_flags: Iterable[str] = ()) -> str:
    """The Pyodide version Cloudflare runs a Python Worker with, from its date and flags."""
    flags = set(compatibility_flags)
    for flag, version in _EXPLICIT:
        if flag in flags and f"no_{flag}" not in flags:
            return version
    if "no_python_workers_20250116" in flags:
        return "0.26.0a2"
    if "python_workers_20250116" in flags or compatibility_date is None or compatibility_date >= _IMPLIED_FROM:
        return _DEFAULT_VERSION
    return "0.26.0a2"

__getattr__ = module_getattr(
    "pyodide",
    {
        "code": "no code evaluation helpers",
        "console": "no interactive console",
    },
)
