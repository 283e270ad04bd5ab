"""A notebook per name: SQL notes, KV settings, a reminder alarm, readers on hibernating WebSockets."""

from urllib.parse import parse_qs, urlparse

from js import WebSocketPair
from workers import DurableObject, Response, WebSocketRequestResponsePair, WorkerEntrypoint


class Notebook(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, stars REAL)")
        ctx.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))

    async def fetch(self, request):
        url = urlparse(request.url)
        op = url.path.rsplit("/", 1)[-1]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if request.headers.get("Upgrade") == "websocket":
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server, ["reader", q.get("who", "anon")])
            server.serializeAttachment({"who": q.get("who", "anon")})
            return Response(None, status=101, web_socket=client)
        if op == "add":
            self.ctx.storage.sql.exec("INSERT INTO notes(title, stars) VALUES (?, ?)", q["title"], float(q.get("stars", 0)))
        elif op == "set":
            self.ctx.storage.kv.put(q["key"], q["value"])
        elif op == "remind":
            await self.ctx.storage.setAlarm(float(q["at"]))
        elif op == "fail":
            raise ValueError("the notebook refused")
        count = self.ctx.storage.sql.exec("SELECT count(*) AS n FROM notes").one()["n"]
        return Response(str(count))

    async def alarm(self):
        self.ctx.storage.kv.put("reminded", True)

    async def webSocketMessage(self, ws, message):
        ws.send(f"echo {message}")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        name = urlparse(request.url).path.strip("/").split("/")[0] or "default"
        if name == "favicon.ico":
            # The browser asks for it after any page (the inspector's too), a moment
            # after the load: a notebook of that name would show up in the object
            # list on the page's next live refresh.
            return Response("", status=404)
        return await self.env.NOTEBOOK.getByName(name).fetch(request)
