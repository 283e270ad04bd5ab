"""Each route tries one thing Cloudflare refuses and reports the error and what is stored after."""

from urllib.parse import urlparse

from js import WebSocketPair
from workers import DurableObject, Response, WorkerEntrypoint


class Room(DurableObject):
    async def close_with(self, code):
        client, server = WebSocketPair.new().object_values()
        server.accept()
        try:
            server.close(code, "bye")
        except Exception as exc:
            return {"error": str(exc), "readyState": server.readyState}
        return {"error": None, "readyState": server.readyState}

    async def save(self, request):
        try:
            data = await request.json()
        except ValueError as exc:
            return {"error": type(exc).__name__, "stored": await self.ctx.storage.get("data")}
        await self.ctx.storage.put("data", data)
        return {"error": None, "stored": await self.ctx.storage.get("data")}

    async def fetch(self, request):
        return Response.json(await self.save(request))


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/kv-too-big":
            try:
                await self.env.CACHE.put("big", "x" * (25 * 1024 * 1024 + 1))
                error = None
            except Exception as exc:
                error = str(exc)
            return Response.json({"error": error, "stored": await self.env.CACHE.get("big")})
        if path == "/r2-key-too-long":
            try:
                await self.env.FILES.put("k" * 1025, "body")
                error = None
            except Exception as exc:
                error = str(exc)
            listed = await self.env.FILES.list()
            return Response.json({"error": error, "stored": len(listed.objects)})
        if path == "/queue":
            try:
                await self.env.JOBS.send({"job": 1})
                error = None
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            return Response.json({"error": error})
        if path == "/json":
            return await self.env.ROOM.getByName("r").fetch(request)
        if path.startswith("/close/"):
            return Response.json(await self.env.ROOM.getByName("r").close_with(int(path.rsplit("/", 1)[1])))
        return Response("not found", status=404)
