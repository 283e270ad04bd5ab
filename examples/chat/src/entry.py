"""A chat room with hibernating WebSockets, as in Cloudflare's Python Workers docs.

Each room is one Durable Object. Sockets are accepted with
``ctx.acceptWebSocket`` so the room can be evicted from memory while clients
stay connected; the next message wakes it up. Messages are stored in SQL so
a late joiner gets the history. Runs unchanged on Cloudflare and on dohost.
"""

from urllib.parse import urlparse

from js import WebSocketPair
from workers import DurableObject, Response, WebSocketRequestResponsePair, WorkerEntrypoint


class ChatRoom(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec(
            "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT, body TEXT)"
        )
        ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))

    async def fetch(self, request):
        if request.headers.get("Upgrade") != "websocket":
            return Response("expected a WebSocket upgrade", status=426)
        name = urlparse(request.url).query.removeprefix("name=") or "anonymous"
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, [name])
        server.serializeAttachment({"name": name})
        for row in self.ctx.storage.sql.exec("SELECT who, body FROM messages ORDER BY id"):
            server.send(f"{row['who']}: {row['body']}")
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        who = ws.deserializeAttachment()["name"]
        self.ctx.storage.sql.exec("INSERT INTO messages(who, body) VALUES (?, ?)", who, message)
        for peer in self.ctx.getWebSockets():
            peer.send(f"{who}: {message}")

    async def webSocketClose(self, ws, code, reason, was_clean):
        # 1005 (no code) and 1006 (connection lost) may not be sent in a Close frame.
        ws.close(1000 if code in (1005, 1006) else code, "room closing the socket")

    def history(self):
        return [f"{r['who']}: {r['body']}" for r in self.ctx.storage.sql.exec("SELECT who, body FROM messages ORDER BY id")]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        room = urlparse(request.url).path.strip("/") or "lobby"
        return await self.env.ROOMS.getByName(room).fetch(request)
