"""Entrypoint classes whose handlers carry the legacy on_ prefix."""

import time

from workers import DurableObject, Response, WorkerEntrypoint


class Timer(DurableObject):
    async def on_fetch(self, request):
        if request.url.endswith("/start"):
            await self.ctx.storage.put("rang", False)
            await self.ctx.storage.setAlarm(int(time.time() * 1000) + 5000)
            return Response("started")
        return Response("rang" if await self.ctx.storage.get("rang") else "waiting")

    async def on_alarm(self):
        await self.ctx.storage.put("rang", True)


class Pong(DurableObject):
    async def fetch(self):  # workerd passes only the arguments fetch takes
        return Response("pong")


class Default(WorkerEntrypoint):
    async def on_fetch(self, request):
        if request.url.endswith("/pong"):
            return await self.env.PONG.getByName("p").fetch(request)
        return await self.env.TIMER.getByName("t").fetch(request)
