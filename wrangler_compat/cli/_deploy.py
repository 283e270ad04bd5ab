"""Deployed versions: the archive format, the store under ``DATA_DIR/deploys``, and the client.

``dohost deploy`` packs the project -- the wrangler file and every ``.py``
file under its folder (:func:`project_files`) -- into a gzipped tar and
POSTs it to a running ``dohost serve``. The server keeps each version:

    DATA_DIR/deploys/<n>/files/...    the project as uploaded
    DATA_DIR/deploys/<n>/meta.json    :class:`VersionMeta` (previous version, env, hash)
    DATA_DIR/deploys/current          {"version": n}, replaced atomically

Guarantees: an archive is checked member by member before anything is
written (regular files only, relative paths without ``..``, bounded count and
size); a version folder is complete before ``current`` can point at it, and
``current`` only changes after the new code is serving. A failed upload
leaves no folder behind.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

from ..config._config import find_config
from ..config._loading import forget_modules_under, project_files
from ..errors import ConfigError, WranglerCompatError

__all__ = [
    "DeployError",
    "DeployStore",
    "VersionMeta",
    "pack_project",
    "unpack_archive",
    "deploy_to",
    "rollback_to",
    "MAX_ARCHIVE_BYTES",
]

MAX_ARCHIVE_BYTES = 32 * 1024 * 1024
MAX_FILES = 5000
MAX_UNPACKED_BYTES = 128 * 1024 * 1024


class DeployError(WranglerCompatError):
    """A deploy or rollback was refused; nothing changed. The message says why."""


class VersionMeta(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    previous: int | None
    created: str
    env: str | None
    config: str  # the wrangler file, relative to files/
    sha256: str
    files: int


# --- the archive ----------------------------------------------------------------


def pack_project(config_path: Path) -> bytes:
    """The project of ``config_path`` as a gzipped tar, paths relative to its folder."""
    config_path = config_path.resolve()
    root = config_path.parent
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in project_files(root, config_path):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, int(path.stat().st_mtime)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts) or "\\" in name:
        raise DeployError(f"upload: {name!r}: expected a relative path inside the project")
    return path


def unpack_archive(data: bytes, dest: Path) -> int:
    """Extract a :func:`pack_project` archive into ``dest``; returns the file count."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DeployError(f"upload: expected a gzipped tar archive ({exc})") from None
    count = total = 0
    with tar:
        try:
            for member in tar:
                if member.isdir():
                    continue
                path = _member_path(member.name)
                if not member.isfile():
                    raise DeployError(f"upload: {member.name!r}: only regular files are accepted")
                count, total = count + 1, total + member.size
                if count > MAX_FILES or total > MAX_UNPACKED_BYTES:
                    raise DeployError(
                        f"upload: more than {MAX_FILES} files or {MAX_UNPACKED_BYTES} bytes; is this a project folder?"
                    )
                target = dest.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source:
                    target.write_bytes(source.read())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DeployError(f"upload: damaged archive ({exc})") from None
    if count == 0:
        raise DeployError("upload: the archive is empty")
    return count


# --- the store ------------------------------------------------------------------


class DeployStore:
    """Versions under ``root`` (``DATA_DIR/deploys``); see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def current(self) -> int | None:
        try:
            return int(json.loads((self.root / "current").read_text())["version"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise DeployError(f"{self.root / 'current'}: unreadable ({exc})") from None

    def set_current(self, version: int) -> None:
        """Point ``current`` at ``version``: temp file, fsync, rename, fsync the folder."""
        tmp = self.root / ".current.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"version": version}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "current")
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def files(self, version: int) -> Path:
        return self.root / str(version) / "files"

    def meta(self, version: int) -> VersionMeta:
        try:
            return msgspec.json.decode((self.root / str(version) / "meta.json").read_bytes(), type=VersionMeta)
        except FileNotFoundError:
            raise DeployError(f"no deployed version {version}") from None
        except msgspec.DecodeError as exc:
            raise DeployError(f"deployed version {version}: unreadable meta.json ({exc})") from None

    def config_path(self, version: int) -> Path:
        return self.files(version) / self.meta(version).config

    def versions(self) -> list[VersionMeta]:
        if not self.root.is_dir():
            return []
        numbers = sorted(int(p.name) for p in self.root.iterdir() if p.name.isdigit())
        return [self.meta(n) for n in numbers if (self.root / str(n) / "meta.json").exists()]

    def stage(self, data: bytes, env: str | None) -> VersionMeta:
        """Store an upload as the next version (not current yet). Raises, leaving nothing, if it is bad."""
        self.root.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name) for p in self.root.iterdir() if p.name.isdigit()]
        version = max(existing, default=0) + 1
        folder = self.root / str(version)
        folder.mkdir()
        try:
            count = unpack_archive(data, folder / "files")
            try:
                config = find_config(folder / "files").name
            except ConfigError as exc:
                raise DeployError(f"upload: {str(exc).split(': ', 1)[-1]}") from None
            meta = VersionMeta(
                version=version,
                previous=self.current(),
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                env=env,
                config=config,
                sha256=hashlib.sha256(data).hexdigest(),
                files=count,
            )
            (folder / "meta.json").write_bytes(msgspec.json.encode(meta))
            return meta
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def discard(self, version: int) -> None:
        """Remove a staged version that never became current."""
        forget_modules_under(self.files(version))
        shutil.rmtree(self.root / str(version), ignore_errors=True)


# --- the client -----------------------------------------------------------------


def _call(url: str, token: str, data: bytes | None, content_type: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=data if data is not None else b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type, "User-Agent": "dohost-cli"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            message = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            message = body.decode("utf-8", "replace").strip() or exc.reason
        raise DeployError(f"{exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeployError(f"cannot reach {url}: {reason}") from None


def _query(**params: Any) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return "?" + urllib.parse.urlencode(given) if given else ""


def deploy_to(base_url: str, token: str, config_path: Path, env: str | None = None,
              name: str | None = None) -> dict[str, Any]:
    """Upload the project of ``config_path`` to a ``dohost serve`` at ``base_url`` (as Worker ``name``)."""
    archive = pack_project(config_path)
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise DeployError(f"the project archive is {len(archive)} bytes; the limit is {MAX_ARCHIVE_BYTES}")
    query = _query(env=env or None, name=name)
    return _call(base_url.rstrip("/") + "/__dohost/deploy" + query, token, archive, "application/gzip")


def rollback_to(base_url: str, token: str, version: int | None = None, name: str | None = None) -> dict[str, Any]:
    """Ask a ``dohost serve`` to run its previous version again (or ``version``) of its main Worker or ``name``."""
    query = _query(version=version, name=name)
    return _call(base_url.rstrip("/") + "/__dohost/rollback" + query, token, None, "application/json")
