"""``pyodide.ffi``: converting between Python and "JavaScript" values, where both are Python.

There is no JavaScript heap under dohost, so a "JS value" is one of the
proxy-shaped Python values of :mod:`objects._jsvalues`: ``to_js`` turns a
dict into a ``JsMap`` (or what ``dict_converter`` makes, e.g. a
``JsObject`` with ``Object.fromEntries``), a list into a ``JsArray``,
bytes into a ``Uint8Array``; ``.to_py()`` on any of them gives the plain
Python value back. ``JsProxy`` exists for ``isinstance`` checks and
annotations; nothing dohost hands out is one (see its docstring).

``create_proxy``/``create_once_callable`` wrap a callable so ``destroy()``
works; ``run_sync`` completes an awaitable that never has to wait (storage
calls, already-settled values, and KV/D1/R2 binding calls, which are local
and synchronous underneath — django-cf's D1 backend runs every query through
``run_sync``) and otherwise raises, since synchronous code under trio cannot
block on I/O (Pyodide needs JSPI for it).
"""

from __future__ import annotations

import abc
from typing import Any, Awaitable, Callable, Iterable

from objects import JsArray, JsMap

from ...bindings import completing_synchronously
from .._jsglobals import JsException, Uint8Array

__all__ = [
    "IN_BROWSER",
    "JsArray",
    "JsBuffer",
    "JsException",
    "JsMap",
    "JsProxy",
    "PyProxy",
    "create_once_callable",
    "create_proxy",
    "destroy_proxies",
    "run_sync",
    "to_js",
]

IN_BROWSER = False


class JsProxy(abc.ABC):
    """What Pyodide hands Python for a JS value.

    No dohost value is one: the current SDK promises Python values
    (workerd's ``python-rpc`` test asserts ``not isinstance(received,
    JsProxy)``), and older code that writes ``if isinstance(v, JsProxy):
    v = v.to_py()`` works either way, since dohost's values are already
    Python and also answer ``to_py()``.
    """


JsBuffer = Uint8Array


class PyProxy:
    """A Python callable or object handed to "JS" (``create_proxy``): callable, ``destroy()``-able."""

    __slots__ = ("_target", "_once", "_destroyed")

    def __init__(self, target: Any, once: bool = False) -> None:
        self._target = target
        self._once = once
        self._destroyed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._destroyed:
            raise JsException("Object has already been destroyed")  # CF: pyodide pyproxy.ts
        if self._once:
            self._destroyed = True
        return self._target(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def destroy(self) -> None:
        self._destroyed = True

    def copy(self) -> PyProxy:
        return PyProxy(self._target, self._once)

    def getBuffer(self) -> Any:
        return _Buffer(Uint8Array(bytes(self._target)))

    def toString(self) -> str:
        return str(self._target)


class _Buffer:
    __slots__ = ("data",)

    def __init__(self, data: Uint8Array) -> None:
        self.data = data

    def release(self) -> None:
        pass


def create_proxy(obj: Any, *, capture_this: bool = False, roundtrip: bool = True) -> PyProxy:
    return PyProxy(obj)


def create_once_callable(obj: Callable[..., Any], *, _may_syncify: bool = False) -> PyProxy:
    return PyProxy(obj, once=True)


def destroy_proxies(pyproxies: Iterable[Any]) -> None:
    for proxy in list(pyproxies):
        destroy = getattr(proxy, "destroy", None)
        if destroy is not None:
            destroy()


def to_js(
    obj: Any,
    *,
    depth: int = -1,
    pyproxies: Any = None,
    create_pyproxies: bool = True,
    dict_converter: Callable[[Iterable[Any]], Any] | None = None,
    default_converter: Callable[..., Any] | None = None,
    eager_converter: Callable[..., Any] | None = None,
) -> Any:
    """The "JS" form of ``obj``: dict → ``JsMap`` (or ``dict_converter(pairs)``), list/tuple → ``JsArray``."""
    return _to_js(obj, depth, dict_converter, {})


def _to_js(obj: Any, depth: int, dict_converter: Any, memo: dict[int, Any]) -> Any:
    if depth == 0 or isinstance(obj, (str, int, float, type(None), Uint8Array)) or obj is True or obj is False:
        return obj
    seen = memo.get(id(obj))
    if seen is not None:
        return seen
    if isinstance(obj, dict):
        pairs = [(k, _to_js(v, depth - 1, dict_converter, memo)) for k, v in obj.items()]
        out = dict_converter(pairs) if dict_converter is not None else JsMap(pairs)
    elif isinstance(obj, (list, tuple)):
        out = JsArray(_to_js(v, depth - 1, dict_converter, memo) for v in obj)
    elif isinstance(obj, (set, frozenset)):
        out = set(obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out = Uint8Array(bytes(obj))
    else:
        return obj
    memo[id(obj)] = out
    return out


def run_sync(awaitable: Awaitable[Any]) -> Any:
    """The result of ``awaitable``, which must finish without waiting (see the module docstring)."""
    if hasattr(awaitable, "__await__"):
        iterator = awaitable.__await__()
    else:
        raise TypeError(f"run_sync: expected an awaitable, got {type(awaitable).__name__}")
    try:
        with completing_synchronously():  # binding calls (KV, D1, R2) finish at once
            iterator.send(None)
    except StopIteration as done:
        return done.value
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
    raise RuntimeError(
        "run_sync: the awaitable had to wait (I/O or a timer); dohost runs synchronous code on trio, "
        "which cannot block on it; await it from an async function instead"
    )
