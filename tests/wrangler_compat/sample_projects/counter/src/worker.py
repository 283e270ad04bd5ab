"""The dohost plugin's sample project: a counter, a flaky alarm, an echo room.

Written as a Cloudflare Python Worker would be; the plugin's tests run
pytest on copies of this folder.
"""

from urllib.parse import urlparse

from js import Date, WebSocketPair
from workers import DurableObject, Response, WorkerEntrypoint

HOUR_MS = 3_600_000


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.generation = "fresh"  # in memory only: tells a test whether the instance is new
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS counts(name TEXT PRIMARY KEY, value INTEGER)")

    def increment(self, by=1):
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO counts VALUES ('n', ?) ON CONFLICT(name) DO UPDATE SET value = value + ?", by, by)
        return sql.exec("SELECT value FROM counts WHERE name = 'n'").one()["value"]

    def get(self):
        rows = self.ctx.storage.sql.exec("SELECT value FROM counts WHERE name = 'n'").toArray()
        return rows[0]["value"] if rows else 0

    def mark(self, text):
        self.generation = text

    def generation_now(self):
        return self.generation

    async def schedule(self, delay_ms=HOUR_MS):
        await self.ctx.storage.setAlarm(Date.now() + delay_ms)

    async def alarm(self, alarm_info=None):
        self.increment(100)
        self.ctx.storage.kv.put("last_alarm", {"retry": alarm_info.retryCount, "at": alarm_info.scheduledTime})

    def last_alarm(self):
        return self.ctx.storage.kv.get("last_alarm")

    def must_be_42(self):
        value = self.get()
        assert value == 42, f"the counter should be 42, found {value}"

    async def fetch(self, request):
        return Response(str(self.increment()))


class FlakyAlarm(DurableObject):
    """An alarm that fails its first ``failures`` runs."""

    async def arm(self, failures, delay_ms=HOUR_MS):
        self.ctx.storage.kv.put("failures", failures)
        await self.ctx.storage.setAlarm(Date.now() + delay_ms)

    async def alarm(self, alarm_info):
        attempts = self.ctx.storage.kv.get("attempts") or []
        attempts.append(alarm_info.retryCount)
        self.ctx.storage.kv.put("attempts", attempts)
        if len(attempts) <= self.ctx.storage.kv.get("failures"):
            raise RuntimeError(f"alarm failure #{len(attempts)}")

    def attempts(self):
        return self.ctx.storage.kv.get("attempts") or []


class Room(DurableObject):
    """Echoes WebSocket messages through hibernatable sockets."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.woken = True  # in memory only

    async def fetch(self, request):
        if request.headers.get("Upgrade") != "websocket":
            return Response("expected a WebSocket upgrade", status=426)
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        count = (self.ctx.storage.kv.get("messages") or 0) + 1
        self.ctx.storage.kv.put("messages", count)
        ws.send(f"echo {message} #{count}")

    async def webSocketClose(self, ws, code, reason, was_clean):
        self.ctx.storage.kv.put("closed", [code, reason])

    def closed_with(self):
        return self.ctx.storage.kv.get("closed")


class Stuck(DurableObject):
    """A handler that never returns, to show the fixture does not hang on it (dohost-only: uses trio)."""

    async def wait_forever(self):
        import trio

        await trio.sleep_forever()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        action, _, name = urlparse(request.url).path.strip("/").partition("/")
        if action == "greeting":
            return Response(self.env.GREETING)
        if action == "room":
            return await self.env.ROOMS.getByName(name or "lobby").fetch(request)
        stub = self.env.COUNTER.getByName(name or "a")
        if action == "get":
            return Response(str(await stub.get()))
        return Response(str(await stub.increment()))
