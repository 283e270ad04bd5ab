"""Values that are plain Python and also answer the JS-proxy methods of older SDK code.

Python Workers code was written for two eras of the platform. Before
mid-2026 the platform handed Python ``JsProxy`` objects for what
``storage.get`` returned for an object or a list of keys, for ``list()``'s
``Map``, for RPC results and for ``request.json()``, and code called
``.to_py()``, ``.as_object_map()``, a Map's ``keys()``/``values()``/
``entries()``/``get``/``has``/``size``, ``object_values()`` or ``js_id`` on
them. The current SDK (cloudflare/workers-py ``workers/rpc.py``,
``python_from_rpc`` → ``JsDict``) returns plain dicts and lists, with
attribute access to a dict's keys.

The classes here satisfy both: :class:`JsObject` and :class:`JsMap` are
``dict`` subclasses, :class:`JsArray` a ``list`` subclass, so they compare
equal to plain values, ``json.dumps``, pickle and msgspec-encode cleanly,
and take no extra memory per instance (``__slots__ = ()``). They also answer
the proxy methods. ``to_py()`` returns plain ``dict``/``list`` all the way
down.

:func:`js_value` wraps a value at an edge (storage reads, RPC copies, JSON
bodies). Scalars come back untouched, so the common counter-style read pays
one type check.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

__all__ = ["ArrayBuffer", "JsArray", "JsIterator", "JsMap", "JsObject", "JsValueKv", "Uint8Array", "js_value", "py_value"]

_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


class _Proxyish:
    """What every JsProxy answers: ``to_py``, ``js_id``, ``typeof``."""

    __slots__ = ()

    def to_py(self, *, depth: int = -1, default_converter: Callable[..., Any] | None = None) -> Any:
        """A deep copy made of plain ``dict``/``list`` (Pyodide's ``JsProxy.to_py``)."""
        return py_value(self, depth)

    @property
    def js_id(self) -> int:
        return id(self)

    @property
    def typeof(self) -> str:
        return "object"


class JsObject(_Proxyish, dict):  # type: ignore[type-arg]
    """A JS object: a dict whose keys are also attributes (the SDK's ``JsDict``).

    A key named like a dict method (``keys``, ``get``, ``items``...) is read
    with ``obj["keys"]``, as in the SDK.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_object_map(self, *, hereditary: bool = False) -> JsObject:
        """Pyodide's mapping view of an object's own properties: the dict itself."""
        return self

    def as_py_json(self) -> JsObject:
        """Pyodide 0.28's successor of ``as_object_map`` (a JSON-like view): the dict itself."""
        return self

    def object_keys(self) -> JsArray:
        return JsArray(self.keys())

    def object_values(self) -> JsArray:
        return JsArray(self.values())

    def object_entries(self) -> JsArray:
        return JsArray(JsArray(kv) for kv in self.items())

    def __reduce__(self) -> Any:
        return (type(self), (dict(self),))


class JsMap(JsObject):
    """A JS ``Map`` (``storage.get([...])``, ``storage.list()``): a dict with Map's methods."""

    __slots__ = ()

    @property
    def size(self) -> int:
        return len(self)

    def has(self, key: Any) -> bool:
        return key in self

    # A JS Map's keys()/values()/entries() are iterators with ``.next()``
    # (Cloudflare's docs write ``vals.keys().next().value``); these are also
    # Python iterators with ``len`` and ``in``, so dict-era code keeps working.
    def keys(self) -> JsIterator:  # type: ignore[override]
        return JsIterator(list(dict.keys(self)))

    def values(self) -> JsIterator:  # type: ignore[override]
        return JsIterator(list(dict.values(self)))

    def entries(self) -> JsIterator:
        return JsIterator([JsArray(kv) for kv in dict.items(self)])

    def set(self, key: Any, value: Any) -> JsMap:
        self[key] = value
        return self

    def delete(self, key: Any) -> bool:
        return self.pop(key, _MISSING) is not _MISSING

    def forEach(self, callback: Callable[..., Any]) -> None:
        for key, value in list(self.items()):
            callback(value, key, self)


class JsIterator:
    """A JS iterator over a snapshot: ``next()`` gives ``{value, done}``; also a Python iterator."""

    __slots__ = ("_items", "_at")

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._at = 0

    def __iter__(self) -> JsIterator:
        return self

    def __next__(self) -> Any:
        if self._at >= len(self._items):
            raise StopIteration
        self._at += 1
        return self._items[self._at - 1]

    def next(self) -> JsObject:
        if self._at >= len(self._items):
            return JsObject(value=None, done=True)
        self._at += 1
        return JsObject(value=self._items[self._at - 1], done=False)

    def __len__(self) -> int:
        return len(self._items) - self._at

    def __contains__(self, item: object) -> bool:
        return item in self._items[self._at :]

    def to_py(self) -> list[Any]:
        return [py_value(item) for item in self._items[self._at :]]

    def __repr__(self) -> str:
        return f"JsIterator({self._items[self._at:]!r})"


class JsArray(_Proxyish, list):  # type: ignore[type-arg]
    """A JS array: a list that also answers ``length``, ``to_py()``, ``includes``..."""

    __slots__ = ()

    @property
    def length(self) -> int:
        return len(self)

    def as_py_json(self) -> JsArray:
        """Pyodide 0.28's JSON-like view of an array: the list itself."""
        return self

    def includes(self, item: Any) -> bool:
        return item in self

    def indexOf(self, item: Any) -> int:
        try:
            return self.index(item)
        except ValueError:
            return -1

    def push(self, *items: Any) -> int:
        self.extend(items)
        return len(self)

    def at(self, index: int) -> Any:
        try:
            return self[index]
        except IndexError:
            return None

    def __reduce__(self) -> Any:
        return (type(self), (list(self),))


_MISSING = object()


class Uint8Array(bytearray):
    """A mutable byte array (``Uint8Array.new(n | bytes | list)``); ``to_bytes()``/``to_py()`` as a JsBuffer."""

    @classmethod
    def new(cls, source: Any = 0, byte_offset: int = 0, length: int | None = None) -> Uint8Array:
        if isinstance(source, (bytes, bytearray, memoryview)):
            end = None if length is None else byte_offset + length
            return cls(bytes(source)[byte_offset:end])
        return cls(source)

    @property
    def length(self) -> int:
        return len(self)

    @property
    def byteLength(self) -> int:
        return len(self)

    def to_bytes(self) -> bytes:
        return bytes(self)

    def to_py(self) -> memoryview:
        return memoryview(self)

    def to_memoryview(self) -> memoryview:
        return memoryview(self)

    def subarray(self, start: int = 0, end: int | None = None) -> Uint8Array:
        return Uint8Array(self[start:end])


class ArrayBuffer(Uint8Array):
    """``ArrayBuffer.new(n)``: zeroed bytes (a ``JsBuffer`` in Pyodide)."""




def js_value(value: Any, map_type: type[JsObject] = JsObject) -> Any:
    """``value`` with its dicts as ``map_type``/:class:`JsObject` and lists as :class:`JsArray`.

    Copies containers (the values given are fresh: decoded or copied at the edge).
    """
    t = type(value)
    if t in _SCALARS:
        return value
    # Flat containers (the usual list() page or stored record) copy at C speed,
    # with no Python loop looking for nested ones.
    if t is dict:
        if _SCALARS.issuperset(map(type, value.values())):
            return map_type(value)
    elif t is list and _SCALARS.issuperset(map(type, value)):
        return JsArray(value)
    return _wrap(value, map_type, None)


def _wrap(value: Any, map_type: type[JsObject], memo: dict[int, Any] | None) -> Any:
    # Copy at C speed first, then replace only the nested containers (rare in
    # hot values). ``memo`` starts as None and is made at the first nesting,
    # so a flat value costs one copy; it keeps shared parts shared and ends cycles.
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        out: Any = map_type(value)
        items = value.items()
    elif isinstance(value, list):
        out = JsArray(value)
        items = enumerate(value)
    else:
        return value
    if memo is not None:
        memo[id(value)] = out
    for key, item in items:
        if type(item) not in _SCALARS and isinstance(item, (dict, list)):
            if memo is None:
                memo = {id(value): out}
            seen = memo.get(id(item))
            out[key] = seen if seen is not None else _wrap(item, JsObject, memo)
    return out


def py_value(value: Any, depth: int = -1) -> Any:
    """A deep copy made of plain ``dict``/``list``/``set`` (what ``to_py()`` gives)."""
    if type(value) in _SCALARS or depth == 0:
        return value
    if isinstance(value, dict):
        return {k: py_value(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [py_value(v, depth - 1) for v in value]
    return value


class JsValueKv:
    """``ctx.storage.kv``: the persistence ``SyncKv`` with reads handed back JS-shaped.

    The storage facade keeps one per database, so ``ctx.storage.kv`` costs an
    attribute read after the first use; ``put``/``delete`` are the bound
    methods of ``SyncKv`` itself.
    """

    __slots__ = ("_kv", "put", "delete")

    def __init__(self, kv: Any) -> None:
        self._kv = kv
        self.put = kv.put
        self.delete = kv.delete

    def get(self, key: str) -> Any:
        value = self._kv.get(key)
        return value if type(value) in _SCALARS else _wrap(value, JsObject, None)

    def list(self, options: Any = None, **kw: Any) -> Iterator[JsArray]:
        """``[key, value]`` pairs, as JS's iterator of entries gives them."""
        pairs = self._kv.list(options, **kw)  # bad options raise here, at the call
        return (
            JsArray((key, value if type(value) in _SCALARS else _wrap(value, JsObject, None)))
            for key, value in pairs
        )
