"""Object definitions in ObjectQL's own format, and the validation hook built from them.

Each ``src/objects/<name>.object.yml`` is an ObjectQL object definition:
``name``, ``label``, ``fields`` (each with a ``type`` and optional
``required`` and, for ``select``, ``options``), and the ``sync:`` key of
ObjectQL's ``SyncConfig``: ``enabled`` (default false), ``strategy``
(``last-write-wins`` | ``crdt`` | ``manual``, default ``last-write-wins``),
``conflict_fields``, ``direction`` (``bidirectional`` | ``push-only`` |
``pull-only``, default ``bidirectional``), ``debounce_ms`` (1000) and
``batch_size`` (50). A definition that does not have this shape is refused
at load time with the file and key named.

:func:`validate_data` is the validation hook every synced mutation passes
(ObjectQL's ADR-008): field types, ``select`` options, and required fields
on create. It returns the reason a mutation is rejected, or ``None``.

The definitions are read with PyYAML (``yaml.safe_load``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STRATEGIES = ("last-write-wins", "crdt", "manual")
DIRECTIONS = ("bidirectional", "push-only", "pull-only")
#: ObjectQL field types this example checks, grouped by the JSON value they take.
TEXT_TYPES = frozenset({"text", "textarea", "markdown", "html", "email", "url", "phone", "password", "select"})
NUMBER_TYPES = frozenset({"number", "currency", "percent", "autonumber"})
FIELD_TYPES = TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "object"}


class DefinitionError(ValueError):
    """An ``*.object.yml`` file that is not a valid object definition."""


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    required: bool
    options: tuple[str, ...] | None  # the allowed values of a ``select``


@dataclass(frozen=True)
class SyncConfig:
    enabled: bool = False
    strategy: str = "last-write-wins"
    conflict_fields: tuple[str, ...] = ()
    direction: str = "bidirectional"
    debounce_ms: int = 1000
    batch_size: int = 50


@dataclass(frozen=True)
class ObjectDef:
    name: str
    fields: dict[str, FieldDef]
    sync: SyncConfig

    def to_json(self) -> dict[str, Any]:
        """The parts a client needs (``GET /api/sync/objects``)."""
        s = self.sync
        return {
            "name": self.name,
            "fields": {f.name: {"type": f.type, "required": f.required} for f in self.fields.values()},
            "sync": {"enabled": s.enabled, "strategy": s.strategy, "conflict_fields": list(s.conflict_fields),
                     "direction": s.direction, "debounce_ms": s.debounce_ms, "batch_size": s.batch_size},
        }


def _expect(cond: bool, where: str, what: str, got: Any) -> None:
    if not cond:
        raise DefinitionError(f"{where}: expected {what}, got {got!r}")


def _field(where: str, name: str, spec: Any) -> FieldDef:
    _expect(isinstance(spec, dict), where, "a mapping", spec)
    ftype = spec.get("type")
    _expect(ftype in FIELD_TYPES, f"{where}.type", "one of " + ", ".join(sorted(FIELD_TYPES)), ftype)
    required = spec.get("required", False)
    _expect(isinstance(required, bool), f"{where}.required", "true or false", required)
    options = None
    if ftype == "select":
        raw = spec.get("options")
        _expect(isinstance(raw, list) and len(raw) > 0, f"{where}.options", "a non-empty list", raw)
        # ObjectQL accepts plain values or {label, value} pairs.
        options = tuple(str(o["value"]) if isinstance(o, dict) else str(o) for o in raw)
    return FieldDef(name=name, type=ftype, required=required, options=options)


def _sync(where: str, raw: Any, fields: dict[str, FieldDef]) -> SyncConfig:
    if raw is None:
        return SyncConfig()
    _expect(isinstance(raw, dict), where, "a mapping", raw)
    known = {"enabled", "strategy", "conflict_fields", "direction", "debounce_ms", "batch_size"}
    unknown = sorted(set(raw) - known)
    _expect(not unknown, where, "only keys " + ", ".join(sorted(known)), unknown)
    enabled = raw.get("enabled", False)
    _expect(isinstance(enabled, bool), f"{where}.enabled", "true or false", enabled)
    strategy = raw.get("strategy", "last-write-wins")
    _expect(strategy in STRATEGIES, f"{where}.strategy", "one of " + ", ".join(STRATEGIES), strategy)
    direction = raw.get("direction", "bidirectional")
    _expect(direction in DIRECTIONS, f"{where}.direction", "one of " + ", ".join(DIRECTIONS), direction)
    conflict = raw.get("conflict_fields", [])
    _expect(isinstance(conflict, list) and all(c in fields for c in conflict),
            f"{where}.conflict_fields", "a list of this object's fields", conflict)
    out = SyncConfig(enabled=enabled, strategy=strategy, conflict_fields=tuple(conflict), direction=direction)
    for key in ("debounce_ms", "batch_size"):
        value = raw.get(key, getattr(out, key))
        _expect(isinstance(value, int) and not isinstance(value, bool) and value >= (key == "batch_size"),
                f"{where}.{key}", "a non-negative integer", value)
        out = SyncConfig(**{**out.__dict__, key: value})
    return out


def parse_definition(text: str, source: str) -> ObjectDef:
    """One object definition from YAML text; ``source`` names it in errors."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{source}: not YAML: {exc}") from None
    _expect(isinstance(raw, dict), source, "a mapping", raw)
    name = raw.get("name")
    _expect(isinstance(name, str) and name.isidentifier(), f"{source}: name", "an identifier", name)
    raw_fields = raw.get("fields") or {}
    _expect(isinstance(raw_fields, dict), f"{source}: fields", "a mapping", raw_fields)
    fields = {str(k): _field(f"{source}: fields.{k}", str(k), v) for k, v in raw_fields.items()}
    return ObjectDef(name=name, fields=fields, sync=_sync(f"{source}: sync", raw.get("sync"), fields))


def load_definitions(folder: Path) -> dict[str, ObjectDef]:
    """Every ``*.object.yml`` under ``folder``, by object name."""
    defs: dict[str, ObjectDef] = {}
    for path in sorted(folder.glob("*.object.yml")):
        obj = parse_definition(path.read_text(encoding="utf-8"), path.name)
        if obj.name in defs:
            raise DefinitionError(f"{path.name}: name: object {obj.name!r} is defined twice")
        defs[obj.name] = obj
    return defs


def _is_iso(value: Any, date_only: bool) -> bool:
    if not isinstance(value, str):
        return False
    try:
        if date_only:
            dt.date.fromisoformat(value)
        else:
            dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _type_error(obj: ObjectDef, f: FieldDef, value: Any) -> str | None:
    if f.type in TEXT_TYPES:
        if not isinstance(value, str):
            return f"expected text, got {value!r}"
        if f.options is not None and value not in f.options:
            return f"expected one of {', '.join(f.options)}, got {value!r}"
    elif f.type in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"expected a number, got {value!r}"
    elif f.type == "boolean":
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
    elif f.type in ("date", "datetime"):
        if not _is_iso(value, f.type == "date"):
            return f"expected an ISO 8601 {f.type}, got {value!r}"
    elif f.type == "object" and not isinstance(value, dict):
        return f"expected an object, got {value!r}"
    return None


def validate_data(obj: ObjectDef, operation: str, data: dict[str, Any] | None) -> str | None:
    """Why ``data`` may not be written to ``obj`` by ``operation``, or ``None`` if it may."""
    if operation == "delete":
        return None
    assert data is not None  # the wire layer refuses a create/update without data
    for key, value in data.items():
        f = obj.fields.get(key)
        if f is None:
            return f"Validation failed: {obj.name}.{key}: no such field (fields: {', '.join(obj.fields)})"
        if value is None:
            if f.required:
                return f"Validation failed: {obj.name}.{key}: required"
            continue
        problem = _type_error(obj, f, value)
        if problem is not None:
            return f"Validation failed: {obj.name}.{key}: {problem}"
    if operation == "create":
        missing = [f.name for f in obj.fields.values() if f.required and data.get(f.name) is None]
        if missing:
            return f"Validation failed: {obj.name}.{missing[0]}: required"
    return None
