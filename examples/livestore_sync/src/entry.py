"""LiveStore's Cloudflare sync backend, written fresh in Python: a Worker and one sync object per store.

Clients are LiveStore's own (``@livestore/sync-cf`` 0.4.0, ``makeWsSync`` /
``makeHttpSync``), pointed at this Worker. It runs unchanged on Cloudflare
(Python Workers) and on dohost.

Worker routes (LiveStore's ``makeWorker`` answers, in its order):

* ``OPTIONS`` when ``ENABLE_CORS`` is ``"true"`` → 204 with CORS headers;
* ``?storeId=…&transport=ws|http[&payload=…]`` on any path → the object
  ``idFromName(storeId)`` of ``SYNC_BACKEND_DO``: 424 if that binding is
  missing, 426 for ``transport=ws`` without ``Upgrade: websocket``;
* ``GET /instance/sync?storeId=…`` → ``{instanceId, webSocketCount}`` from the
  object (``instanceId`` lives only in memory: a new one means the object
  was evicted and rebuilt);
* ``GET /`` → the info text; anything else (a bad ``payload`` included) → 400 ``Invalid path``.

The object (``SyncBackendDO``) keeps the event log (``sync_log``) and speaks
the Effect RPC envelope (``sync_wire``) over hibernatable WebSockets and over
HTTP POST:

* Push: an empty batch is acknowledged with ``{}``. Otherwise, under
  ``blockConcurrencyWhile``, the first event's parent must be the head
  (else ``ServerAheadError{minimumExpectedNum: head, providedNum}``); the
  batch is stored atomically and sent to every live pull on every socket,
  and only then acknowledged. A batch identical to events already stored
  (a retry after a lost acknowledgement, LiveStore issue #1462) is
  acknowledged again without storing anything. An event whose pull message
  would exceed 900,000 bytes is refused and nothing is stored.
* Pull: the events after the cursor, read in pages of 256 rows and sent in
  messages of at most 100 events and 900,000 bytes with ``MoreKnown`` /
  ``NoMore`` (one empty ``NoMore`` when nothing is new). A live WebSocket
  pull then stays open (no ``Exit``): its request id is kept in the socket's
  attachment, which survives hibernation, and later pushes reach it as
  ``Chunk`` messages. ``Interrupt`` removes it.
* ``{"_tag":"Ping"}`` is answered ``{"_tag":"Pong"}`` by the WebSocket
  auto-response, without waking the object.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sync_wire as wire
from js import WebSocketPair
from sync_log import EventLog
from workers import DurableObject, Response, WebSocketRequestResponsePair, WorkerEntrypoint

BINDING = "SYNC_BACKEND_DO"
INFO_TEXT = "Info: Sync backend endpoint for @livestore/sync-cf."
INVALID_ATTACHMENT = (1011, "invalid-attachment")


def iso_now() -> str:
    """The time as JavaScript's ``new Date().toISOString()`` writes it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class Refused(Exception):
    """A request answered with one of LiveStore's errors (the ``error`` of a failed ``Exit``)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error)
        self.error = error


class SyncBackendDO(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.instance_id = str(uuid.uuid4())
        self._log: EventLog | None = None

    # ------------------------------------------------------------------ HTTP
    async def fetch(self, request):
        url = urlsplit(request.url)
        if url.path == "/instance/sync":
            return Response.json({"instanceId": self.instance_id, "webSocketCount": len(self.ctx.getWebSockets())})
        params = wire.sync_params(url.query)
        if params is None:
            return Response("Invalid path", status=400)
        if params["transport"] == "http":
            return await self._http(request)
        if request.headers.get("Upgrade") != "websocket":
            return Response("Durable Object expected Upgrade: websocket", status=426)
        client, server = WebSocketPair.new().object_values()
        attachment: dict[str, Any] = {"storeId": params["storeId"], "pullRequestIds": []}
        if "payload" in params:
            attachment["payload"] = params["payload"]
        server.serializeAttachment(wire.dumps(attachment))
        self.ctx.acceptWebSocket(server)
        self.ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair(wire.PING_FRAME, wire.PONG_FRAME))
        return Response(None, status=101, web_socket=client)

    async def _http(self, request):
        """One Effect RPC request per POST; the reply is the JSON array of its messages."""
        store_id = wire.sync_params(urlsplit(request.url).query)["storeId"]
        frames = await self._handle(await request.text(), wire.HTTP_TAGS, store_id, None)
        return Response("[" + ",".join(frames) + "]", headers={"Content-Type": "application/json"})

    # ------------------------------------------------------------- WebSocket
    async def webSocketMessage(self, ws, message):
        attachment = self._attachment(ws)
        if attachment is None:
            return
        for frame in await self._handle(message, wire.WS_TAGS, attachment["storeId"], ws):
            ws.send(frame)

    async def webSocketClose(self, ws, code, reason, was_clean):
        # Answer the client's close with its code, unless that code may not be sent
        # in a Close frame (1005 no code, 1006 connection lost, 1015 TLS failure).
        sendable = 1000 <= code <= 1014 and code not in (1004, 1005, 1006) or 3000 <= code <= 4999
        ws.close(code if sendable else 1000, "sync backend closing the socket")

    def _attachment(self, ws) -> dict[str, Any] | None:
        """The socket's ``{storeId, payload?, pullRequestIds}``; a bad one closes the socket with 1011."""
        try:
            value = json.loads(ws.deserializeAttachment())
            ok = (
                isinstance(value, dict)
                and isinstance(value.get("storeId"), str)
                and isinstance(value.get("pullRequestIds"), list)
                and all(isinstance(i, str) for i in value["pullRequestIds"])
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            ws.close(*INVALID_ATTACHMENT)
            return None
        return value

    def _set_pull_ids(self, ws, attachment: dict[str, Any], ids: list[str]) -> None:
        ws.serializeAttachment(wire.dumps({**attachment, "pullRequestIds": ids}))

    # -------------------------------------------------------------- messages
    async def _handle(self, data, known_tags, store_id: str, ws) -> list[str]:
        """The frames answering one client message (``ws`` is None over HTTP)."""
        try:
            message = wire.parse_frame(data)
            if message["_tag"] == "Ping":
                return [wire.PONG_FRAME]
            if message["_tag"] in ("Ack", "Eof"):
                return []  # back-pressure and end-of-input need no answer: frames are sent as they are made
            if message["_tag"] == "Interrupt":
                request_id = message["requestId"]
                if ws is not None:
                    attachment = self._attachment(ws)
                    if attachment is None:
                        return []
                    ids = attachment["pullRequestIds"]
                    if request_id in ids:
                        self._set_pull_ids(ws, attachment, [i for i in ids if i != request_id])
                return [wire.exit_interrupted(request_id)]
            request_id, tag, payload = wire.check_request(message, known_tags)
        except wire.Defect as exc:
            return [wire.defect(exc.defect)]
        except wire.PayloadError as exc:
            return [wire.exit_die(exc.request_id, exc.message)]
        try:
            if payload["storeId"] != store_id:
                raise Refused(wire.unknown_error(
                    f"storeId {payload['storeId']!r} does not match this connection's store {store_id!r}",
                    note="wrong storeId",
                ))
            log = self._open(store_id)
            if tag in (wire.WS_PUSH, wire.HTTP_PUSH):
                await self._push(log, payload)
                return [wire.exit_success(request_id, {})]
            if tag == wire.HTTP_PING:
                return [wire.exit_success(request_id, {"_tag": "SyncMessage.Pong"})]
            frames = [wire.chunk_json(request_id, [r]) for r in self._pull(log, payload)]
            if tag == wire.WS_PULL and payload["live"]:
                self._keep_live(ws, request_id)  # phase 2: no Exit; pushes arrive as Chunks
            else:
                frames.append(wire.exit_success(request_id, void=True))
            return frames
        except Refused as exc:
            return [wire.exit_failure(request_id, exc.error)]
        except Exception as exc:  # a bug or a storage failure: this request fails, the socket lives on
            return [wire.exit_failure(request_id, wire.unknown_error(str(exc), name=type(exc).__name__))]

    def _open(self, store_id: str) -> EventLog:
        # Built on first use, synchronously, so two first requests cannot build two logs.
        if self._log is None:
            self._log = EventLog(self.ctx.storage, store_id)
        elif self._log.store_id != store_id:
            raise Refused(wire.unknown_error(
                f"this object holds store {self._log.store_id!r}, not {store_id!r}", note="wrong storeId"
            ))
        return self._log

    def _keep_live(self, ws, request_id: str) -> None:
        attachment = self._attachment(ws)
        if attachment is None:
            return
        if request_id in attachment["pullRequestIds"]:
            return
        try:
            self._set_pull_ids(ws, attachment, [*attachment["pullRequestIds"], request_id])
        except Exception as exc:  # over Cloudflare's 16 KiB attachment limit
            raise Refused(wire.unknown_error(str(exc), note="too many live pulls on one socket")) from None

    # ------------------------------------------------------------------ pull
    def _pull(self, log: EventLog, payload: dict[str, Any]) -> list[str]:
        """Phase 1: the stored events after the cursor, as PullResponse JSON texts."""
        cursor = payload["cursor"]
        after = None
        if cursor["_tag"] == "Some":
            if cursor["value"]["backendId"] != log.backend_id:
                raise Refused(wire.backend_id_mismatch_error(log.backend_id, cursor["value"]["backendId"]))
            after = int(cursor["value"]["eventSequenceNumber"])
        remaining = log.count_after(after)
        responses: list[str] = []
        for page in log.pages_after(after):
            items = [wire.batch_item(event, created_at) for event, created_at in page]
            for group in wire.split_items(items, log.backend_id):
                remaining = max(0, remaining - len(group))
                page_info = wire.more_known(remaining) if remaining > 0 else wire.no_more()
                responses.append(wire.pull_response_json(group, page_info, log.backend_id))
        if not responses:
            responses.append(wire.pull_response_json([], wire.no_more(), log.backend_id))
        return responses

    # ------------------------------------------------------------------ push
    async def _push(self, log: EventLog, payload: dict[str, Any]) -> None:
        batch = [wire.event_fields(event) for event in payload["batch"]]
        if not batch:
            return
        backend_id = payload["backendId"]
        if backend_id["_tag"] == "Some" and backend_id["value"] != log.backend_id:
            raise Refused(wire.backend_id_mismatch_error(log.backend_id, backend_id["value"]))
        for event in batch:
            event["seqNum"], event["parentSeqNum"] = int(event["seqNum"]), int(event["parentSeqNum"])
        created_at = iso_now()
        try:
            messages = wire.split_items([wire.batch_item(event, created_at) for event in batch], log.backend_id)
        except wire.OversizeEvent as exc:
            raise Refused(wire.unknown_error(str(exc), name="OversizeChunkItemError", note="event too large")) from None

        async def admit() -> dict[str, Any] | None:
            # Admission, storage and the broadcast happen with no other event
            # delivered: pushes are admitted one at a time, and live pullers
            # get batches in head order.
            first_parent = batch[0]["parentSeqNum"]
            if first_parent != log.head:
                if self._is_replay(log, batch):
                    return None  # stored before; its acknowledgement was lost
                return wire.server_ahead_error(log.head, first_parent)
            previous = log.head
            for event in batch:
                if event["seqNum"] <= previous:
                    return wire.unknown_error(
                        f"seqNum {event['seqNum']} does not follow {previous}: sequence numbers must increase",
                        note="bad batch",
                    )
                previous = event["seqNum"]
            try:
                log.append(batch, created_at)
            except Exception as exc:
                return wire.unknown_error(str(exc), payload={"dbName": log.table, "stage": "insert"})
            self._broadcast(log, messages)
            return None

        error = await self.ctx.blockConcurrencyWhile(admit)
        if error is not None:
            raise Refused(error)

    def _is_replay(self, log: EventLog, batch: list[dict[str, Any]]) -> bool:
        if batch[-1]["seqNum"] > log.head:
            return False
        stored = log.stored([event["seqNum"] for event in batch])
        return all(stored.get(event["seqNum"]) == {**event, "args": event.get("args")} for event in batch)

    def _broadcast(self, log: EventLog, messages: list[list[str]]) -> None:
        responses = [wire.pull_response_json(items, wire.no_more(), log.backend_id) for items in messages]
        for ws in self.ctx.getWebSockets():
            attachment = self._attachment(ws)
            if attachment is None:
                continue
            for request_id in attachment["pullRequestIds"]:
                for response in responses:
                    try:
                        ws.send(wire.chunk_json(request_id, [response]))
                    except Exception:
                        break  # the socket is closing; its client re-pulls when it reconnects


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        cors = self.env_flag("ENABLE_CORS")
        cors_headers = {}
        if cors:
            cors_headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers") or "*",
            }
            if request.method == "OPTIONS":
                return Response(None, status=204, headers=cors_headers)
        url = urlsplit(request.url)
        params = wire.sync_params(url.query)
        namespace = getattr(self.env, BINDING, None)
        if params is not None:
            if namespace is None:
                return Response(
                    f"Failed dependency: Required Durable Object binding '{BINDING}' not available",
                    status=424,
                    headers=cors_headers,
                )
            if params["transport"] == "ws" and request.headers.get("Upgrade") != "websocket":
                return Response("Durable Object expected Upgrade: websocket", status=426, headers=cors_headers)
            return await namespace.get(namespace.idFromName(params["storeId"])).fetch(request)
        if request.method == "GET" and url.path == "/instance/sync" and namespace is not None:
            store_ids = parse_qs(url.query, keep_blank_values=True).get("storeId")
            if store_ids:
                return await namespace.get(namespace.idFromName(store_ids[0])).fetch(request)
        if request.method == "GET" and url.path == "/":
            return Response(INFO_TEXT, headers={"Content-Type": "text/plain"})
        return Response("Invalid path", status=400, headers={**cors_headers, "Content-Type": "text/plain"})

    def env_flag(self, name: str) -> bool:
        return str(getattr(self.env, name, "")).lower() == "true"
