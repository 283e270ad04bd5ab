"""Building and running the Dockerfile with podman, where no registry is reachable.

What this owns:

* :func:`podman_ready` installs podman, runc and debootstrap from Debian's
  packages (idempotently; a clear failure if it can't) and checks the engine
  starts a container.
* :func:`ensure_base` provides the image the Dockerfile's ``FROM`` names
  (``debian:<suite>-slim``): if the engine already has it (pulled, or built by an
  earlier run), nothing happens; else it is loaded from the cache folder
  ``~/.cache/dohost-tests/container-base-<suite>-<hash>.tar``; else it is built
  with ``debootstrap --variant=minbase`` from Debian's packages, imported under
  that name, and saved to the cache. The hash covers the recipe, so a changed
  recipe builds a new base.
* :func:`ensure_wheels` downloads the project's dependencies (and its build
  backend) as wheels for the image's Python into the cache, because pip inside
  the build may not reach the package index (here TLS goes through a proxy whose
  CA the image doesn't trust); the build installs from them with pip's own
  ``PIP_NO_INDEX``/``PIP_FIND_LINKS`` build arguments.
* :func:`build_image` builds the Dockerfile from the checkout (its
  ``.dockerignore`` applies) in Docker's format, so HEALTHCHECK is kept.

Engine flags, and why: ``--runtime runc`` and ``--cgroup-manager cgroupfs``
because crun refuses hybrid cgroup hierarchies (as on this CI's VM) and there is
no systemd; explicit ``--ulimit``s no higher than the caller's, because the
engine's default raises them, which a sandbox without CAP_SYS_RESOURCE refuses;
``--network=host`` for the build's ``apt-get`` because a VM may have no bridge.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from _e2e_support import REPO, dockerfile_instructions

CACHE = Path(os.environ.get("DOHOST_TEST_CACHE", Path.home() / ".cache" / "dohost-tests"))
DEBIAN_MIRROR = os.environ.get("DOHOST_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: Bumped when the base recipe below changes in a way the hash can't see.
BASE_RECIPE_VERSION = "1"
BASE_LABEL = "dohost.test-base-recipe"
#: The Python of Debian's base (bookworm: 3.11), for the wheels' tags.
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}
DEBIAN_PACKAGES = ("podman", "runc", "debootstrap", "uidmap")


class ContainerSetupError(RuntimeError):
    """The container engine or the base image could not be provided (never skipped silently)."""


def _run(argv: list[str], *, timeout: float, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, input=input, check=False)
    return subprocess.CompletedProcess(
        argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def _check(argv: list[str], *, timeout: float, what: str) -> str:
    done = _run(argv, timeout=timeout)
    if done.returncode != 0:
        raise ContainerSetupError(f"{what} failed ({' '.join(argv)}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def limits_flags() -> list[str]:
    """``--ulimit``s the engine may set: the caller's own soft limits, capped."""
    flags = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, _hard = resource.getrlimit(limit)
        value = 4096 if soft == resource.RLIM_INFINITY else min(soft, 4096)
        flags += ["--ulimit", f"{name}={value}:{value}"]
    return flags


@contextmanager
def setup_lock() -> Iterator[None]:
    """One set-up at a time on this machine (runs in several checkouts share the cache and the engine)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "container-setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def checkout_tag() -> str:
    """The image's tag for this checkout, so checkouts don't replace each other's image."""
    return "localhost/dohost-test:" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12]


def podman_argv(*args: str) -> list[str]:
    """``podman ARGS`` with the engine flags this module's docstring explains."""
    return ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args]


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return _run(podman_argv(*args), timeout=timeout)


def podman_ok(*args: str, timeout: float = 60, what: str = "podman") -> str:
    done = podman(*args, timeout=timeout)
    if done.returncode != 0:
        raise ContainerSetupError(f"{what} failed (podman {' '.join(args)}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def podman_ready() -> None:
    """podman, runc and debootstrap installed (from Debian's packages if missing)."""
    missing = [p for p in ("podman", "runc", "debootstrap") if shutil.which(p) is None]
    if missing:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise ContainerSetupError(
                f"the image test needs {', '.join(missing)}: install Debian's packages "
                f"{' '.join(DEBIAN_PACKAGES)} (apt-get as root), then run it again"
            )
        env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        done = _run([*env_prefix, "apt-get", "install", "-y", "-q", *lock, *DEBIAN_PACKAGES], timeout=900)
        if done.returncode != 0:
            _check([*env_prefix, "apt-get", "update", "-q", *lock], timeout=600, what="apt-get update")
            _check([*env_prefix, "apt-get", "install", "-y", "-q", *lock, *DEBIAN_PACKAGES],
                   timeout=900, what="installing " + " ".join(DEBIAN_PACKAGES))


def base_image() -> tuple[str, str]:
    """The Dockerfile's base as (fully qualified name, Debian suite)."""
    (base,) = [args for k, args in dockerfile_instructions() if k == "FROM"]
    repo, _, tag = base.partition(":")
    suite = tag.removesuffix("-slim")
    if repo != "debian" or not tag.endswith("-slim") or suite not in DEBIAN_PYTHON:
        raise ContainerSetupError(f"Dockerfile: FROM {base}: the test can only build debian:<suite>-slim bases")
    return f"docker.io/library/debian:{tag}", suite


def _base_recipe_hash(suite: str) -> str:
    recipe = f"{BASE_RECIPE_VERSION} {suite} minbase {DEBIAN_MIRROR} {platform.machine()}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def ensure_base() -> str:
    """The Dockerfile's base image present in the engine; returns how it got there."""
    name, suite = base_image()
    recipe = _base_recipe_hash(suite)
    if podman("image", "exists", name).returncode == 0:
        label = podman_ok("image", "inspect", "--format", f'{{{{index .Labels "{BASE_LABEL}"}}}}', name).strip()
        if label in ("", "<no value>", recipe):  # pulled from a registry, or ours and current
            return "present"
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"container-base-{suite}-{recipe}.tar"
    if tar.exists():
        podman_ok("load", "-i", str(tar), timeout=300, what=f"loading the cached base {tar}")
        return "loaded from cache"
    with tempfile.TemporaryDirectory(prefix="dohost-base-", dir=CACHE) as scratch:
        root = Path(scratch) / "root"
        _check(["debootstrap", "--variant=minbase", suite, str(root), DEBIAN_MIRROR],
               timeout=1200, what=f"debootstrap of Debian {suite}")
        # As in Debian's official image: no package lists or caches kept.
        shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
        for leftover in (root / "var" / "cache" / "apt").glob("*.bin"):
            leftover.unlink()
        packed = subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."],
                                capture_output=True, timeout=300, check=False)
        if packed.returncode != 0:
            raise ContainerSetupError(f"packing the base failed:\n{packed.stderr.decode(errors='replace')}")
        done = _run(["podman", "import", "--change", f"LABEL {BASE_LABEL}={recipe}",
                     "--change", 'CMD ["bash"]', "-", name], timeout=300, input=packed.stdout)
        if done.returncode != 0:
            raise ContainerSetupError(f"podman import of the base failed:\n{done.stderr}")
        partial = tar.with_suffix(".partial")
        podman_ok("save", "-o", str(partial), name, timeout=300, what="saving the base to the cache")
        partial.rename(tar)
    return "built with debootstrap"


def ensure_wheels() -> Path:
    """The project's dependencies and build backend as wheels for the image's Python."""
    _name, suite = base_image()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [*pyproject["build-system"]["requires"], *pyproject["project"]["dependencies"]]
    python = DEBIAN_PYTHON[suite]
    machine = platform.machine()
    key = hashlib.sha256(f"{python} {machine} {sorted(requirements)}".encode()).hexdigest()[:16]
    wheels = CACHE / f"container-wheels-{key}"
    if (wheels / ".complete").exists():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    abi = "cp" + python.replace(".", "")
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in (36, 34, 31, 28, 17)]
    platforms.append(f"manylinux2014_{machine}")
    _check([sys.executable, "-m", "pip", "download", "-q", "--dest", str(wheels), "--only-binary=:all:",
            "--python-version", python, "--implementation", "cp", "--abi", abi,
            *[f"--platform={p}" for p in platforms], *requirements],
           timeout=600, what="downloading the image's wheels")
    (wheels / ".complete").write_text("")
    return wheels


def build_image(tag: str, wheels: Path) -> None:
    """``podman build`` of the checkout's Dockerfile, installing from ``wheels``.

    Layers are kept, so an unchanged checkout rebuilds from the engine's cache;
    the image this replaces under ``tag`` is removed.
    """
    before = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    podman_ok("build", "--format", "docker", "--pull=never", "--network=host", *limits_flags(),
              "-v", f"{wheels}:/wheels:ro", "--build-arg", "PIP_NO_INDEX=1",
              "--build-arg", "PIP_FIND_LINKS=/wheels", "-t", tag, str(REPO),
              timeout=900, what="building the Dockerfile")
    after = podman_ok("image", "inspect", "--format", "{{.Id}}", tag).strip()
    if before and before != after:
        podman("rmi", before)  # best effort: another tag may still hold it
