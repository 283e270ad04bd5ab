"""``URL`` and ``URLSearchParams`` with the WHATWG names Python Workers code calls through ``js``.

Parsing is :mod:`urllib.parse` (what the SDK's own WSGI adapter uses for the
same job); the attribute names follow the URL standard: ``href``,
``protocol`` (with its colon), ``host``, ``hostname``, ``port``,
``pathname``, ``search`` (with its ``?``), ``hash``, ``origin``,
``searchParams``.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

__all__ = ["URL", "URLSearchParams"]


class URLSearchParams:
    """Ordered query parameters: ``get``, ``getAll``, ``has``, ``set``, ``append``, ``delete``, ``toString``."""

    def __init__(self, init: str | Mapping[str, Any] | Iterable[Any] | URLSearchParams | None = None) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._url: URL | None = None
        if init is None:
            return
        if isinstance(init, URLSearchParams):
            self._pairs = list(init._pairs)
        elif isinstance(init, str):
            self._pairs = parse_qsl(init.removeprefix("?"), keep_blank_values=True)
        elif isinstance(init, Mapping):
            self._pairs = [(str(k), str(v)) for k, v in init.items()]
        else:
            pairs: Iterable[Any] = init
            self._pairs = [(str(k), str(v)) for k, v in pairs]

    @classmethod
    def new(cls, init: Any = None) -> URLSearchParams:
        return cls(init)

    def _changed(self) -> None:
        if self._url is not None:
            self._url._set_query(self.toString())

    def get(self, name: str) -> str | None:
        for k, v in self._pairs:
            if k == name:
                return v
        return None

    def getAll(self, name: str) -> list[str]:
        return [v for k, v in self._pairs if k == name]

    get_all = getAll

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self._pairs)

    def append(self, name: str, value: Any) -> None:
        self._pairs.append((str(name), str(value)))
        self._changed()

    def set(self, name: str, value: Any) -> None:
        kept = [(k, v) for k, v in self._pairs if k != name]
        index = next((i for i, (k, _) in enumerate(self._pairs) if k == name), len(kept))
        kept.insert(min(index, len(kept)), (str(name), str(value)))
        self._pairs = kept
        self._changed()

    def delete(self, name: str) -> None:
        self._pairs = [(k, v) for k, v in self._pairs if k != name]
        self._changed()

    def sort(self) -> None:
        self._pairs.sort(key=lambda kv: kv[0])
        self._changed()

    def keys(self) -> Iterator[str]:
        return (k for k, _ in self._pairs)

    def values(self) -> Iterator[str]:
        return (v for _, v in self._pairs)

    def entries(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._pairs))

    items = entries

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self.entries()

    def __len__(self) -> int:
        return len(self._pairs)

    @property
    def size(self) -> int:
        return len(self._pairs)

    def toString(self) -> str:
        return urlencode(self._pairs)

    def __str__(self) -> str:
        return self.toString()

    def __repr__(self) -> str:
        return f"URLSearchParams({self.toString()!r})"


class URL:
    """An absolute URL: ``URL(url, base=None)`` / ``URL.new(url)``; ``str(url)`` is ``href``."""

    def __init__(self, url: str | URL, base: str | URL | None = None) -> None:
        text = str(url)
        if base is not None:
            text = urljoin(str(base), text)
        parts = urlsplit(text)
        if not parts.scheme or (parts.scheme in ("http", "https", "ws", "wss") and not parts.netloc):
            raise TypeError(f"Invalid URL string: {text}")  # CF: JS TypeError for an unparsable URL
        self._parts = parts._replace(path=parts.path or ("/" if parts.netloc else ""))
        self._params: URLSearchParams | None = None

    @classmethod
    def new(cls, url: str | URL, base: str | URL | None = None) -> URL:
        return cls(url, base)

    @staticmethod
    def canParse(url: str, base: str | None = None) -> bool:
        try:
            URL(url, base)
        except (TypeError, ValueError):
            return False
        return True

    def _set_query(self, query: str) -> None:
        self._parts = self._parts._replace(query=query)

    @property
    def href(self) -> str:
        return urlunsplit(self._parts)

    @property
    def protocol(self) -> str:
        return self._parts.scheme + ":"

    @property
    def host(self) -> str:
        return self._parts.netloc.rpartition("@")[2]

    @property
    def hostname(self) -> str:
        return self._parts.hostname or ""

    @property
    def port(self) -> str:
        return "" if self._parts.port is None else str(self._parts.port)

    @property
    def pathname(self) -> str:
        return self._parts.path

    @pathname.setter
    def pathname(self, value: str) -> None:
        self._parts = self._parts._replace(path=value if value.startswith("/") else "/" + value)

    @property
    def search(self) -> str:
        return "?" + self._parts.query if self._parts.query else ""

    @search.setter
    def search(self, value: str) -> None:
        self._set_query(value.removeprefix("?"))
        self._params = None

    @property
    def hash(self) -> str:
        return "#" + self._parts.fragment if self._parts.fragment else ""

    @property
    def origin(self) -> str:
        return f"{self._parts.scheme}://{self.host}"

    @property
    def username(self) -> str:
        return self._parts.username or ""

    @property
    def password(self) -> str:
        return self._parts.password or ""

    @property
    def searchParams(self) -> URLSearchParams:
        if self._params is None:
            self._params = URLSearchParams(self._parts.query)
            self._params._url = self
        return self._params

    search_params = searchParams

    def toString(self) -> str:
        return self.href

    toJSON = toString

    def __str__(self) -> str:
        return self.href

    def __repr__(self) -> str:
        return f"URL({self.href!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and other.href == self.href

    def __hash__(self) -> int:
        return hash(self.href)
