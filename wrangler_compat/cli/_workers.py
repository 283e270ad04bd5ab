"""Several Workers on one server: which Worker a request goes to.

``dohost serve`` runs the main Worker (``dohost deploy`` without ``--name``,
or ``--config``) and every Worker deployed by name (``dohost deploy --name
sync``) side by side in one runtime, each with its own ``env``; a
``script_name`` or service binding in one reaches the others.

A request picks its Worker as on Cloudflare, by the ``route``/``routes`` of
each Worker's wrangler file (custom domains included): a pattern is
``host/path`` where the host may start with ``*`` (any subdomain, or any
host with a bare ``*``) and the path may end with ``*`` (a prefix); the
scheme is ignored; the request's ``Host`` header (port dropped) and path are
matched. The most specific matching pattern wins (a longer host without a
wildcard, then a longer path), as Cloudflare documents. A request no route
matches goes to the default Worker: the main one, else the first Worker
deployed by name in alphabetical order.
# CF: https://developers.cloudflare.com/workers/configuration/routing/routes/ (matching behaviour)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

import msgspec

from runtime import Runtime, call_worker

from ..config._config import _parse
from ..errors import ConfigError

__all__ = ["Route", "read_routes", "WorkerRouter"]


class Route(msgspec.Struct, frozen=True, kw_only=True):
    worker: str
    pattern: str
    host: str
    path: str

    def matches(self, host: str, path: str) -> bool:
        if self.host == "*":
            pass
        elif self.host.startswith("*"):
            if not (host == self.host[1:].lstrip(".") or host.endswith(self.host[1:])):
                return False
        elif host != self.host:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def specificity(self) -> tuple[int, int, int]:
        return (0 if self.host.startswith("*") else 1, len(self.host), len(self.path))


def _route(worker: str, pattern: str, where: str) -> Route:
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: expected a route pattern such as 'example.com/*', got {pattern!r}")
    text = pattern.split("://", 1)[-1]
    host, slash, path = text.partition("/")
    return Route(worker=worker, pattern=pattern, host=host.lower(), path="/" + path if slash else "/*")


def read_routes(config_path: Path, worker: str, env: str | None) -> list[Route]:
    """The ``route``/``routes`` of a wrangler file (of ``[env.<env>]`` when given)."""
    raw = _parse(config_path, config_path.name)
    section = raw
    if env is not None:
        section = (raw.get("env") or {}).get(env) or {}
    entries: list[Any] = []
    if section.get("route") is not None:
        entries.append(section["route"])
    entries += list(section.get("routes") or [])
    out = []
    for i, entry in enumerate(entries):
        where = f"{config_path.name}: routes[{i}]"
        if isinstance(entry, dict):
            entry = entry.get("pattern")
            if entry is not None and "/" not in entry.split("://", 1)[-1]:
                entry = f"{entry}/*"  # a custom domain: the whole host
        out.append(_route(worker, entry, where))
    return out


class WorkerRouter:
    """The runtime's entrypoint when several Workers are loaded; routes each request (a runtime resource)."""

    def __init__(self, routes: Sequence[Route], entrypoints: dict[str | None, Any], names: dict[str | None, str],
                 default: str | None) -> None:
        # Most specific first, so the first match is the winner.
        self.routes = sorted(routes, key=lambda r: r.specificity(), reverse=True)
        #: Entrypoint by env key (None: the runtime's main Worker), and the Worker name of each key.
        self._entrypoints = entrypoints
        self._keys = {name: key for key, name in names.items()}
        self.default = default
        self._rt: Runtime | None = None

    def attach(self, runtime: Runtime) -> None:
        self._rt = runtime

    def close(self) -> None:
        self._rt = None

    def pick(self, url: str, host_header: str | None) -> str | None:
        """The Worker key (``None``: the main Worker) for a request."""
        parts = urlsplit(url)
        host = (host_header or parts.netloc).rsplit("@", 1)[-1]
        host = host.split(":", 1)[0].lower() if not host.startswith("[") else host.lower()
        for route in self.routes:
            if route.matches(host, parts.path or "/"):
                return self._keys[route.worker]
        return self._keys[self.default] if self.default is not None else None

    async def __call__(self, request: Any) -> Any:
        assert self._rt is not None, "the router was not attached to a runtime"
        key = self.pick(request.url, request.headers.get("host"))
        return await call_worker(self._rt, key, self._entrypoints[key], "fetch", (request,), {})
