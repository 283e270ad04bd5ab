"""Routes that each exercise one thing public Python Workers programs rely on."""

from datetime import datetime, timedelta

from js import Error
import asyncio
from urllib.parse import urlparse

from pyodide.ffi import JsException, run_sync
from workers import DurableObject, Response, WorkerEntrypoint
from workers.rpc import _BindingWrapper, _FetcherWrapper


def query_synchronously(db, sql):
    """Synchronous code blocking on a binding call, as an ORM's database backend does (JSPI)."""
    return run_sync(db.prepare(sql).all())["results"]


class Reminder(DurableObject):
    """Sets alarms but has no alarm() handler, which Cloudflare's Python Workers accept."""

    async def remind_in(self, minutes):
        await self.ctx.storage.setAlarm(datetime.now() + timedelta(minutes=minutes))

    async def pending(self):
        return await self.ctx.storage.getAlarm() is not None

    def rows_as_python(self):
        # JsProxy-era code converts toArray()'s JS array with to_py()
        sql = self.ctx.storage.sql
        return {
            "raw": sql.exec("SELECT 1 AS a, 'x' AS b").raw().toArray().to_py(),
            "rows": sql.exec("SELECT 1 AS a, 'x' AS b").toArray().to_py(),
        }

    async def fetch(self, request):
        # the forwarded request keeps the client's edge properties
        cf = request.js_object.cf
        return Response(cf.city if cf is not None else "no cf")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        path = urlparse(request.url).path
        if path == "/env":
            # old-era code checks names on the env's object map and copies its strings
            names = self.env.as_object_map()
            strings = {k: v for k, v in self.env.to_py().items() if isinstance(v, str)}
            return Response.json({"greeting": "GREETING" in names, "missing": "MISSING" in names, "strings": strings})
        if path == "/remind":
            stub = self.env.REMINDER.getByName("me")
            await stub.remind_in(1)
            return Response.json({"pending": await stub.pending()})
        if path == "/rows":
            return Response.json(await self.env.REMINDER.getByName("me").rows_as_python())
        if path == "/error-stack":
            Error.stackTraceLimit = 1e10  # as django-cf's database backends do before reading .stack
            return Response(Error.new("boom").stack.splitlines()[0])
        if path == "/where":
            return await self.env.REMINDER.getByName("me").fetch(request)
        if path == "/pending":
            return Response.json({"pending": await self.env.REMINDER.getByName("me").pending()})
        if path == "/bytes":
            await self.env.NOTES.put("note", "hi there")
            view = await self.env.NOTES.get("note", "arrayBuffer")
            return Response.json({"memoryview": isinstance(view, memoryview), "text": bytes(view).decode()})
        if path == "/shapes":
            shapes = {
                "kv": isinstance(self.env.NOTES, _BindingWrapper),
                "statement": isinstance(self.env.DB.prepare("SELECT 1"), _BindingWrapper),
                "stub": isinstance(self.env.REMINDER.getByName("me"), _FetcherWrapper),
                "truthy": bool(self.env.NOTES),
            }
            try:
                len(self.env.NOTES)
            except TypeError as exc:
                shapes["len"] = str(exc)
            try:
                for _ in self.env.NOTES:
                    pass
            except TypeError as exc:
                shapes["iter"] = str(exc)
            return Response.json(shapes)
        if path == "/bad-sql":
            try:
                await self.env.DB.prepare("SELEKT nonsense").run()
            except JsException as exc:
                return Response("caught: " + str(exc), status=400)
            return Response("not raised", status=500)
        if path == "/sync-d1":
            await self.env.NOTES.put("sync", "from KV")
            rows = query_synchronously(self.env.DB, "SELECT 40 + 2 AS answer")
            return Response.json({"rows": rows, "kv": run_sync(self.env.NOTES.get("sync"))})
        if path == "/r2-head":
            await self.env.FILES.put("a.txt", "x")
            info = run_sync(self.env.FILES.head("a.txt")).to_py()  # as django-cf's R2 storage reads it
            return Response.json({"has_uploaded": isinstance(info.uploaded, datetime), "size": info["size"]})
        if path == "/webloop":
            from pyodide.webloop import WebLoop

            async def _noop(*args):
                pass

            WebLoop.shutdown_asyncgens = _noop  # as the SDK's in-Worker test harness patches it
            await asyncio.sleep(0)
            return Response.json({"subclass": isinstance(asyncio.get_running_loop(), WebLoop.__mro__[1])})
        if path == "/bookmark":
            session = self.env.DB.withSession()
            before = session.getBookmark()
            await session.prepare("SELECT 1").all()
            return Response.json({"before": before, "after": type(session.getBookmark()).__name__})
        return Response("not found", status=404)
