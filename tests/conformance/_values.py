"""The one mapping between JavaScript values (workerd) and Python values (dohost).

Cases are written in *Python* values (what a Python Worker passes), in JSON
with tags for what JSON cannot say:

=========================  ==========================  ===============================
case JSON                  Python value (dohost)       JS value (workerd, as Pyodide
                                                       hands it over)
=========================  ==========================  ===============================
``null``                   ``None``                    ``undefined`` (Pyodide's None)
``1`` / ``1.5``            ``int`` / ``float``         number
``{"$int": "2**60"}``      ``int`` beyond 2**53        ``BigInt`` (Pyodide's rule)
``{"$float": "nan"}``      ``float('nan')`` / inf      ``NaN`` / ``Infinity``
``{"$bytes": "00ff"}``     ``bytes``                   ``Uint8Array`` (``to_js(bytes)``)
``{"$dict": [[k, v]]}``    ``dict``                    plain object
``[...]``                  ``list``                    array
=========================  ==========================  ===============================

Shorthands keep big inputs small: ``{"$repeat": [s, n]}`` is ``s * n``,
``{"$cat": [part, ...]}`` joins parts, ``{"$bytes": hex, "$times": n}``
repeats bytes. An op's ``sql`` may use them too.

Results come back from both sides as the same *canonical* form, compared with
``==``. What a JS result becomes in Python is Pyodide's conversion (the
README's "Conformance with workerd" table):

* ``undefined`` and ``null`` → ``None``;
* a number → ``int`` when it is a safe integer (``Number.isSafeInteger``),
  else ``float`` (NaN and ±Infinity included); ``BigInt`` → ``int``;
* ``ArrayBuffer`` / typed arrays → ``bytes``;
* ``Map`` and plain objects (rows, ``{done, value}``) → ``dict`` in their
  iteration order; arrays (and the ``[key, value]`` pairs of ``kv.list()``,
  tuples in dohost) → ``list``;
* ``Date`` → ``datetime`` (milliseconds compared);
* an exception → ``(name, message)`` where the Python class maps to the JS
  name: ``TypeError`` → ``"TypeError"``, ``ValueError`` → ``"RangeError"``,
  anything else → ``"Error"``.

Canonical form: ``int``/``bool``/``str``/``None`` as themselves, a float as
``["f", repr]`` (so ``1`` and ``1.0`` differ, as Pyodide makes them differ),
bytes ``["b", hex]``, dicts ``["d", [[k, v], ...]]`` (order matters), lists
``["l", [...]]``, dates ``["date", ms]``.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

__all__ = ["from_case", "canon", "from_workerd", "error_name", "canon_error"]

_SAFE = 2**53 - 1


def from_case(v: Any) -> Any:
    """Case JSON → the Python value a Python Worker would pass."""
    if isinstance(v, list):
        return [from_case(x) for x in v]
    if isinstance(v, dict):
        if "$repeat" in v:
            return v["$repeat"][0] * v["$repeat"][1]
        if "$cat" in v:
            return "".join(from_case(x) for x in v["$cat"])
        if "$bytes" in v:
            return bytes.fromhex(v["$bytes"]) * v.get("$times", 1)
        if "$float" in v:
            return float(v["$float"])
        if "$int" in v:
            return int(v["$int"])
        if "$dict" in v:
            return {k: from_case(x) for k, x in v["$dict"]}
        if "$date" in v:
            return _dt.datetime.fromtimestamp(v["$date"] / 1000, _dt.timezone.utc)
        raise ValueError(f"unknown tagged case value {v!r}")
    return v


def _float(x: float) -> list[str]:
    if math.isnan(x):
        return ["f", "nan"]
    return ["f", repr(x)]


def canon(v: Any) -> Any:
    """A dohost (Python) result in canonical form."""
    if v is None or isinstance(v, (bool, str)):
        return v if not isinstance(v, str) else str(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return ["b", bytes(v).hex()]
    if isinstance(v, _dt.datetime):
        return ["date", round(v.timestamp() * 1000)]
    if isinstance(v, dict) or hasattr(v, "items"):
        return ["d", [[canon(k), canon(x)] for k, x in v.items()]]
    if isinstance(v, (list, tuple)):
        return ["l", [canon(x) for x in v]]
    return ["other", type(v).__name__, repr(v)]


def from_workerd(v: Any) -> Any:
    """A workerd result (the Worker's tagged JSON) in canonical form."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):  # JSON never gives one: non-safe numbers are tagged
        return _float(v)
    if isinstance(v, list):
        return ["l", [from_workerd(x) for x in v]]
    if "$undef" in v:
        return None
    if "$promise" in v:
        return ["promise"]
    if "$num" in v:
        return _float(float(v["$num"]))
    if "$bigint" in v:
        return int(v["$bigint"])
    if "$bytes" in v:
        return ["b", v["$bytes"]]
    if "$map" in v:
        return ["d", [[from_workerd(k), from_workerd(x)] for k, x in v["$map"]]]
    if "$obj" in v:
        return ["d", [[k, from_workerd(x)] for k, x in v["$obj"]]]
    if "$date" in v:
        return ["date", v["$date"]]
    if "$steps" in v:
        return ["steps", [workerd_step(s) for s in v["$steps"]]]
    if "$txn" in v:
        inner, outcome = v["$txn"]
        return ["txn", [workerd_step(s) for s in inner], workerd_step(outcome)]
    return ["other", repr(v)]


def to_workerd(v: Any) -> Any:
    """A case's JSON as sent to the oracle: ints beyond 2**53 tagged (Pyodide makes them BigInt)."""
    if type(v) is int and not -_SAFE <= v <= _SAFE:
        return {"$int": str(v)}
    if isinstance(v, list):
        return [to_workerd(x) for x in v]
    if isinstance(v, dict):
        return {k: to_workerd(x) for k, x in v.items()}
    return v


def workerd_step(step: dict[str, Any]) -> Any:
    if "err" in step:
        return ["err", step["err"]["name"], step["err"]["message"]]
    return ["ok", from_workerd(step["ok"])]


def error_name(exc: BaseException) -> str:
    """The JS error name a Python exception stands for (see the module docstring)."""
    if isinstance(exc, TypeError):
        return "TypeError"
    if isinstance(exc, ValueError):
        return "RangeError"
    return "Error"


def canon_error(exc: BaseException) -> list[str]:
    return ["err", error_name(exc), str(exc)]
