"""Bindings other than Durable Objects: Workers KV, D1, R2, static assets, services, ``.dev.vars``.

One module per kind; each binding object is what ``env.<NAME>`` holds, with
the API Cloudflare gives Python Workers (camelCase names with snake_case
twins). Storage lives under the runtime's data directory, in
``bindings/<kind>/<digest>.sqlite``, through persistence's SQLite plumbing
and with the durability of the object files. :class:`ProjectBindings`
builds them all for the Workers of one runtime.
"""

from __future__ import annotations

from ._assets import AssetsBinding as AssetsBinding
from ._assets import AssetServer as AssetServer
from ._assets import assets_entrypoint as assets_entrypoint
from ._common import ByteStream as ByteStream
from ._common import JsObject as JsObject
from ._common import completing_synchronously as completing_synchronously
from ._d1 import D1Database as D1Database
from ._d1 import D1PreparedStatement as D1PreparedStatement
from ._devvars import dev_vars_path as dev_vars_path
from ._devvars import load_dev_vars as load_dev_vars
from ._kv import KVNamespace as KVNamespace
from ._project import ProjectBindings as ProjectBindings
from ._r2 import R2Bucket as R2Bucket
from ._r2 import R2Object as R2Object
from ._r2 import R2ObjectBody as R2ObjectBody
from ._services import ServiceBinding as ServiceBinding
from ._unsupported import UnsupportedBinding as UnsupportedBinding
from .errors import BindingError as BindingError
from .errors import D1Error as D1Error
from .errors import KvError as KvError
from .errors import R2Error as R2Error
from .errors import ServiceBindingError as ServiceBindingError
from .errors import UnsupportedBindingError as UnsupportedBindingError

__all__ = [
    "AssetsBinding",
    "AssetServer",
    "assets_entrypoint",
    "ByteStream",
    "JsObject",
    "completing_synchronously",
    "D1Database",
    "D1PreparedStatement",
    "dev_vars_path",
    "load_dev_vars",
    "KVNamespace",
    "ProjectBindings",
    "R2Bucket",
    "R2Object",
    "R2ObjectBody",
    "ServiceBinding",
    "UnsupportedBinding",
    "BindingError",
    "D1Error",
    "KvError",
    "R2Error",
    "ServiceBindingError",
    "UnsupportedBindingError",
]
