"""Web IDL conversions, as workerd applies them to what a Python Worker passes.

A Python Worker's arguments reach workerd through Pyodide: ``None`` becomes
``undefined``, ``bool`` a boolean, ``int`` a number (a ``BigInt`` beyond
2**53), ``float`` a number, ``str`` a string. workerd's generated bindings
then convert each argument to the type its API declares. This module gives
the same results for those Python values (checked against workerd
1.20261117.1 by ``tests/conformance``):

* :func:`to_dom_string` — a ``DOMString`` (storage keys, list bounds):
  ``1`` → ``"1"``, ``1.5`` → ``"1.5"``, ``1e21`` → ``"1e+21"``, ``True`` →
  ``"true"``, ``None`` → ``"undefined"``, NaN → ``"NaN"``. Other Python
  objects would reach workerd as a PyProxy whose text is Python's ``str()``;
  dohost refuses them with a ``TypeError`` naming the type instead.
* :func:`number_to_string` — ECMAScript ``Number::toString``.
* :func:`to_boolean` — ECMAScript ``ToBoolean``.
* :func:`to_int32` — a Web IDL ``long`` as JSG converts it (non-finite → 0,
  truncation, then a range check with JSG's message).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import StorageTypeError

__all__ = ["to_dom_string", "number_to_string", "to_boolean", "to_int32"]

# CF: workerd 1.20261117.1 (observed): list({limit: 1e20})
INT32_RANGE_MESSAGE = "Value out of range. Must be between -2147483648 and 2147483647 (inclusive)."


def number_to_string(x: float) -> str:
    """ECMAScript Number::toString(10) (ECMA-262 §6.1.6.1.20) of a double."""
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x < 0:
        return "-" + number_to_string(-x)
    # repr() gives the shortest round-tripping digits, as the spec requires.
    mantissa, _, exp_text = repr(x).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exponent = int(exp_text or 0) + len(whole)  # position of the point relative to digits[0]
    if whole == "0":  # 0.00123 -> whole "0", frac "00123"
        exponent = int(exp_text or 0) - (len(frac) - len(frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), exponent
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{sign}{abs(e)}"


def to_dom_string(value: Any, what: str) -> str:
    """The string workerd makes of ``value`` where its API takes a ``DOMString``."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass (e.g. a str Enum) is its text
    if value is None:
        return "undefined"  # Pyodide passes None as undefined
    if t is bool:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # a number, or a BigInt beyond 2**53: the same digits
    if isinstance(value, float):
        return number_to_string(value)
    raise StorageTypeError(f"{what} must be a str (or a number, bool or None, converted as JavaScript does), got {t.__name__}")


def to_boolean(value: Any) -> bool:
    """ECMAScript ToBoolean of the JS value Pyodide makes of ``value``."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return not (value == 0 or value != value)
    if isinstance(value, str):
        return len(value) > 0
    return True  # objects (a PyProxy for lists, dicts, ...) are truthy


def to_int32(value: Any, what: str) -> int:
    """A Web IDL ``long`` as JSG converts it."""
    if value is None:
        number = math.nan
    elif isinstance(value, (bool, int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip() else 0.0
        except ValueError:
            number = math.nan
    else:
        raise StorageTypeError(f"{what} must be a number, got {type(value).__name__}")
    if math.isnan(number) or math.isinf(number):
        return 0
    result = math.trunc(number)
    if not -(2**31) <= result < 2**31:
        raise StorageTypeError(INT32_RANGE_MESSAGE)
    return result
