"""The exceptions the object API raises, with Cloudflare's messages and flags.

Every error the ``objects`` package raises derives from :class:`ObjectsError`,
except :class:`AbortError`, which derives from ``BaseException`` on purpose::

    ObjectsError
    ├── InvalidIdError (TypeError)            bad hex, foreign namespace, wrong jurisdiction
    ├── JurisdictionError (ValueError)        unknown jurisdiction name, conflicting jurisdiction
    ├── DataCloneError (TypeError)            a value that cannot be copied (RPC, attachments)
    ├── BodyUsedError (OSError, TypeError)    a Request/Response body read twice
    ├── InvalidHttpError (TypeError)          a malformed Request/Response/Headers
    ├── HttpStatusRangeError (ValueError)     a status code Cloudflare refuses
    ├── HttpStatusError (OSError)             raise_for_status() on a 4xx/5xx response
    ├── RpcError
    │   ├── RpcMethodNotFoundError (TypeError)
    │   ├── RpcReservedMethodError (TypeError)
    │   ├── RpcNotCallableError (TypeError)
    │   ├── RpcPayloadTooLargeError
    │   └── RemoteError                       raised inside the object, seen by the caller;
    │                                         remote_error() builds a subclass per original type
    ├── ObjectResetError                      durableObjectReset = True
    ├── OverloadedError                       overloaded = True
    ├── NetworkLostError                      retryable = True
    └── WebSocketError
        ├── WebSocketUsageError (TypeError)   wrong state, bad close code, bad message
        └── WebSocketLimitError               tags, attachment size, event timeout
            └── AutoResponseTooLargeError (ValueError)
    AbortError (BaseException)                ctx.abort() unwinding the object's own code

Cloudflare throws JavaScript ``TypeError``/``RangeError``/``Error``; Python
Workers map ``TypeError`` to ``TypeError`` and ``RangeError`` to ``ValueError``
(``workers/_workers.py: _to_python_exception``), so each class also derives
from the builtin a Python Worker would see, and ``except TypeError`` written
for Cloudflare keeps working here.

Every :class:`ObjectsError` carries the four flags workerd sets on errors that
cross a stub (``jsg/exception.c++: decodeTunneledException``): ``remote`` (the
object's own code threw), ``retryable`` (the call may be retried; workerd sets
it for DISCONNECTED), ``overloaded`` (do not retry) and ``durableObjectReset``
(the object was reset under the call), with the snake twin
``durable_object_reset``.
"""

from __future__ import annotations

from typing import Any

from persistence._names import cf_names

__all__ = [
    "ObjectsError",
    "InvalidIdError",
    "JurisdictionError",
    "DataCloneError",
    "BodyUsedError",
    "InvalidHttpError",
    "HttpStatusRangeError",
    "HttpStatusError",
    "RpcError",
    "RpcMethodNotFoundError",
    "RpcReservedMethodError",
    "RpcNotCallableError",
    "RpcPayloadTooLargeError",
    "RemoteError",
    "remote_error",
    "ObjectResetError",
    "OverloadedError",
    "NetworkLostError",
    "WebSocketError",
    "WebSocketUsageError",
    "WebSocketLimitError",
    "AutoResponseTooLargeError",
    "AbortError",
    "MAX_RPC_PAYLOAD_BYTES",
]

#: Largest serialized RPC argument list or return value.
MAX_RPC_PAYLOAD_BYTES = 32 * 1024 * 1024  # CF: workerd api/worker-rpc.h MAX_JS_RPC_MESSAGE_SIZE


@cf_names("durableObjectReset")
class ObjectsError(Exception):
    """Root of every error raised by the object API."""

    remote: bool = False
    retryable: bool = False
    overloaded: bool = False
    # Stored under one private name so the camelCase property and its snake
    # twin (installed by cf_names) always agree.
    _reset: bool = False

    @property
    def durableObjectReset(self) -> bool:
        return self._reset

    @durableObjectReset.setter
    def durableObjectReset(self, value: bool) -> None:
        self._reset = bool(value)

    durable_object_reset: bool  # installed by cf_names; declared for type checkers


# --------------------------------------------------------------------------- IDs


class InvalidIdError(ObjectsError, TypeError):
    """A Durable Object ID string or object this namespace cannot accept."""

    NOT_HEX = "Invalid Durable Object ID: must be 64 hex digits"  # CF: server/actor-id-impl.c++ idFromString
    WRONG_NAMESPACE = "Durable Object ID is not valid for this namespace."  # CF: server/actor-id-impl.c++ idFromString
    # CF: api/actor.c++ DurableObjectNamespace::getImpl
    GET_WRONG_JURISDICTION = (
        "get called on jurisdictional subnamespace with an ID from a different jurisdiction"
    )
    # dohost's wording, modelled on the get() message: Cloudflare documents that
    # idFromString() throws here but its production message is not public.
    PARSE_WRONG_JURISDICTION = (
        "idFromString called on jurisdictional subnamespace with an ID from a different jurisdiction"
    )


class JurisdictionError(ObjectsError, ValueError):
    """An unknown jurisdiction name, or two jurisdictions that contradict each other."""


# ----------------------------------------------------------------------- values


class DataCloneError(ObjectsError, TypeError):
    """A value that cannot be copied across an RPC boundary or into an attachment.

    The message keeps Cloudflare's exact words; ``path`` names where in the
    value the offending part sits (``$`` is the root, ``$[2]`` a list item,
    ``$.key`` a dict entry). The path stays out of the message (and out of
    ``__notes__``, which pytest's ``match`` would see) so that a test written
    against Cloudflare's message matches here too.
    """

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(message)
        self.path = path

    def __repr__(self) -> str:
        return f"DataCloneError({str(self)!r}, path={self.path!r})"


# ------------------------------------------------------------------------- HTTP


class BodyUsedError(ObjectsError, OSError, TypeError):
    """A body read a second time.

    Python Workers raise ``OSError`` here (pyodide's ``BodyUsedError`` for a
    Response, a plain ``OSError`` for a Request) where JavaScript throws
    ``TypeError``; this class is both, so either ``except`` clause works.
    """

    REQUEST = "Body already used"  # CF: pyodide workers/_workers.py Request._raise_if_failed
    RESPONSE = "Response body is already used"  # CF: pyodide http.py BodyUsedError


class HttpStatusError(ObjectsError, OSError):
    """A 4xx or 5xx status, raised by ``response.raise_for_status()`` (``pyodide.http.HttpStatusError``)."""

    def __init__(self, status: int, status_text: str, url: str) -> None:
        self.status, self.status_text, self.url = status, status_text, url
        # CF: pyodide src/py/pyodide/http/_exceptions.py HttpStatusError
        kind = "Client" if 400 <= status < 500 else "Server"
        super().__init__(f"{status} {kind} Error: {status_text} for url: {url}")

    def __reduce__(self) -> Any:
        return (type(self), (self.status, self.status_text, self.url), self.__dict__)


class InvalidHttpError(ObjectsError, TypeError):
    """A Request, Response or Headers built from values Cloudflare refuses."""


class HttpStatusRangeError(ObjectsError, ValueError):
    """A status code out of the range Cloudflare accepts (a JS ``RangeError``)."""


# -------------------------------------------------------------------------- RPC


class RpcError(ObjectsError):
    """Base of errors raised by calling a method through a stub."""


class RpcMethodNotFoundError(RpcError, TypeError):
    """The target class has no public method of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f'The RPC receiver does not implement the method "{name}".')  # CF: api/worker-rpc.c++ failLookup
        self.method = name


class RpcReservedMethodError(RpcError, TypeError):
    """The name belongs to a handler (fetch, alarm, ...) and cannot be called over RPC."""

    def __init__(self, name: str) -> None:
        super().__init__(f"'{name}' is a reserved method and cannot be called over RPC.")  # CF: api/worker-rpc.c++ tryGetProperty
        self.method = name


class RpcNotCallableError(RpcError, TypeError):
    """The name is a class attribute that is not a method."""

    def __init__(self, name: str) -> None:
        super().__init__(f'"{name}" is not a function.')  # CF: api/worker-rpc.c++ JsRpcTargetBase::callImpl
        self.method = name


class RpcPayloadTooLargeError(RpcError):
    """Serialized arguments or return value over :data:`MAX_RPC_PAYLOAD_BYTES`."""

    def __init__(self, size: int) -> None:
        super().__init__(
            # CF: api/worker-rpc.c++ serializeJsValue
            "Serialized RPC arguments or return values are limited to 32MiB, "
            f"but the size of this value was: {size} bytes."
        )
        self.size = size


class RemoteError(RpcError):
    """An exception raised inside an object, as its caller receives it.

    Only the type name and message cross the boundary (like workerd, which
    tunnels ``name: message``); the original object is never shared. Use
    :func:`remote_error` to build one: it returns an instance of a subclass
    named after the original type that also derives from the nearest builtin
    exception of that type, so ``except ValueError`` still catches a
    ``ValueError`` (or a subclass of it) raised in the object.
    """

    remote = True

    def __init__(
        self,
        message: str,
        *,
        remote_type: str = "Exception",
        remote_traceback: str | None = None,
    ) -> None:
        # A builtin mixed in by remote_error() may interpret args oddly
        # (KeyError quotes its argument); the message is kept verbatim.
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return self.message


_REMOTE_CLASSES: dict[tuple[str, type | None], type[RemoteError]] = {}
# Builtins that mean something to the interpreter when raised; mixing them in
# would change control flow instead of reporting an error.
_NEVER_MIX_IN = (StopIteration, StopAsyncIteration, GeneratorExit)


def _builtin_bases(exc_type: type) -> list[type]:
    """The builtin exceptions ``exc_type`` derives from, most specific first."""
    return [
        klass
        for klass in exc_type.__mro__
        if klass.__module__ == "builtins"
        and issubclass(klass, Exception)
        and klass is not Exception
        and not issubclass(klass, _NEVER_MIX_IN)
    ]


def _remote_class(type_name: str, exc_type: type) -> type[RemoteError]:
    builtins = _builtin_bases(exc_type)
    key = (type_name, builtins[0] if builtins else None)
    cls = _REMOTE_CLASSES.get(key)
    if cls is None:
        cls = type(type_name, (RemoteError,), {"__module__": "objects.remote"})
        for builtin in builtins:
            try:  # a builtin whose constructor needs more than a message is skipped
                mixed = type(type_name, (RemoteError, builtin), {"__module__": "objects.remote"})
                mixed("probe")
            except TypeError:
                continue
            cls = mixed
            break
        _REMOTE_CLASSES[key] = cls
    return cls


def remote_error(
    exc: BaseException,
    *,
    retryable: bool | None = None,
    overloaded: bool | None = None,
    durable_object_reset: bool | None = None,
    traceback_text: str | None = None,
) -> RemoteError:
    """The error a caller receives for ``exc`` raised inside an object.

    The result is an instance of a class named like ``type(exc)`` that derives
    from :class:`RemoteError` and from the nearest builtin exception ``exc``
    derives from (a user ``class Full(ValueError)`` arrives as a ``Full`` that
    ``except ValueError`` catches). It has ``remote=True`` (workerd: errors
    thrown by the object's own code); ``retryable``/``overloaded``/
    ``durableObjectReset`` are copied from ``exc`` when it carries them and
    may be overridden by the runtime.
    """
    if isinstance(exc, RemoteError):
        # Already crossed one boundary (object -> object -> caller): keep it as is.
        cls: type[RemoteError] = type(exc)
        type_name, message = exc.remote_type, exc.message
        traceback_text = traceback_text or exc.remote_traceback
    else:
        type_name, message = type(exc).__name__, str(exc)
        cls = _remote_class(type_name, type(exc))
    err = cls(message, remote_type=type_name, remote_traceback=traceback_text)
    err.retryable = _flag(retryable, exc, "retryable")
    err.overloaded = _flag(overloaded, exc, "overloaded")
    err.durableObjectReset = _flag(durable_object_reset, exc, "durableObjectReset")
    return err


def _flag(override: bool | None, exc: BaseException, name: str) -> bool:
    if override is not None:
        return override
    value: Any = getattr(exc, name, False)
    return value is True


# ------------------------------------------------------------ lifecycle failures


class ObjectResetError(ObjectsError):
    """The object was reset while the call was in flight."""

    _reset = True

    ABORTED = "Application called abort() to reset Durable Object."  # CF: api/actor-state.c++ DurableObjectState::abort
    CODE_UPDATED = "Durable Object reset because its code was updated."  # CF: developers.cloudflare.com/durable-objects/observability/troubleshooting
    # CF: developers.cloudflare.com/durable-objects/observability/troubleshooting
    STORAGE_TIMEOUT = (
        "Durable Object storage operation exceeded timeout which caused object to be reset."
    )

    @classmethod
    def from_abort(cls, reason: str | None = None) -> ObjectResetError:
        """What callers see after ``ctx.abort(reason)``: the reason, or the default text."""
        return cls(cls.ABORTED if reason is None else reason)


class OverloadedError(ObjectsError):
    """The object cannot keep up; Cloudflare advises not to retry."""

    overloaded = True

    TOO_MANY_REQUESTS = "Durable Object is overloaded. Too many requests queued."  # CF: developers.cloudflare.com/durable-objects/observability/troubleshooting
    TOO_MUCH_DATA = "Durable Object is overloaded. Too much data queued."  # CF: developers.cloudflare.com/durable-objects/observability/troubleshooting
    QUEUED_TOO_LONG = "Durable Object is overloaded. Requests queued for too long."  # CF: developers.cloudflare.com/durable-objects/observability/troubleshooting


class NetworkLostError(ObjectsError):
    """The connection to the object dropped; the call may be retried."""

    retryable = True

    MESSAGE = "Network connection lost."  # CF: jsg/exception.c++ makeInternalError (DISCONNECTED)

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


# ------------------------------------------------------------------- WebSockets


class WebSocketError(ObjectsError):
    """Base of errors from the WebSocket handle and its hibernation bookkeeping."""


class WebSocketUsageError(WebSocketError, TypeError):
    """A WebSocket call in the wrong state or with wrong arguments (a JS ``TypeError``)."""


class WebSocketLimitError(WebSocketError):
    """A WebSocket limit exceeded: tags, attachment size, event timeout (a JS ``Error``)."""


class AutoResponseTooLargeError(WebSocketLimitError, ValueError):
    """An auto-response request or response over 2,048 bytes (a JS ``RangeError``)."""


# ------------------------------------------------------------------------ abort


class AbortError(BaseException):
    """Raised inside the object by ``ctx.abort(reason)`` to unwind its own code.

    A ``BaseException`` so that user code's ``except Exception`` cannot
    swallow the reset; the runtime catches it, resets the object and hands
    callers :meth:`ObjectResetError.from_abort`.
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(ObjectResetError.ABORTED if reason is None else reason)
        self.reason = reason

    def to_caller_error(self) -> ObjectResetError:
        return ObjectResetError.from_abort(self.reason)
