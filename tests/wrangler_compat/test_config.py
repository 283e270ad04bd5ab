"""wrangler.toml / wrangler.jsonc / wrangler.json loading and validation."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from wrangler_compat.config._config import (
    COMPAT_FLAGS,
    DurableObjectBinding,
    Migration,
    RenamedClass,
    TransferredClass,
    WorkerConfig,
    find_config,
    flag_enabled,
    load_config,
)
from wrangler_compat.errors import ConfigError, ConfigWarning, WranglerCompatError

BASE = """\
name = "worker"
main = "src/worker.py"
compatibility_date = "2025-01-01"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def toml(tmp_path: Path, body: str = "") -> Path:
    return write(tmp_path, "wrangler.toml", BASE + textwrap.dedent(body))


# --- every key, every format --------------------------------------------------


def test_toml_file_gives_every_key(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        compatibility_flags = ["python_workers"]

        [vars]
        GREETING = "hello"
        LIMIT = 3

        [[durable_objects.bindings]]
        name = "COUNTER"
        class_name = "Counter"

        [[durable_objects.bindings]]
        name = "REMOTE"
        class_name = "Elsewhere"
        script_name = "other-worker"
        environment = "production"

        [[migrations]]
        tag = "v1"
        new_classes = ["Legacy"]
        new_sqlite_classes = ["Old", "Doomed"]

        [[migrations]]
        tag = "v2"
        renamed_classes = [{ from = "Old", to = "Counter" }]
        deleted_classes = ["Doomed"]
        transferred_classes = [{ from = "Room", from_script = "chat", to = "Lobby" }]
    """)
    config = load_config(path)
    assert config == WorkerConfig(
        name="worker",
        main="src/worker.py",
        compatibility_date="2025-01-01",
        compatibility_flags=("python_workers",),
        vars={"GREETING": "hello", "LIMIT": 3},
        durable_objects=config.durable_objects,
        migrations=(
            Migration(tag="v1", new_classes=("Legacy",), new_sqlite_classes=("Old", "Doomed")),
            Migration(
                tag="v2",
                renamed_classes=(RenamedClass(from_="Old", to="Counter"),),
                deleted_classes=("Doomed",),
                transferred_classes=(
                    TransferredClass(from_="Room", from_script="chat", to="Lobby"),
                ),
            ),
        ),
        env=None,
        config_path=path.resolve(),
        base_dir=tmp_path.resolve(),
    )
    assert config.durable_objects.bindings == (
        DurableObjectBinding(name="COUNTER", class_name="Counter"),
        DurableObjectBinding(name="REMOTE", class_name="Elsewhere", script_name="other-worker",
                             environment="production"),
    )
    assert config.own_bindings() == config.durable_objects.bindings[:1]


def test_jsonc_file_with_comments_and_trailing_commas_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.jsonc", """\
        // the counter worker
        {
          "name": "worker", /* inline */
          "main": "src/worker.py",
          "compatibility_date": "2025-01-01",
          "durable_objects": {
            "bindings": [
              {"name": "COUNTER", "class_name": "Counter",},
            ],
          },
          "migrations": [{"tag": "v1", "new_sqlite_classes": ["Counter"]},],
        }
    """)
    config = load_config(path)
    assert config.durable_objects.bindings == (
        DurableObjectBinding(name="COUNTER", class_name="Counter"),
    )
    assert config.migrations == (Migration(tag="v1", new_sqlite_classes=("Counter",)),)


def test_json_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.json", """\
        {"name": "worker", "main": "w.py", "compatibility_date": "2025-01-01",
         "vars": {"A": "1"}}
    """)
    config = load_config(path)
    assert (config.name, config.main, config.vars) == ("worker", "w.py", {"A": "1"})


def test_main_resolves_relative_to_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    toml(project)
    monkeypatch.chdir(tmp_path)
    config = load_config("project/wrangler.toml")
    assert config.main_path == project.resolve() / "src" / "worker.py"
    assert config.base_dir == project.resolve()


def test_load_config_accepts_the_directory_holding_the_file(tmp_path: Path) -> None:
    toml(tmp_path)
    assert load_config(tmp_path).config_path == (tmp_path / "wrangler.toml").resolve()


# --- finding the file ----------------------------------------------------------


def test_find_config_prefers_toml_then_jsonc_then_json(tmp_path: Path) -> None:
    write(tmp_path, "wrangler.json", "{}")
    assert find_config(tmp_path) == tmp_path / "wrangler.json"
    write(tmp_path, "wrangler.jsonc", "{}")
    with pytest.warns(ConfigWarning, match=exact(f"{tmp_path}: using wrangler.jsonc; ignoring wrangler.json")):
        assert find_config(tmp_path) == tmp_path / "wrangler.jsonc"
    write(tmp_path, "wrangler.toml", "")
    with pytest.warns(ConfigWarning, match=r"^.*: using wrangler\.toml; ignoring wrangler\.jsonc, wrangler\.json$"):
        assert find_config(tmp_path) == tmp_path / "wrangler.toml"


def test_find_config_names_the_directory_and_the_files_looked_for(tmp_path: Path) -> None:
    message = f"{tmp_path}: no wrangler configuration file (looked for wrangler.toml, wrangler.jsonc, wrangler.json)"
    with pytest.raises(ConfigError, match=exact(message)):
        find_config(tmp_path)


def test_config_errors_are_value_errors_under_the_package_root() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, WranglerCompatError)
    assert issubclass(ConfigWarning, UserWarning)


# --- syntax and type errors ---------------------------------------------------


def test_toml_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\nmain = \ncompatibility_date = "2025-01-01"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: line 2, column 8: syntax error: Invalid value")):
        load_config(path)


def test_jsonc_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.jsonc", '{\n  "name": "w",\n  "main": }\n')
    with pytest.raises(ConfigError, match=exact('wrangler.jsonc: line 3, column 11: syntax error: Unexpected "}"')):
        load_config(path)


def test_toml_error_at_end_of_file_names_the_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\nmain = "m"\nvars = [1,')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: line 3: syntax error: Invalid value at end of file")):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "wrangler.jsonc"
    with pytest.raises(ConfigError, match=exact(f"wrangler.jsonc: cannot read {path}: No such file or directory")):
        load_config(path)


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.json", '{"name": "a", "name": "b"}')
    with pytest.raises(ConfigError, match=exact('wrangler.json: syntax error: Duplicate key "name" found in object')):
        load_config(path)


def test_json_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.json", "[1, 2]")
    with pytest.raises(ConfigError, match=exact("wrangler.json: expected an object at the top level, got array")):
        load_config(path)


def test_wrong_type_names_the_key_path(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [[durable_objects.bindings]]
        name = "A"
        class_name = "A"

        [[durable_objects.bindings]]
        name = "B"
        class_name = 7
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[1].class_name: expected str, got int")):
        load_config(path)


def test_wrong_type_inside_a_migration_names_the_key_path(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [[migrations]]
        tag = "v1"
        renamed_classes = [{ from = 1, to = "B" }]
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: migrations[0].renamed_classes[0].from: expected str, got int")):
        load_config(path)


def test_list_where_a_string_belongs_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = ["w"]\nmain = "m"\ncompatibility_date = "2025-01-01"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: name: expected str, got array")):
        load_config(path)


def test_missing_required_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\ncompatibility_date = "2025-01-01"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: main: required key missing")):
        load_config(path)


def test_missing_binding_field_names_the_key_path(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [[durable_objects.bindings]]
        name = "COUNTER"
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[0].class_name: required key missing")):
        load_config(path)


def test_compatibility_date_must_be_a_real_date(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\nmain = "m"\ncompatibility_date = "2025-02-30"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: compatibility_date: expected YYYY-MM-DD, got '2025-02-30'")):
        load_config(path)


def test_unquoted_toml_date_is_a_type_error(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "w"\nmain = "m"\ncompatibility_date = 2025-01-01\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: compatibility_date: expected str, got date")):
        load_config(path)


def test_worker_name_with_spaces_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.toml", 'name = "my worker"\nmain = "m"\ncompatibility_date = "2025-01-01"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: name: expected letters, digits, '-' or '_', got 'my worker'")):
        load_config(path)


# --- tolerance: unknown keys ----------------------------------------------------


def test_each_unknown_key_warns_once_naming_its_path(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        colour = "blue"

        [[durable_objects.bindings]]
        name = "COUNTER"
        class_name = "Counter"
        clas_name = "typo"

        [[migrations]]
        tag = "v1"
        new_sqlite_classes = ["Counter"]
        new_sqlite_class = ["Typo"]
    """)
    with pytest.warns(ConfigWarning) as record:
        config = load_config(path)
    assert [str(w.message) for w in record] == [
        "wrangler.toml: colour: unknown key, ignored",
        "wrangler.toml: durable_objects.bindings[0].clas_name: unknown key, ignored",
        "wrangler.toml: migrations[0].new_sqlite_class: unknown key, ignored",
    ]
    assert all(w.filename == __file__ for w in record)
    assert config.durable_objects.bindings[0].class_name == "Counter"


def test_deploy_only_wrangler_keys_are_ignored_without_warning(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        "$schema" = "./node_modules/wrangler/config-schema.json"
        account_id = "abc"
        workers_dev = false
        routes = [{ pattern = "example.org/*", zone_name = "example.org" }]

        [observability]
        enabled = true
    """)
    assert load_config(path).name == "worker"


def test_binding_kinds_dohost_does_not_provide_warn_naming_binding_and_kind(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [[queues.producers]]
        binding = "JOBS"
        queue = "jobs"
    """)
    with pytest.warns(ConfigWarning, match=exact(
        "wrangler.toml: queues.producers[0]: queues binding 'JOBS' is not provided by dohost; env.JOBS raises when used"
    )):
        config = load_config(path)
    assert [(b.name, b.kind) for b in config.unsupported_bindings] == [("JOBS", "queues")]


# --- environments ---------------------------------------------------------------

ENVS = """
    compatibility_flags = ["python_workers"]

    [vars]
    STAGE = "top"

    [[durable_objects.bindings]]
    name = "COUNTER"
    class_name = "Counter"

    [[migrations]]
    tag = "v1"
    new_sqlite_classes = ["Counter", "Room"]

    [env.staging]
    main = "src/staging.py"
    vars = { STAGE = "staging" }
    durable_objects.bindings = [{ name = "ROOM", class_name = "Room" }]

    [env.production]
    name = "worker-prod"
    compatibility_date = "2026-03-01"
    vars = { STAGE = "production" }
    durable_objects.bindings = [{ name = "COUNTER", class_name = "Counter" }]
"""


def test_env_section_overrides_inheritable_keys(tmp_path: Path) -> None:
    config = load_config(toml(tmp_path, ENVS), env="staging")
    assert config.env == "staging"
    assert config.main == "src/staging.py"
    assert config.compatibility_date == "2025-01-01"  # inherited
    assert config.compatibility_flags == ("python_workers",)  # inherited
    assert config.migrations == (Migration(tag="v1", new_sqlite_classes=("Counter", "Room")),)
    assert config.vars == {"STAGE": "staging"}
    assert config.durable_objects.bindings == (DurableObjectBinding(name="ROOM", class_name="Room"),)


def test_env_without_a_name_is_the_worker_name_dash_env(tmp_path: Path) -> None:
    path = toml(tmp_path, ENVS)
    assert load_config(path, env="staging").name == "worker-staging"
    assert load_config(path, env="production").name == "worker-prod"
    assert load_config(path).name == "worker"


def test_env_does_not_inherit_vars_or_durable_objects(tmp_path: Path) -> None:
    path = toml(tmp_path, ENVS + '\n[env.bare]\nmain = "src/bare.py"\n')
    with pytest.warns(ConfigWarning) as record:
        config = load_config(path, env="bare")
    assert (config.vars, config.durable_objects.bindings) == ({}, ())
    assert [str(w.message) for w in record] == [
        "wrangler.toml: vars is set at the top level but not in env.bare; it is not inherited, so env.bare has none",
        "wrangler.toml: durable_objects is set at the top level but not in env.bare; it is not inherited, so env.bare has none",
    ]


def test_jsonc_env_section_applies_like_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.jsonc", """\
        {
          "name": "worker", "main": "w.py", "compatibility_date": "2025-01-01",
          "env": {
            // staging shares the top-level main
            "staging": {"vars": {"STAGE": "staging"},},
          },
        }
    """)
    config = load_config(path, env="staging")
    assert (config.name, config.main, config.vars) == ("worker-staging", "w.py", {"STAGE": "staging"})


def test_env_table_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "wrangler.json", '{"name": "w", "main": "m", "compatibility_date": "2025-01-01", "env": {"a": 1}}')
    with pytest.raises(ConfigError, match=exact("wrangler.json: env.a: expected object, got int")):
        load_config(path)


def test_unknown_env_is_an_error_naming_the_available_ones(tmp_path: Path) -> None:
    path = toml(tmp_path, ENVS)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: env 'prod' not found; available: 'staging', 'production'")):
        load_config(path, env="prod")
    with pytest.raises(ConfigError, match=exact("wrangler.toml: env 'prod' not found; available: none are defined")):
        load_config(toml(tmp_path), env="prod")


def test_wrong_type_inside_an_env_names_the_env_path(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [env.staging]
        durable_objects.bindings = [{ name = "A", class_name = false }]
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: env.staging.durable_objects.bindings[0].class_name: expected str, got bool")):
        load_config(path)  # every env is checked, selected or not


def test_env_binding_errors_point_into_the_env_section(tmp_path: Path) -> None:
    path = toml(tmp_path, ENVS + '\n[env.bad]\ndurable_objects.bindings = [{ name = "X", class_name = "Nope" }]\nvars = {}\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: env.bad.durable_objects.bindings[0].class_name: class 'Nope' has no migration creating it")):
        load_config(path, env="bad")


def test_unknown_key_inside_an_env_warns_with_the_env_path(tmp_path: Path) -> None:
    path = toml(tmp_path, '[env.staging]\nmian = "typo.py"\n')
    with pytest.warns(ConfigWarning, match=exact("wrangler.toml: env.staging.mian: unknown key, ignored")):
        load_config(path)


# --- bindings and migrations validation ------------------------------------------


def bindings_toml(tmp_path: Path, bindings: str, migrations: str = "") -> Path:
    return toml(tmp_path, bindings + migrations)


def test_binding_name_must_be_an_identifier(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[durable_objects.bindings]]\nname = "MY-NS"\nclass_name = "C"\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[0].name: expected an identifier, got 'MY-NS'")):
        load_config(path)


def test_binding_names_are_unique(tmp_path: Path) -> None:
    path = toml(tmp_path, 'durable_objects.bindings = [{ name = "A", class_name = "C" }, { name = "A", class_name = "D" }]\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[1].name: duplicate binding 'A' (also durable_objects.bindings[0].name)")):
        load_config(path)


def test_binding_name_may_not_repeat_a_var(tmp_path: Path) -> None:
    path = toml(tmp_path, 'vars = { A = "x" }\ndurable_objects.bindings = [{ name = "A", class_name = "C" }]\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[0].name: binding 'A' is also defined in vars")):
        load_config(path)


def test_bound_class_without_a_creating_migration_is_an_error(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        durable_objects.bindings = [{ name = "A", class_name = "Counter" }, { name = "B", class_name = "X" }]
        migrations = [{ tag = "v1", new_sqlite_classes = ["Counter"] }]
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[1].class_name: class 'X' has no migration creating it")):
        load_config(path)


def test_binding_to_a_class_of_another_script_needs_no_migration(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        durable_objects.bindings = [{ name = "A", class_name = "X", script_name = "other" }]
        migrations = [{ tag = "v1", new_sqlite_classes = ["Counter"] }]
    """)
    assert load_config(path).own_bindings() == ()


def test_without_any_migration_every_bound_class_is_accepted(tmp_path: Path) -> None:
    path = toml(tmp_path, 'durable_objects.bindings = [{ name = "A", class_name = "Counter" }]\n')
    assert load_config(path).migrations == ()


def test_binding_to_a_deleted_class_is_an_error(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        durable_objects.bindings = [{ name = "A", class_name = "Counter" }]
        migrations = [
          { tag = "v1", new_sqlite_classes = ["Counter"] },
          { tag = "v2", deleted_classes = ["Counter"] },
        ]
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[0].class_name: class 'Counter' was deleted by migration 'v2'")):
        load_config(path)


def test_binding_to_a_renamed_class_is_an_error_naming_the_new_name(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        durable_objects.bindings = [{ name = "A", class_name = "Counter" }]
        migrations = [
          { tag = "v1", new_sqlite_classes = ["Counter"] },
          { tag = "v2", renamed_classes = [{ from = "Counter", to = "Tally" }] },
        ]
    """)
    with pytest.raises(ConfigError, match=exact("wrangler.toml: durable_objects.bindings[0].class_name: class 'Counter' was renamed to 'Tally' by migration 'v2'")):
        load_config(path)


def test_class_created_again_after_deletion_may_be_bound(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        durable_objects.bindings = [{ name = "A", class_name = "Counter" }]
        migrations = [
          { tag = "v1", new_sqlite_classes = ["Counter"] },
          { tag = "v2", deleted_classes = ["Counter"] },
          { tag = "v3", new_sqlite_classes = ["Counter"] },
        ]
    """)
    assert len(load_config(path).migrations) == 3


def test_duplicate_migration_tags_are_an_error(tmp_path: Path) -> None:
    path = toml(tmp_path, 'migrations = [{ tag = "v1" }, { tag = "v2" }, { tag = "v1" }]\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: migrations[2].tag: duplicate tag 'v1' (also migrations[0].tag)")):
        load_config(path)


def test_migration_class_names_must_be_identifiers(tmp_path: Path) -> None:
    path = toml(tmp_path, 'migrations = [{ tag = "v1", new_sqlite_classes = ["my-class"] }]\n')
    with pytest.raises(ConfigError, match=exact("wrangler.toml: migrations[0].new_sqlite_classes[0]: expected a class name, got 'my-class'")):
        load_config(path)


# --- compatibility flags ----------------------------------------------------------


def config_with(tmp_path: Path, date: str, flags: list[str]) -> WorkerConfig:
    body = f'name = "w"\nmain = "m"\ncompatibility_date = "{date}"\ncompatibility_flags = {flags!r}\n'
    return load_config(write(tmp_path, "wrangler.toml", body.replace("'", '"')))


def test_delete_all_deletes_alarm_turns_on_at_its_documented_date(tmp_path: Path) -> None:
    assert COMPAT_FLAGS["delete_all_deletes_alarm"].default_on == "2026-02-24"
    assert not flag_enabled(config_with(tmp_path, "2026-02-23", []), "delete_all_deletes_alarm")
    assert flag_enabled(config_with(tmp_path, "2026-02-24", []), "delete_all_deletes_alarm")


def test_explicit_flag_wins_over_the_date(tmp_path: Path) -> None:
    early = config_with(tmp_path, "2024-01-01", ["delete_all_deletes_alarm"])
    assert flag_enabled(early, "delete_all_deletes_alarm")
    late = config_with(tmp_path, "2026-06-01", ["delete_all_preserves_alarm"])
    assert not flag_enabled(late, "delete_all_deletes_alarm")


def test_unlisted_flag_uses_no_prefix_opposite_and_the_given_date(tmp_path: Path) -> None:
    assert flag_enabled(config_with(tmp_path, "2025-01-01", []), "shiny", "2024-12-31")
    assert not flag_enabled(config_with(tmp_path, "2025-01-01", ["no_shiny"]), "shiny", "2024-12-31")
    assert not flag_enabled(config_with(tmp_path, "2030-01-01", []), "shiny")  # opt-in only
    assert flag_enabled(config_with(tmp_path, "2020-01-01", ["shiny"]), "shiny")


def test_contradicting_flags_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=exact("wrangler.toml: compatibility_flags: 'rpc' and 'no_rpc' contradict each other")):
        config_with(tmp_path, "2025-01-01", ["rpc", "no_rpc"])
