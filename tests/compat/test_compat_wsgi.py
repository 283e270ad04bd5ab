"""Flask and Django through ``workers.wsgi``, FastAPI through ``asgi``: the SDK's adapters, run for real.

The programs are written as Cloudflare's Python Workers examples write
them: the app is built in the Worker module and the entrypoint's ``fetch``
hands each request to ``wsgi.fetch(app, request, self.env)`` or
``asgi.fetch(app, request, self.env)``. Bindings reach the app through
``environ["workers.env"]`` / ``scope["env"]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compat._platform_support import open_project, write_project
from tests.e2e._e2e_support import run_dohost
from wrangler_compat.platform import install_modules

install_modules()

FLASK = """
from flask import Flask, jsonify, request

from workers import DurableObject, WorkerEntrypoint, wsgi

app = Flask(__name__)


class Counter(DurableObject):
    def increment(self, by):
        value = (self.ctx.storage.kv.get("n") or 0) + by
        self.ctx.storage.kv.put("n", value)
        return value


@app.route("/hello/<name>")
def hello(name):
    return f"Hello, {name}! ({request.args.get('lang', 'en')})"


@app.post("/echo")
def echo():
    return jsonify(got=request.get_json(), agent=request.headers.get("user-agent"))


@app.route("/form", methods=["POST"])
def form():
    upload = request.files["doc"]
    return jsonify(field=request.form["field"], doc=upload.read().decode(), filename=upload.filename)


@app.route("/cookie")
def cookie():
    response = app.make_response("set")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response, 201


@app.route("/missing")
def missing():
    return "nope", 404


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.url.endswith("/count"):
            stub = self.env.COUNTER.getByName("flask")
            return wsgi_count(await stub.increment(2))
        return await wsgi.fetch(app, request, self.env)


def wsgi_count(value):
    from workers import Response
    return Response(str(value))
"""


async def test_a_flask_app_runs_through_the_wsgi_adapter(tmp_path: Path) -> None:
    async with open_project(tmp_path, FLASK, bindings={"COUNTER": "Counter"}) as dohost:
        response = await dohost.fetch("http://example.com/hello/ada%20b?lang=fr")
        assert (response.status, await response.text()) == (200, "Hello, ada b! (fr)")
        response = await dohost.fetch(
            "http://example.com/echo", method="POST", body=json.dumps({"x": [1]}),
            headers={"content-type": "application/json", "user-agent": "pytest"},
        )  # fmt: skip
        assert await response.json() == {"got": {"x": [1]}, "agent": "pytest"}
        boundary = "XyZ"
        form = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="field"\r\n\r\nv\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="doc"; filename="d.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\nbody text\r\n--{boundary}--\r\n"
        )
        response = await dohost.fetch(
            "http://example.com/form", method="POST", body=form,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert await response.json() == {"field": "v", "doc": "body text", "filename": "d.txt"}
        response = await dohost.fetch("http://example.com/cookie")
        assert response.status == 201 and response.headers.getSetCookie() == ["a=1; Path=/", "b=2; Path=/"]
        response = await dohost.fetch("http://example.com/missing")
        assert (response.status, response.status_text, await response.text()) == (404, "NOT FOUND", "nope")
        assert await (await dohost.fetch("http://example.com/count")).text() == "2"


DJANGO = """
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="compat-test",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
)
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import path

from workers import WorkerEntrypoint, wsgi


def index(request):
    return HttpResponse(f"django says hi to {request.GET.get('who', 'nobody')}")


def binding(request):
    env = request.META["workers.env"]
    return JsonResponse({"greeting": env.GREETING, "method": request.method, "body": request.body.decode()})


urlpatterns = [path("", index), path("env", binding)]
application = get_wsgi_application()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await wsgi.fetch(application, request, self.env)
"""


async def test_a_django_app_runs_through_the_wsgi_adapter_and_sees_the_env(tmp_path: Path) -> None:
    async with open_project(tmp_path, DJANGO, vars={"GREETING": "hallo"}) as dohost:
        response = await dohost.fetch("http://example.com/?who=ada")
        assert (response.status, await response.text()) == (200, "django says hi to ada")
        response = await dohost.fetch("http://example.com/env", method="PUT", body="payload")
        assert await response.json() == {"greeting": "hallo", "method": "PUT", "body": "payload"}
        missing = await dohost.fetch("http://example.com/nowhere")
        assert missing.status == 404


FASTAPI = """
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

import asgi
from workers import WorkerEntrypoint

started = []


@asynccontextmanager
async def lifespan(app):
    started.append("up")
    yield {"db": "connected"}
    started.append("down")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item, request: Request):
    return {"name": item.name, "double": item.price * 2, "state": request.state.db}


@app.get("/env")
async def read_env(req: Request):
    env = req.scope["env"]
    return {"greeting": env.GREETING, "lifespan": started}


@app.get("/boom")
async def boom():
    raise RuntimeError("boom")


@app.get("/dependency")
async def read_dependency(env=asgi.env):
    return {"greeting": env.GREETING}


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(app, request, self.env)
"""


async def test_a_fastapi_app_runs_through_the_asgi_adapter_with_lifespan_and_env(tmp_path: Path) -> None:
    async with open_project(tmp_path, FASTAPI, vars={"GREETING": "hej"}) as dohost:
        response = await dohost.fetch("http://example.com/items/5?q=x")
        assert (response.status, await response.json()) == (200, {"item_id": 5, "q": "x"})
        response = await dohost.fetch(
            "http://example.com/items", method="POST", body=json.dumps({"name": "pen", "price": 1.5}),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert await response.json() == {"name": "pen", "double": 3.0, "state": "connected"}
        response = await dohost.fetch("http://example.com/items", method="POST", body="{}",
                                       headers={"content-type": "application/json"})  # fmt: skip
        assert response.status == 422
        response = await dohost.fetch("http://example.com/env")
        assert await response.json() == {"greeting": "hej", "lifespan": ["up", "down"] * 3 + ["up"]}
        response = await dohost.fetch("http://example.com/dependency")
        assert await response.json() == {"greeting": "hej"}
        response = await dohost.fetch("http://example.com/boom")  # Starlette answers 500, then re-raises
        assert (response.status, await response.text()) == (500, "Internal Server Error")


async def test_an_asgi_app_failing_before_it_answers_raises_its_own_error() -> None:
    from objects import Request
    from workers import asgi

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")  # tolerated: lifespan is optional
        raise LookupError("handler failed")

    with pytest.raises(LookupError, match=r"^handler failed$"):
        await asgi.fetch(app, Request("http://example.com/"), {})


@pytest.mark.slow
async def test_a_flask_worker_answers_over_real_http_under_dohost_dev(tmp_path: Path) -> None:
    import httpx

    root = write_project(tmp_path / "flask", FLASK, bindings={"COUNTER": "Counter"})
    async with run_dohost(["dohost", "dev", "--port", "0"], cwd=root) as proc:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            reply = await client.get("/hello/web?lang=de")
            assert (reply.status_code, reply.text) == (200, "Hello, web! (de)")
            reply = await client.post("/echo", json={"a": 1}, headers={"user-agent": "httpx-test"})
            assert reply.json() == {"got": {"a": 1}, "agent": "httpx-test"}
            assert (await client.get("/count")).text == "2"
            assert (await client.get("/count")).text == "4"


pytest_plugins = ["pytester"]


def test_the_flask_worker_is_tested_with_the_dohost_fixture(pytester: pytest.Pytester) -> None:
    write_project(pytester.path, FLASK, bindings={"COUNTER": "Counter"})
    (pytester.path / "pytest.ini").write_text(
        "[pytest]\ntrio_mode = true\naddopts = --strict-markers -p no:cacheprovider\nfilterwarnings = error\n"
    )
    pytester.makepyfile(
        test_user="""
        import json

        from workers import wsgi  # importable in tests, as in the Worker


        async def test_flask_routes_and_the_counter(dohost):
            response = await dohost.fetch("http://example.com/hello/pytest")
            assert await response.text() == "Hello, pytest! (en)"
            response = await dohost.fetch("http://example.com/echo", method="POST", body=json.dumps([1]),
                                          headers={"content-type": "application/json"})
            assert (await response.json()).to_py() == {"got": [1], "agent": None}
            assert await (await dohost.fetch("http://example.com/count")).text() == "2"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


ABORTING_APP = """
from fastapi import FastAPI

import asgi
from workers import DurableObject, Response, WorkerEntrypoint

app = FastAPI()
instances = []


@app.get("/abort")
async def abort():
    instances[-1].ctx.abort("the app gave up")


@app.get("/count")
async def count():
    return {"instances": len(instances)}


class Site(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        instances.append(self)

    async def fetch(self, request):
        return await asgi.fetch(app, request, self.env)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await self.env.SITE.getByName("one").fetch(request)
"""


async def test_ctx_abort_inside_an_asgi_app_resets_the_object_not_the_runtime(tmp_path: Path) -> None:
    async with open_project(tmp_path, ABORTING_APP, bindings={"SITE": "Site"}) as dohost:
        assert await (await dohost.fetch("http://example.com/count")).json() == {"instances": 1}
        with pytest.raises(Exception, match="the app gave up"):
            await dohost.fetch("http://example.com/abort")
        assert await (await dohost.fetch("http://example.com/count")).json() == {"instances": 2}
