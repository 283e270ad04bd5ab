"""Applying Durable Object migrations to a data directory."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import msgspec
import pytest

from wrangler_compat.config._config import Migration, RenamedClass, TransferredClass, load_config
from wrangler_compat.config._migrations import (
    REGISTRY_FILE,
    NamespaceInfo,
    NamespaceRegistry,
    apply_migrations,
    default_registry_for,
    load_registry,
    namespace_dir,
)
from wrangler_compat.errors import MigrationError, WranglerCompatError

V1 = Migration(tag="v1", new_classes=("Legacy",), new_sqlite_classes=("Counter", "Room"))


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def snapshot(data_dir: Path) -> tuple[bytes, list[str]]:
    """The registry's bytes and the folder listing: what "nothing changed" means."""
    return (data_dir / REGISTRY_FILE).read_bytes(), sorted(os.listdir(data_dir))


def put(data_dir: Path, info: NamespaceInfo, text: str = "data") -> None:
    (namespace_dir(data_dir, info) / "object.sqlite").write_text(text)


def get(data_dir: Path, info: NamespaceInfo) -> str:
    return (namespace_dir(data_dir, info) / "object.sqlite").read_text()


def test_new_classes_get_hashed_folders_and_stable_unique_keys(tmp_path: Path) -> None:
    registry = apply_migrations(("worker", [V1]), tmp_path)
    counter = registry.lookup("worker", "Counter")
    assert (counter.unique_key, counter.sqlite) == ("worker:Counter", True)
    assert registry.lookup("worker", "Legacy").sqlite is False
    assert registry.applied_tags("worker") == ("v1",)
    folders = {info.dir_name for info in registry.scripts["worker"].classes.values()}
    assert len(folders) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", name) for name in folders)
    assert sorted(os.listdir(tmp_path)) == sorted(folders | {REGISTRY_FILE, "dohost-namespaces.lock"})
    assert namespace_dir(tmp_path, counter) == tmp_path / counter.dir_name


def test_registry_file_round_trips_and_holds_no_temp_files(tmp_path: Path) -> None:
    registry = apply_migrations(("worker", [V1]), tmp_path)
    assert load_registry(tmp_path) == registry
    assert json.loads((tmp_path / REGISTRY_FILE).read_text())["scripts"]["worker"]["applied_tags"] == ["v1"]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_reapplying_the_same_migrations_writes_nothing(tmp_path: Path) -> None:
    first = apply_migrations(("worker", [V1]), tmp_path)
    before = (tmp_path / REGISTRY_FILE).stat().st_mtime_ns, snapshot(tmp_path)
    again = apply_migrations(("worker", [V1]), tmp_path)
    assert again == first
    assert ((tmp_path / REGISTRY_FILE).stat().st_mtime_ns, snapshot(tmp_path)) == before


def test_later_runs_apply_only_the_new_tags(tmp_path: Path) -> None:
    apply_migrations(("worker", [V1]), tmp_path)
    v2 = Migration(tag="v2", new_sqlite_classes=("Extra",))
    registry = apply_migrations(("worker", [V1, v2]), tmp_path)
    assert registry.applied_tags("worker") == ("v1", "v2")
    assert set(registry.scripts["worker"].classes) == {"Legacy", "Counter", "Room", "Extra"}


def test_rename_keeps_data_folder_and_unique_key(tmp_path: Path) -> None:
    before = apply_migrations(("worker", [V1]), tmp_path).lookup("worker", "Counter")
    put(tmp_path, before, "n=41")
    v2 = Migration(tag="v2", renamed_classes=(RenamedClass(from_="Counter", to="Tally"),))
    registry = apply_migrations(("worker", [V1, v2]), tmp_path)
    after = registry.lookup("worker", "Tally")
    assert after == before
    assert get(tmp_path, after) == "n=41"
    with pytest.raises(MigrationError, match=r"^no Durable Object namespace for class 'Counter' of script 'worker' \(its classes: .*'Tally'.*\)$"):
        registry.lookup("worker", "Counter")


def test_delete_removes_the_folder_and_the_entry(tmp_path: Path) -> None:
    room = apply_migrations(("worker", [V1]), tmp_path).lookup("worker", "Room")
    put(tmp_path, room)
    v2 = Migration(tag="v2", deleted_classes=("Room",))
    registry = apply_migrations(("worker", [V1, v2]), tmp_path)
    assert "Room" not in registry.scripts["worker"].classes
    assert not namespace_dir(tmp_path, room).exists()
    assert registry.pending_deletions == ()
    assert load_registry(tmp_path) == registry


def test_class_created_again_after_deletion_starts_empty_in_a_new_folder(tmp_path: Path) -> None:
    old = apply_migrations(("worker", [V1]), tmp_path).lookup("worker", "Room")
    put(tmp_path, old)
    again = [V1, Migration(tag="v2", deleted_classes=("Room",)),
             Migration(tag="v3", new_sqlite_classes=("Room",))]
    new = apply_migrations(("worker", again), tmp_path).lookup("worker", "Room")
    assert new.dir_name != old.dir_name
    assert namespace_dir(tmp_path, new).is_dir()
    assert os.listdir(namespace_dir(tmp_path, new)) == []
    assert not namespace_dir(tmp_path, old).exists()


def test_new_class_reusing_a_renamed_name_gets_its_own_unique_key(tmp_path: Path) -> None:
    v2 = Migration(tag="v2", renamed_classes=(RenamedClass(from_="Room", to="Hall"),),
                   new_sqlite_classes=("Room",))
    registry = apply_migrations(("worker", [V1, v2]), tmp_path)
    assert registry.lookup("worker", "Hall").unique_key == "worker:Room"
    assert registry.lookup("worker", "Room").unique_key == "worker:Room#2"


def test_one_migration_may_delete_a_class_and_rename_another_onto_its_name(tmp_path: Path) -> None:
    apply_migrations(("worker", [V1]), tmp_path)
    v2 = Migration(tag="v2", deleted_classes=("Room",),
                   renamed_classes=(RenamedClass(from_="Counter", to="Room"),))
    registry = apply_migrations(("worker", [V1, v2]), tmp_path)
    assert registry.lookup("worker", "Room").unique_key == "worker:Counter"


def test_transferred_class_moves_with_its_data_to_the_new_script(tmp_path: Path) -> None:
    room = apply_migrations(("chat", [Migration(tag="c1", new_sqlite_classes=("Room",))]), tmp_path).lookup("chat", "Room")
    put(tmp_path, room, "messages")
    move = Migration(tag="v1", transferred_classes=(TransferredClass(from_="Room", from_script="chat", to="Lobby"),))
    registry = apply_migrations(("worker", [move]), tmp_path)
    lobby = registry.lookup("worker", "Lobby")
    assert lobby == room  # same unique_key "chat:Room", same folder
    assert get(tmp_path, lobby) == "messages"
    assert registry.scripts["chat"].classes == {}
    assert registry.applied_tags("chat") == ("c1",)


def test_transfer_from_an_unknown_script_is_an_error(tmp_path: Path) -> None:
    move = Migration(tag="v1", transferred_classes=(TransferredClass(from_="Room", from_script="ghost", to="Room"),))
    with pytest.raises(MigrationError, match=exact("migration 'v1': transferred_classes: class 'Room' does not exist in script 'ghost'")):
        apply_migrations(("worker", [move]), tmp_path)
    assert not (tmp_path / REGISTRY_FILE).exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Migration(tag="v2", renamed_classes=(RenamedClass(from_="Nope", to="X"),)),
         "migration 'v2': renamed_classes: class 'Nope' does not exist in script 'worker'"),
        (Migration(tag="v2", renamed_classes=(RenamedClass(from_="Room", to="Counter"),)),
         "migration 'v2': renamed_classes: class 'Counter' already exists in script 'worker'"),
        (Migration(tag="v2", deleted_classes=("Nope",)),
         "migration 'v2': deleted_classes: class 'Nope' does not exist in script 'worker'"),
        (Migration(tag="v2", new_classes=("Counter",)),
         "migration 'v2': new_classes: class 'Counter' already exists in script 'worker'"),
    ],
)
def test_migration_naming_a_wrong_class_changes_nothing(tmp_path: Path, bad: Migration, message: str) -> None:
    apply_migrations(("worker", [V1]), tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(MigrationError, match=exact(message)):
        apply_migrations(("worker", [V1, Migration(tag="ok", deleted_classes=("Legacy",)), bad]), tmp_path)
    assert snapshot(tmp_path) == before  # "ok" before it was not applied either


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["v1", "v3"], "migration #2 is 'v3' in the config, but 'v2' was applied to the data directory;"
                       " applied migrations cannot be changed or reordered"),
        (["v2", "v1"], "migration #1 is 'v2' in the config, but 'v1' was applied to the data directory;"
                       " applied migrations cannot be changed or reordered"),
        (["v1"], "migration 'v2' (#2) was applied to the data directory but is no longer in the config;"
                 " applied migrations cannot be removed"),
    ],
)
def test_rewritten_history_is_an_error_that_leaves_the_registry_byte_identical(
    tmp_path: Path, tags: list[str], message: str
) -> None:
    v2 = Migration(tag="v2", new_sqlite_classes=("Extra",))
    apply_migrations(("worker", [V1, v2]), tmp_path)
    before = snapshot(tmp_path)
    by_tag = {"v1": V1, "v2": v2, "v3": Migration(tag="v3")}
    registry = tmp_path / REGISTRY_FILE
    with pytest.raises(MigrationError, match=exact(f"script 'worker': {message} ({registry})")):
        apply_migrations(("worker", [by_tag[t] for t in tags]), tmp_path)
    assert snapshot(tmp_path) == before


def test_duplicate_tags_are_a_migration_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=exact("script 'worker': duplicate migration tag 'v1'")):
        apply_migrations(("worker", [V1, V1]), tmp_path)


def test_scripts_keep_separate_histories(tmp_path: Path) -> None:
    apply_migrations(("a", [V1]), tmp_path)
    registry = apply_migrations(("b", [Migration(tag="other", new_sqlite_classes=("Counter",))]), tmp_path)
    assert registry.lookup("a", "Counter").dir_name != registry.lookup("b", "Counter").dir_name
    assert registry.applied_tags("a") == ("v1",)
    assert registry.applied_tags("b") == ("other",)


# --- convenience mode and configs ---------------------------------------------------


def write_config(tmp_path: Path, migrations: str = "") -> Path:
    path = tmp_path / "wrangler.toml"
    path.write_text(textwrap.dedent("""\
        name = "worker"
        main = "worker.py"
        compatibility_date = "2025-01-01"
        durable_objects.bindings = [{ name = "COUNTER", class_name = "Counter" }]
    """) + textwrap.dedent(migrations))
    return path


def test_config_without_migrations_gets_the_default_sqlite_namespaces(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    registry = apply_migrations(config, tmp_path / "data")
    expected = default_registry_for({"COUNTER": "Counter"}, "worker")
    assert registry == expected
    info = registry.lookup("worker", "Counter")
    assert (info.unique_key, info.sqlite, info.implicit) == ("worker:Counter", True, True)


def test_adding_migrations_later_adopts_the_default_namespace_and_its_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    implicit = apply_migrations(load_config(write_config(tmp_path)), data).lookup("worker", "Counter")
    put(data, implicit, "kept")
    config = load_config(write_config(tmp_path, '[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["Counter"]\n'))
    adopted = apply_migrations(config, data).lookup("worker", "Counter")
    assert (adopted.unique_key, adopted.dir_name, adopted.implicit) == (implicit.unique_key, implicit.dir_name, False)
    assert get(data, adopted) == "kept"


def test_kv_backed_migration_cannot_adopt_a_default_sqlite_namespace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    apply_migrations(load_config(write_config(tmp_path)), data)
    before = snapshot(data)
    config = load_config(write_config(tmp_path, '[[migrations]]\ntag = "v1"\nnew_classes = ["Counter"]\n'))
    with pytest.raises(MigrationError, match=exact(
        "migration 'v1': new_classes: class 'Counter' already has a SQLite-backed namespace"
        " (created while the config had no migrations); list it in new_sqlite_classes to keep its data"
    )):
        apply_migrations(config, data)
    assert snapshot(data) == before


def test_env_config_gets_namespaces_of_its_own_worker_name(tmp_path: Path) -> None:
    path = write_config(tmp_path, """
        [[migrations]]
        tag = "v1"
        new_sqlite_classes = ["Counter"]

        [env.staging]
        durable_objects.bindings = [{ name = "COUNTER", class_name = "Counter" }]
    """)
    data = tmp_path / "data"
    top = apply_migrations(load_config(path), data).lookup("worker", "Counter")
    staging = apply_migrations(load_config(path, env="staging"), data).lookup("worker-staging", "Counter")
    assert staging.unique_key == "worker-staging:Counter"
    assert staging.dir_name != top.dir_name


# --- crash safety and hostile files ------------------------------------------------


def test_deletion_interrupted_by_a_crash_is_finished_by_the_next_call(tmp_path: Path) -> None:
    registry = apply_migrations(("worker", [V1]), tmp_path)
    stranded = "0123456789abcdef0123456789abcdef"
    (tmp_path / stranded).mkdir()
    crashed = NamespaceRegistry(scripts=registry.scripts, pending_deletions=(stranded,))
    (tmp_path / REGISTRY_FILE).write_bytes(msgspec.json.encode(crashed))
    after = apply_migrations(("worker", [V1]), tmp_path)
    assert after.pending_deletions == ()
    assert not (tmp_path / stranded).exists()
    assert load_registry(tmp_path) == registry


def test_unreadable_registry_is_an_error_and_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(MigrationError, match=rf"^{re.escape(str(tmp_path / REGISTRY_FILE))}: not a dohost namespace registry: .+$"):
        apply_migrations(("worker", [V1]), tmp_path)
    assert (tmp_path / REGISTRY_FILE).read_text() == "{not json"


def test_registry_naming_a_folder_outside_the_data_directory_is_rejected(tmp_path: Path) -> None:
    evil = {"version": 1, "scripts": {}, "pending_deletions": ["../victim"]}
    (tmp_path / "data").mkdir()
    (tmp_path / "victim").mkdir()
    (tmp_path / "data" / REGISTRY_FILE).write_text(json.dumps(evil))
    with pytest.raises(MigrationError, match=r"^.*: invalid namespace folder name '\.\./victim'$"):
        apply_migrations(("worker", [V1]), tmp_path / "data")
    assert (tmp_path / "victim").is_dir()


def test_migration_errors_share_the_package_root() -> None:
    assert issubclass(MigrationError, WranglerCompatError)
