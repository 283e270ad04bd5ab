"""``Blob``, ``File`` and ``FormData`` as Python Workers' SDK shapes them (``workers/blob.py``,
``workers/formdata.py`` in cloudflare/workers-py), held in memory.

The SDK wraps JS objects; here the bytes live in Python. The same instances
serve ``js.Blob.new(...)``/``js.FormData.new()`` (with JS's camelCase
methods: ``arrayBuffer``, ``getAll``, ``has``...), so code of either era
sees one set of values. :func:`parse_form` reads a request or response body
as ``await body.form_data()`` does (the stdlib ``email`` parser for
``multipart/form-data``, ``urllib.parse`` for urlencoded forms);
:func:`encode_form` renders one as ``multipart/form-data`` (httpx's
encoder) for a ``Response``/``Request`` body and outbound ``fetch``.
"""

from __future__ import annotations

import email.policy
import time
from collections.abc import Iterable, Iterator, MutableMapping
from email.parser import BytesParser
from urllib.parse import parse_qsl
from enum import StrEnum
from typing import Any, Union

__all__ = ["Blob", "BlobEnding", "BlobValue", "File", "FormData", "FormDataValue", "encode_form", "parse_form"]

BlobValue = Union[str, bytes, bytearray, memoryview, "Blob"]
FormDataValue = Union[str, "Blob"]
_Bytes = bytes  # Blob defines a method named ``bytes``


class BlobEnding(StrEnum):
    TRANSPARENT = "transparent"
    NATIVE = "native"


def _part_bytes(part: Any) -> bytes:
    if isinstance(part, str):
        return part.encode()
    if isinstance(part, Blob):
        return part._data
    if isinstance(part, (bytes, bytearray, memoryview)):
        return bytes(part)
    raise TypeError(f"Don't know how to handle {type(part)} for Blob()")  # CF: workers-py workers/blob.py _make_blob_entry


class Blob:
    """Immutable bytes with a content type: ``Blob(parts, content_type=None)``."""

    __slots__ = ("_data", "_type")

    _data: _Bytes
    _type: str

    def __init__(
        self,
        blob_parts: Iterable[BlobValue] | BlobValue = (),
        content_type: str | None = None,
        endings: BlobEnding | str | None = None,
        *,
        type: str | None = None,  # js.Blob.new(parts, type=...) spelling
    ) -> None:
        content_type = content_type if content_type is not None else type
        if isinstance(blob_parts, (str, bytes, bytearray, memoryview, Blob)):
            if content_type is None and isinstance(blob_parts, Blob):
                content_type = blob_parts._type
            blob_parts = [blob_parts]
        self._data = b"".join(_part_bytes(p) for p in blob_parts)
        self._type = (content_type or "").lower()

    @classmethod
    def new(cls, blob_parts: Any = (), options: Any = None, **kw: Any) -> Blob:
        """``js.Blob.new(parts, type=...)`` (or an options dict), as Pyodide passes options."""
        opts = {**(options or {}), **kw}
        return Blob(blob_parts, opts.get("type"), opts.get("endings"))

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def content_type(self) -> str:
        return self._type

    @property
    def type(self) -> str:
        return self._type

    @property
    def js_object(self) -> Blob:
        return self

    async def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")

    async def bytes(self) -> _Bytes:
        return self._data

    async def arrayBuffer(self) -> _Bytes:
        return self._data

    array_buffer = arrayBuffer

    def slice(self, start: int | None = None, end: int | None = None, content_type: str | None = None) -> Blob:
        return Blob([self._data[start:end]], content_type)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} size={self.size} type={self._type!r}>"


class File(Blob):
    """A named :class:`Blob`: ``File(parts, filename, content_type=None, last_modified=None)``."""

    __slots__ = ("_name", "_last_modified")

    _name: str
    _last_modified: int

    def __init__(
        self,
        blob_parts: Iterable[BlobValue] | BlobValue,
        filename: str,
        content_type: str | None = None,
        endings: BlobEnding | str | None = None,
        last_modified: int | None = None,
        *,
        type: str | None = None,
        lastModified: int | None = None,
    ) -> None:
        super().__init__(blob_parts, content_type, endings, type=type)
        self._name = str(filename)
        stamp = last_modified if last_modified is not None else lastModified
        if stamp is None and isinstance(blob_parts, File):
            stamp = blob_parts._last_modified
        self._last_modified = int(stamp if stamp is not None else time.time() * 1000)

    @classmethod
    def new(cls, blob_parts: Any = (), filename: str = "blob", options: Any = None, **kw: Any) -> File:  # type: ignore[override]
        opts = {**(options or {}), **kw}
        return File(blob_parts, filename, opts.get("type"), opts.get("endings"), opts.get("lastModified"))

    @property
    def name(self) -> str:
        return self._name

    @property
    def last_modified(self) -> int:
        return self._last_modified

    @property
    def lastModified(self) -> int:
        return self._last_modified


def _entry(value: Any, filename: str | None) -> str | Blob:
    if isinstance(value, Blob):
        if filename is not None or not isinstance(value, File):
            # JS FormData turns a Blob into a File named "blob" (or the given name).
            return File([value], filename if filename is not None else "blob", value.type)
        return value
    if filename is not None:
        raise TypeError("FormData: a filename is only allowed with a Blob or File value")
    return str(value)


class FormData(MutableMapping[str, FormDataValue]):
    """Ordered multi-valued form fields (``workers.FormData``, ``js.FormData``)."""

    def __init__(self, form_data: FormData | dict[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        self._entries: list[tuple[str, str | Blob]] = []
        if not form_data:
            return
        if isinstance(form_data, FormData):
            self._entries = list(form_data._entries)
        elif isinstance(form_data, dict):
            for k, v in form_data.items():
                self.append(k, v)
        else:
            raise TypeError("Expected form_data to be a dict or an instance of FormData")  # CF: workers-py workers/formdata.py

    @classmethod
    def new(cls, form_data: Any = None) -> FormData:
        return cls(form_data)

    def __getitem__(self, key: str) -> FormDataValue:
        for k, v in self._entries:
            if k == key:
                return v
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: FormDataValue) -> None:
        if isinstance(value, list):
            raise TypeError("Expected single item in arguments to FormData.__setitem__")  # CF: workers-py workers/formdata.py
        self.set(key, value)

    def set(self, key: str, value: Any, filename: str | None = None) -> None:
        entry = _entry(value, filename)
        out: list[tuple[str, str | Blob]] = []
        placed = False
        for k, v in self._entries:
            if k == key:
                if not placed:
                    out.append((key, entry))
                    placed = True
            else:
                out.append((k, v))
        if not placed:
            out.append((key, entry))
        self._entries = out

    def append(self, key: str, value: Any, filename: str | None = None) -> None:
        self._entries.append((str(key), _entry(value, filename)))

    def delete(self, key: str) -> None:
        self._entries = [(k, v) for k, v in self._entries if k != key]

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.delete(key)

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self._entries)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._entries)

    def get_all(self, key: str) -> list[FormDataValue]:
        return [v for k, v in self._entries if k == key]

    getAll = get_all

    def keys(self) -> Iterator[str]:  # type: ignore[override]
        seen: set[str] = set()
        for k, _ in self._entries:
            if k not in seen:
                seen.add(k)
                yield k

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def values(self) -> Iterator[FormDataValue]:  # type: ignore[override]
        return (v for _, v in self._entries)

    def items(self) -> Iterator[tuple[str, FormDataValue]]:  # type: ignore[override]
        return iter(list(self._entries))

    entries = items

    def __len__(self) -> int:
        return len(list(self.keys()))

    @property
    def js_object(self) -> FormData:
        return self

    def __repr__(self) -> str:
        return f"FormData({self._entries!r})"


_FORM_TYPES_MESSAGE = (  # CF: api/form-data.c++ FormData::parse
    "Unrecognized Content-Type header value. FormData can only parse the following MIME types: "
    "multipart/form-data, application/x-www-form-urlencoded"
)


def parse_form(body: _Bytes, content_type: str | None) -> FormData:
    """The ``FormData`` a body holds, by its ``content-type`` (``TypeError`` for any other type)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    form = FormData()
    if mime == "application/x-www-form-urlencoded":
        for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
            form.append(key, value)
        return form
    if mime != "multipart/form-data":
        raise TypeError(_FORM_TYPES_MESSAGE)
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise TypeError("Failed to parse body as FormData.")  # CF: api/form-data.c++ parseFormData
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.append(name, File([data], filename, part.get_content_type()))
        else:
            form.append(name, data.decode(part.get_content_charset() or "utf-8", errors="replace"))
    return form


def encode_form(form: FormData) -> tuple[bytes, str]:
    """``(body, content_type)`` of ``form`` as ``multipart/form-data`` (rendered by httpx)."""
    import httpx  # its multipart encoder; imported here, where a form is actually sent

    fields: list[tuple[str, Any]] = []
    for key, value in form.items():
        if isinstance(value, File):
            fields.append((key, (value.name, value._data, value.type or "application/octet-stream")))
        elif isinstance(value, Blob):  # pragma: no cover - _entry makes every Blob a File
            fields.append((key, ("blob", value._data, value.type or "application/octet-stream")))
        else:
            fields.append((key, (None, value.encode())))
    request = httpx.Request("POST", "http://form.invalid/", files=fields)
    return request.read(), request.headers["content-type"]
