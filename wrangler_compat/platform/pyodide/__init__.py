"""dohost's ``pyodide`` package: the parts of Pyodide's Python API Workers code imports.

Installed as ``sys.modules["pyodide"]`` (with ``pyodide.ffi`` and
``pyodide.http``). ``__version__`` is the Pyodide release Cloudflare's Python
Workers run by default: 0.28.2 (CPython 3.13), the bundle enabled by
``python_workers_20250116``, implied for compatibility dates from
2025-10-16; newer bundles (314.0.x) need an explicit compatibility flag.
"""

from __future__ import annotations

from .._unsupported import module_getattr
from . import ffi as ffi
from . import http as http

__all__ = ["__version__", "ffi", "http"]

# CF: workerd build/python_metadata.bzl BUNDLE_VERSION_INFO "0.28.2"; io/compatibility-date.capnp
# pythonWorkers20250116 $impliedByAfterDate 2025-10-16
__version__ = "0.28.2"

__getattr__ = module_getattr(
    "pyodide",
    {
        "code": "no code evaluation helpers",
        "console": "no interactive console",
        "webloop": "the event loop is dohost's own",
    },
)
