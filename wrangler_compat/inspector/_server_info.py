"""Finding the server that holds a data directory: ``<data_dir>/dohost-server.json``.

``dohost dev`` and ``dohost serve`` write it once they listen and remove it
when they stop; ``dohost do`` reads it to send its work through that server
(whose objects' files are locked) instead of opening the files itself. A
file left by a server that died is recognised by its process ID and ignored.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Literal

import msgspec

__all__ = ["SERVER_INFO_FILE", "ServerInfo", "read_server_info", "server_info_file", "write_server_info"]

SERVER_INFO_FILE = "dohost-server.json"


class ServerInfo(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    pid: int
    kind: Literal["dev", "serve"]
    #: ``serve`` wants its token on every inspector/API request.
    token_required: bool = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_server_info(data_dir: Path) -> ServerInfo | None:
    """The running server of ``data_dir``, or None (none, or it died)."""
    try:
        info = msgspec.json.decode((data_dir / SERVER_INFO_FILE).read_bytes(), type=ServerInfo)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return info if _alive(info.pid) else None


@contextlib.contextmanager
def server_info_file(data_dir: Path) -> Iterator[None]:
    """Remove the file on exit if this process wrote it (:func:`write_server_info` writes it)."""
    path = data_dir / SERVER_INFO_FILE
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
            mine = msgspec.json.decode(path.read_bytes(), type=ServerInfo)
            if mine.pid == os.getpid():
                path.unlink()


def write_server_info(data_dir: Path, info: ServerInfo) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{SERVER_INFO_FILE}.{os.getpid()}"
    tmp.write_bytes(msgspec.json.encode(info))
    os.replace(tmp, data_dir / SERVER_INFO_FILE)
