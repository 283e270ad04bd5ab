"""The object API as user code sees it through a runtime: base classes, handlers, ctx, stubs."""

from __future__ import annotations

import trio
import trio.testing

from objects import DurableObject, DurableObjectId, Request, Response, WebSocketPair, WorkerEntrypoint, find_handler
from runtime import open_runtime


class Echo(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.seen: list[object] = []

    def add(self, a, b=0):
        return a + b

    async def slow_add(self, a, b=0):
        await trio.sleep(0)
        return a + b

    def record(self, item):
        self.seen.append(item)
        return len(self.seen)

    def history(self):
        return self.seen

    def identity(self):
        oid = self.ctx.id
        return {"id": oid.toString(), "name": oid.name, "jurisdiction": oid.jurisdiction}

    async def fetch(self, request):
        body = await request.text()
        return Response(
            f"{request.method} {request.url} {body}",
            status=201,
            headers={"x-seen": request.headers.get("x-test") or ""},
        )


class SnakeHandlers(DurableObject):
    def fetch(self, request):  # a synchronous handler is accepted too
        return Response("sync fetch")

    def web_socket_message(self, ws, message):  # the snake twin of webSocketMessage
        pass


async def test_do_subclass_receives_ctx_and_env_and_env_holds_bindings_and_vars() -> None:
    got = {}

    class Probe(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            got["ctx"], got["env"] = ctx, env

        def ok(self):
            return self.ctx is got["ctx"] and self.env is got["env"]

    async with open_runtime(bindings={"PROBE": Probe}, vars={"GREETING": "hi"}) as rt:
        assert await rt.env.PROBE.getByName("p").ok() is True
        assert got["env"].GREETING == "hi"
        assert got["env"]["GREETING"] == "hi"
        assert got["env"].PROBE is rt.env.PROBE


async def test_sync_and_async_public_methods_are_callable_over_rpc_with_kwargs() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("a")
        assert await stub.add(1, 2) == 3
        assert await stub.add(1, b=5) == 6
        assert await stub.slow_add(2, b=3) == 5


async def test_fetch_through_stub_accepts_url_with_method_headers_and_body() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("a")
        resp = await stub.fetch("https://x/path", method="POST", headers={"x-test": "1"}, body="hello")
        assert isinstance(resp, Response)
        assert resp.status == 201
        assert resp.headers["x-seen"] == "1"
        assert await resp.text() == "POST https://x/path hello"


async def test_fetch_through_stub_accepts_a_request_and_overrides_its_method() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("a")
        resp = await stub.fetch(Request("https://x/r", method="PUT", body="b"))
        assert await resp.text() == "PUT https://x/r b"
        resp = await stub.fetch(Request("https://x/r", method="PUT", body="b"), method="DELETE")
        assert await resp.text() == "DELETE https://x/r b"


async def test_synchronous_fetch_handler_works() -> None:
    async with open_runtime(bindings={"S": SnakeHandlers}) as rt:
        resp = await rt.env.S.getByName("a").fetch("https://x/")
        assert await resp.text() == "sync fetch"


async def test_stub_exposes_id_and_name() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        ns = rt.env.ECHO
        stub = ns.getByName("alice")
        assert isinstance(stub.id, DurableObjectId)
        assert stub.id == ns.idFromName("alice")
        assert stub.name == "alice"
        assert ns.get(ns.newUniqueId()).name is None
        assert ns.get_by_name("alice").id == stub.id


async def test_calls_through_one_stub_are_delivered_in_the_order_made() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("order")
        for i in range(10):
            assert await stub.record(i) == i + 1
        assert await stub.history() == list(range(10))


async def test_calls_from_one_task_stay_ordered_while_earlier_calls_are_still_running() -> None:
    release = trio.Event()

    class Slow(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            self.log: list[str] = []

        async def slow(self, tag):
            self.log.append(f"start {tag}")
            await release.wait()  # a timer-like await: later events may be delivered
            self.log.append(f"end {tag}")

        def fast(self, tag):
            self.log.append(tag)

        def history(self):
            return self.log

    async with open_runtime(bindings={"S": Slow}) as rt:
        stub = rt.env.S.getByName("a")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stub.slow, "a")
            await trio.testing.wait_all_tasks_blocked()
            for tag in ("b", "c", "d"):
                await stub.fast(tag)
            release.set()
        assert await stub.history() == ["start a", "b", "c", "d", "end a"]


async def test_calls_made_through_one_stub_from_many_tasks_arrive_in_the_order_made() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("e-order")
        await stub.history()
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(stub.record, i)  # trio may start these tasks in any order
        assert await stub.history() == list(range(20))


async def test_worker_entrypoint_reaches_objects_through_env() -> None:
    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            stub = self.env.ECHO.getByName("global")
            return Response(str(await stub.add(20, 22)))

    async with open_runtime(bindings={"ECHO": Echo}, entrypoint=Default) as rt:
        resp = await rt.fetch_worker(Request("https://worker/"))
        assert await resp.text() == "42"


async def test_ctx_storage_has_cloudflare_names_and_snake_twins() -> None:
    class Names(DurableObject):
        def check(self):
            s = self.ctx.storage
            pairs = [
                ("deleteAll", "delete_all"),
                ("transactionSync", "transaction_sync"),
                ("getAlarm", "get_alarm"),
                ("setAlarm", "set_alarm"),
                ("deleteAlarm", "delete_alarm"),
            ]
            same = all(getattr(type(s), a) is getattr(type(s), b) for a, b in pairs)
            ctx_pairs = [("waitUntil", "wait_until"), ("blockConcurrencyWhile", "block_concurrency_while")]
            same_ctx = all(getattr(type(self.ctx), a) is getattr(type(self.ctx), b) for a, b in ctx_pairs)
            has = all(hasattr(s, n) for n in ("get", "put", "delete", "list", "transaction", "sync", "sql", "kv"))
            return [same, same_ctx, has, callable(self.ctx.abort)]

    async with open_runtime(bindings={"N": Names}) as rt:
        assert await rt.env.N.getByName("a").check() == [True, True, True, True]


async def test_ctx_id_inside_the_object_equals_the_stub_id() -> None:
    async with open_runtime(bindings={"ECHO": Echo}) as rt:
        stub = rt.env.ECHO.getByName("bob")
        assert await stub.identity() == {"id": stub.id.toString(), "name": "bob", "jurisdiction": None}


class SnakeSockets(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.events = env.EVENTS

    async def fetch(self, request):
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server)
        return Response(None, status=101, web_socket=client)

    async def web_socket_message(self, ws, message):
        self.events.append(("message", message))
        ws.send(f"echo {message}")

    async def web_socket_close(self, ws, code, reason, was_clean):
        self.events.append(("close", code, reason, was_clean))


async def test_websocket_handlers_may_use_snake_case_names() -> None:
    events: list[tuple] = []
    async with open_runtime(bindings={"WS": SnakeSockets}, vars={"EVENTS": events}) as rt:
        client = await rt.connect_websocket("https://host/WS/room/")
        await client.send("hi")
        assert await client.receive() == "echo hi"
        await client.disconnect(1000, "bye")
        await trio.testing.wait_all_tasks_blocked()
    assert events[0] == ("message", "hi")
    assert events[1][:2] == ("close", 1000)


async def test_find_handler_resolves_cloudflare_and_snake_spellings() -> None:
    snake = SnakeSockets.__new__(SnakeSockets)
    assert find_handler(snake, "webSocketMessage") == snake.web_socket_message
    assert find_handler(snake, "webSocketError") is None
    assert find_handler(snake, "alarm") is None  # the base class defines no handlers
    assert find_handler(Echo.__new__(Echo), "fetch") is not None
