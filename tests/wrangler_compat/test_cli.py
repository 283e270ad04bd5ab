"""The ``dohost`` command line: help, version, usage errors and wrangler-file errors.

Error paths run ``main()`` in-process (they fail before anything is served);
one test runs the real console script to check the exit code and that a
user sees one line, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wrangler_compat.cli import build_parser, main

WORKER = """\
from workers import DurableObject, Response

class Thing(DurableObject):
    async def fetch(self, request):
        return Response("ok")
"""


def project(root: Path, wrangler: str, *, name: str = "wrangler.toml", worker: str = WORKER) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "worker.py").write_text(worker)
    path = root / name
    path.write_text(textwrap.dedent(wrangler))
    return path


GOOD = """\
name = "cli"
main = "src/worker.py"
compatibility_date = "2026-11-01"

[[durable_objects.bindings]]
name = "THING"
class_name = "Thing"
"""


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.startswith("dohost ") and out.split()[1][0].isdigit()


def test_help_lists_every_command_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    for command in ("dev", "serve", "deploy", "rollback"):
        assert command in out
    assert "examples:" in out and "dohost dev --config" in out and "dohost deploy --to" in out


@pytest.mark.parametrize("command", ["dev", "serve", "deploy", "rollback"])
def test_each_command_has_help_with_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run_main(capsys, command, "--help")
    assert code == 0 and "examples:" in out


def test_the_idle_timeout_flag_is_accepted_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["dev", "--idle-timeout", "0.5"])
    assert args.idle_timeout == 0.5
    _, out, _ = run_main(capsys, "dev", "--help")
    assert "--idle-timeout SECONDS" in out and "evict" in out


def test_a_malformed_toml_file_is_one_error_line_with_its_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(tmp_path, GOOD + '\n[vars\nGREETING = "hi"\n')
    code, _, err = run_main(capsys, "dev", "--config", str(config), "--persist-to", str(tmp_path / "s"))
    assert code == 2
    assert err.startswith("dohost: error: wrangler.toml: line 9, column ") and "syntax error" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_malformed_jsonc_file_is_reported_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path, '{\n  // a comment\n  "name": "cli",\n  "main": "src/worker.py",,\n}\n',
                     name="wrangler.jsonc")
    code, _, err = run_main(capsys, "dev", "--config", str(config), "--persist-to", str(tmp_path / "s"))
    assert code == 2 and err.startswith("dohost: error: wrangler.jsonc: line 4") and "Traceback" not in err


def test_a_wrong_type_is_reported_with_its_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path, GOOD.replace('class_name = "Thing"', "class_name = 7"))
    code, _, err = run_main(capsys, "dev", "--config", str(config), "--persist-to", str(tmp_path / "s"))
    assert code == 2
    assert err == "dohost: error: wrangler.toml: durable_objects.bindings[0].class_name: expected str, got int\n"


def test_a_folder_without_a_wrangler_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "dev", "--config", str(tmp_path))
    assert code == 2 and "no wrangler configuration file" in err and "Traceback" not in err


def test_serve_validates_its_config_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path / "p", "name = 3\n")
    code, _, err = run_main(capsys, "serve", "--data-dir", str(tmp_path / "d"), "--config", str(config))
    assert code == 2 and err.startswith("dohost: error: wrangler.toml: name: expected str, got int")


def test_deploy_checks_the_wrangler_file_before_uploading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path, "name = [\n")
    # Nothing listens on port 9; the config error must come first.
    code, _, err = run_main(capsys, "deploy", "--config", str(config), "--to", "http://127.0.0.1:9", "--token", "t")
    assert code == 2 and "wrangler.toml: line" in err


def test_a_var_without_a_colon_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "dev", "--var", "NOCOLON")
    assert code == 2 and "expected KEY:VALUE, got 'NOCOLON'" in err


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOHOST_TOKEN", raising=False)
    code, _, err = run_main(capsys, "serve", "--data-dir", str(tmp_path), "--listen", "0.0.0.0:0")
    assert code == 2 and "refusing to listen on 0.0.0.0 without a deploy token" in err


def test_serve_needs_a_data_dir(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOHOST_DATA_DIR", raising=False)
    code, _, err = run_main(capsys, "serve")
    assert code == 2 and "--data-dir is required" in err


def test_deploy_without_a_token_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOHOST_TOKEN", raising=False)
    code, _, err = run_main(capsys, "deploy", "--config", str(project(tmp_path, GOOD)), "--to", "http://127.0.0.1:9")
    assert code == 2 and "a token is required" in err


def test_deploy_to_a_server_that_is_not_there_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path, GOOD)
    code, _, err = run_main(capsys, "deploy", "--config", str(config), "--to", "http://127.0.0.1:9", "--token", "t")
    assert code == 1 and err.startswith("dohost: error: deploy: cannot reach http://127.0.0.1:9/__dohost/deploy")


def test_a_worker_that_fails_to_import_exits_1_showing_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project(tmp_path, GOOD, worker="raise RuntimeError('no import for you')\n")
    code, _, err = run_main(capsys, "dev", "--config", str(config), "--persist-to", str(tmp_path / "s"))
    assert code == 1 and "Traceback" in err and err.rstrip().endswith("RuntimeError: no import for you")


@pytest.mark.slow
def test_the_console_script_exits_2_on_a_malformed_file_without_a_traceback(tmp_path: Path) -> None:
    config = project(tmp_path, GOOD + "\n[[migrations]\n")
    script = Path(sys.executable).parent / "dohost"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    done = subprocess.run([*argv, "dev", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("dohost: error: wrangler.toml: line 9") and "Traceback" not in done.stderr
    assert not (tmp_path / ".dohost").exists()  # nothing was created


@pytest.mark.slow
def test_a_port_in_use_is_one_error_line_and_exit_code_1(tmp_path: Path) -> None:
    # A subprocess: hypercorn leaks the socket whose bind failed, which would
    # surface as a ResourceWarning in whichever test runs the next GC.
    import socket

    config = project(tmp_path, GOOD)
    script = Path(sys.executable).parent / "dohost"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "wrangler_compat.cli"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run([*argv, "dev", "--config", str(config), "--port", port,
                               "--persist-to", str(tmp_path / "s")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("dohost: error: dev: ") and "in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_pitr_retention_flag_takes_days_and_refuses_a_negative_number(capsys: pytest.CaptureFixture[str]) -> None:
    from wrangler_compat.cli._main import _non_negative

    assert build_parser().parse_args(["serve", "--pitr-retention", "0"]).pitr_retention == 0
    assert build_parser().parse_args(["dev", "--pitr-retention", "7"]).pitr_retention == 7
    with pytest.raises(Exception, match="days >= 0"):
        _non_negative("-1")
    _, out, _ = run_main(capsys, "dev", "--help")
    assert "--pitr-retention DAYS" in out
