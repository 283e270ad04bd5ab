"""How values cross between Python and SQLite, and how KV values are stored.

SQL bindings and results follow one of two modes, chosen per namespace:

``"cloudflare"`` (default) — what a Cloudflare Python Worker sees, because its
values pass through Pyodide into JavaScript and back:

=====================  ==========================================  =============================
Python value           bound as                                    read back as
=====================  ==========================================  =============================
``None``               NULL                                        ``None``
``bool``               TEXT ``'true'`` / ``'false'``               ``str``
``int`` (≤ 2**53)      REAL (a JS number)                          ``int`` when integral
``int`` (> 2**53)      ``TypeError``                               –
``float``              REAL                                        ``int`` if a safe integer else ``float``
``str``                TEXT                                        ``str``
``bytes``/``bytearray``/``memoryview``  BLOB                       ``bytes``
INTEGER beyond 2**53   –                                           ``float`` (JS numbers are doubles)
=====================  ==========================================  =============================

``"native"`` — plain apsw: ints bind as INTEGER, bools as 0/1, results as stored.

KV values are stored as msgpack (msgspec) BLOBs; the allowed set mirrors the
structured-clone values a Python Worker can store: None, bool, int, float
(NaN and ±inf included), str, bytes, list, dict with str keys, datetime.
Anything else raises ``TypeError`` naming the type and the ``$.path`` and
stores nothing.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Literal

import msgspec

from .errors import StorageTypeError

__all__ = [
    "Binding",
    "MAX_SAFE_INTEGER",
    "bind_cloudflare",
    "convert_row_cloudflare",
    "encode_kv_value",
    "decode_kv_value",
]

Binding = Literal["cloudflare", "native"]

# CF: JavaScript Number.MAX_SAFE_INTEGER; Pyodide turns larger ints into BigInt,
# which workerd's SQL bindings do not accept.
MAX_SAFE_INTEGER = 2**53 - 1

_NoneType = type(None)


def bind_cloudflare(value: Any, position: int = 0) -> Any:
    """Convert one SQL binding the way a JS value reaches workerd's ``exec``."""
    t = type(value)
    if t is str or t is float or value is None or t is bytes:
        return value
    if t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return float(value)
        # Pyodide passes it as a BigInt, which workerd's bindings refuse.
        # CF: workerd 1.20261117.1 (observed, tests/conformance/cases/values.json)
        raise StorageTypeError("Cannot convert a BigInt value to a number")
    if t is bool:
        return "true" if value else "false"
    if t is bytearray or t is memoryview:
        return bytes(value)
    if isinstance(value, (str, float, bytes)):  # subclasses, e.g. a str-valued enum
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return bind_cloudflare(int(value), position)
    raise StorageTypeError(
        f"SQL binding {position + 1}: {t.__name__} cannot be bound; expected str, int, float, "
        "bool, bytes or None"
    )


def _cf_value(v: Any) -> Any:
    # Pyodide turns a JS number into an int exactly when Number.isSafeInteger() holds.
    t = type(v)
    if t is float:
        return int(v) if v.is_integer() and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER else v
    if t is int and not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
        return float(v)
    return v


def convert_row_cloudflare(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Map a result row to what Python sees after JS numbers cross Pyodide."""
    for v in row:
        # Fast path: most rows hold no floats and no huge ints; only rebuild when needed.
        t = type(v)
        if t is float or (t is int and not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER):
            return tuple(map(_cf_value, row))
    return row


# ---------------------------------------------------------------- KV values

#: msgpack extension code for ints beyond 64 bits (two's complement, big-endian).
_BIG_INT_EXT = 1


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == _BIG_INT_EXT:
        return int.from_bytes(data, "big", signed=True)
    raise StorageTypeError(f"stored value has an unknown msgpack extension {code}")


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_hook)
_SCALARS = frozenset({str, float, bool, bytes, _NoneType})


def _js_number(value: float) -> Any:
    # A float that is a safe integer comes back from a JS number as an int (Pyodide's
    # rule), so it is stored as one: put(k, 1.0) then get(k) == 1, -0.0 reads 0.
    if value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return int(value)
    return value


def _array_index(key: str) -> int | None:
    """``key`` as an ECMAScript array index (canonical decimal below 2**32 - 1), else None."""
    if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
        n = int(key)
        if n < 2**32 - 1:
            return n
    return None


def js_key_order(d: dict[str, Any]) -> dict[str, Any]:
    """A dict in the order a JS object enumerates its keys: array indices first, ascending."""
    for k in d:
        if k[:1].isdigit() and _array_index(k) is not None:
            break
    else:
        return d
    indices = sorted((i, k) for k in d if (i := _array_index(k)) is not None)
    out = {k: d[k] for _, k in indices}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


def _check(value: Any, path: str) -> Any:
    """Validate (and normalise) a KV value; returns the value to encode."""
    t = type(value)
    if t is float:
        return _js_number(value)
    if t in _SCALARS:
        return value
    if t is int:
        if -(2**63) <= value < 2**64:
            return value
        # Any size, as a JS BigInt stores (CF: workerd 1.20261117.1, observed).
        return msgspec.msgpack.Ext(_BIG_INT_EXT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))
    # dict/list subclasses are stored as plain ones: a JS-proxy-shaped value read
    # back from storage or RPC (objects/_jsvalues.py) must be storable again.
    if t is list or isinstance(value, list):
        return [_check(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if t is dict or isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise StorageTypeError(
                    f"{path}: dict key {k!r} is a {type(k).__name__}; only str keys can be stored"
                )
            out[k] = _check(v, f"{path}.{k}")
        # Values cross as JS objects, which enumerate array-index keys first.
        return js_key_order(out)
    if t is bytearray or t is memoryview:
        return bytes(value)
    if isinstance(value, _dt.datetime):
        # Naive datetimes are taken as UTC: a JS Date is an instant, and msgpack's
        # timestamp can only carry an instant.
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, (bytearray, memoryview)):  # e.g. js.Uint8Array, a bytearray subclass
        return bytes(value)
    raise StorageTypeError(f"{path}: {t.__name__} cannot be stored; {_ALLOWED}")


_ALLOWED = "expected None, bool, int, float, str, bytes, list, dict or datetime"


def encode_kv_value(value: Any, path: str = "$") -> bytes:
    """Encode a KV value, or raise ``TypeError`` naming the type and ``$.path``."""
    t = type(value)
    if t is str or t is bytes or t is bool or value is None:
        return _encoder.encode(value)
    if t is float:
        return _encoder.encode(_js_number(value))
    return _encoder.encode(_check(value, path))


def decode_kv_value(blob: bytes) -> Any:
    return _decoder.decode(blob)


def row_converter(binding: Binding) -> Callable[[tuple[Any, ...]], tuple[Any, ...]] | None:
    """The per-row conversion for a binding mode (``None`` = rows as stored)."""
    return convert_row_cloudflare if binding == "cloudflare" else None
