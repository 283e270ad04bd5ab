"""A counter Durable Object, as in Cloudflare's Python Workers examples.

This file runs unchanged on Cloudflare and on dohost.
"""

from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS counts(name TEXT PRIMARY KEY, value INTEGER)")

    def increment(self, by=1):
        sql = self.ctx.storage.sql
        sql.exec(
            "INSERT INTO counts VALUES ('n', ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            by,
            by,
        )
        return sql.exec("SELECT value FROM counts WHERE name = 'n'").one()["value"]

    def get(self):
        row = self.ctx.storage.sql.exec("SELECT value FROM counts WHERE name = 'n'").toArray()
        return row[0]["value"] if row else 0

    async def fetch(self, request):
        return Response(str(self.increment()))


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path.strip("/") or "default"
        name, _, action = path.partition("/")
        stub = self.env.COUNTER.getByName(name)
        if action == "get":
            return Response(str(await stub.get()))
        return Response(str(await stub.increment()))
