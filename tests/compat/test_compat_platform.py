"""The ``workers``, ``js`` and ``pyodide`` modules, used the way Cloudflare's Python Workers docs write code.

Each test writes a small project (wrangler file + ``src/entry.py``) and
serves it through the harness the pytest plugin's ``dohost`` fixture uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.compat._platform_support import open_project, serve_echo
from wrangler_compat.config._project import forget_modules_under
from wrangler_compat.platform import NotProvidedError, install_modules

install_modules()

JS_GLOBALS = """
from urllib.parse import urlparse

from js import JSON, URL, Date, Math, Object, Response, crypto, Uint8Array, TextEncoder, TextDecoder, btoa, atob
from pyodide.ffi import to_js
from workers import WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = URL.new(request.url)
        values = Uint8Array.new(16)
        crypto.getRandomValues(values)
        payload = {
            "uuid": crypto.randomUUID(),
            "random_bytes": len(values),
            "name": url.searchParams.get("name"),
            "path": url.pathname,
            "now_is_ms": Date.now() > 1e12,
            "floor": Math.floor(2.7),
            "round": Math.round(2.5),
            "json": JSON.parse(JSON.stringify(to_js({"a": [1, 2]}, dict_converter=Object.fromEntries))).to_py(),
            "text": TextDecoder.new().decode(TextEncoder.new().encode("héllo")),
            "b64": atob(btoa("hi")),
        }
        return Response.json(to_js(payload, dict_converter=Object.fromEntries))
"""


async def test_js_globals_answer_as_in_pyodide(tmp_path: Path) -> None:
    async with open_project(tmp_path, JS_GLOBALS) as dohost:
        response = await dohost.fetch("http://example.com/hello?name=ada")
        data = await response.json()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", data.pop("uuid"))
    assert data == {
        "random_bytes": 16,
        "name": "ada",
        "path": "/hello",
        "now_is_ms": True,
        "floor": 2,
        "round": 3,
        "json": {"a": [1, 2]},
        "text": "héllo",
        "b64": "hi",
    }
    assert response.headers.get("content-type") == "application/json"


def test_byte_helpers_refuse_bad_input_with_workerds_words() -> None:
    from js import DOMException, JsException, Uint8Array, atob, btoa, crypto

    with pytest.raises(DOMException, match=r"^InvalidCharacterError: btoa\(\) can only operate on characters in the Latin1"):
        btoa("ŝ")
    with pytest.raises(JsException, match=r"^InvalidCharacterError: atob\(\) called with invalid base64-encoded data\."):
        atob("@@@")
    assert atob(" aGk= ") == "hi"
    with pytest.raises(DOMException, match=r"^QuotaExceededError: getRandomValues\(\) only accepts buffers of size <= 64K but provided 65537 bytes\.$"):
        crypto.getRandomValues(Uint8Array.new(65537))


def test_crypto_random_uuid_differs_per_call() -> None:
    from js import crypto

    assert len({crypto.randomUUID() for _ in range(50)}) == 50


def test_to_js_round_trips_through_to_py() -> None:
    from js import Object
    from pyodide.ffi import JsProxy, to_js

    value = {"a": [1, {"b": b"x"}], "c": None, "d": 1.5}
    as_map = to_js(value)
    as_object = to_js(value, dict_converter=Object.fromEntries)
    assert not isinstance(as_map, JsProxy) and not isinstance(as_object, JsProxy)  # Python values, as now
    assert as_map.has("a") and as_map.size == 3  # a JS Map
    assert as_object.a[1].b.to_py() == memoryview(b"x")  # an Object: attributes, bytes as Uint8Array
    assert as_map.to_py() == {"a": [1, {"b": memoryview(b"x")}], "c": None, "d": 1.5}
    assert to_js([1, (2, 3)]).to_py() == [1, [2, 3]]


def test_create_proxy_and_once_callable_call_through_and_destroy() -> None:
    from pyodide.ffi import JsException, create_once_callable, create_proxy, destroy_proxies

    seen: list[int] = []
    proxy = create_proxy(seen.append)
    proxy(1)
    once = create_once_callable(seen.append)
    once(2)
    with pytest.raises(JsException, match=r"^Error: Object has already been destroyed$"):
        once(3)
    destroy_proxies([proxy])
    with pytest.raises(JsException):
        proxy(4)
    assert seen == [1, 2]


async def test_run_sync_completes_what_never_waits_and_refuses_what_would() -> None:
    import trio
    from pyodide.ffi import run_sync

    async def ready() -> int:
        return 7

    assert run_sync(ready()) == 7
    with pytest.raises(RuntimeError, match=r"^run_sync: the awaitable had to wait"):
        run_sync(trio.sleep(1))


def test_pyodide_version_is_the_one_cloudflare_runs_for_the_date_and_flags() -> None:
    import pyodide

    try:
        install_modules("2026-11-01", ["python_workers"])
        assert pyodide.__version__ == "0.28.2"
        install_modules("2025-03-01", ["python_workers"])
        assert pyodide.__version__ == "0.26.0a2"
        install_modules("2025-03-01", ["python_workers", "python_workers_20250116"])
        assert pyodide.__version__ == "0.28.2"
        install_modules("2026-11-01", ["python_workers", "python_workers_20260610"])
        assert pyodide.__version__ == "314.0.4"
    finally:
        install_modules()
    assert pyodide.__version__ == "0.28.2"


UNSUPPORTED_IN_HANDLER = """
from workers import WorkerEntrypoint, Response


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        from js import HTMLRewriter
        return Response("unreachable")
"""


async def test_a_missing_js_name_fails_at_the_import_naming_it(tmp_path: Path) -> None:
    async with open_project(tmp_path, UNSUPPORTED_IN_HANDLER) as dohost:
        with pytest.raises(NotProvidedError) as caught:
            await dohost.fetch("http://example.com/")
    assert str(caught.value) == (
        "js.HTMLRewriter is not provided by dohost (no HTML rewriting engine); see the compatibility "
        "table in README.md, section 'Running your Cloudflare Python Workers code'"
    )
    assert isinstance(caught.value, ImportError)


def test_missing_names_of_each_module_raise_not_provided() -> None:
    import js
    import pyodide.http
    import workers

    cases = ((workers, "workers", "NoSuchThing"), (js, "js", "setTimeout"),
             (pyodide.http, "pyodide.http", "open_url"))  # fmt: skip
    for module, label, name in cases:
        with pytest.raises(NotProvidedError, match=rf"^{re.escape(label)}\.{name} is not provided by dohost"):
            getattr(module, name)
    assert not hasattr(js, "__path__")  # dunders stay ordinary AttributeErrors


def test_import_from_javascript_gives_cloudflare_workers_only() -> None:
    import workers

    assert workers.import_from_javascript("cloudflare:workers").DurableObject is workers.DurableObject
    with pytest.raises(NotProvidedError, match=r"only 'cloudflare:workers' can be imported"):
        workers.import_from_javascript("cloudflare:sockets")


def test_wrangler_compat_keeps_its_old_module_paths() -> None:
    import js
    import workers
    import wrangler_compat.js
    import wrangler_compat.workers

    assert wrangler_compat.workers is workers and wrangler_compat.js is js


# ----------------------------------------------------------------- outbound fetch

FETCHER = """
import json

from js import Blob, FormData, URLSearchParams
from pyodide.http import pyfetch
from workers import File, Request, Response, WorkerEntrypoint, fetch


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        target = request.headers.get("x-target")
        kind = request.headers.get("x-kind")
        if kind == "str":
            reply = await fetch(target + "/a", method="POST", body="plain", headers={"x-test": "1"})
        elif kind == "bytes":
            reply = await fetch(target + "/b", method="PUT", body=b"\\x00\\x01")
        elif kind == "form":
            form = FormData.new()
            form.append("field", "value")
            form.append("upload", File(["file body"], "notes.txt", content_type="text/plain"))
            reply = await fetch(target + "/c", method="POST", body=form)
        elif kind == "blob":
            reply = await fetch(target + "/d", method="POST", body=Blob.new(["{}"], type="application/json"))
        elif kind == "params":
            reply = await fetch(target + "/e", method="POST", body=URLSearchParams.new({"q": "a b"}))
        elif kind == "request":
            reply = await fetch(Request(target + "/f?x=1", method="DELETE", headers={"x-test": "req"}))
        elif kind == "list":
            reply = await fetch(target + "/l", method="POST", body=["a", 1, 2.0, None, True, ["x", "y"]])
        elif kind == "json":
            reply = await fetch(target + "/g", method="POST", body=json.dumps({"k": 1}),
                                headers={"content-type": "application/json"})
        else:
            got = await pyfetch(target + "/h", method="PATCH", body="py")
            data = await got.json()
            data["fetch_response"] = [got.status, got.ok, got.headers["x-echo"], got.status_text]
            return Response.json(data)
        return Response(await reply.text(), status=reply.status, headers={"content-type": "application/json"})
"""


@pytest.mark.slow
async def test_outbound_fetch_sends_each_body_type_as_javascript_would(tmp_path: Path) -> None:
    async with serve_echo() as target, open_project(tmp_path, FETCHER) as dohost:

        async def call(kind: str) -> dict[str, str]:
            response = await dohost.fetch("http://worker/", headers={"x-target": target, "x-kind": kind})
            assert response.status == 200, await response.text()
            return json.loads(await response.text())

        assert await call("str") == {
            "method": "POST", "path": "/a", "query": "", "content_type": "text/plain;charset=UTF-8",
            "x_test": "1", "body": "plain",
        }  # fmt: skip
        got = await call("bytes")
        assert (got["method"], got["content_type"], got["body"]) == ("PUT", None, "\x00\x01")
        got = await call("form")
        assert got["content_type"].startswith("multipart/form-data; boundary=")
        assert 'name="field"\r\n\r\nvalue' in got["body"]
        assert 'name="upload"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\nfile body' in got["body"]
        got = await call("blob")
        assert (got["content_type"], got["body"]) == ("application/json", "{}")
        got = await call("params")
        assert (got["content_type"], got["body"]) == ("application/x-www-form-urlencoded;charset=UTF-8", "q=a+b")
        got = await call("request")
        assert (got["method"], got["path"], got["query"], got["x_test"]) == ("DELETE", "/f", "x=1", "req")
        got = await call("list")  # String(array), as the JS Array Pyodide makes is sent
        assert (got["content_type"], got["body"]) == ("text/plain;charset=UTF-8", "a,1,2,,true,x,y")
        got = await call("json")
        assert (got["content_type"], json.loads(got["body"])) == ("application/json", {"k": 1})
        got = await call("pyfetch")
        assert (got["method"], got["body"], got["fetch_response"]) == ("PATCH", "py", [200, True, "yes", "OK"])


async def test_fetch_refuses_a_dict_body_before_sending_anything() -> None:
    import workers

    with pytest.raises(TypeError, match=r"^fetch: body: expected str, bytes, FormData, Blob, URLSearchParams, list or None, got dict \(serialise it first: body=json.dumps\(data\)\)$"):
        await workers.fetch("http://127.0.0.1:9/", method="POST", body={"a": 1})


async def test_a_fetch_that_cannot_connect_raises_an_os_error_naming_the_url() -> None:
    import socket

    import workers
    from pyodide.http import AbortError, pyfetch

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/x"
    with pytest.raises(ConnectionError, match=rf"^fetch failed: GET {re.escape(url)}: "):
        await workers.fetch(url)
    with pytest.raises(AbortError, match=rf"^fetch failed: GET {re.escape(url)}: ") as caught:
        await pyfetch(url)
    assert isinstance(caught.value, OSError)


@pytest.mark.slow
async def test_pyfetch_response_reads_once_and_raises_for_status() -> None:
    from pyodide.http import BodyUsedError, HttpStatusError, pyfetch

    async with serve_echo() as target:
        response = await pyfetch(target + "/x", headers={"x-status": "404"})
        assert (response.status, response.ok, response.status_text) == (404, False, "Not Found")
        copy = response.clone()
        assert (await response.json())["path"] == "/x"
        with pytest.raises(BodyUsedError, match=r"^Response body is already used$"):
            await response.text()
        assert json.loads(await copy.string())["path"] == "/x"
        with pytest.raises(HttpStatusError, match=rf"^404 Client Error: Not Found for url: {re.escape(target)}/x$"):
            response.raise_for_status()
        followed = await pyfetch(target + "/redirect")
        assert (followed.status, followed.redirected, (await followed.json())["path"]) == (200, True, "/landed")


def test_a_pyfetch_responses_type_is_workerds_default() -> None:
    # CF: pyodide http FetchResponse.type is the JS response's; workerd api/http.h Response::getType
    from objects import Response
    from pyodide.http import FetchResponse

    assert FetchResponse("https://example.com/", Response("x")).type == "default"


@pytest.mark.slow
async def test_a_workers_fetch_response_has_the_pyodide_fetch_response_api_it_inherits_on_cloudflare() -> None:
    import workers
    from pyodide.http import HttpStatusError

    async with serve_echo() as target:
        missing = await workers.fetch(target + "/x", headers={"x-status": "404"})
        with pytest.raises(HttpStatusError, match=rf"^404 Client Error: Not Found for url: {re.escape(target)}/x$"):
            missing.raise_for_status()
        found = await workers.fetch(target + "/y")
        found.raise_for_status()  # 2xx: nothing
        assert found.type == "default"
        assert json.loads(await found.string())["path"] == "/y"
        view = await (await workers.fetch(target + "/z")).memoryview()
        assert isinstance(view, memoryview) and json.loads(bytes(view))["path"] == "/z"
        blob = await (await workers.fetch(target + "/b")).blob()
        assert blob.content_type.startswith("application/json") and json.loads(await blob.text())["path"] == "/b"
        assert found.redirected is False
        followed = await workers.fetch(target + "/redirect")
        assert (followed.status, followed.redirected, followed.clone().redirected) == (200, True, True)
        assert (await followed.json())["path"] == "/landed"
        unfollowed = await workers.fetch(target + "/redirect", redirect="manual")
        assert (unfollowed.status, unfollowed.redirected) == (302, False)
        kept = await workers.fetch(workers.Request(target + "/redirect", redirect="manual"))
        assert kept.status == 302  # fetch(request) takes the request's redirect mode
        with pytest.raises(TypeError, match=r'^Invalid redirect value, must be one of "follow" or "manual"'):
            await workers.fetch(target + "/redirect", redirect="error")
        replaced = found.replace_body("new body")
        assert (replaced.status, await replaced.text()) == (found.status, "new body")
        assert replaced.headers.get("content-type") == found.headers.get("content-type")


# ----------------------------------------------------------------- outbound WebSocket

WS_CLIENT = """
import json

import js
import trio  # only for the test's wait_closed(); the rest is Cloudflare's example shape
from pyodide.ffi import create_proxy
from workers import DurableObject, Response, WorkerEntrypoint


class Consumer(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.events = []
        self.closed = trio.Event()

    async def start(self, url):
        ws = js.WebSocket.new(url)
        self.ws = ws
        ws.addEventListener("open", create_proxy(self.on_open))
        ws.addEventListener("message", create_proxy(self.on_message))
        ws.addEventListener("close", create_proxy(self.on_close))

    async def on_open(self, event):
        self.events.append("open")
        self.ws.send("hello")
        self.ws.send(b"bin")

    def on_message(self, event):
        self.events.append(["message", event.data if isinstance(event.data, str) else event.data.decode()])
        self.ctx.storage.kv.put("last", event.data if isinstance(event.data, str) else "bytes")
        if len(self.events) == 3:
            self.ws.send("close-me")

    async def on_close(self, event):
        self.events.append(["close", event.code, event.reason, event.wasClean])
        self.closed.set()

    async def wait_closed(self):
        await self.closed.wait()

    def report(self):
        return {"events": self.events, "last": self.ctx.storage.kv.get("last")}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("unused")
"""


@pytest.mark.slow
async def test_an_object_consumes_an_outbound_websocket_with_js_event_listeners(tmp_path: Path) -> None:
    import trio

    async with serve_echo() as target, open_project(tmp_path, WS_CLIENT, bindings={"CONSUMER": "Consumer"}) as dohost:
        stub = dohost.env.CONSUMER.getByName("jetstream")
        await stub.start(target.replace("http://", "ws://") + "/stream")
        with trio.fail_after(10):  # a bound on a real socket, not a sleep
            await stub.wait_closed()
        report = await stub.report()
    assert report == {
        "events": ["open", ["message", "hello"], ["message", "bin"], ["close", 4001, "bye", True]],
        "last": "bytes",
    }


@pytest.mark.slow
async def test_ctx_abort_in_a_websocket_listener_resets_the_object_and_nothing_else(tmp_path: Path) -> None:
    import trio

    import js
    import workers
    from runtime import open_runtime
    from tests.conftest import CallLog

    class Resets(CallLog):
        def __init__(self) -> None:
            super().__init__()
            self.reset = trio.Event()

        def on_reset(self, key: tuple[str, str], error: BaseException) -> None:
            super().on_reset(key, error)
            self.reset.set()

    class Listener(workers.DurableObject):
        def __init__(self, ctx, env):  # type: ignore[no-untyped-def]
            super().__init__(ctx, env)
            self.seen: list[str] = []

        def listen(self, url: str) -> None:
            ws = js.WebSocket.new(url)
            ws.addEventListener("open", lambda event: ws.send("abort-me"))
            ws.addEventListener("message", lambda event: self.ctx.abort(f"got {event.data}"))
            self.seen.append("listening")

        def seen_so_far(self) -> list[str]:
            return self.seen

    observer = Resets()
    async with serve_echo() as target:
        async with open_runtime(bindings={"L": Listener}, data_dir=tmp_path, observer=observer) as rt:
            stub = rt.env.L.getByName("a")
            await stub.listen(target.replace("http://", "ws://") + "/s")
            with trio.fail_after(10):  # a bound on a real socket, not a sleep
                await observer.reset.wait()
            assert ("reset", "L", "got abort-me") in observer.calls
            assert await stub.seen_so_far() == []  # the runtime lives on; the object started afresh


async def test_an_outbound_websocket_outside_an_object_is_refused() -> None:
    import js

    with pytest.raises(NotProvidedError, match=r"^js\.WebSocket is not provided by dohost \(outbound WebSockets are provided inside a Durable Object only\)"):
        js.WebSocket.new("ws://127.0.0.1:9/")


OWN_ASGI = """
import asgi
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response(getattr(asgi, "MARK", "dohost's"))
"""


async def test_a_projects_own_asgi_module_wins_over_the_sdk_alias(tmp_path: Path) -> None:
    import sys

    sys.modules.pop("asgi", None)  # a previous project in this process may have imported dohost's
    (tmp_path / "project" / "src").mkdir(parents=True)
    (tmp_path / "project" / "src" / "asgi.py").write_text('MARK = "vendored"\n')
    try:
        async with open_project(tmp_path, OWN_ASGI) as dohost:
            assert await (await dohost.fetch("http://example.com/")).text() == "vendored"
    finally:
        forget_modules_under(tmp_path / "project")  # what a fresh project load does
        sys.modules.pop("asgi", None)
    import asgi

    assert asgi.fetch.__module__ == "wrangler_compat.platform.workers.asgi"


@pytest.mark.slow
async def test_an_objects_outbound_fetch_leaves_only_after_its_writes_commit(call_log, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import workers
    from runtime import open_runtime

    class Notifier(workers.DurableObject):
        async def notify(self, url: str) -> int:
            self.ctx.storage.kv.put("sent", True)
            response = await workers.fetch(url, method="POST", body="ping")
            return response.status

    async with serve_echo(lambda path: call_log.calls.append(("delivered", path))) as target:
        async with open_runtime(bindings={"N": Notifier}, data_dir=tmp_path, observer=call_log) as rt:
            stub = rt.env.N.getByName("a")
            call_log.calls.clear()
            assert await stub.notify(target + "/hook") == 200
            effects = [c for c in call_log.calls if c[0] in ("commit", "delivered")]
            assert effects == [("commit", "N"), ("delivered", "/hook")]
            call_log.calls.clear()
            call_log.fail_next_commits = 1
            with pytest.raises(Exception, match="injected commit failure"):
                await stub.notify(target + "/never")
            assert ("delivered", "/never") not in call_log.calls


PATCH_ENV = """
from workers import Response, WorkerEntrypoint, env, patch_env


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        before = env.GREETING
        with patch_env(GREETING="patched", EXTRA="x"):
            inside = [env.GREETING, env["EXTRA"], self.env.GREETING]
        return Response.json({"before": before, "inside": inside, "after": env.GREETING})
"""


async def test_patch_env_overrides_workers_env_inside_the_block_only(tmp_path: Path) -> None:
    async with open_project(tmp_path, PATCH_ENV, vars={"GREETING": "hello"}) as dohost:
        response = await dohost.fetch("http://example.com/")
        assert await response.json() == {"before": "hello", "inside": ["patched", "x", "hello"], "after": "hello"}


FORM_READER = """
from workers import File, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        form = await request.form_data()
        upload = form.get("doc")
        return Response.json({
            "fields": form.get_all("tag"),
            "name": form["name"],
            "doc": [upload.name, upload.content_type, await upload.text()] if isinstance(upload, File) else None,
        })
"""


async def test_a_worker_reads_multipart_and_urlencoded_forms(tmp_path: Path) -> None:
    from objects import FormData, Request, encode_form

    form = FormData({"name": "ada"})
    form.append("tag", "a")
    form.append("tag", "b")
    from workers import File

    form.append("doc", File(["héllo"], "d.txt", content_type="text/plain"))
    body, content_type = encode_form(form)
    async with open_project(tmp_path, FORM_READER) as dohost:
        response = await dohost.fetch(
            "http://example.com/", method="POST", body=body, headers={"content-type": content_type}
        )
        assert await response.json() == {"fields": ["a", "b"], "name": "ada", "doc": ["d.txt", "text/plain", "héllo"]}
        response = await dohost.fetch(
            "http://example.com/", method="POST", body="name=bo&tag=x+y",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert await response.json() == {"fields": ["x y"], "name": "bo", "doc": None}
    plain = Request("http://example.com/", method="POST", body="{}", headers={"content-type": "application/json"})
    with pytest.raises(TypeError, match=r"^Unrecognized Content-Type header value\. FormData can only parse"):
        await plain.formData()


FORM_WRITER = """
from workers import Blob, FormData, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/blob"):
            return Response(Blob(["<b>hi</b>"], "text/html"))
        form = FormData({"answer": "42"})
        form.append("notes", Blob(["n"], "text/plain"), "n.txt")
        return Response(form)
"""


async def test_a_worker_answers_with_form_data_and_blob_bodies(tmp_path: Path) -> None:
    async with open_project(tmp_path, FORM_WRITER) as dohost:
        blob = await dohost.fetch("http://example.com/blob")
        assert (blob.headers.get("content-type"), await blob.text()) == ("text/html", "<b>hi</b>")
        response = await dohost.fetch("http://example.com/form")
        assert response.headers.get("content-type").startswith("multipart/form-data; boundary=")
        form = await response.form_data()
        assert form["answer"] == "42" and (form["notes"].name, await form["notes"].text()) == ("n.txt", "n")


def test_every_sdk_module_path_imports() -> None:
    import importlib

    for name in ("workers", "workers.wsgi", "workers.asgi", "workers.workflows", "js", "pyodide", "pyodide.ffi", "pyodide.http"):
        assert importlib.import_module(name).__name__.startswith("wrangler_compat.platform")
    from workers.workflows import NonRetryableError

    assert issubclass(NonRetryableError, Exception)
