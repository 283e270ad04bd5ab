"""``workers.rpc``: the SDK module behind ``python_to_rpc``/``python_from_rpc``.

Besides the two converters, the SDK's tests (and code that checks what a
binding is) use its wrapper classes: ``isinstance(env.ASSETS, _FetcherWrapper)``,
``isinstance(env.DB.prepare(sql), _BindingWrapper)``
(cloudflare/workers-py ``packages/runtime-sdk/src/workers/rpc.py``). dohost's
bindings are not wrappers around JS objects, so these are abstract classes
that dohost's binding classes are registered with: each ``isinstance``
answers as it does on Cloudflare, and nothing here wraps anything.
"""

from __future__ import annotations

from abc import ABC

from objects import DurableObjectNamespace, DurableObjectStub
from runtime import Env

from ...bindings import AssetsBinding, D1Database, D1PreparedStatement, KVNamespace, R2Bucket
from ...bindings._services import ServiceBinding
from .._unsupported import module_getattr
from . import python_from_rpc, python_to_rpc

__all__ = ["python_from_rpc", "python_to_rpc"]


class _BindingWrapper(ABC):
    """A binding whose calls the SDK converts (KV, R2, D1 and what they return)."""


class _RpcStubWrapper(_BindingWrapper):
    """A function or ``RpcTarget`` received over RPC (callable)."""


class _FetcherWrapper(_BindingWrapper):
    """A binding with ``fetch``: service bindings, static assets, Durable Object stubs."""


class _DurableObjectNamespaceWrapper(ABC):
    """``env.<DO binding>``."""


class _EnvWrapper(ABC):
    """The ``env`` handed to entrypoints and objects."""


_BINDINGS: tuple[type, ...] = (KVNamespace, R2Bucket, D1Database, D1PreparedStatement)
_FETCHERS: tuple[type, ...] = (AssetsBinding, ServiceBinding, DurableObjectStub)
for _cls in _BINDINGS:
    _BindingWrapper.register(_cls)
for _cls in _FETCHERS:
    _FetcherWrapper.register(_cls)
_DurableObjectNamespaceWrapper.register(DurableObjectNamespace)
_EnvWrapper.register(Env)

__getattr__ = module_getattr("workers.rpc")
