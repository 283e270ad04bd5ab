import asyncio
import time
from urllib.parse import urlparse

from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.lock = asyncio.Lock()

    async def increment(self):
        # read, await, write: without the lock, concurrent calls would lose updates
        async with self.lock:
            count = await self.ctx.storage.get("count") or 0
            await asyncio.sleep(0.01)
            await self.ctx.storage.put("count", count + 1)
            return count + 1

    async def count(self):
        return await self.ctx.storage.get("count") or 0

    async def nap(self, seconds):
        await asyncio.sleep(seconds)
        return "woke up"

    async def record_visit(self):
        await asyncio.sleep(0.05)
        visits = await self.ctx.storage.get("visits") or 0
        await self.ctx.storage.put("visits", visits + 1)

    async def visits(self):
        return await self.ctx.storage.get("visits") or 0

    async def start_alarm(self):
        await self.ctx.storage.setAlarm(int(time.time() * 1000) + 1000)

    async def alarm(self):
        await asyncio.sleep(float(self.env.ALARM_NAP_SECONDS))
        await self.ctx.storage.put("alarm", "rang")

    async def alarm_state(self):
        return await self.ctx.storage.get("alarm") or "waiting"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        counters = self.env.COUNTER
        if path == "/both":
            a, b = await asyncio.gather(
                counters.getByName("a").increment(),
                counters.getByName("b").increment(),
            )
            return Response.json({"a": a, "b": b})
        if path == "/race":
            stub = counters.getByName("race")
            results = await asyncio.gather(*(stub.increment() for _ in range(5)))
            return Response.json(sorted(results))
        if path == "/visit":
            self.ctx.waitUntil(asyncio.create_task(counters.getByName("visits").record_visit()))
            return Response("counted later", status=202)
        if path == "/visits":
            return Response(str(await counters.getByName("visits").visits()))
        if path == "/slow":
            try:
                await asyncio.wait_for(counters.getByName("sleepy").nap(2), timeout=0.2)
            except asyncio.TimeoutError:
                return Response("timed out", status=504)
            return Response("in time")
        return Response("not found", status=404)
