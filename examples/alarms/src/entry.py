"""Batching writes with the Alarms API, in the style of Cloudflare's alarms example.

The first request of a window sets an alarm 10 seconds ahead (without
awaiting ``setAlarm``, as Cloudflare's examples do); every request is queued
in KV storage; ``alarm()`` flushes the whole batch at once. The counter is
loaded in ``blockConcurrencyWhile`` called from the constructor without
``await``. Runs unchanged on Cloudflare and dohost.
"""

import json

from js import Date
from workers import DurableObject, Response, WorkerEntrypoint

WINDOW_MS = 10_000


class Batcher(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.storage = ctx.storage
        self.count = 0
        self.ctx.blockConcurrencyWhile(self.load)

    async def load(self):
        last = await self.storage.list({"prefix": "q:", "reverse": True, "limit": 1})
        self.count = int(next(iter(last))[2:]) if last else 0

    async def fetch(self, request):
        self.count += 1
        if await self.storage.getAlarm() is None:
            self.storage.setAlarm(Date.now() + WINDOW_MS)
        await self.storage.put(f"q:{self.count:08d}", await request.text())
        return Response(json.dumps({"queued": self.count}), headers={"content-type": "application/json"})

    async def alarm(self, alarm_info=None):
        queued = await self.storage.list({"prefix": "q:"})
        batch = list(queued.values())
        flushed = await self.storage.get("flushed") or []
        flushed.append(batch)
        await self.storage.put("flushed", flushed)
        await self.storage.delete(list(queued.keys()))

    async def batches(self):
        return await self.storage.get("flushed") or []


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await self.env.BATCHER.getByName("foo").fetch(request)
