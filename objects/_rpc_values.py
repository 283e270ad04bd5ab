"""Copying values across an RPC boundary, as Cloudflare's Python Workers convert them.

Arguments and results of ``await stub.method(...)`` are copied, never shared:
the callee can mutate what it received without the caller seeing it, and
vice versa. :func:`to_rpc` makes that copy and enforces what can cross, after
``workers/_workers.py`` (``python_to_rpc``/``python_from_rpc``) and workerd's
``api/worker-rpc.c++``:

========================  =======================================================
sent                      received
========================  =======================================================
None, bool, int, float    the same value (subclasses such as IntEnum: plain base)
str, bytes                the same value (subclasses: plain base)
memoryview                bytes (dohost; Cloudflare may hand over a memoryview)
list                      a new list (a ``JsArray``: also ``.to_py()``, ``.length``)
dict                      a new dict (a ``JsObject``: also ``.to_py()``,
                          ``.as_object_map()``, keys as attributes); keys must
                          be str/int/float/bool/None
set, frozenset            a new set (JS ``Set``)
datetime.datetime         the same value (JS ``Date``)
Exception instance        ``Exception("Error: <message>")`` (JS ``Error``)
Request, Response         an independent copy with an unread body
tuple, bytearray,         ``DataCloneError``: ``<class 'tuple'> cannot be sent over RPC.``
functions, anything else
awaitables                ``DataCloneError``: ``Awaitable <class 'coroutine'> cannot ...``
========================  =======================================================

Shared references and cycles are preserved within one value, as V8's
serializer does. :func:`payload_size` estimates the V8-serialized size and
:func:`check_payload` enforces Cloudflare's 32 MiB limit on a whole argument
list or result; Request/Response bodies travel as streams beside the value,
so they do not count. :func:`lookup_rpc_method` applies Cloudflare's rules
for which attributes of an object are callable over RPC.
"""

from __future__ import annotations

import datetime
import inspect
from typing import Any, Callable, Final, Mapping, Sequence

from ._http import Request, Response
from ._jsvalues import JsArray, JsObject, Uint8Array
from .errors import (
    MAX_RPC_PAYLOAD_BYTES,
    DataCloneError,
    RpcMethodNotFoundError,
    RpcNotCallableError,
    RpcPayloadTooLargeError,
    RpcReservedMethodError,
)

__all__ = [
    "to_rpc",
    "to_rpc_call",
    "payload_size",
    "check_payload",
    "lookup_rpc_method",
    "RESERVED_METHOD_NAMES",
]

# Immutable leaves returned as they are: copying them would change nothing.
_LEAVES: Final = frozenset({str, int, float, bool, type(None), bytes, datetime.datetime})
# Leaves of a few bytes (an int would need 2**28 bits to reach the limit as a BigInt).
_SMALL: Final = frozenset({int, float, bool, type(None), datetime.datetime})
_UNBOUNDED: Final = MAX_RPC_PAYLOAD_BYTES + 1
# Leaves-only calls whose bound stays under this skip the size walk (framing slack).
_LEAF_BUDGET: Final = MAX_RPC_PAYLOAD_BYTES - 64 * 1024

#: Names an entrypoint reserves (``EntrypointJsRpcTarget::isReservedName``),
#: plus the snake twins of the handlers, which dohost also dispatches to.
RESERVED_METHOD_NAMES: Final = frozenset(
    {
        # CF: api/worker-rpc.c++ EntrypointJsRpcTarget::isReservedName
        "fetch", "connect", "alarm", "webSocketMessage", "webSocketClose", "webSocketError", "dup", "constructor",
        "web_socket_message", "web_socket_close", "web_socket_error",
    }
)  # fmt: skip


def to_rpc(value: Any, *, path: str = "$") -> Any:
    """A deep copy of ``value`` as the receiving side of an RPC gets it.

    Raises :class:`DataCloneError` (a ``TypeError``) naming the first part
    that cannot be sent; its ``path`` attribute says where it sits.
    """
    if type(value) in _LEAVES:  # hot path: most arguments are scalars
        return value
    try:
        return _copy(value, {})
    except _Refused as refused:
        raise refused.error(path) from None


def to_rpc_call(
    args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Copy a call's arguments and check their total size like one serialized value.

    Paths are ``$[i]`` for positional and ``$.name`` for keyword arguments.
    """
    # Hot path: every stub call goes through here, usually with a few scalars.
    # Leaves get a cheap upper bound on their size; only containers (or huge
    # leaves) pay for the full estimate.
    memo: dict[int, Any] = {}
    bound = 0
    new_args: list[Any] = []
    for index, arg in enumerate(args):
        kind = type(arg)
        if kind not in _SMALL:
            if kind in _LEAVES:
                bound += 2 * len(arg) + 16
            else:
                bound = _UNBOUNDED
                try:
                    arg = _copy(arg, memo)
                except _Refused as refused:
                    raise refused.error(f"$[{index}]") from None
        new_args.append(arg)
    new_kwargs: dict[str, Any] = {}
    for name, arg in kwargs.items():
        kind = type(arg)
        if kind not in _SMALL:
            if kind in _LEAVES:
                bound += 2 * len(arg) + 16
            else:
                bound = _UNBOUNDED
                try:
                    arg = _copy(arg, memo)
                except _Refused as refused:
                    raise refused.error(_child_path("$", name)) from None
        new_kwargs[name] = arg
    if bound + 16 * (len(new_args) + len(new_kwargs)) > _LEAF_BUDGET:
        check_payload([new_args, new_kwargs] if new_kwargs else new_args)
    return tuple(new_args), new_kwargs


class _Refused(Exception):
    """A value that cannot cross, unwinding to the top while collecting its path.

    Paths are only built on failure: the copy itself never formats strings.
    """

    def __init__(self, value: Any) -> None:
        self.value = value
        self.segments: list[str] = []  # innermost first

    def error(self, root: str) -> DataCloneError:
        path = root + "".join(reversed(self.segments))
        if inspect.isawaitable(self.value):
            # The caller should have awaited it first.
            return DataCloneError(f"Awaitable {type(self.value)} cannot be sent over RPC.", path=path)  # CF: workers/_workers.py _raise_on_disabled_type
        return DataCloneError(f"{type(self.value)} cannot be sent over RPC.", path=path)  # CF: workers/_workers.py _raise_on_disabled_type


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    cls = type(value)
    if cls in _LEAVES:
        return value
    if isinstance(value, (list, dict, set, frozenset)):
        seen = memo.get(id(value))
        if seen is not None:
            return seen
        if isinstance(value, list):
            out_list: list[Any] = JsArray()
            memo[id(value)] = out_list
            for i, item in enumerate(value):
                try:
                    out_list.append(item if type(item) in _LEAVES else _copy(item, memo))
                except _Refused as refused:
                    refused.segments.append(f"[{i}]")
                    raise
            return out_list
        if isinstance(value, dict):
            out_dict: dict[Any, Any] = JsObject()
            memo[id(value)] = out_dict
            for key, item in value.items():
                try:
                    out_dict[_key(key)] = item if type(item) in _LEAVES else _copy(item, memo)
                except _Refused as refused:
                    refused.segments.append(_child_path("", key))
                    raise
            return out_dict
        out_set: set[Any] = set()
        memo[id(value)] = out_set
        for item in value:
            try:
                out_set.add(_key(item))
            except _Refused as refused:
                refused.segments.append(f"[{item!r}]")
                raise
        return out_set
    # Subclasses of the scalars lose their class, as a JS round trip does.
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, Uint8Array):  # a JS typed array crosses; a Python bytearray does not
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, (Request, Response)):
        return value._rpc_copy()
    if isinstance(value, Exception):
        # CF: workers/_workers.py: Python -> js.Error(str(e)) -> Exception(error.toString())
        message = str(value)
        return Exception(f"Error: {message}" if message else "Error")
    raise _Refused(value)


def _key(key: Any) -> Any:
    """A dict key or set item: JS Map keys and Set items that come back hashable."""
    if key is None or isinstance(key, (str, int, float)):
        return _copy(key, {})
    raise _Refused(key)


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


# ------------------------------------------------------------------------- size


def payload_size(value: Any) -> int:
    """An estimate of ``value``'s V8-serialized size in bytes (header included).

    Close to what workerd measures for the same value; Request/Response
    bodies are streamed beside the message and are not counted.
    """
    return 2 + _size(value, set())  # 2: V8's version header


def check_payload(value: Any) -> int:
    """The estimated size of ``value``; raises :class:`RpcPayloadTooLargeError` over 32 MiB."""
    size = payload_size(value)
    if size > MAX_RPC_PAYLOAD_BYTES:
        raise RpcPayloadTooLargeError(size)
    return size


def _varint(n: int) -> int:
    return (n.bit_length() + 6) // 7 or 1


def _size(value: Any, seen: set[int]) -> int:
    # Exact types first: this walk runs for every call that passes a container.
    kind = type(value)
    if kind is str:
        return _str_size(value)
    if kind is int:
        return _int_size(value)
    if kind is dict or kind is list:
        return _container_size(value, seen)
    if value is None or kind is bool:
        return 1
    if kind is float:
        return 9
    return _other_size(value, seen)


def _str_size(value: str) -> int:
    n = len(value)
    # V8 writes one byte per char for Latin-1 strings, UTF-16 otherwise.
    width = n if value.isascii() else 2 * n
    return 1 + _varint(width) + width


def _int_size(number: int) -> int:
    if -0x40000000 <= number < 0x40000000:
        return 1 + _varint(abs(number) * 2)  # Smi, zigzag varint
    if -(1 << 53) <= number <= 1 << 53:
        return 9  # double
    return 2 + (abs(number).bit_length() + 63) // 64 * 8  # BigInt


def _container_size(value: Any, seen: set[int]) -> int:
    if id(value) in seen:
        return 3  # back-reference to an object already written
    seen.add(id(value))
    total = 2 + 2 * _varint(len(value))
    if isinstance(value, dict):
        for key, item in value.items():
            total += _size(key, seen) + _size(item, seen)
    else:
        for item in value:
            total += _size(item, seen)
    return total


def _other_size(value: Any, seen: set[int]) -> int:
    if isinstance(value, str):
        return _str_size(value)
    if isinstance(value, int):
        return _int_size(int.__index__(value))
    if isinstance(value, (float, datetime.datetime)):
        return 9
    if isinstance(value, (bytes, memoryview)):
        n = len(value)
        return 4 + _varint(n) + n  # ArrayBuffer plus its Uint8Array view
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return _container_size(value, seen)
    if isinstance(value, (Request, Response)):
        return 16 + len(value.url) + sum(len(k) + len(v) + 4 for k, v in value.headers.items())
    return 16 + len(str(value))  # an Error: its message and a little framing


# ---------------------------------------------------------------------- methods


def lookup_rpc_method(
    target: object, name: str, *, base_classes: tuple[type, ...] = ()
) -> Callable[..., Any]:
    """The bound method ``stub.<name>(...)`` calls on ``target``, or Cloudflare's error.

    As workerd does for class-based entrypoints: reserved names are refused;
    only attributes defined on the class (not the instance), not inherited
    from ``object`` or from ``base_classes`` (e.g. ``DurableObject``), and
    not private (leading ``_``) can be called.
    """
    cls = type(target)
    known = _RPC_METHODS.get((cls, name, base_classes))
    if known is not None and getattr(cls, name, None) is known:
        # Checked before for this class, and the class still resolves the name
        # to the same thing (whichever class in its MRO now defines it): only
        # the instance's attribute is looked up (every RPC call).
        attr = getattr(target, name)
        if callable(attr):
            return attr  # type: ignore[no-any-return]
    if name in RESERVED_METHOD_NAMES:
        raise RpcReservedMethodError(name)
    if not name or name.startswith("_"):
        raise RpcMethodNotFoundError(name)
    owner = None
    for klass in type(target).__mro__:
        if name in vars(klass):
            owner = klass
            break
    if owner is None or owner is object or owner in base_classes:
        raise RpcMethodNotFoundError(name)
    if isinstance(vars(owner)[name], property):
        raise RpcMethodNotFoundError(name)
    attr = getattr(target, name)
    if not callable(attr):
        raise RpcNotCallableError(name)
    if len(_RPC_METHODS) >= 4096:
        _RPC_METHODS.clear()  # classes of earlier deployments are let go
    _RPC_METHODS[(cls, name, base_classes)] = getattr(cls, name)
    return attr  # type: ignore[no-any-return]


#: (class, name, base classes) -> what the class resolved the name to, for
#: names that passed :func:`lookup_rpc_method`'s checks: an MRO walk per call
#: becomes one dict lookup, re-checked against the class on each use.
_RPC_METHODS: dict[tuple[type, str, tuple[type, ...]], Any] = {}

