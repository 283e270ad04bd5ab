"""dohost's ``workers`` module: what Cloudflare's Python Workers SDK exports.

Installed as ``sys.modules["workers"]`` by :func:`wrangler_compat.platform.install_modules`
before any user module is imported — as the platform provides it under
Pyodide — so it wins even where Cloudflare's Pyodide-only SDK is installed
for type hints. The list of names is the SDK's ``__all__``
(cloudflare/workers-py ``packages/runtime-sdk/src/workers/__init__.py``):

* ``Request``, ``Response``, ``FetchResponse``, ``Headers`` — dohost's own
  (``objects``); ``fetch`` — an outgoing request that waits for the output gate.
* ``Blob``, ``File``, ``FormData`` (and ``BlobEnding``) — in memory.
* ``DurableObject``, ``WorkerEntrypoint``, ``WorkflowEntrypoint`` (a base
  class only: dohost runs no Workflows), ``handler`` (identity: dohost hands
  handlers Python values already).
* ``env``, ``wait_until``/``waitUntil``, ``import_from_javascript``
  (``cloudflare:workers`` only), ``python_to_rpc``/``python_from_rpc``.
* submodules ``workers.wsgi`` and ``workers.asgi`` (``fetch(app, request, env)``),
  ``workers.workflows`` (``NonRetryableError``).

``patch_env(**values)`` overrides ``workers.env`` attributes inside a
``with`` block (the env handed to constructors is not patched). Any other
name raises :class:`~wrangler_compat.platform.NotProvidedError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import types
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping, TypeVar, Union

from objects import (
    DurableObject,
    DurableObjectId,
    DurableObjectNamespace,
    DurableObjectState,
    DurableObjectStub,
    ExecutionContext,
    Headers,
    Request,
    Response,
    WebSocketHandle,
    WebSocketPair,
    WebSocketRequestResponsePair,
    WorkerEntrypoint,
    js_value,
    to_rpc,
)

from objects import Blob, BlobEnding, BlobValue, File, FormData, FormDataValue
from runtime import current_activation, current_env

from .._fetch import send as _send
from .._unsupported import NotProvidedError, module_getattr

__all__ = [
    "Blob",
    "BlobEnding",
    "BlobValue",
    "Body",
    "Context",
    "DurableObject",
    "DurableObjectId",
    "DurableObjectNamespace",
    "DurableObjectState",
    "DurableObjectStub",
    "ExecutionContext",
    "FetchKwargs",
    "FetchResponse",
    "File",
    "FormData",
    "FormDataValue",
    "Headers",
    "JSBody",
    "Request",
    "RequestInitCfProperties",
    "Response",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "WorkerEntrypoint",
    "WorkflowEntrypoint",
    "env",
    "fetch",
    "handler",
    "import_from_javascript",
    "patch_env",
    "python_from_rpc",
    "python_to_rpc",
    "wait_until",
    "waitUntil",
]

#: Python Workers name the response of an outgoing ``fetch`` ``FetchResponse``.
FetchResponse = Response
WebSocket = WebSocketHandle
Context = ExecutionContext
JSBody = Union[Blob, bytes, FormData]
Body = Union[str, FormData, Blob, bytes]
FetchKwargs = dict[str, Any]
RequestInitCfProperties = dict[str, Any]

_F = TypeVar("_F", bound=Callable[..., Any])


class WorkflowEntrypoint:
    """Base class of a Workflow (``workers.WorkflowEntrypoint``).

    Importable and subclassable so a Worker that declares a Workflow loads;
    dohost does not run Workflows (the ``workflows`` binding is reported at
    start and raises at first use).
    """

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


_ENV_PATCHES: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("workers_env_patches", default={})


@contextlib.contextmanager
def patch_env(d: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, **kwds: Any) -> Iterator[None]:
    """``with patch_env(FOO="x"):`` — ``workers.env.FOO`` reads ``"x"`` inside the block (this task only)."""
    patches = {**_ENV_PATCHES.get(), **(dict(d) if d else {}), **kwds}
    token = _ENV_PATCHES.set(patches)
    try:
        yield
    finally:
        _ENV_PATCHES.reset(token)


class _EnvProxy:
    """``from workers import env``: the current runtime's env, looked up per access."""

    def _target(self) -> Any:
        env = current_env()
        if env is None:
            raise RuntimeError("workers.env is only available while dohost is serving a request")
        return env

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        patches = _ENV_PATCHES.get()
        if name in patches:
            return patches[name]
        return getattr(self._target(), name)

    def __getitem__(self, name: str) -> Any:
        patches = _ENV_PATCHES.get()
        if name in patches:
            return patches[name]
        return self._target()[name]

    def __repr__(self) -> str:
        env = current_env()
        return f"<workers.env {env!r}>"


env = _EnvProxy()


def wait_until(awaitable: Awaitable[Any]) -> None:
    """Keep the current object (or request) alive until ``awaitable`` finishes."""
    act = current_activation()
    if act is None:
        raise RuntimeError("wait_until() outside a Durable Object: use ctx.waitUntil in a Worker")
    act.wait_until(awaitable)


waitUntil = wait_until


async def fetch(resource: Any, init: Any = None, /, **options: Any) -> Response:
    """An outgoing HTTP request (``workers.fetch(url, method=, headers=, body=)``).

    Inside an object it waits for the object's pending writes to commit first.
    """
    return await _send(resource, init, **options)


def handler(func: _F) -> _F:
    """``@handler``: the SDK converts JS arguments to Python ones; dohost's already are."""
    return func


def python_to_rpc(value: Any) -> Any:
    """The value as the other side of an RPC call receives it (a checked deep copy)."""
    return to_rpc(value)


def python_from_rpc(value: Any) -> Any:
    """A received RPC value as Python: dicts that also allow attribute access (the SDK's ``JsDict``)."""
    return js_value(value)


def import_from_javascript(module_name: str) -> Any:
    """``import_from_javascript("cloudflare:workers")``: ``env``, ``waitUntil`` and the base classes."""
    if module_name == "cloudflare:workers":
        module = types.ModuleType("cloudflare:workers")
        module.__dict__.update(
            env=env,
            waitUntil=wait_until,
            DurableObject=DurableObject,
            WorkerEntrypoint=WorkerEntrypoint,
            WorkflowEntrypoint=WorkflowEntrypoint,
        )
        return module
    raise NotProvidedError(
        "workers", f"import_from_javascript({module_name!r})", "only 'cloudflare:workers' can be imported"
    )


__getattr__ = module_getattr("workers")
