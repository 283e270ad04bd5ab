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
list                      a new list
dict                      a new dict; keys must be str/int/float/bool/None
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
# Leaves of a few bytes (ints beyond 2**53 are BigInts, bounded well below the limit).
_SMALL: Final = frozenset({int, float, bool, type(None), datetime.datetime})
_UNBOUNDED: Final = MAX_RPC_PAYLOAD_BYTES + 1

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
    return _copy(value, path, {})


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
    for i, arg in enumerate(args):
        kind = type(arg)
        if kind not in _SMALL:
            if kind in _LEAVES:
                bound += 2 * len(arg) + 16
            else:
                bound = _UNBOUNDED
                arg = _copy(arg, f"$[{i}]", memo)
        new_args.append(arg)
    new_kwargs: dict[str, Any] = {}
    for key, arg in kwargs.items():
        kind = type(arg)
        if kind not in _SMALL:
            if kind in _LEAVES:
                bound += 2 * len(arg) + 16
            else:
                bound = _UNBOUNDED
                arg = _copy(arg, _child_path("$", key), memo)
        new_kwargs[key] = arg
    if bound + 16 * (len(new_args) + 2 * len(new_kwargs)) > MAX_RPC_PAYLOAD_BYTES:
        check_payload([new_args, new_kwargs] if new_kwargs else new_args)
    return tuple(new_args), new_kwargs


def _copy(value: Any, path: str, memo: dict[int, Any]) -> Any:
    cls = type(value)
    if cls in _LEAVES:
        return value
    if cls is list or cls is dict or cls is set or cls is frozenset or isinstance(
        value, (list, dict, set, frozenset)
    ):
        seen = memo.get(id(value))
        if seen is not None:
            return seen
        if isinstance(value, list):
            out_list: list[Any] = []
            memo[id(value)] = out_list
            out_list.extend(_copy(item, f"{path}[{i}]", memo) for i, item in enumerate(value))
            return out_list
        if isinstance(value, dict):
            out_dict: dict[Any, Any] = {}
            memo[id(value)] = out_dict
            for key, item in value.items():
                child = _child_path(path, key)
                out_dict[_key(key, child)] = _copy(item, child, memo)
            return out_dict
        out_set: set[Any] = set()
        memo[id(value)] = out_set
        for item in value:
            out_set.add(_key(item, f"{path}[{item!r}]"))
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
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, (Request, Response)):
        return value._rpc_copy()
    if isinstance(value, Exception):
        # CF: workers/_workers.py: Python -> js.Error(str(e)) -> Exception(error.toString())
        message = str(value)
        return Exception(f"Error: {message}" if message else "Error")
    raise _refuse(value, path)


def _key(key: Any, path: str) -> Any:
    """A dict key or set item: JS Map keys and Set items that come back hashable."""
    if key is None or isinstance(key, (str, int, float)):
        return _copy(key, path, {})
    raise _refuse(key, path)


def _refuse(value: Any, path: str) -> DataCloneError:
    if inspect.isawaitable(value):
        # The caller should have awaited it first.
        return DataCloneError(f"Awaitable {type(value)} cannot be sent over RPC.", path=path)  # CF: workers/_workers.py _raise_on_disabled_type
    return DataCloneError(f"{type(value)} cannot be sent over RPC.", path=path)  # CF: workers/_workers.py _raise_on_disabled_type


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
    return max(1, (n.bit_length() + 6) // 7)


def _size(value: Any, seen: set[int]) -> int:
    if isinstance(value, str):
        n = len(value)
        # V8 writes one byte per char for Latin-1 strings, UTF-16 otherwise.
        width = n if value.isascii() else 2 * n
        return 1 + _varint(width) + width
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int):
        number = int.__index__(value)
        if -(2**30) <= number < 2**30:
            return 1 + _varint(abs(number) * 2)  # Smi, zigzag varint
        if -(2**53) <= number <= 2**53:
            return 9  # double
        return 2 + (abs(number).bit_length() + 63) // 64 * 8  # BigInt
    if isinstance(value, (float, datetime.datetime)):
        return 9
    if isinstance(value, (bytes, memoryview)):
        n = len(value)
        return 4 + _varint(n) + n  # ArrayBuffer plus its Uint8Array view
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        if id(value) in seen:
            return 3  # back-reference to an object already written
        seen.add(id(value))
        if isinstance(value, dict):
            inner = sum(_size(k, seen) + _size(v, seen) for k, v in value.items())
        else:
            inner = sum(_size(item, seen) for item in value)
        return 2 + 2 * _varint(len(value)) + inner
    if isinstance(value, (Request, Response)):
        return 16 + len(getattr(value, "url", "")) + sum(
            len(k) + len(v) + 4 for k, v in value.headers.items()
        )
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
    return attr  # type: ignore[no-any-return]

