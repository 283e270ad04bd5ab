"""The API Durable Object code sees: base classes, ``ctx``, storage, IDs, stubs, HTTP types, errors.

Names are Cloudflare's (each camelCase name has a snake_case twin). This
package imports only ``persistence`` below it; what it needs from the host is
declared as Protocols in ``_host.py``.
"""

from __future__ import annotations

from .errors import ObjectsError as ObjectsError
from .errors import InvalidIdError as InvalidIdError
from .errors import JurisdictionError as JurisdictionError
from .errors import DataCloneError as DataCloneError
from .errors import BodyUsedError as BodyUsedError
from .errors import InvalidHttpError as InvalidHttpError
from .errors import HttpStatusRangeError as HttpStatusRangeError
from .errors import HttpStatusError as HttpStatusError
from .errors import RpcError as RpcError
from .errors import RpcMethodNotFoundError as RpcMethodNotFoundError
from .errors import RpcReservedMethodError as RpcReservedMethodError
from .errors import RpcNotCallableError as RpcNotCallableError
from .errors import RpcPayloadTooLargeError as RpcPayloadTooLargeError
from .errors import RemoteError as RemoteError
from .errors import remote_error as remote_error
from .errors import ObjectResetError as ObjectResetError
from .errors import OverloadedError as OverloadedError
from .errors import NetworkLostError as NetworkLostError
from .errors import WebSocketError as WebSocketError
from .errors import WebSocketUsageError as WebSocketUsageError
from .errors import WebSocketLimitError as WebSocketLimitError
from .errors import AutoResponseTooLargeError as AutoResponseTooLargeError
from .errors import AbortError as AbortError
from .errors import MAX_RPC_PAYLOAD_BYTES as MAX_RPC_PAYLOAD_BYTES
from ._ids import DurableObjectId as DurableObjectId
from ._ids import IdFactory as IdFactory
from ._ids import JURISDICTIONS as JURISDICTIONS
from ._forms import Blob as Blob
from ._forms import BlobEnding as BlobEnding
from ._forms import BlobValue as BlobValue
from ._forms import File as File
from ._forms import FormData as FormData
from ._forms import FormDataValue as FormDataValue
from ._forms import encode_form as encode_form
from ._forms import parse_form as parse_form
from ._jsvalues import ArrayBuffer as ArrayBuffer
from ._jsvalues import JsArray as JsArray
from ._jsvalues import JsMap as JsMap
from ._jsvalues import JsObject as JsObject
from ._jsvalues import Uint8Array as Uint8Array
from ._jsvalues import js_value as js_value
from ._jsvalues import py_value as py_value
from ._rpc_values import to_rpc as to_rpc
from ._rpc_values import to_rpc_call as to_rpc_call
from ._rpc_values import payload_size as payload_size
from ._rpc_values import check_payload as check_payload
from ._rpc_values import lookup_rpc_method as lookup_rpc_method
from ._rpc_values import RESERVED_METHOD_NAMES as RESERVED_METHOD_NAMES
from ._http import Headers as Headers
from ._http import RequestHeaders as RequestHeaders
from ._http import Request as Request
from ._http import Response as Response
from ._http import HeadersInit as HeadersInit
from ._http import make_request as make_request
from ._http import redirect_mode as redirect_mode
from ._http import body_bytes as body_bytes
from ._http import front_request as front_request
from ._http import wire_headers as wire_headers
from ._streams import BodyFeed as BodyFeed
from ._streams import ReadableStream as ReadableStream
from ._streams import ReadResult as ReadResult
from ._streams import Chunk as Chunk
from ._websocket_state import WebSocketTransport as WebSocketTransport
from ._websocket_state import ReadyState as ReadyState
from ._websocket_state import HandleState as HandleState
from ._websocket_state import WebSocketHandle as WebSocketHandle
from ._websocket_state import WebSocketPair as WebSocketPair
from ._websocket_state import WebSocketRequestResponsePair as WebSocketRequestResponsePair
from ._websocket_state import WebSocketBook as WebSocketBook
from ._websocket_state import MessageEvent as MessageEvent
from ._websocket_state import CloseEvent as CloseEvent
from ._websocket_state import ErrorEvent as ErrorEvent
from ._host import ActivationHost as ActivationHost
from ._host import NamespaceHost as NamespaceHost
from ._host import DetachedActivation as DetachedActivation
from ._host import Completed as Completed
from ._storage import DurableObjectStorage as DurableObjectStorage
from ._storage import DurableObjectTransaction as DurableObjectTransaction
from ._storage import alarm_time_ms as alarm_time_ms
from ._state import DurableObjectState as DurableObjectState
from ._state import ExecutionContext as ExecutionContext
from ._base import DurableObject as DurableObject
from ._base import WorkerEntrypoint as WorkerEntrypoint
from ._base import find_handler as find_handler
from ._base import relaxed_call as relaxed_call
from ._base import HANDLER_NAMES as HANDLER_NAMES
from ._namespace import DurableObjectNamespace as DurableObjectNamespace
from ._namespace import DurableObjectStub as DurableObjectStub

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
    "DurableObjectId",
    "IdFactory",
    "JURISDICTIONS",
    "Blob",
    "BlobEnding",
    "BlobValue",
    "File",
    "FormData",
    "FormDataValue",
    "encode_form",
    "parse_form",
    "ArrayBuffer",
    "JsArray",
    "JsMap",
    "JsObject",
    "Uint8Array",
    "js_value",
    "py_value",
    "to_rpc",
    "to_rpc_call",
    "payload_size",
    "check_payload",
    "lookup_rpc_method",
    "RESERVED_METHOD_NAMES",
    "Headers",
    "RequestHeaders",
    "Request",
    "Response",
    "HeadersInit",
    "make_request",
    "redirect_mode",
    "body_bytes",
    "front_request",
    "wire_headers",
    "BodyFeed",
    "ReadableStream",
    "ReadResult",
    "Chunk",
    "WebSocketTransport",
    "ReadyState",
    "HandleState",
    "WebSocketHandle",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "WebSocketBook",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "ActivationHost",
    "NamespaceHost",
    "DetachedActivation",
    "Completed",
    "DurableObjectStorage",
    "DurableObjectTransaction",
    "alarm_time_ms",
    "DurableObjectState",
    "ExecutionContext",
    "DurableObject",
    "WorkerEntrypoint",
    "find_handler",
    "relaxed_call",
    "HANDLER_NAMES",
    "DurableObjectNamespace",
    "DurableObjectStub",
]
