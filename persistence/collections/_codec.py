"""Keys and values of persisted collections: how they are stored and compared.

The encodings are TanStack DB's (``@tanstack/db-sqlite-persistence-core``,
``persisted.ts`` / ``sqlite-core-adapter.ts``), so rows written here are rows
TanStack's JavaScript package reads, and back.

Keys
    A key is a finite number or a string, stored as text with a type prefix so
    that ``1`` and ``"1"`` are different rows: ``n:1`` and ``s:1``. Numbers are
    written as JavaScript's ``String(n)`` writes them (``n:1e-7``, ``n:1e+21``),
    so ``1`` and ``1.0`` are one key (``n:1``) and come back as ``int``; an
    ``int`` beyond 2**53 that is not a double is refused. As in
    TanStack, ``-0.0`` is its own key ``n:-0``, a different row from ``n:0``
    (comes back as ``-0.0``). NaN, ±inf, bools and other types raise
    :class:`InvalidKeyError`.

Values
    Row values are dicts; values and metadata are JSON text. Types JSON lacks
    are TanStack's tagged objects ``{"__tanstack_db_persisted_type__": type,
    "value": text}``:

    ==================  ===================================================
    ``int`` > 2**53     type ``bigint``, value ``"<digits>"`` (any size)
    ``nan``/±``inf``    types ``nan`` / ``infinity`` / ``-infinity``
    ``datetime``        type ``date``, value ``Date.toISOString()`` text
                        (UTC, milliseconds); what a JS Date cannot hold
                        (microseconds, offset, zone, naivety) goes in an
                        extra ``"dohost": {"datetime": isoformat[, "zone",
                        "fold"]}`` (a zone's datetime is its wall time)
                        that TanStack's reader ignores
    ``date``            type ``date`` at midnight UTC, plus
                        ``"dohost": {"date": "YYYY-MM-DD"}``
    ==================  ===================================================

    A tagged value written by TanStack (no ``dohost`` part) reads as an aware
    UTC datetime; an unparseable date reads as None, as in TanStack. The
    encoding has no escape, so a dict whose tag key holds one of the five
    type names is refused (:class:`ValueEncodingError`) rather than read back
    as something else. The ``value`` text is fixed-width UTC, so text order is
    time order; naive datetimes are taken as UTC (as SQLite's date functions
    do). Tuples come back as lists. Anything else raises
    :class:`ValueEncodingError` naming the ``$.path``.

The SQL value model (:func:`project`)
    Expressions are evaluated with SQLite's semantics, both in SQL and in
    memory. :func:`project` maps a stored JSON node to the scalar SQLite sees
    for it through the adapter's reference expression (see ``_sqlgen``):
    bools → 1/0, integers beyond int64 and bigint tags → INTEGER if they fit
    int64 else REAL (``CAST(.. AS NUMERIC)``), datetimes and dates → their
    ``value`` text, ±inf → ±Inf, NaN → NULL, objects and arrays →
    their compact JSON text. The in-memory evaluator works on these scalars,
    which is what makes pushed-down SQL and the in-memory re-check agree.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from decimal import Decimal
from typing import Any

import msgspec

from .errors import InvalidKeyError, StorageFormatError, ValueEncodingError

__all__ = [
    "Key",
    "TAG",
    "encode_key",
    "decode_key",
    "encode_value",
    "decode_value",
    "parse_tree",
    "from_tree",
    "to_tree",
    "project",
    "literal",
    "json_text",
    "has_tags",
    "js_number_text",
]

Key = int | float | str

TAG = "__tanstack_db_persisted_type__"  # TanStack's PERSISTED_TYPE_TAG
VALUE = "value"  # TanStack's PERSISTED_VALUE_TAG
EXTRA = "dohost"  # what a JavaScript Date cannot hold (ignored by TanStack's reader)
TAG_TYPES = frozenset({"bigint", "date", "nan", "infinity", "-infinity"})
_TAG_TEXT = '"__tanstack_db_persisted_type__"'
MAX_SAFE_INTEGER = 2**53  # beyond this a JSON number stops being exact for JS readers
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_TEXT = re.compile(r"-?[0-9]+")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_UTC = _dt.timezone.utc


# -- keys -------------------------------------------------------------------------
def js_number_text(number: float) -> str:
    """``String(number)`` in JavaScript (ECMA-262 Number::toString, radix 10).

    Python's ``repr`` finds the same shortest round-trip digits; only the
    layout differs (``1e-07`` vs ``1e-7``, ``1e+16`` vs ``10000000000000000``).
    """
    if number == 0:
        return "0"  # JavaScript prints -0 as "0" too
    sign = "-" if number < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def encode_key(key: object) -> str:
    """``1`` -> ``n:1``, ``"1"`` -> ``s:1``, ``-0.0`` -> ``n:-0``; rejects non-finite numbers and other types.

    Numbers are written as JavaScript writes them (``String(n)``), so a key
    stored here is the row TanStack's JavaScript package finds, and back.
    Integers that no JavaScript number equals (beyond 2**53 and not a double)
    are refused: TanStack would read them as another number.
    """
    if isinstance(key, str):
        _check_text(key, "collection key")
        return "s:" + key
    if isinstance(key, bool) or not isinstance(key, (int, float)):
        raise InvalidKeyError(
            f"collection key must be a finite number or a string, got {type(key).__name__} {key!r}"
        )
    if isinstance(key, int):
        number = int(key)
        if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            return "n:%d" % number
        try:
            as_double = float(number)
        except OverflowError:
            as_double = math.inf
        if as_double != number:
            # Stored as JavaScript prints its double, it would read back as another int.
            raise InvalidKeyError(
                f"collection key {number} is not a number JavaScript can hold exactly "
                "(beyond 2**53 a key must be a double); use a str key"
            )
        return "n:" + js_number_text(as_double)
    if not math.isfinite(key):
        raise InvalidKeyError(f"collection key must be a finite number or a string, got {key!r}")
    if key == 0 and math.copysign(1.0, key) < 0:
        return "n:-0"  # TanStack keeps -0 apart from 0 (Object.is), so a row of each can exist
    return "n:" + js_number_text(float(key))


def decode_key(encoded: str) -> Key:
    """The key of a stored row: strings, ints for integral numbers, ``-0.0`` for ``n:-0``."""
    if encoded.startswith("s:"):
        return encoded[2:]
    if encoded.startswith("n:"):
        body = encoded[2:]
        if body == "-0":
            return -0.0
        if _INT_TEXT.fullmatch(body) and len(body) < 16:
            return int(body)  # a safe integer: exact either way, and faster
        try:
            number = float(body)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number) if number.is_integer() else number
    raise StorageFormatError(f"stored key {encoded!r} is not n:<number> or s:<string>")


# -- values -----------------------------------------------------------------------
def encode_value(value: Any, *, where: str = "value") -> str:
    """Encode a value (row value, metadata, replay payload) as JSON text."""
    tree = to_tree(value, "$", where)
    return _encoder.encode(tree).decode("utf-8")


def decode_value(text: str) -> Any:
    return from_tree(parse_tree(text)) if _TAG_TEXT in text else parse_tree(text)


def has_tags(text: str) -> bool:
    return _TAG_TEXT in text


def parse_tree(text: str | bytes) -> Any:
    """The stored JSON as plain dicts/lists, tags left in place (the SQL view of it)."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise StorageFormatError(f"stored JSON is malformed: {exc}") from None


def to_tree(value: Any, path: str = "$", where: str = "value") -> Any:
    """A JSON-encodable tree for ``value`` with TanStack's tagged encodings applied."""
    t = type(value)
    if value is None or t is bool:
        return value
    if t is str:
        _check_text(value, f"{where} at {path}")
        return value
    if t is int or (isinstance(value, int) and not isinstance(value, bool)):
        v = int(value)
        if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
            return v
        return {TAG: "bigint", VALUE: str(v)}
    if t is float or isinstance(value, float):
        f = float(value)
        if math.isfinite(f):
            return f
        if math.isnan(f):
            return {TAG: "nan", VALUE: "NaN"}
        return {TAG: "infinity", VALUE: "Infinity"} if f > 0 else {TAG: "-infinity", VALUE: "-Infinity"}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueEncodingError(
                    f"cannot store {where} at {path}: dict keys must be str, got {type(k).__name__} {k!r}"
                )
            _check_text(k, f"{where} key at {path}")
            out[k] = to_tree(v, _child(path, k), where)
        if out.get(TAG) in TAG_TYPES:
            raise ValueEncodingError(
                f"cannot store {where} at {path}: a dict with {TAG!r} = {out[TAG]!r} reads back as "
                "TanStack's tagged value, not as this dict (the encoding has no escape)"
            )
        return out
    if isinstance(value, (list, tuple)):
        return [to_tree(v, f"{path}[{i}]", where) for i, v in enumerate(value)]
    if isinstance(value, _dt.datetime):
        return _datetime_tree(value, path, where)
    if isinstance(value, _dt.date):
        return {TAG: "date", VALUE: value.isoformat() + "T00:00:00.000Z", EXTRA: {"date": value.isoformat()}}
    raise ValueEncodingError(f"cannot store {where} of type {t.__name__!r} at {path}")


def _tag_of(node: dict[str, Any]) -> str | None:
    """The tag TanStack's reader sees: a known type name and a string ``value``."""
    tag = node.get(TAG)
    if tag in TAG_TYPES and type(node.get(VALUE)) is str:
        return tag  # type: ignore[no-any-return]
    return None


def from_tree(node: Any) -> Any:
    t = type(node)
    if t is dict:
        tag = _tag_of(node)
        if tag is not None:
            return _untag(tag, node)
        return {k: from_tree(v) for k, v in node.items()}
    if t is list:
        return [from_tree(v) for v in node]
    return node


def _untag(tag: str, node: dict[str, Any]) -> Any:
    payload: str = node[VALUE]
    if tag == "bigint":
        try:
            return int(payload)
        except ValueError:
            raise StorageFormatError(f"stored bigint {payload!r} is not an integer") from None
    if tag == "nan":
        return math.nan
    if tag == "infinity":
        return math.inf
    if tag == "-infinity":
        return -math.inf
    return _untag_date(payload, node.get(EXTRA))


def _untag_date(payload: str, extra: Any) -> Any:
    if type(extra) is dict:
        # dohost's exact Python value, trusted only while it is still the instant in `value`
        # (TanStack rewriting the row drops the extra field, it never leaves a stale one).
        try:
            if type(extra.get("date")) is str:
                day = _dt.date.fromisoformat(extra["date"])
                if day.isoformat() + "T00:00:00.000Z" == payload:
                    return day
            elif type(extra.get("datetime")) is str:
                exact = _dt.datetime.fromisoformat(extra["datetime"])
                if type(extra.get("zone")) is str:
                    from zoneinfo import ZoneInfo

                    exact = exact.replace(tzinfo=ZoneInfo(extra["zone"]), fold=1 if extra.get("fold") == 1 else 0)
                if datetime_order(exact) == payload:
                    return exact
        except (ValueError, LookupError, OverflowError):
            pass
    try:
        instant = _dt.datetime.fromisoformat(payload)
    except ValueError:
        return None  # as TanStack: an unparseable date reads as null
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=_UTC)
    return instant.astimezone(_UTC)


def _datetime_tree(value: _dt.datetime, path: str, where: str) -> dict[str, Any]:
    tree: dict[str, Any] = {TAG: "date", VALUE: datetime_order(value, path, where)}
    if value.tzinfo is not _UTC or value.microsecond % 1000:
        # A JavaScript Date is a UTC instant in milliseconds; keep what it cannot hold.
        extra: dict[str, Any] = {"datetime": value.isoformat()}
        key = getattr(value.tzinfo, "key", None)  # zoneinfo.ZoneInfo names its zone
        if isinstance(key, str):
            # Wall time in the zone (and fold): exact even for times a DST change skips.
            extra = {"datetime": value.replace(tzinfo=None).isoformat(), "zone": key}
            if value.fold:
                extra["fold"] = 1
        tree[EXTRA] = extra
    return tree


def datetime_order(value: _dt.datetime, path: str = "$", where: str = "value") -> str:
    """The instant as ``Date.toISOString()`` writes it (UTC, milliseconds): text order is time order.

    Naive datetimes are taken as UTC, as SQLite's date functions do.
    """
    if value.tzinfo is not None and value.utcoffset() is not None:
        try:
            value = value.astimezone(_UTC)
        except OverflowError:
            raise ValueEncodingError(
                f"cannot store {where} at {path}: {value.isoformat()} is outside the UTC range"
            ) from None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


# -- the SQL value model ------------------------------------------------------------
def project(node: Any) -> Any:
    """The SQLite scalar the adapter's SQL reference expression yields for ``node``."""
    t = type(node)
    if node is None or t is str or t is float:
        return node
    if t is bool:
        return int(node)
    if t is int:
        return node if INT64_MIN <= node <= INT64_MAX else _real(node)
    if t is dict:
        tag = node.get(TAG)
        if tag in TAG_TYPES:  # as the SQL CASE: the type name alone decides
            if tag == "bigint":
                return _numeric(node.get(VALUE))
            if tag == "date":
                return project(node.get(VALUE))
            if tag == "infinity":
                return math.inf
            if tag == "-infinity":
                return -math.inf
            return None  # nan
        return json_text(node)
    if t is list:
        return json_text(node)
    return node


def literal(value: Any) -> Any:
    """The SQLite scalar a Python literal in an expression stands for."""
    if value is None or type(value) is str:
        return value
    return project(to_tree(value, "$", "literal"))


def json_text(node: Any) -> str:
    return _encoder.encode(node).decode("utf-8")


def _numeric(text: Any) -> Any:
    # Mirrors CAST(<digits> AS NUMERIC): INTEGER when it fits int64, else REAL.
    if type(text) is not str:
        return None if text is None else project(text)
    try:
        number = int(text)
    except ValueError:
        return None
    return number if INT64_MIN <= number <= INT64_MAX else _real(number)


def _real(number: int) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _check_text(text: str, what: str) -> None:
    # Lone surrogates cannot be UTF-8 and would fail deep inside SQLite.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueEncodingError(f"cannot store {what}: {text!r} is not valid Unicode text") from None
