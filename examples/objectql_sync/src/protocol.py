"""ObjectQL's sync wire types (``@objectql/types`` ``sync.ts``), field names exact, and request checks.

``SyncPushRequest`` = ``{clientId, mutations: MutationLogEntry[], lastCheckpoint}``;
``MutationLogEntry`` = ``{id, objectName, recordId, operation, data?,
timestamp, clientId, sequence, baseVersion}``. The response types
(``SyncPushResponse``, ``SyncMutationResult``, ``SyncConflict``,
``SyncServerChange``) are built as plain dicts by ``store.py``.

:func:`decode_push` turns a request body into a :class:`SyncPushRequest` or
raises :class:`BadRequest` whose message names the JSON path that is wrong
(``$.mutations[0].recordId: Expected `str | int`, got `bool```). Everything
is checked before anything is applied, so a bad request changes nothing.
Unknown keys are ignored, as a TypeScript client's extra fields would be.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from objectdefs import ObjectDef

SUPPORTED_VERSIONS = ("1",)
VERSION_HEADER = "X-ObjectQL-Sync-Version"
#: ``SyncEndpointConfig.maxMutationsPerRequest``'s default.
MAX_MUTATIONS = 100
MAX_BODY_BYTES = 1024 * 1024


class BadRequest(ValueError):
    """A request the server refuses whole (HTTP 400); ``status`` may say otherwise."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class MutationLogEntry(msgspec.Struct, kw_only=True):
    id: str
    objectName: str
    recordId: str | int
    operation: Literal["create", "update", "delete"]
    data: dict[str, Any] | None = None
    timestamp: str
    clientId: str
    sequence: int
    baseVersion: int | None


class SyncPushRequest(msgspec.Struct, kw_only=True):
    clientId: str
    mutations: list[MutationLogEntry]
    lastCheckpoint: str | None = None


_decoder = msgspec.json.Decoder(SyncPushRequest)


def check_version(header: str | None) -> None:
    supported = ", ".join(SUPPORTED_VERSIONS)
    if header is None:
        raise BadRequest(f"missing {VERSION_HEADER} header; supported versions: {supported}")
    if header.strip() not in SUPPORTED_VERSIONS:
        raise BadRequest(f"unsupported {VERSION_HEADER} {header!r}; supported versions: {supported}")


def decode_push(body: bytes, objects: dict[str, ObjectDef]) -> SyncPushRequest:
    """The request in ``body``, checked against the protocol and the object definitions."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body exceeds {MAX_BODY_BYTES} bytes", status=413)
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid SyncPushRequest: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not request.clientId:
        raise BadRequest("invalid SyncPushRequest: $.clientId: expected a non-empty string")
    if len(request.mutations) > MAX_MUTATIONS:
        return request  # every mutation is rejected, as ObjectQL's handler does; nothing else to check
    for i, m in enumerate(request.mutations):
        where = f"invalid SyncPushRequest: $.mutations[{i}]"
        if not m.id:
            raise BadRequest(f"{where}.id: expected a non-empty string")
        if m.clientId != request.clientId:
            raise BadRequest(f"{where}.clientId: expected the request's clientId {request.clientId!r}, got {m.clientId!r}")
        obj = objects.get(m.objectName)
        if obj is None:
            raise BadRequest(f"{where}.objectName: unknown object {m.objectName!r} (objects: {', '.join(sorted(objects))})")
        if not obj.sync.enabled:
            raise BadRequest(f"{where}.objectName: object {m.objectName!r} does not have sync enabled")
        if m.operation != "delete" and m.data is None:
            raise BadRequest(f"{where}.data: expected an object for {m.operation!r}, got nothing")
        try:
            dt.datetime.fromisoformat(m.timestamp)
        except ValueError:
            raise BadRequest(f"{where}.timestamp: expected an ISO 8601 timestamp, got {m.timestamp!r}") from None
    return request
