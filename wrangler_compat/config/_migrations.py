"""Applying Durable Object migrations to a data directory.

This module owns the mapping from (script name, class name) to a namespace
folder on disk, recorded in ``<data_dir>/dohost-namespaces.json``
(:class:`NamespaceRegistry`), and the rules that change it. It guarantees:

* Folders are named by a hash (:attr:`NamespaceInfo.dir_name`), never by a
  class name or an object name.
* A namespace's ``unique_key`` (from which object IDs are derived) and folder
  never change after it is created: renaming a class or transferring it to
  another script moves the registry entry, and keeps the key, the folder and so
  every object's ID and data. A new class gets ``f"{script}:{class}"`` (with a
  ``#N`` suffix in the rare case another live namespace already uses that key,
  for example after ``A`` was renamed to ``B`` and a new ``A`` created).
* Tags are applied in order, each once. The tags already applied for a script
  must be a prefix of the config's tags; otherwise (history rewritten, tag
  removed or reordered) :class:`MigrationError` names the differing tag.
* All or nothing: the new registry is computed in memory and written once,
  atomically (temp file, fsync, ``os.replace``, fsync of the folder). Any error
  before that leaves the file byte-identical. Folders of deleted classes are
  removed only after the write; they are listed in ``pending_deletions`` first,
  so a crash in between is finished by the next call.
* Within one migration the order is: ``deleted_classes``, ``renamed_classes``,
  ``transferred_classes``, then ``new_classes``/``new_sqlite_classes`` — so one
  migration can delete ``B`` and rename ``A`` to ``B``, or rename ``A`` away
  and create a new ``A``.

Convenience mode: a config with no migrations at all gets one SQLite-backed
namespace per class it binds (``implicit=True``). When migrations are added
later, a ``new_sqlite_classes`` entry adopts the implicit namespace, keeping its
data, instead of failing as "already exists".

Call :func:`apply_migrations` at start-up, before objects are opened: deleting
a class removes its folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..errors import MigrationError

if TYPE_CHECKING:  # _config imports this module for Migration
    from ._config import WorkerConfig

__all__ = [
    "REGISTRY_FILE",
    "Migration",
    "RenamedClass",
    "TransferredClass",
    "NamespaceInfo",
    "NamespaceRegistry",
    "ScriptNamespaces",
    "apply_migrations",
    "default_registry_for",
    "final_class_states",
    "load_registry",
    "namespace_dir",
]

REGISTRY_FILE = "dohost-namespaces.json"
_LOCK_FILE = "dohost-namespaces.lock"
_VERSION = 1
# Only names we generate are ever passed to rmtree, whatever the file says.
_DIR_NAME = re.compile(r"^[0-9a-f]{32}$")


class RenamedClass(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    to: str


class TransferredClass(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    from_script: str
    to: str


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One ``[[migrations]]`` entry of a wrangler file."""

    tag: str
    new_classes: tuple[str, ...] = ()
    new_sqlite_classes: tuple[str, ...] = ()
    renamed_classes: tuple[RenamedClass, ...] = ()
    deleted_classes: tuple[str, ...] = ()
    transferred_classes: tuple[TransferredClass, ...] = ()


class NamespaceInfo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                    omit_defaults=True):
    unique_key: str
    dir_name: str
    sqlite: bool
    implicit: bool = False  # created by convenience mode, not by a migration


class ScriptNamespaces(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    applied_tags: tuple[str, ...] = ()
    classes: dict[str, NamespaceInfo] = {}


class NamespaceRegistry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every namespace of a data directory, per script and class."""

    version: int = _VERSION
    scripts: dict[str, ScriptNamespaces] = {}
    pending_deletions: tuple[str, ...] = ()

    def lookup(self, script_name: str, class_name: str) -> NamespaceInfo:
        record = self.scripts.get(script_name, ScriptNamespaces())
        info = record.classes.get(class_name)
        if info is None:
            known = ", ".join(repr(c) for c in record.classes) or "none"
            raise MigrationError(
                f"no Durable Object namespace for class {class_name!r} of script"
                f" {script_name!r} (its classes: {known})"
            )
        return info

    def applied_tags(self, script_name: str) -> tuple[str, ...]:
        return self.scripts.get(script_name, ScriptNamespaces()).applied_tags


def namespace_dir(data_dir: str | os.PathLike[str], info: NamespaceInfo) -> Path:
    return Path(data_dir) / info.dir_name


def default_registry_for(bindings: Mapping[str, str], script_name: str) -> NamespaceRegistry:
    """The registry for bindings given without a config (binding name -> class name):
    one SQLite-backed namespace per class, as :func:`apply_migrations` makes in
    convenience mode, so both name the same folders."""
    classes: dict[str, NamespaceInfo] = {}
    for class_name in bindings.values():
        if class_name not in classes:
            key = f"{script_name}:{class_name}"
            classes[class_name] = NamespaceInfo(
                unique_key=key, dir_name=_hash_dir(key, ""), sqlite=True, implicit=True
            )
    return NamespaceRegistry(scripts={script_name: ScriptNamespaces(classes=classes)})


def load_registry(data_dir: str | os.PathLike[str]) -> NamespaceRegistry:
    """The registry recorded in ``data_dir`` (empty if there is none yet)."""
    path = Path(data_dir) / REGISTRY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return NamespaceRegistry()
    try:
        registry = msgspec.json.decode(data, type=NamespaceRegistry)
    except msgspec.DecodeError as exc:
        raise MigrationError(f"{path}: not a dohost namespace registry: {exc}") from None
    if registry.version != _VERSION:
        raise MigrationError(
            f"{path}: registry version {registry.version} (this dohost reads {_VERSION})"
        )
    dirs = [i.dir_name for s in registry.scripts.values() for i in s.classes.values()]
    for name in dirs + list(registry.pending_deletions):
        if not _DIR_NAME.match(name):
            raise MigrationError(f"{path}: invalid namespace folder name {name!r}")
    return registry


def apply_migrations(
    source: WorkerConfig | tuple[str, Sequence[Migration]],
    data_dir: str | os.PathLike[str],
) -> NamespaceRegistry:
    """Bring ``data_dir`` up to date with a config's migrations; return the registry.

    ``source`` is a :class:`WorkerConfig` (its ``name`` is the script name, and
    with no migrations its own bindings get implicit namespaces) or a pair
    ``(script_name, migrations)``. Re-applying the same migrations is a no-op
    that writes nothing.
    """
    if isinstance(source, tuple):
        script, migrations, implicit = source[0], tuple(source[1]), []
    else:
        script, migrations = source.name, tuple(source.migrations)
        implicit = [b.class_name for b in source.own_bindings()]
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        old = _finish_deletions(root, load_registry(root))
        new = _plan(old, script, migrations, implicit, root / REGISTRY_FILE)
        if new == old:
            return old
        _write(root, new)
        for record in new.scripts.values():
            for info in record.classes.values():
                (root / info.dir_name).mkdir(exist_ok=True)
        return _finish_deletions(root, new)


def final_class_states(migrations: Sequence[Migration], script: str) -> dict[str, str]:
    """What the migrations leave of each class name they mention: "" if alive,
    else why not ("was deleted by migration 'v2'"). Purely from the list, in
    :func:`_apply_one`'s order; whether each step is possible is checked
    against the data directory by :func:`apply_migrations`."""
    states: dict[str, str] = {}
    for m in migrations:
        for cls in m.deleted_classes:
            states[cls] = f"was deleted by migration {m.tag!r}"
        for r in m.renamed_classes:
            states[r.from_] = f"was renamed to {r.to!r} by migration {m.tag!r}"
            states[r.to] = ""
        for t in m.transferred_classes:
            if t.from_script == script:
                states[t.from_] = f"was transferred to {t.to!r} by migration {m.tag!r}"
            states[t.to] = ""
        for cls in (*m.new_classes, *m.new_sqlite_classes):
            states[cls] = ""
    return states


def _plan(
    registry: NamespaceRegistry, script: str, migrations: tuple[Migration, ...],
    implicit: Sequence[str], where: Path,
) -> NamespaceRegistry:
    """The registry after applying ``migrations``; raises before anything is written."""
    tags = [m.tag for m in migrations]
    for i, tag in enumerate(tags):
        if tag in tags[:i]:
            raise MigrationError(f"script {script!r}: duplicate migration tag {tag!r}")
    applied = registry.applied_tags(script)
    _check_history(applied, tags, script, where)
    scripts = {name: dict(rec.classes) for name, rec in registry.scripts.items()}
    scripts.setdefault(script, {})
    deleted: list[str] = []
    for migration in migrations[len(applied):]:
        _apply_one(migration, script, scripts, deleted)
    if not migrations:
        for class_name in implicit:
            if class_name not in scripts[script]:
                scripts[script][class_name] = _new_namespace(
                    script, class_name, "", sqlite=True, implicit=True, scripts=scripts)
    records = {}
    for name, classes in scripts.items():
        done = tuple(tags) if name == script else registry.applied_tags(name)
        if classes or done:
            records[name] = ScriptNamespaces(applied_tags=done, classes=classes)
    pending = registry.pending_deletions + tuple(deleted)
    return NamespaceRegistry(scripts=records, pending_deletions=pending)


def _check_history(applied: Sequence[str], tags: Sequence[str], script: str, where: Path) -> None:
    for i, done in enumerate(applied):
        if i >= len(tags):
            raise MigrationError(
                f"script {script!r}: migration {done!r} (#{i + 1}) was applied to the data"
                f" directory but is no longer in the config; applied migrations cannot be"
                f" removed ({where})"
            )
        if tags[i] != done:
            raise MigrationError(
                f"script {script!r}: migration #{i + 1} is {tags[i]!r} in the config, but"
                f" {done!r} was applied to the data directory; applied migrations cannot be"
                f" changed or reordered ({where})"
            )


def _apply_one(
    m: Migration, script: str, scripts: dict[str, dict[str, NamespaceInfo]], deleted: list[str]
) -> None:
    mine = scripts[script]

    def missing(field: str, class_name: str, owner: str = script) -> MigrationError:
        return MigrationError(f"migration {m.tag!r}: {field}: class {class_name!r} does not"
                              f" exist in script {owner!r}")

    def exists(field: str, class_name: str) -> MigrationError:
        return MigrationError(f"migration {m.tag!r}: {field}: class {class_name!r} already"
                              f" exists in script {script!r}")

    for class_name in m.deleted_classes:
        gone = mine.pop(class_name, None)
        if gone is None:
            raise missing("deleted_classes", class_name)
        deleted.append(gone.dir_name)
    for r in m.renamed_classes:
        if r.from_ not in mine:
            raise missing("renamed_classes", r.from_)
        if r.to in mine:
            raise exists("renamed_classes", r.to)
        mine[r.to] = msgspec.structs.replace(mine.pop(r.from_), implicit=False)
    for t in m.transferred_classes:
        origin = scripts.get(t.from_script, {})
        if t.from_ not in origin:
            raise missing("transferred_classes", t.from_, t.from_script)
        if t.to in mine:
            raise exists("transferred_classes", t.to)
        mine[t.to] = msgspec.structs.replace(origin.pop(t.from_), implicit=False)
    for field, sqlite in (("new_classes", False), ("new_sqlite_classes", True)):
        for class_name in getattr(m, field):
            have = mine.get(class_name)
            if have is None:
                mine[class_name] = _new_namespace(
                    script, class_name, m.tag, sqlite=sqlite, implicit=False, scripts=scripts)
            elif have.implicit and have.sqlite == sqlite:
                mine[class_name] = msgspec.structs.replace(have, implicit=False)  # adopt
            elif have.implicit:
                raise MigrationError(
                    f"migration {m.tag!r}: new_classes: class {class_name!r} already has a"
                    " SQLite-backed namespace (created while the config had no migrations);"
                    " list it in new_sqlite_classes to keep its data"
                )
            else:
                raise exists(field, class_name)


def _new_namespace(
    script: str, class_name: str, tag: str, *, sqlite: bool, implicit: bool,
    scripts: dict[str, dict[str, NamespaceInfo]],
) -> NamespaceInfo:
    live = [i for classes in scripts.values() for i in classes.values()]
    keys = {i.unique_key for i in live}
    base = key = f"{script}:{class_name}"
    n = 1
    while key in keys:  # see the module docstring: IDs must not collide
        n += 1
        key = f"{base}#{n}"
    # The creating tag is hashed in so that a class deleted and created again
    # gets a fresh folder, never the one awaiting deletion.
    return NamespaceInfo(unique_key=key, dir_name=_hash_dir(key, tag), sqlite=sqlite,
                         implicit=implicit)


def _hash_dir(unique_key: str, tag: str) -> str:
    return hashlib.sha256(f"{unique_key}\0{tag}".encode()).hexdigest()[:32]


def _finish_deletions(root: Path, registry: NamespaceRegistry) -> NamespaceRegistry:
    """Remove folders the registry no longer names; record what is left to do."""
    if not registry.pending_deletions:
        return registry
    left = []
    for name in registry.pending_deletions:
        try:
            shutil.rmtree(root / name)
        except FileNotFoundError:
            pass
        except OSError:
            left.append(name)  # retried by the next call; the registry is already right
    done = msgspec.structs.replace(registry, pending_deletions=tuple(left))
    _write(root, done)
    return done


def _write(root: Path, registry: NamespaceRegistry) -> None:
    data = msgspec.json.format(msgspec.json.encode(registry, order="deterministic"), indent=2)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".dohost-namespaces.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / REGISTRY_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is.
    dir_fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    # Two processes starting on one data directory must not interleave
    # read-plan-write cycles.
    with open(root / _LOCK_FILE, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
