"""A Durable Object using the synchronous SQL API, in the style of Cloudflare's Python examples.

The object does not call ``super().__init__`` and its ``fetch`` is synchronous,
as in Cloudflare's first Python Durable Object example; rows allow
attribute access (``row.greeting``). Runs unchanged on Cloudflare and dohost.
"""

from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Greeter(DurableObject):
    def __init__(self, ctx, env):
        self.ctx = ctx
        self.env = env
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS visits(who TEXT PRIMARY KEY, n INTEGER NOT NULL)")

    def fetch(self, request):
        who = urlparse(request.url).path.strip("/") or "World"
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO visits VALUES (?, 1) ON CONFLICT(who) DO UPDATE SET n = n + 1", who)
        row = sql.exec(
            "SELECT ? || ', ' || who || '!' AS greeting, n FROM visits WHERE who = ?",
            self.env.GREETING,
            who,
        ).one()
        return Response(f"{row.greeting} (visit {row.n})")

    def visits(self):
        return {r["who"]: r["n"] for r in self.ctx.storage.sql.exec("SELECT who, n FROM visits ORDER BY who")}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        stub = self.env.GREETER.get(self.env.GREETER.idFromName("greeter"))
        greeting = await stub.fetch(request.url)
        return greeting
