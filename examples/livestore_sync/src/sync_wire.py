"""LiveStore's sync wire format: the Effect RPC JSON envelope as ``@livestore/sync-cf`` 0.4.0 speaks it.

The released client (Effect 3, ``@effect/rpc`` 0.75) sends one JSON message
per WebSocket text frame, and one JSON ``Request`` per HTTP POST body (the
HTTP reply is a JSON array of every message the request produced).

Client → server: ``Request{id, tag, payload, headers}``, ``Ack``,
``Interrupt{requestId}``, ``Ping``, ``Eof``. Server → client: ``Chunk``,
``Exit``, ``Defect``, ``Pong``. Effect 3 encodes a failure's cause as one
tagged object (``{"_tag":"Fail","error":E}``), not the array Effect 4 (and
LiveStore's main branch) uses; ``Option`` is ``{"_tag":"None"}`` /
``{"_tag":"Some","value":X}``; a stream's successful ``Exit`` carries no
``value`` (Effect encodes ``void`` as ``undefined``, which JSON drops).

This module is pure (no storage, no sockets): it turns frames into checked
requests and results into frames. Bad input raises :class:`Defect` (the
reply is a ``Defect`` message, as Effect's RpcServer sends for malformed JSON
and unknown tags) or :class:`PayloadError` (the reply is an ``Exit`` that
dies with the decoding message, as Effect's RpcServer sends when a payload
fails its schema). Neither changes anything on the server.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Effect RPC procedure tags (LiveStore's common/ws-rpc-schema.ts and http-rpc-schema.ts).
WS_PULL = "SyncWsRpc.Pull"
WS_PUSH = "SyncWsRpc.Push"
HTTP_PULL = "SyncHttpRpc.Pull"
HTTP_PUSH = "SyncHttpRpc.Push"
HTTP_PING = "SyncHttpRpc.Ping"
WS_TAGS = frozenset({WS_PULL, WS_PUSH})
HTTP_TAGS = frozenset({HTTP_PULL, HTTP_PUSH, HTTP_PING})

# The exact frames of the hibernation auto-response (JSON.stringify(RpcMessage.constPing/constPong)).
PING_FRAME = '{"_tag":"Ping"}'
PONG_FRAME = '{"_tag":"Pong"}'

_CLIENT_TAGS = frozenset({"Request", "Ack", "Interrupt", "Ping", "Eof"})
_EVENT_FIELDS = ("name", "args", "seqNum", "parentSeqNum", "clientId", "sessionId")
_REQUEST_ID = re.compile(r"^\s*(?:[+-]?\d+|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)?\s*$")


class Defect(Exception):
    """Bad input answered with an Effect RPC ``Defect`` message."""

    def __init__(self, defect: Any) -> None:
        super().__init__(defect)
        self.defect = defect


class PayloadError(Exception):
    """A request whose payload fails LiveStore's schema; answered with a dying ``Exit``."""

    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.message = message


# --------------------------------------------------------------------- encoding
def dumps(value: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it (compact, UTF-8 kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def none() -> dict[str, Any]:
    return {"_tag": "None"}


def some(value: Any) -> dict[str, Any]:
    return {"_tag": "Some", "value": value}


def chunk(request_id: str, values: list[Any]) -> str:
    return dumps({"_tag": "Chunk", "requestId": request_id, "values": values})


def exit_success(request_id: str, value: Any = None, *, void: bool = False) -> str:
    exit_: dict[str, Any] = {"_tag": "Success"} if void else {"_tag": "Success", "value": value}
    return dumps({"_tag": "Exit", "requestId": request_id, "exit": exit_})


def exit_failure(request_id: str, error: dict[str, Any]) -> str:
    cause = {"_tag": "Fail", "error": error}
    return dumps({"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Failure", "cause": cause}})


def exit_die(request_id: str, defect: Any) -> str:
    cause = {"_tag": "Die", "defect": defect}
    return dumps({"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Failure", "cause": cause}})


def exit_interrupted(request_id: str) -> str:
    cause = {"_tag": "Interrupt", "fiberId": {"_tag": "None"}}
    return dumps({"_tag": "Exit", "requestId": request_id, "exit": {"_tag": "Failure", "cause": cause}})


def defect(value: Any) -> str:
    return dumps({"_tag": "Defect", "defect": value})


def error_defect(name: str, message: str) -> dict[str, str]:
    """An ``Error`` as Effect's ``Schema.Defect`` encodes it (name and message, no stack)."""
    return {"name": name, "message": message}


# LiveStore's error types (@livestore/common errors.ts and sync/errors.ts), as they go over the wire.
def server_ahead_error(minimum_expected: int, provided: int) -> dict[str, Any]:
    return {"_tag": "ServerAheadError", "minimumExpectedNum": minimum_expected, "providedNum": provided}


def backend_id_mismatch_error(expected: str, received: str) -> dict[str, Any]:
    return {"_tag": "BackendIdMismatchError", "expected": expected, "received": received}


def unknown_error(message: str, *, name: str = "Error", note: str | None = None, payload: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"_tag": "UnknownError", "cause": error_defect(name, message)}
    if note is not None:
        error["note"] = note
    if payload is not None:
        error["payload"] = payload
    return error


def sync_metadata(created_at: str) -> dict[str, Any]:
    return some({"_tag": "SyncMessage.SyncMetadata", "createdAt": created_at})


def no_more() -> dict[str, Any]:
    return {"_tag": "NoMore"}


def more_known(remaining: int) -> dict[str, Any]:
    return {"_tag": "MoreKnown", "remaining": remaining}


def pull_response(batch: list[Any], page_info: dict[str, Any], backend_id: str) -> dict[str, Any]:
    return {"batch": batch, "pageInfo": page_info, "backendId": backend_id}


# --------------------------------------------------------------------- decoding
def parse_frame(data: str | bytes) -> dict[str, Any]:
    """One client message; raises :class:`Defect` for bad JSON or an unknown ``_tag``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        message = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Defect(error_defect("SyntaxError", f"Invalid JSON: {exc}")) from None
    tag = message.get("_tag") if isinstance(message, dict) else None
    if tag not in _CLIENT_TAGS:
        raise Defect(f"Unknown request tag: {_js_str(tag)}")
    if tag in ("Ack", "Interrupt"):
        request_id = message.get("requestId")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = message["requestId"] = str(request_id)  # Effect reads it with BigInt(), which takes numbers
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            raise Defect(f"Invalid request id: {_js_str(request_id)}")
    return message  # type: ignore[no-any-return]


def check_request(message: dict[str, Any], known_tags: frozenset[str]) -> tuple[str, str, dict[str, Any]]:
    """``(id, tag, payload)`` of a ``Request`` whose payload matches LiveStore's schema."""
    tag = message.get("tag")
    if not isinstance(tag, str) or tag not in known_tags:
        raise Defect(f"Unknown request tag: {_js_str(tag if isinstance(tag, str) else '')}")
    request_id = message.get("id")
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise Defect(f"Invalid request id: {_js_str(request_id)}")
    payload = message.get("payload")
    problem = _check_payload(tag, payload)
    if problem is not None:
        raise PayloadError(request_id, f"{tag} payload: {problem}")
    return request_id, tag, payload  # type: ignore[return-value]


def _check_payload(tag: str, payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return f"expected an object, got {_kind(payload)}"
    if not isinstance(payload.get("storeId"), str):
        return f'["storeId"]: expected string, got {_kind(payload.get("storeId"))}'
    if tag == WS_PULL and not isinstance(payload.get("live"), bool):
        return f'["live"]: expected boolean, got {_kind(payload.get("live"))}'
    if tag in (WS_PULL, HTTP_PULL):
        return _check_option(payload, "cursor", _check_cursor)
    if tag in (WS_PUSH, HTTP_PUSH):
        batch = payload.get("batch")
        if not isinstance(batch, list):
            return f'["batch"]: expected array, got {_kind(batch)}'
        for index, event in enumerate(batch):
            problem = _check_event(event)
            if problem is not None:
                return f'["batch"][{index}]{problem}'
        return _check_option(payload, "backendId", lambda v: None if isinstance(v, str) else f"expected string, got {_kind(v)}")
    return None


def _check_option(payload: dict[str, Any], key: str, check_value: Any) -> str | None:
    option = payload.get(key)
    where = f'["{key}"]'
    if not isinstance(option, dict) or option.get("_tag") not in ("None", "Some"):
        return f'{where}: expected {{"_tag":"None"}} or {{"_tag":"Some","value":...}}, got {_kind(option)}'
    if option["_tag"] == "Some":
        if "value" not in option:
            return f'{where}["value"]: is missing'
        problem = check_value(option["value"])
        if problem is not None:
            return f'{where}["value"]{problem if problem.startswith("[") else ": " + problem}'
    return None


def _check_cursor(cursor: Any) -> str | None:
    if not isinstance(cursor, dict):
        return f"expected an object, got {_kind(cursor)}"
    if not isinstance(cursor.get("backendId"), str):
        return f'["backendId"]: expected string, got {_kind(cursor.get("backendId"))}'
    if not _is_int(cursor.get("eventSequenceNumber")):
        return f'["eventSequenceNumber"]: expected an integer, got {_kind(cursor.get("eventSequenceNumber"))}'
    return None


def _check_event(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f": expected an event object, got {_kind(event)}"
    for key in ("name", "clientId", "sessionId"):
        if not isinstance(event.get(key), str):
            return f'["{key}"]: expected string, got {_kind(event.get(key))}'
    for key in ("seqNum", "parentSeqNum"):
        if not _is_int(event.get(key)):
            return f'["{key}"]: expected an integer, got {_kind(event.get(key))}'
    return None


def event_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The event as LiveStore's ``LiveStoreEvent.Global.Encoded`` (unknown keys dropped, as Schema.Struct does)."""
    return {key: event[key] for key in _EVENT_FIELDS if key in event}


def _is_int(value: Any) -> bool:
    # Effect's Schema.Int: a finite number with no fractional part (JSON 3.0 is an int to JavaScript).
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53
    return isinstance(value, float) and value.is_integer() and abs(value) <= 2**53


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value[:40])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "an array" if isinstance(value, list) else "an object"


def _js_str(value: Any) -> str:
    return "undefined" if value is None else str(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --------------------------------------------------------------- pull messages
MAX_MESSAGE_BYTES = 900_000  # LiveStore's MAX_TRANSPORT_PAYLOAD_BYTES (common/constants.ts)
MAX_EVENTS_PER_MESSAGE = 100  # LiveStore's MAX_PULL_EVENTS_PER_MESSAGE


class OversizeEvent(Exception):
    """One event whose pull message alone exceeds :data:`MAX_MESSAGE_BYTES`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"an event of {size} bytes exceeds the {MAX_MESSAGE_BYTES}-byte message limit")
        self.size = size


def batch_item(event: dict[str, Any], created_at: str) -> str:
    """One ``PullResponse.batch`` entry, as JSON text."""
    return dumps({"eventEncoded": event, "metadata": sync_metadata(created_at)})


def pull_response_json(items: list[str], page_info: dict[str, Any], backend_id: str) -> str:
    return '{"batch":[' + ",".join(items) + '],"pageInfo":' + dumps(page_info) + ',"backendId":' + dumps(backend_id) + "}"


def chunk_json(request_id: str, responses: list[str]) -> str:
    return '{"_tag":"Chunk","requestId":' + dumps(request_id) + ',"values":[' + ",".join(responses) + "]}"


def split_items(items: list[str], backend_id: str) -> list[list[str]]:
    """Group batch entries into messages of at most 100 events and 900,000 bytes of JSON.

    Sizes are measured as LiveStore's ``splitChunkBySize`` measures them: the
    UTF-8 length of the whole ``PullResponse`` (with ``NoMore``). Raises
    :class:`OversizeEvent` when one entry alone does not fit.
    """
    overhead = len(pull_response_json([], no_more(), backend_id).encode())
    groups: list[list[str]] = []
    current: list[str] = []
    size = overhead
    for item in items:
        n = len(item.encode())
        if overhead + n > MAX_MESSAGE_BYTES:
            raise OversizeEvent(overhead + n)
        if current and (len(current) >= MAX_EVENTS_PER_MESSAGE or size + 1 + n > MAX_MESSAGE_BYTES):
            groups.append(current)
            current, size = [], overhead
        size += n + (1 if current else 0)
        current.append(item)
    if current:
        groups.append(current)
    return groups


# ---------------------------------------------------------------- sync URLs
def sync_params(query: str) -> dict[str, Any] | None:
    """``{storeId, transport, payload?}`` of a sync request, or None (LiveStore's ``matchSyncRequest``).

    ``payload`` is URI-encoded JSON inside the (already URL-decoded) query
    value, as the client's ``SearchParamsSchema`` encodes it; a value that is
    not strict URI encoding or not JSON makes the request no sync request.
    """
    from urllib.parse import parse_qsl, unquote_to_bytes

    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        return None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params and key in ("storeId", "transport", "payload"):
            return None  # a repeated key decodes as an array, which the schema refuses
        params[key] = value
    store_id, transport = params.get("storeId"), params.get("transport")
    if store_id is None or transport not in ("http", "ws"):
        return None
    result: dict[str, Any] = {"storeId": store_id, "transport": transport}
    if "payload" in params:
        raw = params["payload"]
        if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
            return None  # decodeURIComponent throws URIError
        try:
            result["payload"] = json.loads(unquote_to_bytes(raw).decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError):
            return None
    return result
