"""The wrangler file's bindings besides Durable Objects: their records and checks.

Read by :mod:`._config` (which re-exports the records): ``kv_namespaces``,
``d1_databases``, ``r2_buckets``, ``services``, ``assets``, and the binding
kinds dohost does not provide, recorded by name and kind so ``env.<NAME>``
can say so when used. Each record's ``storage_key`` names the local store
(a namespace's ``id``, a database's ``database_id``, a bucket's name) so two
Workers binding the same resource share it, as on Cloudflare.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import msgspec

from ..errors import ConfigError

__all__ = [
    "AssetsConfig",
    "D1DatabaseConfig",
    "HTML_HANDLING",
    "KvNamespaceConfig",
    "NOT_FOUND_HANDLING",
    "R2BucketConfig",
    "ServiceConfig",
    "UNSUPPORTED_BINDING_KINDS",
    "UnsupportedBindingConfig",
    "binding_names",
    "check_assets",
    "check_binding_names",
]

#: Makes the ConfigError for (key path relative to its section, message).
_Fail = Callable[[str, str], ConfigError]


class KvNamespaceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``kv_namespaces[i]``: a Workers KV namespace; stored locally by ``id`` (else the binding name)."""

    binding: str
    id: str | None = None
    preview_id: str | None = None
    remote: bool | None = None  # wrangler's remote bindings; dohost is always local

    @property
    def storage_key(self) -> str:
        return self.id or self.binding


class D1DatabaseConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``d1_databases[i]``: a D1 database; stored locally by ``database_id`` (else name, else binding)."""

    binding: str
    database_name: str | None = None
    database_id: str | None = None
    preview_database_id: str | None = None
    migrations_dir: str | None = None
    migrations_table: str | None = None
    remote: bool | None = None  # wrangler's remote bindings; dohost is always local

    @property
    def storage_key(self) -> str:
        return self.database_id or self.database_name or self.binding


class R2BucketConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``r2_buckets[i]``: an R2 bucket; stored locally by ``bucket_name`` (else the binding name)."""

    binding: str
    bucket_name: str | None = None
    preview_bucket_name: str | None = None
    jurisdiction: str | None = None
    remote: bool | None = None  # wrangler's remote bindings; dohost is always local

    @property
    def storage_key(self) -> str:
        return self.bucket_name or self.binding


class ServiceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``services[i]``: ``env.<binding>`` calls Worker ``service`` (its ``entrypoint`` class, else its default)."""

    binding: str
    service: str
    entrypoint: str | None = None
    environment: str | None = None
    remote: bool | None = None  # wrangler's remote bindings; dohost is always local


# CF: https://developers.cloudflare.com/workers/static-assets/binding/#html_handling
HTML_HANDLING = ("auto-trailing-slash", "force-trailing-slash", "drop-trailing-slash", "none")
# CF: https://developers.cloudflare.com/workers/static-assets/binding/#not_found_handling
NOT_FOUND_HANDLING = ("none", "404-page", "single-page-application")


class AssetsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``assets``: static files served ahead of the Worker, and ``env.<binding>`` to fetch them."""

    directory: str | None = None
    binding: str | None = None
    html_handling: str = "auto-trailing-slash"
    not_found_handling: str = "none"
    run_worker_first: bool | tuple[str, ...] = False


class UnsupportedBindingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A binding of a kind dohost does not provide: ``env.<name>`` raises when used."""

    name: str
    kind: str  # the wrangler key: "queues", "ai", "vectorize"...


# Binding kinds Cloudflare provides and dohost does not: each binding gets a
# warning at start and an `env.<NAME>` that raises when used (never None).
# CF: https://developers.cloudflare.com/workers/wrangler/configuration/#bindings
UNSUPPORTED_BINDING_KINDS = frozenset(
    "queues analytics_engine_datasets vectorize hyperdrive ai browser send_email mtls_certificates"
    " dispatch_namespaces workflows secrets_store_secrets images version_metadata pipelines unsafe"
    " ratelimits worker_loaders".split()
)


def binding_names(kind: str, value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(name, key path) of each binding declared under an unsupported ``kind``."""
    if kind == "queues" and isinstance(value, dict):
        value, path = value.get("producers") or [], f"{path}.producers"
    elif kind == "unsafe" and isinstance(value, dict):
        value, path = value.get("bindings") or [], f"{path}.bindings"
    items = [(value, path)] if isinstance(value, dict) else (
        [(v, f"{path}[{i}]") for i, v in enumerate(value)] if isinstance(value, list) else [])
    for item, where in items:
        name = item.get("binding", item.get("name")) if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            yield name, where


def check_assets(assets: AssetsConfig, fail: _Fail) -> None:
    if assets.directory is None:
        raise fail("assets.directory", "required key missing (the folder of files to serve)")
    for key, allowed in (("html_handling", HTML_HANDLING), ("not_found_handling", NOT_FOUND_HANDLING)):
        value = getattr(assets, key)
        if value not in allowed:
            raise fail(f"assets.{key}", f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    if assets.binding is not None and not assets.binding.isidentifier():
        raise fail("assets.binding", f"expected an identifier, got {assets.binding!r}")


def check_binding_names(
    merged: dict[str, Any], variables: dict[str, Any], fail: Callable[[str, str, str], ConfigError]
) -> None:
    """Every binding name is an identifier, used once across kinds, and not also a var."""
    seen: dict[str, str] = {}
    objects = merged["durable_objects"]  # DurableObjects or None, already checked by _config
    for i, b in enumerate(objects.bindings if objects is not None else ()):
        seen[b.name] = f"durable_objects.bindings[{i}].name"
    entries: list[tuple[str, str, str]] = []
    for key in ("kv_namespaces", "d1_databases", "r2_buckets", "services"):
        for i, item in enumerate(merged[key] or ()):
            entries.append((key, f"{key}[{i}].binding", item.binding))
    assets: AssetsConfig | None = merged["assets"]
    if assets is not None and assets.binding is not None:
        entries.append(("assets", "assets.binding", assets.binding))
    for item in merged["unsupported"] or ():
        entries.append(("unsupported", item.kind, item.name))
    for key, rel, name in entries:
        if not name.isidentifier():
            raise fail(key, rel, f"expected an identifier, got {name!r}")
        if name in seen:
            raise fail(key, rel, f"duplicate binding {name!r} (also {seen[name]})")
        if name in variables:
            raise fail(key, rel, f"binding {name!r} is also defined in vars")
        seen[name] = rel
