"""dohost's pytest plugin: the ``dohost`` fixture, Cloudflare's ``cloudflare:test`` in Python.

Registered through the ``pytest11`` entry point ``dohost``, so installing
dohost is enough (``-p no:dohost`` turns it off). It does three things:

* puts dohost's ``workers`` and ``js`` modules into ``sys.modules`` before
  conftest files and test modules are imported, so tests import ``workers``
  as the Worker code does;
* provides the ``dohost`` fixture: a :class:`~wrangler_compat.testing._harness.Harness`
  over a fresh runtime per test, with fresh storage, torn down after the test;
* provides ``dohost_bindings``, which a suite without a wrangler file
  overrides to return ``{"COUNTER": Counter}``.

Where the project comes from, first match wins: the ``dohost_bindings``
fixture when it returns classes; ``--dohost-config PATH``; the
``dohost_config`` ini option (relative to the ini file); pytest's rootdir.
A path may name a wrangler file or the folder holding one; ``--dohost-env``
/ ``dohost_env`` pick a wrangler environment.

Cost model: the wrangler file is parsed and the user module imported once per
session and per config path (failures are remembered too, so a broken
project costs one import, not one per test). Per test only the data
directory, its migrations (stamped from the first test's, see
``ProjectSource.prepare``) and the runtime are new.

Storage location (ini ``dohost_storage_dir``): ``auto`` (default) puts each
test's data directory in a private folder on a RAM file system
(``/dev/shm``) when there is one, else in pytest's ``tmp_path``;
``tmp_path`` always uses pytest's ``tmp_path`` (kept by pytest's retention
policy, so the SQLite files of a failed test can be inspected); ``ram``
requires the RAM folder. Why RAM by default: a fresh SQLite file in WAL mode
costs about 16 ``fdatasync`` calls to create, commit and close, which is
tens of milliseconds per test on an ordinary disk and nothing on tmpfs, and
tests never need data to survive a power cut. A RAM folder is removed at
the end of its test (module: at the end of the session); the session's
folder is named after its PID, and folders of sessions that died are removed
by the next one.

The fixture is async: the test must be a trio test (``trio_mode = true`` in
the pytest configuration, or ``@pytest.mark.trio``); anything else is
refused with a message saying so, before any work is done.

Per-test options come from the ``dohost`` marker (closest wins):
``@pytest.mark.dohost(storage="module")`` shares one data directory among
the tests of a module (each test still gets a fresh runtime, so in-memory
state does not leak, but storage and pending alarms do: that is the point);
``idle_timeout=`` (seconds, default workerd's 10), ``alarm_jitter=`` (a
callable returning [0, 1) for the alarm retry backoff; default: no jitter, so
retries come at exact times; ``None``: Cloudflare's random jitter),
``max_resident=``; ``history=True`` keeps point-in-time history (default: none,
as in local workerd under ``cloudflare:test``, where ``getBookmarkForTime`` and
``onNextSessionRestoreBookmark`` fail with "does not implement"; keeping it costs
a history file per object and its archiving at close, ~1 ms a test).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Mapping

import pytest

from runtime import DEFAULT_IDLE_TIMEOUT as _DEFAULT_IDLE_TIMEOUT

from ._harness import Harness as Harness
from ._harness import PreparedProject, ProjectSource, no_jitter, open_harness
from ._harness import UnknownBindingError as UnknownBindingError
from ._harness import WebSocketClient as WebSocketClient
from ..config._config import load_config
from ..config._project import resolve_config_path
from ..errors import WranglerCompatError
from ..platform import install_modules

__all__ = ["Harness", "UnknownBindingError", "WebSocketClient", "dohost", "dohost_bindings"]

_RAM_ROOT = Path("/dev/shm")
_RAM_PREFIX = "dohost-pytest-"
_STORAGE_DIR_CHOICES = ("auto", "ram", "tmp_path")
_MARKER_DOC = (
    "dohost(storage='test'|'module', idle_timeout=10.0, alarm_jitter=callable|None, max_resident=10000,"
    " telemetry=None, history=False): options of the dohost fixture; storage='module' shares one data directory among a"
    " module's tests; alarm_jitter defaults to no jitter, None means Cloudflare's random jitter; telemetry"
    " receives metrics and traces (wrangler_compat.telemetry); history=True keeps point-in-time history"
    " (default off, as in local workerd)"
)


# ---------------------------------------------------------------- pytest hooks
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dohost", "dohost (Durable Objects tests)")
    group.addoption(
        "--dohost-config",
        dest="dohost_config",
        metavar="PATH",
        default=None,
        help="wrangler file (or folder holding one) for the dohost fixture; default: the rootdir",
    )
    group.addoption(
        "--dohost-env", dest="dohost_env", metavar="NAME", default=None, help="wrangler environment to use"
    )
    parser.addini("dohost_config", "wrangler file (or its folder) for the dohost fixture, relative to the ini file")
    parser.addini("dohost_env", "wrangler environment for the dohost fixture")
    parser.addini(
        "dohost_auxiliary_configs",
        "more Workers (wrangler files or folders, relative to the ini file) loaded beside the main one,"
        " for service bindings and script_name",
        type="linelist",
        default=[],
    )
    parser.addini(
        "dohost_storage_dir",
        "where each test's Durable Object storage lives: auto (RAM if available, else tmp_path), ram, tmp_path",
        default="auto",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Before the first conftest.py is imported.
    install_modules()
    known = early_config.known_args_namespace
    _expose_worker_folder(early_config, getattr(known, "dohost_config", None), getattr(known, "dohost_env", None))


def pytest_configure(config: pytest.Config) -> None:
    # Again, for sessions that loaded this plugin late (-p, pytester).
    install_modules()
    _expose_worker_folder(config, config.getoption("dohost_config", None), config.getoption("dohost_env", None))
    config.addinivalue_line("markers", _MARKER_DOC)
    config.stash[_SESSION] = _Session(config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Report a dohost test's failure as its one exception, not wrapped in trio's ExceptionGroup.

    pytest-trio runs the test in a nursery, and trio's strict exception
    groups wrap whatever it raises; with a single leaf the group only adds
    noise between the reader and the traceback from inside the object.
    """
    try:
        return (yield)
    except BaseExceptionGroup as group:
        leaf = _single_leaf(group) if "dohost" in getattr(item, "fixturenames", ()) else None
        if leaf is None:
            raise
    raise leaf  # outside the except block, so the group does not become its __context__


def _single_leaf(group: BaseExceptionGroup[Any]) -> BaseException | None:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


# -------------------------------------------------------------------- fixtures
@pytest.fixture
def dohost_bindings() -> Mapping[str, type] | None:
    """Durable Object classes to host instead of a wrangler project.

    Override it (in a conftest.py or a test module) to test classes without a
    wrangler file: ``return {"COUNTER": Counter}``. The default, ``None``,
    loads the wrangler project.
    """
    return None


class _Setup:
    __slots__ = ("prepared", "options")

    def __init__(self, prepared: PreparedProject, options: dict[str, Any]) -> None:
        self.prepared = prepared
        self.options = options


@pytest.fixture
def _dohost_setup(request: pytest.FixtureRequest, dohost_bindings: Mapping[str, type] | None) -> Iterator[_Setup]:
    """The synchronous half of ``dohost``: checks, project, data directory (errors here are ERRORs)."""
    session = request.config.stash[_SESSION]
    _require_trio(request)
    storage, options = _marker_options(request.node)
    source = session.source(dohost_bindings)
    data_dir, owned = session.data_dir(request, storage)
    try:
        try:
            prepared = source.prepare(data_dir)
        except WranglerCompatError as exc:
            pytest.fail(f"dohost: {exc}", pytrace=False)
        yield _Setup(prepared, options)
    finally:
        if owned:
            shutil.rmtree(data_dir, ignore_errors=True)


async def dohost(_dohost_setup: _Setup) -> AsyncIterator[Harness]:
    """A Durable Objects runtime for this test: ``env``, ``fetch`` and cloudflare:test's helpers.

    Fresh storage per test (see the ``dohost`` marker to share it within a
    module); the runtime is closed, and every object stopped, after the test.
    """
    async with open_harness(_dohost_setup.prepared, **_dohost_setup.options) as harness:
        yield harness


# pytest-trio runs fixtures flagged like this inside the test's trio.run
# (what ``pytest_trio.trio_fixture`` does), whether or not trio_mode is on;
# setting the flag ourselves keeps pytest-trio an optional import.
dohost._force_trio_fixture = True  # type: ignore[attr-defined]
dohost = pytest.fixture(dohost)


# ------------------------------------------------------------------- internals
def _config_location(config: pytest.Config, option: str | None) -> tuple[Path, str]:
    """The wrangler file or folder to load, and which setting named it."""
    if option:
        return (Path(config.invocation_params.dir) / option).resolve(), "--dohost-config"
    ini = config.getini("dohost_config")
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return (base / str(ini)).resolve(), "the dohost_config ini option"
    return config.rootpath, "pytest's rootdir"


def _env_name(config: pytest.Config, option: str | None) -> str | None:
    return option or config.getini("dohost_env") or None


def _expose_worker_folder(config: pytest.Config, option: str | None, env_option: str | None) -> None:
    """Put the folder of the Worker's ``main`` module on ``sys.path``, as the loader will.

    So test modules and conftest files can ``from worker import Counter`` and
    get the very module (and classes) the runtime hosts. Nothing is imported
    here, and a missing or broken wrangler file is silent: it is reported by
    the fixture, to the tests that use it.
    """
    location, _ = _config_location(config, option)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fixture reports them, under the user's filters
            worker = load_config(resolve_config_path(location), env=_env_name(config, env_option))
    except (WranglerCompatError, OSError, ValueError):
        return
    folder = str(worker.main_path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)  # where load_user_module puts it, so siblings resolve the same way


def _require_trio(request: pytest.FixtureRequest) -> None:
    if importlib.util.find_spec("pytest_trio") is None or not request.config.pluginmanager.has_plugin("trio"):
        pytest.fail(
            "dohost: the dohost fixture is async and runs under pytest-trio, which is not active:"
            " pip install pytest-trio (and do not disable it with -p no:trio)",
            pytrace=False,
        )
    if request.node.get_closest_marker("trio") is None:
        pytest.fail(
            f"dohost: {request.node.name} uses the async dohost fixture but is not a trio test:"
            " write it as `async def` and set `trio_mode = true` in your pytest configuration"
            " (or mark the test with @pytest.mark.trio)",
            pytrace=False,
        )


_MARKER_KEYS = ("storage", "idle_timeout", "alarm_jitter", "max_resident", "telemetry", "history")


def _marker_options(node: pytest.Item) -> tuple[str, dict[str, Any]]:
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers("dohost"))):  # farthest first: the closest wins
        if mark.args:
            pytest.fail(f"dohost: @pytest.mark.dohost takes keyword arguments only, got {mark.args!r}", pytrace=False)
        merged.update(mark.kwargs)
    unknown = sorted(set(merged) - set(_MARKER_KEYS))
    if unknown:
        pytest.fail(
            f"dohost: @pytest.mark.dohost: unknown option(s) {', '.join(unknown)}; expected {', '.join(_MARKER_KEYS)}",
            pytrace=False,
        )
    storage = merged.pop("storage", "test")
    if storage not in ("test", "module"):
        pytest.fail(f"dohost: @pytest.mark.dohost: storage: expected 'test' or 'module', got {storage!r}", pytrace=False)
    options: dict[str, Any] = {
        "idle_timeout": merged.get("idle_timeout", _DEFAULT_IDLE_TIMEOUT),
        "alarm_jitter": merged.get("alarm_jitter", no_jitter),
        "max_resident": merged.get("max_resident", 10_000),
        # A runtime.Telemetry (e.g. wrangler_compat.telemetry.build_telemetry(...)); default: none.
        "telemetry": merged.get("telemetry"),
        # CF: local workerd (cloudflare:test's host) keeps no point-in-time history.
        "history": merged.get("history", False),
    }
    if not isinstance(options["history"], bool):
        pytest.fail(f"dohost: @pytest.mark.dohost: history: expected True or False, got {options['history']!r}",
                    pytrace=False)
    jitter: Callable[[], float] | None = options["alarm_jitter"]
    if jitter is not None and not callable(jitter):
        pytest.fail(f"dohost: @pytest.mark.dohost: alarm_jitter: expected a callable or None, got {jitter!r}", pytrace=False)
    return storage, options


class _Session:
    """Per pytest session: loaded projects, the RAM folder, module-shared data directories."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._sources: dict[tuple[Path, str | None], ProjectSource | BaseException] = {}
        self._ram: Path | None = None
        self._module_dirs: dict[str, Path] = {}
        self._counter = itertools.count()

    def close(self) -> None:
        if self._ram is not None:
            shutil.rmtree(self._ram, ignore_errors=True)
            self._ram = None

    # -- the project -------------------------------------------------------
    def source(self, bindings: Mapping[str, type] | None) -> ProjectSource:
        if bindings is not None:
            try:
                return ProjectSource(bindings=bindings)
            except TypeError as exc:
                pytest.fail(f"dohost: {exc}", pytrace=False)
        location, origin = self._config_location()
        key = (location, self._env_name())
        cached = self._sources.get(key)
        if cached is None:
            try:
                cached = ProjectSource.load(location, env_name=key[1], auxiliary=self._auxiliary())
            except WranglerCompatError as exc:
                cached = _ProjectError(self._explain(exc, location, origin))
            except Exception as exc:  # the user's module failed to import: keep its traceback
                cached = exc
            self._sources[key] = cached
        if isinstance(cached, _ProjectError):
            pytest.fail(str(cached), pytrace=False)
        if isinstance(cached, BaseException):
            raise cached.with_traceback(cached.__traceback__)
        return cached

    def _config_location(self) -> tuple[Path, str]:
        return _config_location(self.config, self.config.getoption("dohost_config", None))

    def _auxiliary(self) -> list[Path]:
        base = self.config.inipath.parent if self.config.inipath is not None else self.config.rootpath
        return [(base / str(p)).resolve() for p in self.config.getini("dohost_auxiliary_configs")]

    def _env_name(self) -> str | None:
        return _env_name(self.config, self.config.getoption("dohost_env", None))

    @staticmethod
    def _explain(exc: WranglerCompatError, location: Path, origin: str) -> str:
        message = f"dohost: {exc}"
        if not location.exists():
            message = f"dohost: {location} (from {origin}) does not exist"
        if "no wrangler configuration file" in str(exc) or not location.exists():
            message += (
                f"\nThe dohost fixture looked for the project in {location} ({origin})."
                " Point it at your wrangler file with the `dohost_config` ini option or --dohost-config,"
                " or override the `dohost_bindings` fixture to return {'BINDING': DurableObjectClass}."
            )
        return message

    # -- storage -----------------------------------------------------------
    def data_dir(self, request: pytest.FixtureRequest, storage: str) -> tuple[Path, bool]:
        """A data directory for this test, and whether the test owns it (removes it afterwards)."""
        where = str(self.config.getini("dohost_storage_dir") or "auto").strip()
        if where not in _STORAGE_DIR_CHOICES:
            pytest.fail(
                f"dohost: dohost_storage_dir: expected one of {', '.join(_STORAGE_DIR_CHOICES)}, got {where!r}",
                pytrace=False,
            )
        ram = self._ram_root(required=where == "ram") if where != "tmp_path" else None
        if storage == "module":
            module = request.node.nodeid.split("::", 1)[0]
            path = self._module_dirs.get(module)
            if path is None:
                label = _slug(Path(module).stem)
                if ram is not None:
                    path = ram / f"m{next(self._counter)}-{label}"
                    path.mkdir()
                else:
                    path = request.getfixturevalue("tmp_path_factory").mktemp(f"dohost-{label}")
                self._module_dirs[module] = path
            return path, False
        if ram is not None:
            path = ram / f"t{next(self._counter)}"
            path.mkdir()
            return path, True
        return request.getfixturevalue("tmp_path") / "dohost", False

    def _ram_root(self, *, required: bool) -> Path | None:
        if self._ram is None:
            if not (_RAM_ROOT.is_dir() and os.access(_RAM_ROOT, os.W_OK | os.X_OK)):
                if required:
                    pytest.fail(f"dohost: dohost_storage_dir = ram, but {_RAM_ROOT} is not a writable folder", pytrace=False)
                return None
            _remove_orphans(_RAM_ROOT)
            self._ram = Path(tempfile.mkdtemp(prefix=f"{_RAM_PREFIX}{os.getpid()}-", dir=_RAM_ROOT))
        return self._ram


def _remove_orphans(root: Path) -> None:
    """Remove the RAM folders of sessions that died without cleaning up (RAM is precious)."""
    for path in root.glob(f"{_RAM_PREFIX}*"):
        pid = path.name[len(_RAM_PREFIX):].partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, or someone else's


class _ProjectError(Exception):
    """A project that cannot be loaded, remembered so every test reports the same message."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40] or "module"


_SESSION = pytest.StashKey[_Session]()
