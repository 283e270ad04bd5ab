"""Reading a Worker's wrangler file: ``wrangler.toml``, ``wrangler.jsonc``, ``wrangler.json``.

Owns finding, parsing, ``[env.<name>]`` resolution and validation into frozen
:class:`WorkerConfig` records. Guarantees:

* A returned config is consistent: required keys present, every value of the
  documented type, binding names unique identifiers, migration tags unique,
  and every class this Worker binds left alive by its migrations.
* Bad input raises :class:`ConfigError` and builds nothing; the message names
  the file and key path (``wrangler.toml: durable_objects.bindings[1].class_name:
  expected str, got int``), and for syntax errors the line and column.
* Tolerance: a key dohost does not know gives one :class:`ConfigWarning` naming
  its path; deploy-only wrangler keys (``routes``, ``account_id``...) are
  ignored silently. Bindings dohost provides besides Durable Objects
  (``kv_namespaces``, ``d1_databases``, ``r2_buckets``, ``services``,
  ``assets``) are validated like the rest; a binding of a kind dohost does
  not provide (``queues``, ``ai``...) gives a warning naming the binding and
  its kind and is recorded in :attr:`WorkerConfig.unsupported_bindings`, so
  ``env.<NAME>`` can say so when used.
* ``main`` is kept as written; :attr:`WorkerConfig.main_path` resolves it
  against the file's directory, never the working directory.

Environments follow wrangler: with ``env="staging"`` the inheritable keys
(``name``, ``main``, ``compatibility_date``, ``compatibility_flags``,
``migrations``) come from ``[env.staging]`` when set there, else from the top;
``vars``, ``durable_objects`` and the other bindings are not inherited
(``assets`` is). An environment without its
own ``name`` is the Worker ``<name>-<env>``, with namespaces of its own.

Convenience mode: with no ``migrations`` at all, every class this Worker binds
is treated as listed in ``new_sqlite_classes`` (``_migrations`` creates it);
once any migration exists, each bound class must be created by one.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import json5
import msgspec
import msgspec.inspect as mi

from ._binding_config import (
    HTML_HANDLING,
    NOT_FOUND_HANDLING,
    UNSUPPORTED_BINDING_KINDS,
    AssetsConfig,
    D1DatabaseConfig,
    KvNamespaceConfig,
    R2BucketConfig,
    ServiceConfig,
    UnsupportedBindingConfig,
    binding_names,
    check_assets,
    check_binding_names,
)
from ._crons import check_crons
from ._migrations import Migration, RenamedClass, TransferredClass, final_class_states
from ..errors import ConfigError, ConfigWarning

__all__ = [
    "CONFIG_FILE_NAMES",
    "COMPAT_FLAGS",
    "CompatFlag",
    "DurableObjectBinding",
    "DurableObjects",
    "AssetsConfig",
    "D1DatabaseConfig",
    "KvNamespaceConfig",
    "R2BucketConfig",
    "ServiceConfig",
    "UnsupportedBindingConfig",
    "HTML_HANDLING",
    "NOT_FOUND_HANDLING",
    "Migration",
    "RenamedClass",
    "TransferredClass",
    "TriggersConfig",
    "WorkerConfig",
    "find_config",
    "flag_enabled",
    "load_config",
]

#: Looked for in this order by :func:`find_config`.
CONFIG_FILE_NAMES = ("wrangler.toml", "wrangler.jsonc", "wrangler.json")


class DurableObjectBinding(msgspec.Struct, frozen=True, kw_only=True):
    """``env.<name>``: objects of ``class_name``, defined in Worker ``script_name`` (default: this one)."""

    name: str
    class_name: str
    script_name: str | None = None
    environment: str | None = None


class DurableObjects(msgspec.Struct, frozen=True, kw_only=True):
    bindings: tuple[DurableObjectBinding, ...] = ()


class TriggersConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``triggers = { crons = [...] }``: cron expressions, UTC, checked by :func:`check_crons`."""

    crons: tuple[str, ...] = ()


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A validated Worker configuration, with its environment already applied."""

    name: str
    main: str
    compatibility_date: str
    compatibility_flags: tuple[str, ...] = ()
    vars: dict[str, Any] = {}
    durable_objects: DurableObjects = msgspec.field(default_factory=DurableObjects)
    migrations: tuple[Migration, ...] = ()
    kv_namespaces: tuple[KvNamespaceConfig, ...] = ()
    d1_databases: tuple[D1DatabaseConfig, ...] = ()
    r2_buckets: tuple[R2BucketConfig, ...] = ()
    services: tuple[ServiceConfig, ...] = ()
    assets: AssetsConfig | None = None
    triggers: TriggersConfig = msgspec.field(default_factory=TriggersConfig)
    unsupported_bindings: tuple[UnsupportedBindingConfig, ...] = ()
    env: str | None = None
    config_path: Path
    base_dir: Path

    @property
    def assets_dir(self) -> Path | None:
        """The assets folder, resolved against the wrangler file's folder (None: no assets)."""
        if self.assets is None or self.assets.directory is None:
            return None
        return self.base_dir / self.assets.directory

    @property
    def main_path(self) -> Path:
        return self.base_dir / self.main

    def own_bindings(self) -> tuple[DurableObjectBinding, ...]:
        """Bindings to classes this Worker itself defines (no foreign ``script_name``)."""
        return tuple(b for b in self.durable_objects.bindings if b.script_name in (None, self.name))


class CompatFlag(msgspec.Struct, frozen=True, kw_only=True):
    enable: str
    disable: str
    default_on: str | None  # compatibility date from which it is on; None: opt-in only


# The Durable-Object-relevant flags, copied from workerd's flag table.
# CF: https://github.com/cloudflare/workerd/blob/main/src/workerd/io/compatibility-date.capnp
COMPAT_FLAGS: dict[str, CompatFlag] = {
    f.enable: f
    for f in (
        # storage.deleteAll() also deletes the alarm.
        # CF: https://developers.cloudflare.com/changelog/2026-02-24-deleteall-deletes-alarms
        CompatFlag(enable="delete_all_deletes_alarm", disable="delete_all_preserves_alarm",
                   default_on="2026-02-24"),
        # stub.fetch() rejects relative URLs.
        CompatFlag(enable="durable_object_fetch_requires_full_url",
                   disable="durable_object_fetch_allows_relative_url", default_on="2021-11-10"),
        # Stubs lose the undocumented get()/put()/delete() fetch shortcuts, so
        # RPC methods may take those names.
        CompatFlag(enable="fetcher_no_get_put_delete", disable="fetcher_has_get_put_delete",
                   default_on="2024-03-26"),
        # Stubs (Fetchers) accept RPC method calls.
        CompatFlag(enable="rpc", disable="no_rpc", default_on="2024-04-03"),
    )
}

# Wrangler keys that only concern building, routing or deploying: nothing for
# dohost to do, and nothing worth a warning.
# CF: https://developers.cloudflare.com/workers/wrangler/configuration/
_IGNORED_KEYS = frozenset(
    "$schema account_id workers_dev preview_urls route routes tsconfig rules"
    " build no_bundle find_additional_modules base_dir preserve_file_names minify"
    " keep_names logpush limits observability placement upload_source_maps usage_model"
    " legacy_env keep_vars send_metrics site dev define node_compat alias tail_consumers"
    " compliance_region dependencies_instrumentation".split()
)
# Features Cloudflare provides and dohost does not (mostly bindings): user code
# will miss `env.<NAME>`, which deserves a warning rather than silence.
_UNSUPPORTED_KEYS = frozenset(
    "secrets containers exports text_blobs data_blobs wasm_modules".split()
)
# CF: https://developers.cloudflare.com/workers/wrangler/configuration/#inheritable-keys
_INHERITABLE = (
    "name", "main", "compatibility_date", "compatibility_flags", "migrations", "assets", "triggers",
)
# CF: https://developers.cloudflare.com/workers/wrangler/configuration/#non-inheritable-keys
_NON_INHERITABLE = (
    "vars", "durable_objects", "kv_namespaces", "d1_databases", "r2_buckets", "services", "unsupported",
)


class _Section(msgspec.Struct, frozen=True, kw_only=True):
    """The top level or one ``[env.<name>]`` table, as written: all keys optional."""

    name: str | None = None
    main: str | None = None
    compatibility_date: str | None = None
    compatibility_flags: tuple[str, ...] | None = None
    vars: dict[str, Any] | None = None
    durable_objects: DurableObjects | None = None
    migrations: tuple[Migration, ...] | None = None
    kv_namespaces: tuple[KvNamespaceConfig, ...] | None = None
    d1_databases: tuple[D1DatabaseConfig, ...] | None = None
    r2_buckets: tuple[R2BucketConfig, ...] | None = None
    services: tuple[ServiceConfig, ...] | None = None
    assets: AssetsConfig | None = None
    triggers: TriggersConfig | None = None
    #: Filled by :func:`_section` from the unsupported binding kinds, never read from the file.
    unsupported: tuple[UnsupportedBindingConfig, ...] | None = None


_SECTION_FIELDS = {
    f.encode_name: f.type for f in cast(mi.StructType, mi.type_info(_Section)).fields if f.name != "unsupported"
}
# Makes the ConfigError for (key path relative to its section, message).
_Fail = Callable[[str, str], ConfigError]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def find_config(directory: str | Path) -> Path:
    """The wrangler file in ``directory``: ``wrangler.toml``, else ``.jsonc``, else ``.json``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory")
    found = [directory / n for n in CONFIG_FILE_NAMES if (directory / n).is_file()]
    if not found:
        names = ", ".join(CONFIG_FILE_NAMES)
        raise ConfigError(f"{directory}: no wrangler configuration file (looked for {names})")
    if len(found) > 1:
        others = ", ".join(p.name for p in found[1:])
        _warn(f"{directory}: using {found[0].name}; ignoring {others}")
    return found[0]


def load_config(path: str | Path, env: str | None = None) -> WorkerConfig:
    """Read, resolve ``env`` and validate a wrangler file (or the one in a directory)."""
    path = Path(path)
    if path.is_dir():
        path = find_config(path)
    path = path.resolve()
    label = path.name
    raw = _parse(path, label)
    raw_envs = raw.pop("env", None)
    top = _section(raw, "", label)
    envs: dict[str, _Section] = {}
    if raw_envs is not None:
        if not isinstance(raw_envs, dict):
            raise ConfigError(f"{label}: env: expected object, got {_type_name(raw_envs)}")
        for env_name, body in raw_envs.items():
            if not isinstance(body, dict):
                raise ConfigError(f"{label}: env.{env_name}: expected object, got {_type_name(body)}")
            envs[env_name] = _section(body, f"env.{env_name}", label)
    if env is not None and env not in envs:
        available = ", ".join(repr(e) for e in envs) or "none are defined"
        raise ConfigError(f"{label}: env {env!r} not found; available: {available}")
    merged, origin = _resolve(top, envs.get(env) if env else None, env, label)
    return _build(merged, origin, env, path, label)


def flag_enabled(config: WorkerConfig, flag: str, default_on_date: str | None = None) -> bool:
    """Whether compatibility flag ``flag`` is on for ``config``, as workerd decides.

    An explicit ``flag`` in ``compatibility_flags`` turns it on, its opposite
    (from :data:`COMPAT_FLAGS`, else ``no_<flag>``) turns it off; otherwise it is
    on when ``compatibility_date >= default_on_date``. With ``default_on_date``
    None, the date in :data:`COMPAT_FLAGS` is used (none: opt-in only).
    """
    known = COMPAT_FLAGS.get(flag)
    disable = known.disable if known else f"no_{flag}"
    on, off = flag in config.compatibility_flags, disable in config.compatibility_flags
    if on and off:
        raise ConfigError(f"{config.config_path.name}: compatibility_flags: {flag!r} and"
                          f" {disable!r} contradict each other")
    if on or off:
        return on
    if default_on_date is None and known is not None:
        default_on_date = known.default_on
    return default_on_date is not None and config.compatibility_date >= default_on_date


# --- parsing -----------------------------------------------------------------

_TOML_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)
_JSON5_AT = re.compile(r"^<string>:(?P<line>\d+) (?P<msg>.*) at column (?P<col>\d+)$", re.S)


def _parse(path: Path, label: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_syntax_message(label, str(exc), _TOML_AT, text)) from None
    if path.suffix not in (".json", ".jsonc"):
        raise ConfigError(f"{label}: expected a .toml, .jsonc or .json file")
    try:
        # json5 reads JSONC (comments, trailing commas); wrangler also accepts
        # comments in a plain .json file, so both go through it.
        data = json5.loads(text, allow_duplicate_keys=False)
    except ValueError as exc:
        raise ConfigError(_syntax_message(label, str(exc), _JSON5_AT, text)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected an object at the top level, got {_type_name(data)}")
    return data


def _syntax_message(label: str, text: str, pattern: re.Pattern[str], source: str) -> str:
    m = pattern.match(text)
    if m is not None:
        return f"{label}: line {m['line']}, column {m['col']}: syntax error: {m['msg']}"
    if text.endswith(" (at end of document)"):  # tomllib's way of saying "last line"
        last = max(1, len(source.splitlines()))
        return f"{label}: line {last}: syntax error: {text[:-21]} at end of file"
    return f"{label}: syntax error: {text}"


def _section(raw: dict[str, Any], prefix: str, label: str) -> _Section:
    """Warn about keys dohost ignores, then type-check the rest."""
    unsupported: list[UnsupportedBindingConfig] = []
    known: dict[str, Any] = {}
    for key, value in raw.items():
        key_path = _join(prefix, key)
        if key in _SECTION_FIELDS:
            known[key] = value
            for unknown in _unknown_keys(value, _SECTION_FIELDS[key], key_path):
                _warn(f"{label}: {unknown}: unknown key, ignored")
        elif key in UNSUPPORTED_BINDING_KINDS:
            for name, where in binding_names(key, value, key_path):
                _warn(f"{label}: {where}: {key} binding {name!r} is not provided by dohost;"
                      f" env.{name} raises when used")
                unsupported.append(UnsupportedBindingConfig(name=name, kind=key))
        elif key in _UNSUPPORTED_KEYS:
            _warn(f"{label}: {key_path}: not supported by dohost, ignored")
        elif key not in _IGNORED_KEYS:
            _warn(f"{label}: {key_path}: unknown key, ignored")
    try:
        section = msgspec.convert(known, _Section)
    except msgspec.ValidationError as exc:
        raise ConfigError(_validation_message(label, prefix, str(exc))) from None
    if unsupported:
        section = msgspec.structs.replace(section, unsupported=tuple(unsupported))
    return section


def _unknown_keys(value: object, info: mi.Type, path: str) -> Iterator[str]:
    if isinstance(info, mi.UnionType):  # `X | None`: X decides
        info = next(t for t in info.types if not isinstance(t, mi.NoneType))
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        for key, item in value.items():
            if key in fields:
                yield from _unknown_keys(item, fields[key], _join(path, key))
            else:
                yield _join(path, key)
    elif isinstance(info, (mi.ListType, mi.VarTupleType)) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unknown_keys(item, info.item_type, f"{path}[{i}]")


_MSGSPEC_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def _validation_message(label: str, prefix: str, text: str) -> str:
    m = _MSGSPEC_AT.match(text)
    msg, path = (m["msg"], m["path"]) if m else (text, "")
    missing = _MISSING.match(msg)
    if missing:
        path, msg = f"{path}.{missing['field']}", "required key missing"
    else:
        # Optional fields show as `str | null`; null only means "absent" here.
        msg = msg.replace(" | null", "").replace("`", "")
        msg = msg[:1].lower() + msg[1:]
    key = _join(prefix, path.lstrip(".")) if not path.startswith("[") else prefix + path
    return f"{label}: {key or '(top level)'}: {msg}"


# --- environments and validation ---------------------------------------------


def _resolve(
    top: _Section, section: _Section | None, env: str | None, label: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge ``section`` over ``top`` by wrangler's rules; ``origin`` maps each key
    to the path prefix it came from, so errors point at the line to fix."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if section is None:
        for key in _INHERITABLE + _NON_INHERITABLE:
            merged[key], origin[key] = getattr(top, key), ""
        return merged, origin
    prefix = f"env.{env}"
    for key in _INHERITABLE:
        own = getattr(section, key)
        merged[key], origin[key] = (own, prefix) if own is not None else (getattr(top, key), "")
    if section.name is None and top.name is not None:
        # CF: https://developers.cloudflare.com/workers/wrangler/environments/
        merged["name"] = f"{top.name}-{env}"
    for key in _NON_INHERITABLE:
        # CF: https://developers.cloudflare.com/durable-objects/reference/environments/
        own = getattr(section, key)
        if own is None and getattr(top, key) is not None and key != "unsupported":
            _warn(f"{label}: {key} is set at the top level but not in {prefix}; it is not"
                  f" inherited, so {prefix} has none")
        merged[key], origin[key] = own, prefix
    return merged, origin


def _build(
    merged: dict[str, Any], origin: dict[str, str], env: str | None, path: Path, label: str
) -> WorkerConfig:
    def fail(key: str, rel: str, msg: str) -> ConfigError:
        return ConfigError(f"{label}: {_join(origin[key], rel)}: {msg}")

    for key in ("name", "main", "compatibility_date"):
        if merged[key] is None:
            where = f" (set it at the top level or in env.{env})" if env else ""
            raise fail(key, key, f"required key missing{where}")
    name, date = merged["name"], merged["compatibility_date"]
    if not _NAME.match(name):
        raise fail("name", "name", f"expected letters, digits, '-' or '_', got {name!r}")
    if not _valid_date(date):
        raise fail("compatibility_date", "compatibility_date", f"expected YYYY-MM-DD, got {date!r}")
    flags: tuple[str, ...] = merged["compatibility_flags"] or ()
    for flag in flags:
        opposite = COMPAT_FLAGS[flag].disable if flag in COMPAT_FLAGS else f"no_{flag}"
        if opposite in flags:
            raise fail("compatibility_flags", "compatibility_flags",
                       f"{flag!r} and {opposite!r} contradict each other")
    migrations: tuple[Migration, ...] = merged["migrations"] or ()
    _check_migrations(migrations, lambda rel, msg: fail("migrations", rel, msg))
    variables: dict[str, Any] = merged["vars"] or {}
    objects: DurableObjects = merged["durable_objects"] or DurableObjects()
    _check_bindings(objects.bindings, name, variables, migrations,
                    lambda rel, msg: fail("durable_objects", rel, msg))
    assets: AssetsConfig | None = merged["assets"]
    if assets is not None:
        check_assets(assets, lambda rel, msg: fail("assets", rel, msg))
    check_binding_names(merged, variables, fail)
    triggers: TriggersConfig = merged["triggers"] or TriggersConfig()
    check_crons(triggers.crons, lambda rel, msg: fail("triggers", rel, msg))
    return WorkerConfig(
        name=name, main=merged["main"], compatibility_date=date, compatibility_flags=flags,
        vars=variables, durable_objects=objects, migrations=migrations,
        kv_namespaces=merged["kv_namespaces"] or (), d1_databases=merged["d1_databases"] or (),
        r2_buckets=merged["r2_buckets"] or (), services=merged["services"] or (), assets=assets, triggers=triggers,
        unsupported_bindings=merged["unsupported"] or (), env=env, config_path=path, base_dir=path.parent,
    )


def _check_migrations(migrations: tuple[Migration, ...], fail: _Fail) -> None:
    seen: dict[str, int] = {}
    for i, m in enumerate(migrations):
        if not m.tag:
            raise fail(f"migrations[{i}].tag", "expected a non-empty tag")
        if m.tag in seen:
            raise fail(f"migrations[{i}].tag",
                       f"duplicate tag {m.tag!r} (also migrations[{seen[m.tag]}].tag)")
        seen[m.tag] = i
        # Names a class can take; deleted/renamed ones must have been taken first.
        named = [(f"{k}[{j}]", c) for k in ("new_classes", "new_sqlite_classes")
                 for j, c in enumerate(getattr(m, k))]
        named += [(f"{k}[{j}].to", x.to) for k in ("renamed_classes", "transferred_classes")
                  for j, x in enumerate(getattr(m, k))]
        for rel, cls in named:
            if not cls.isidentifier():
                raise fail(f"migrations[{i}].{rel}", f"expected a class name, got {cls!r}")


def _check_bindings(
    bindings: tuple[DurableObjectBinding, ...], script: str, variables: dict[str, Any],
    migrations: tuple[Migration, ...], fail: _Fail,
) -> None:
    states = final_class_states(migrations, script)
    seen: dict[str, int] = {}
    for i, b in enumerate(bindings):
        at = f"durable_objects.bindings[{i}]"
        if not b.name.isidentifier():
            raise fail(f"{at}.name", f"expected an identifier, got {b.name!r}")
        if b.name in seen:
            raise fail(f"{at}.name", f"duplicate binding {b.name!r} (also"
                       f" durable_objects.bindings[{seen[b.name]}].name)")
        if b.name in variables:
            raise fail(f"{at}.name", f"binding {b.name!r} is also defined in vars")
        seen[b.name] = i
        if not b.class_name.isidentifier():
            raise fail(f"{at}.class_name", f"expected a class name, got {b.class_name!r}")
        if b.script_name not in (None, script) or not migrations:
            continue  # another Worker's class, or convenience mode (module docstring)
        state = states.get(b.class_name)
        if state is None:
            raise fail(f"{at}.class_name", f"class {b.class_name!r} has no migration creating it")
        if state:
            raise fail(f"{at}.class_name", f"class {b.class_name!r} {state}")


def _valid_date(text: str) -> bool:
    try:
        return bool(_DATE.match(text)) and bool(_dt.date.fromisoformat(text))
    except ValueError:  # 2025-02-30
        return False


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else prefix or key


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _warn(message: str) -> None:
    # Attribute the warning to the first caller outside this module.
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ConfigWarning, stacklevel=level)
