"""Keys and values of persisted collections: how they are stored and compared.

Keys
    A key is a finite number or a string, stored as text with a type prefix so
    that ``1`` and ``"1"`` are different rows: ``n:1`` and ``s:1`` (TanStack's
    encoding). Numbers follow Python's own key identity: ``1``, ``1.0`` and
    ``-0.0 == 0`` are one key (``n:1`` / ``n:0``) and come back as ``int``; other
    floats use ``repr`` (exact round trip). TanStack keeps ``n:-0`` apart because
    JavaScript can tell ``-0`` from ``0``; a Python dict cannot. NaN, ±inf, bools
    and other types raise :class:`InvalidKeyError`.

Values
    Row values are dicts; values and metadata are JSON text. Types JSON lacks
    are tagged objects ``{"__dh": kind, "v": ..., ...}`` and restored exactly:

    ==================  ===================================================
    ``datetime``        ``{"__dh":"datetime","v":isoformat,"o":order[,"z":zone]}``
    ``date``            ``{"__dh":"date","v":"YYYY-MM-DD"}``
    ``int`` > 2**53     ``{"__dh":"bigint","v":"<digits>"}`` (any size)
    ``nan``/±``inf``    ``{"__dh":"nan"}`` / ``{"__dh":"inf"}`` / ``{"__dh":"-inf"}``
    a dict with key     ``{"__dh":"object","v":{...}}`` so user data can never
    ``"__dh"``          be mistaken for a tag (TanStack's tags are ambiguous)
    ==================  ===================================================

    ``order`` is the instant in UTC as fixed-width text
    (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so text comparison is time order; naive
    datetimes are taken as UTC (as SQLite's date functions do). A ``ZoneInfo``
    zone name is kept so the value comes back in its zone; other tzinfos come
    back as a fixed offset (same instant, same wall time). Tuples come back as
    lists. Anything else raises :class:`ValueEncodingError` naming the
    ``$.path``.

The SQL value model (:func:`project`)
    Expressions are evaluated with SQLite's semantics, both in SQL and in
    memory. :func:`project` maps a stored JSON node to the scalar SQLite sees
    for it through the adapter's reference expression (see ``_sqlgen``):
    bools → 1/0, integers beyond int64 and bigint tags → INTEGER if they fit
    int64 else REAL (``CAST(.. AS NUMERIC)``), datetimes → their ``order``
    text, dates → ISO text, ±inf → ±Inf, NaN → NULL, objects and arrays →
    their compact JSON text. The in-memory evaluator works on these scalars,
    which is what makes pushed-down SQL and the in-memory re-check agree.
"""

from __future__ import annotations

import datetime as _dt
import math
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
]

Key = int | float | str

TAG = "__dh"
MAX_SAFE_INTEGER = 2**53  # beyond this a JSON number stops being exact for JS readers
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_TAG_BYTES = b'"__dh"'

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_UTC = _dt.timezone.utc


# -- keys -------------------------------------------------------------------------
def encode_key(key: object) -> str:
    """``1`` -> ``n:1``, ``"1"`` -> ``s:1``; rejects non-finite numbers and other types."""
    if isinstance(key, str):
        _check_text(key, "collection key")
        return "s:" + key
    if isinstance(key, bool) or not isinstance(key, (int, float)):
        raise InvalidKeyError(
            f"collection key must be a finite number or a string, got {type(key).__name__} {key!r}"
        )
    if isinstance(key, int):
        return "n:%d" % int(key)
    if not math.isfinite(key):
        raise InvalidKeyError(f"collection key must be a finite number or a string, got {key!r}")
    if key.is_integer():
        return "n:%d" % int(key)
    return "n:" + repr(float(key))


def decode_key(encoded: str) -> Key:
    if encoded.startswith("s:"):
        return encoded[2:]
    if encoded.startswith("n:"):
        body = encoded[2:]
        try:
            return int(body) if body.lstrip("-").isdigit() else float(body)
        except ValueError:
            pass
    raise StorageFormatError(f"stored key {encoded!r} is not n:<number> or s:<string>")


# -- values -----------------------------------------------------------------------
def encode_value(value: Any, *, where: str = "value") -> str:
    """Encode a value (row value, metadata, replay payload) as JSON text."""
    tree = to_tree(value, "$", where)
    return _encoder.encode(tree).decode("utf-8")


def decode_value(text: str) -> Any:
    return from_tree(parse_tree(text)) if '"__dh"' in text else parse_tree(text)


def parse_tree(text: str | bytes) -> Any:
    """The stored JSON as plain dicts/lists, tags left in place (the SQL view of it)."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise StorageFormatError(f"stored JSON is malformed: {exc}") from None


def to_tree(value: Any, path: str = "$", where: str = "value") -> Any:
    """A JSON-encodable tree for ``value`` with the tagged encodings applied."""
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
        return {TAG: "bigint", "v": str(v)}
    if t is float or isinstance(value, float):
        f = float(value)
        if math.isfinite(f):
            return f
        if math.isnan(f):
            return {TAG: "nan"}
        return {TAG: "inf" if f > 0 else "-inf"}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueEncodingError(
                    f"cannot store {where} at {path}: dict keys must be str, got {type(k).__name__} {k!r}"
                )
            _check_text(k, f"{where} key at {path}")
            out[k] = to_tree(v, _child(path, k), where)
        if TAG in out:
            return {TAG: "object", "v": out}
        return out
    if isinstance(value, (list, tuple)):
        return [to_tree(v, f"{path}[{i}]", where) for i, v in enumerate(value)]
    if isinstance(value, _dt.datetime):
        return _datetime_tree(value, path, where)
    if isinstance(value, _dt.date):
        return {TAG: "date", "v": value.isoformat()}
    raise ValueEncodingError(f"cannot store {where} of type {t.__name__!r} at {path}")


def from_tree(node: Any) -> Any:
    t = type(node)
    if t is dict:
        tag = node.get(TAG)
        if type(tag) is str:
            return _untag(tag, node)
        return {k: from_tree(v) for k, v in node.items()}
    if t is list:
        return [from_tree(v) for v in node]
    return node


def _untag(tag: str, node: dict[str, Any]) -> Any:
    payload: Any = node.get("v")
    try:
        if tag == "bigint":
            return int(payload)
        if tag == "datetime":
            value = _dt.datetime.fromisoformat(payload)
            zone = node.get("z")
            if zone is not None:
                from zoneinfo import ZoneInfo

                value = value.astimezone(ZoneInfo(zone))
            return value
        if tag == "date":
            return _dt.date.fromisoformat(payload)
        if tag == "nan":
            return math.nan
        if tag == "inf":
            return math.inf
        if tag == "-inf":
            return -math.inf
        if tag == "object":
            return {k: from_tree(v) for k, v in payload.items()}
    except (TypeError, ValueError, AttributeError, LookupError) as exc:
        raise StorageFormatError(f"stored tagged value {node!r} cannot be read: {exc}") from None
    raise StorageFormatError(f"stored value has unknown tag {tag!r}")


def _datetime_tree(value: _dt.datetime, path: str, where: str) -> dict[str, Any]:
    tree: dict[str, Any] = {TAG: "datetime", "v": value.isoformat(), "o": datetime_order(value, path, where)}
    key = getattr(value.tzinfo, "key", None)  # zoneinfo.ZoneInfo names its zone
    if isinstance(key, str):
        tree["z"] = key
    return tree


def datetime_order(value: _dt.datetime, path: str = "$", where: str = "value") -> str:
    """The instant as fixed-width UTC text: text order is time order."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        try:
            value = value.astimezone(_UTC)
        except OverflowError:
            raise ValueEncodingError(
                f"cannot store {where} at {path}: {value.isoformat()} is outside the UTC range"
            ) from None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
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
        if type(tag) is str:
            if tag == "bigint":
                return _numeric(node.get("v"))
            if tag == "datetime":
                return project(node.get("o"))
            if tag == "date":
                return project(node.get("v"))
            if tag == "inf":
                return math.inf
            if tag == "-inf":
                return -math.inf
            if tag == "nan":
                return None
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
