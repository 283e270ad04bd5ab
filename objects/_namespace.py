"""``env.NS`` (a Durable Object namespace) and the stubs it hands out.

A namespace mints IDs (workerd's scheme, :mod:`objects._ids`) and returns
stubs; a stub turns ``await stub.method(...)`` and ``await stub.fetch(...)``
into events delivered by the host (:class:`NamespaceHost`). A stub holds no
reference to the object itself: everything crosses as copied values.
"""

from __future__ import annotations

from typing import Any, Awaitable, Mapping

from persistence import cf_names

from ._host import NamespaceHost
from ._http import make_request
from ._ids import DurableObjectId, IdFactory

__all__ = ["DurableObjectNamespace", "DurableObjectStub"]

_STUB_CACHE_SIZE = 4096
#: RPC method names a stub remembers (a name a caller made up is not kept forever).
_METHODS_PER_STUB = 64


@cf_names("idFromName", "idFromString", "newUniqueId", "getByName")
class DurableObjectNamespace:
    """A binding such as ``env.COUNTER``."""

    def __init__(self, binding: str, ids: IdFactory, host: NamespaceHost) -> None:
        self.binding = binding
        self._ids = ids
        self._host = host
        #: Stubs by name: a stub holds nothing but its binding, ID and host, so the
        #: one made for a name serves every later ``getByName`` of it (a Worker asks
        #: on every request).
        self._by_name: dict[str, DurableObjectStub] = {}

    def idFromName(self, name: str) -> DurableObjectId:
        return self._ids.id_from_name(name)

    def idFromString(self, id_string: str) -> DurableObjectId:
        return self._ids.id_from_string(id_string)

    def newUniqueId(self, options: Mapping[str, Any] | None = None, *, jurisdiction: str | None = None) -> DurableObjectId:
        if options and "jurisdiction" in options:
            jurisdiction = options["jurisdiction"]
        return self._ids.new_unique_id(jurisdiction=jurisdiction)

    def get(self, id: DurableObjectId, options: Mapping[str, Any] | None = None) -> DurableObjectStub:
        if not isinstance(id, DurableObjectId):
            raise TypeError(f"{self.binding}.get(): expected a DurableObjectId, got {type(id).__name__}")
        self._ids.check_get(id)
        return DurableObjectStub(self.binding, id, self._host)

    def getByName(self, name: str, options: Mapping[str, Any] | None = None) -> DurableObjectStub:
        if options is None and type(name) is str:
            stub = self._by_name.get(name)
            if stub is None:
                stub = self.get(self.idFromName(name))
                if len(self._by_name) >= _STUB_CACHE_SIZE:
                    self._by_name.clear()
                self._by_name[name] = stub
            return stub
        return self.get(self.idFromName(name), options)

    def jurisdiction(self, name: str) -> DurableObjectNamespace:
        """A view whose IDs live in jurisdiction ``name`` (works locally; Cloudflare's local runtime throws)."""
        return DurableObjectNamespace(self.binding, self._ids.jurisdiction(name), self._host)

    def __repr__(self) -> str:
        return f"<DurableObjectNamespace {self.binding}>"


async def _result_of(sent: Awaitable[Any]) -> Any:
    # A coroutine, so ``nursery.start_soon(stub.method, ...)`` keeps working;
    # the call itself was already queued when the stub method was called.
    return await sent


class _RpcMethod:
    # What the call needs, not the stub: a stub keeps its methods, and a
    # method keeping its stub would make a cycle only the cyclic GC frees.
    __slots__ = ("_host", "_binding", "_id", "_name")

    def __init__(self, stub: DurableObjectStub, name: str) -> None:
        self._host, self._binding, self._id = stub._host, stub._binding, stub.id
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Queued now (E-order, see NamespaceHost); awaited whenever the caller likes.
        return _result_of(self._host.send_method(self._binding, self._id, self._name, args, kwargs))

    def __repr__(self) -> str:
        return f"<RPC method {self._binding}.{self._name}>"


class DurableObjectStub:
    """A client for one object: ``await stub.fetch(...)`` or ``await stub.any_method(...)``."""

    __slots__ = ("_binding", "id", "_host", "_methods")

    def __init__(self, binding: str, id: DurableObjectId, host: NamespaceHost) -> None:
        self._binding = binding
        self.id = id
        self._host = host
        #: ``stub.name`` callables made so far: a stub is reused for every
        #: request to its object (``getByName``), so each is made once.
        self._methods: dict[str, _RpcMethod] = {}

    @property
    def name(self) -> str | None:
        return self.id.name

    def fetch(
        self,
        url_or_request: Any,
        *,
        method: str | None = None,
        headers: Any = None,
        body: Any = None,
    ) -> Awaitable[Any]:
        """``await stub.fetch(...)``: queued when called, like an RPC call (see ``_RpcMethod``)."""
        request = make_request(url_or_request, method=method, headers=headers, body=body)
        return _result_of(self._host.send_fetch(self._binding, self.id, request))

    def __getattr__(self, name: str) -> _RpcMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._methods.get(name)
        if method is None:
            method = _RpcMethod(self, name)
            if len(self._methods) < _METHODS_PER_STUB:
                self._methods[name] = method
        return method

    def __repr__(self) -> str:
        return f"<DurableObjectStub {self._binding} {self.id}>"
