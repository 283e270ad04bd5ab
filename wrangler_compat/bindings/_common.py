"""What every binding module shares: the clock, options as Python Workers pass them, JS-shaped values.

* Time: a :class:`Clock` reads the runtime's clock once one is attached
  (``Runtime.now_ms``: wall time at start plus trio time, so KV expiry moves
  with ``autojump_clock`` in tests) and the wall clock before that.
* Options: Python Workers call JS methods with an options object, written
  as a dict, ``to_js(dict)``, keyword arguments (Pyodide turns them into the
  trailing object) or, for KV's ``get``, a bare type string.
  :func:`options` folds all of them into one dict, so every method reads its
  options from one place.
* Values: results Cloudflare hands back as JS objects are :class:`JsObject`
  dicts that also answer attribute access (``result.meta.changes``) and
  ``to_py()``, so code of both SDK eras works.
* Gates: every call starts with :func:`checkpoint`, which waits for the
  calling object's output gate, as ``workers.fetch`` does.
* Python protocols: a binding is a JS object to Python Workers code, so
  ``for x in env.KV`` and ``len(env.KV)`` fail as the SDK's binding wrapper
  makes them fail, naming the JS class (:class:`JsBinding`).
* Files: :func:`store_path` names a binding's file by a digest of its kind
  and id, never by a user-chosen name.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping, NoReturn

import trio

from runtime import current_activation

__all__ = ["ByteStream", "Clock", "JsBinding", "JsObject", "checkpoint", "completing_synchronously", "js_string", "options", "read_body", "store_path", "to_bytes"]


class JsBinding:
    """Iteration and ``len()`` refused with the SDK's words; always truthy."""

    #: The binding's JS constructor name, which the SDK's messages use.
    js_name: ClassVar[str]

    # CF: cloudflare/workers-py packages/runtime-sdk/src/workers/rpc.py (_BindingWrapper)
    def __iter__(self) -> Iterator[NoReturn]:
        raise TypeError(f"'{self.js_name}' object is not iterable")

    def __len__(self) -> int:
        raise TypeError(f"'{self.js_name}' object has no len()")

    def __bool__(self) -> bool:
        return True


class Clock:
    """Milliseconds since the epoch, from the runtime once :meth:`attach` ed."""

    __slots__ = ("_now_ms",)

    def __init__(self) -> None:
        self._now_ms: Callable[[], float] | None = None

    def attach(self, now_ms: Callable[[], float]) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> float:
        return self._now_ms() if self._now_ms is not None else time.time() * 1000.0


class JsObject(dict[str, Any]):
    """A plain dict that also reads like the JS object Cloudflare returns (``obj.key``)."""

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        # A property wins over the dict method of the same name, as in JS:
        # a KV list result's ``.keys`` is its list of keys, not ``dict.keys``.
        if not name.startswith("_") and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name.startswith("__"):
                raise AttributeError(name) from None
            return None  # a JS object's missing property reads as undefined

    def to_py(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]

    def as_object_map(self) -> JsObject:
        return self


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def options(first: Any = None, kwargs: Mapping[str, Any] | None = None, *, where: str) -> dict[str, Any]:
    """One options dict from a positional options argument and keyword arguments."""
    out: dict[str, Any] = {}
    if first is not None:
        to_py = getattr(first, "to_py", None)
        if callable(to_py) and not isinstance(first, dict):
            first = to_py()
        if not isinstance(first, Mapping):
            raise TypeError(f"{where}: expected an options object (a dict), got {type(first).__name__}")
        out.update(first)
    if kwargs:
        out.update(kwargs)
    return out


async def read_body(value: Any, where: str) -> bytes:
    """A value to store, read to the end: what :func:`to_bytes` takes, or a stream, a Request/Response/Blob."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return to_bytes(value, where)
    get_reader = getattr(value, "getReader", None)
    if callable(get_reader):  # a ReadableStream (e.g. request.body)
        reader = get_reader()
        chunks: list[bytes] = []
        for _ in range(1 << 30):  # bounded: a stream ends or its producer fails
            step = await reader.read()
            done = step.get("done") if isinstance(step, dict) else getattr(step, "done", True)
            if done:
                break
            chunk = step.get("value") if isinstance(step, dict) else getattr(step, "value", None)
            chunks.append(to_bytes(chunk, where))
        return b"".join(chunks)
    if hasattr(value, "__aiter__"):
        return b"".join([to_bytes(chunk, where) async for chunk in value])
    array_buffer = getattr(value, "arrayBuffer", None) or getattr(value, "bytes", None)
    if callable(array_buffer) and not isinstance(value, type):  # a Request, a Response, a Blob
        return to_bytes(await array_buffer(), where)
    return to_bytes(value, where)


def to_bytes(value: Any, where: str) -> bytes:
    """A body as Python Workers pass one: str, bytes-like, or something with ``to_bytes()``."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, ByteStream):
        return value._take()
    to_py_bytes = getattr(value, "to_bytes", None)
    if callable(to_py_bytes):  # a JS ArrayBuffer/Uint8Array proxy
        return bytes(to_py_bytes())
    try:
        return bytes(memoryview(value))  # anything with the buffer protocol (array, numpy...)
    except TypeError:
        pass
    raise TypeError(f"{where}: expected str or bytes, got {type(value).__name__}")


def store_path(root: Path, kind: str, key: str) -> Path:
    """``<root>/bindings/<kind>/<digest>.sqlite``: the file of one namespace, database or bucket."""
    digest = hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()[:32]
    return root / "bindings" / kind / f"{digest}.sqlite"


#: Set while ``pyodide.ffi.run_sync`` drives a call: the call must finish
#: without yielding to trio (see :func:`completing_synchronously`).
_synchronous: contextvars.ContextVar[bool] = contextvars.ContextVar("dohost_binding_synchronous", default=False)


@contextlib.contextmanager
def completing_synchronously() -> Iterator[None]:
    """Binding calls made inside skip the scheduling point of :func:`checkpoint`.

    ``run_sync(env.DB.prepare(q).all())`` blocks on a binding call under
    Pyodide's JSPI (django-cf's D1 backend does it for every query). dohost's
    bindings are local and synchronous underneath, so such a call can finish
    at once; only the output gate still holds it (a write the object has not
    committed yet), and then ``run_sync`` says it had to wait.
    """
    token = _synchronous.set(True)
    try:
        yield
    finally:
        _synchronous.reset(token)


async def checkpoint() -> None:
    """Start a binding call: it is I/O on Cloudflare, so other tasks may run, and
    inside a Durable Object it is an outgoing message, so it waits for the
    output gate (every write the object made before it is committed first; a
    failed commit fails the call instead of sending it)."""
    act = current_activation()
    if act is not None:
        await act.wait_output()
    if not _synchronous.get():
        await trio.lowlevel.checkpoint()


def js_string(value: Any, where: str) -> str:
    """A key as Web IDL's ``DOMString`` conversion makes it (``1`` -> ``"1"``, ``True`` -> ``"true"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"{where}: expected a string key, got {type(value).__name__}")


class ByteStream(bytes):
    """A finished body read as a stream: ``async for chunk in s``, or ``s.getReader().read()``.

    It is also the bytes themselves, so ``Response(obj.body)`` -- how R2
    examples return an object -- sends them. The stream API reads it once,
    as a JS ``ReadableStream`` is read once.
    """

    CHUNK = 64 * 1024
    _used: bool

    def __new__(cls, data: bytes) -> ByteStream:
        self = super().__new__(cls, data)
        self._used = False
        return self

    def __aiter__(self) -> Any:
        return self._chunks()

    async def _chunks(self) -> Any:
        data = self._take()
        for i in range(0, len(data), self.CHUNK):
            yield data[i : i + self.CHUNK]

    def _take(self) -> bytes:
        if self._used:
            raise TypeError("This ReadableStream is disturbed (has already been read from).")  # CF: workerd streams
        self._used = True
        return bytes(self)

    def getReader(self) -> _Reader:
        return _Reader(self._take())

    get_reader = getReader

    async def read_all(self) -> bytes:
        return self._take()


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def read(self) -> JsObject:
        if self._pos >= len(self._data):
            return JsObject(done=True, value=None)
        chunk = self._data[self._pos : self._pos + ByteStream.CHUNK]
        self._pos += len(chunk)
        return JsObject(done=False, value=chunk)

    def releaseLock(self) -> None:
        pass

    release_lock = releaseLock
