"""The inspector: server-rendered pages under ``/__dohost/inspector`` and the JSON API under ``/__dohost/api``.

* Every page has a JSON twin (``?format=json``) made from the same dict
  (:mod:`._views`); the pages refresh themselves by polling it.
* It reads through :class:`runtime.Observer` only, so looking never wakes an
  object or delays its eviction.
* Access: on ``dohost dev`` open (the server listens on loopback); on
  ``dohost serve`` only with the deploy token -- ``Authorization: Bearer``,
  or once as ``?token=`` in a browser, which sets an HttpOnly cookie. No
  token configured: 403, as for the deploy API.
* The query box runs read-only statements; writing ones are refused unless
  the server was started with the dev-only switch (``dohost dev
  --inspector-writes``). The API's ``sql`` endpoint (``dohost do sql``) may
  write when asked to; on ``serve`` it sits behind the token like the rest.
* A POST from another origin (a page elsewhere driving the buttons) is 403.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from persistence import ObjectLockedError, PersistenceError, PitrError
from runtime import DohostRuntimeError, Observer, ReadOnlyQueryError, jsonable

from ._views import object_detail, object_list, query_result

__all__ = ["InspectorOptions", "inspector_routes"]

_COOKIE = "dohost_inspector"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_TEMPLATES.filters["tojson_compact"] = lambda v: json.dumps(v, ensure_ascii=False, sort_keys=False)


class InspectorOptions(msgspec.Struct, frozen=True, kw_only=True):
    #: ``dohost serve``: the token every request must carry (None there: the inspector is off).
    token: str | None = None
    token_required: bool = False
    #: The dev-only switch: the query box may write.
    allow_writes: bool = False


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def inspector_routes(get_runtime: Callable[[], Any], options: InspectorOptions) -> list[BaseRoute]:
    """The routes to mount in front of the Worker (``build_app(extra_routes=...)``)."""

    def observer() -> Observer:
        rt = get_runtime()
        if rt is None:
            raise _Refused(503, "no Worker is running (the server is starting, reloading or empty)")
        return Observer(rt)

    def check(request: Request) -> Response | None:
        if request.method == "POST" or request.method in ("PUT", "DELETE"):
            origin = request.headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
                return _error(request, 403, f"refused a {request.method} from another origin ({origin})")
        if not options.token_required:
            return None
        if options.token is None:
            return _error(request, 403, "the inspector is disabled: start `dohost serve` with --token or DOHOST_TOKEN")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        candidates = [given.strip()] if scheme.lower() == "bearer" else []
        candidates += [request.cookies.get(_COOKIE, ""), request.query_params.get("token", "")]
        if any(c and hmac.compare_digest(c.encode(), options.token.encode()) for c in candidates):
            return None
        return _error(request, 401, "a valid token is required (Authorization: Bearer <token>, or ?token= once)")

    def endpoint(handler: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if (denied := check(request)) is not None:
                return denied
            given = request.query_params.get("token")
            if options.token_required and given and request.method == "GET":
                # A browser brought the token in the URL: keep it in a cookie, drop it from the address bar.
                query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                out = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
                out.set_cookie(_COOKIE, given, httponly=True, samesite="strict", path="/__dohost/")
                return out
            try:
                return await handler(request, observer())
            except _Refused as exc:
                return _error(request, exc.status, str(exc))
            except ObjectLockedError as exc:
                return _error(request, 409, str(exc))
            except (PersistenceError, DohostRuntimeError, ValueError, TypeError) as exc:
                status = 404 if "no Durable Object binding" in str(exc) else 400
                return _error(request, status, str(exc))

        return run

    async def list_page(request: Request, obs: Observer) -> Response:
        binding = request.query_params.get("binding") or None
        data = object_list(obs, binding=binding, name=request.query_params.get("name") or None)
        return _render(request, "objects.html", data)

    async def list_api(request: Request, obs: Observer) -> Response:
        binding = request.path_params.get("binding") or request.query_params.get("binding") or None
        return JSONResponse(object_list(obs, binding=binding, name=request.query_params.get("name") or None))

    def target(request: Request, obs: Observer) -> tuple[str, Any]:
        binding = request.path_params["binding"]
        return binding, obs.object_id(binding, request.path_params["object"])

    async def object_page(request: Request, obs: Observer, extra: dict[str, Any] | None = None) -> Response:
        binding, oid = target(request, obs)
        offset = _int(request.query_params.get("offset", "0"), "offset")
        data = await object_detail(obs, binding, oid, table=request.query_params.get("table") or None, offset=offset)
        data["allow_writes"] = options.allow_writes
        data.update({"query": None, "restored": None, **(extra or {})})
        return _render(request, "object.html", data)

    async def run_sql(obs: Observer, binding: str, oid: Any, sql: str, write: bool) -> dict[str, Any]:
        if not sql.strip():
            raise _Refused(400, "sql: expected a statement, got nothing")
        try:
            result = await obs.query(binding, oid, sql)
            if result is None:
                raise _Refused(404, f"{binding} {oid.toString()}: the object has no storage yet")
            return {"sql": sql, "wrote": False, **query_result(result), "error": None}
        except ReadOnlyQueryError:
            if not write:
                raise

        def in_object(db: Any) -> dict[str, Any]:
            cur = db.sql.exec(sql)
            rows = list(cur.raw())
            return {"columns": cur.columnNames, "rows": rows, "rows_written": cur.rowsWritten}

        out = await obs.write(binding, oid, in_object)
        rows = [[jsonable(v) for v in r] for r in out["rows"]]
        return {"sql": sql, "wrote": True, "columns": out["columns"], "rows": rows, "total": None,
                "truncated": False, "rows_written": out["rows_written"], "error": None}

    async def query_page(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        # An HTML form posts application/x-www-form-urlencoded (the stdlib parses it).
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        sql = form.get("sql", [""])[0]
        try:
            query = await run_sql(obs, binding, oid, sql, options.allow_writes)
        except ReadOnlyQueryError as exc:
            hint = "" if options.allow_writes else " (the query box writes only under `dohost dev --inspector-writes`)"
            query = {"sql": sql, "error": f"{exc}{hint}", "columns": [], "rows": []}
        except (PersistenceError, _Refused) as exc:
            query = {"sql": sql, "error": str(exc), "columns": [], "rows": []}
        except Exception as exc:  # SQLite's own complaint about the statement
            query = {"sql": sql, "error": f"{type(exc).__name__}: {exc}", "columns": [], "rows": []}
        if _wants_json(request):
            return JSONResponse(query, status_code=400 if query.get("error") else 200)
        return await object_page(request, obs, {"query": query})

    async def action(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        what = request.path_params["action"]
        result: Any
        if what == "alarm-run":
            result = {"ran": await obs.run_alarm(binding, oid)}
        elif what == "alarm-delete":
            await obs.delete_alarm(binding, oid)
            result = {"deleted": True}
        elif what == "evict":
            result = {"evicted": await obs.evict(binding, oid)}
        elif what == "abort":
            result = {"aborted": obs.abort(binding, oid)}
        elif what == "restore":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            bookmark = form.get("bookmark", [""])[0]
            try:
                restored = {"bookmark": bookmark, "undo": await obs.restore(binding, oid, bookmark), "error": None}
            except PitrError as exc:
                restored = {"bookmark": bookmark, "undo": None, "error": str(exc)}
            if _wants_json(request):
                return JSONResponse({"action": what, **restored, "state": obs.state(binding, oid)},
                                    status_code=400 if restored["error"] else 200)
            return await object_page(request, obs, {"restored": restored})
        else:
            raise _Refused(404, f"no action {what!r} (alarm-run, alarm-delete, evict, abort, restore)")
        if _wants_json(request):
            return JSONResponse({"action": what, **result, "state": obs.state(binding, oid)})
        return RedirectResponse(f"/__dohost/inspector/{binding}/{oid.toString()}", status_code=303)

    # ---- the API `dohost do` uses (JSON in, JSON out) ----------------------------
    async def detail_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        offset = _int(request.query_params.get("offset", "0"), "offset")
        return JSONResponse(await object_detail(obs, binding, oid, table=request.query_params.get("table"), offset=offset))

    async def sql_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        body = await _json_body(request)
        try:
            return JSONResponse(await run_sql(obs, binding, oid, str(body.get("sql", "")), bool(body.get("write", True))))
        except PersistenceError:
            raise
        except _Refused:
            raise
        except Exception as exc:
            raise _Refused(400, f"{type(exc).__name__}: {exc}") from None

    async def kv_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        key = request.path_params.get("key")
        if request.method == "GET":
            prefix = request.query_params.get("prefix", "")
            entries = await obs.kv(binding, oid, prefix=prefix)
            if key is None:
                return JSONResponse({"entries": [{"key": k, "value": jsonable(v)} for k, v in entries]})
            found = dict(await obs.kv(binding, oid, prefix=key, limit=1))
            if not found or key not in found:
                raise _Refused(404, f"no KV entry {key!r}")
            return JSONResponse({"key": key, "value": jsonable(found[key])})
        if key is None:
            raise _Refused(405, "PUT and DELETE name a key: .../kv/<key>")
        if request.method == "PUT":
            body = await _json_body(request)
            if "value" not in body:
                raise _Refused(400, 'expected a JSON body {"value": ...}')
            await obs.write(binding, oid, lambda db: db.kv.put(key, body["value"]))
            return JSONResponse({"key": key, "stored": True})
        deleted = await obs.write(binding, oid, lambda db: db.kv.delete(key))
        return JSONResponse({"key": key, "deleted": bool(deleted)})

    async def alarm_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        if request.method == "DELETE":
            await obs.delete_alarm(binding, oid)
            return JSONResponse({"alarm": None})
        if request.url.path.endswith("/run"):
            return JSONResponse({"ran": await obs.run_alarm(binding, oid)})
        return JSONResponse({"alarm": obs.view(binding, oid).alarm})

    async def bookmarks_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        at = request.query_params.get("at")
        if at is None and request.url.path.endswith("/bookmarks"):
            points = await obs.restore_points(binding, oid, _int(request.query_params.get("limit", "20"), "limit"))
            return JSONResponse({"bookmarks": [msgspec.to_builtins(p) for p in points]})
        try:
            at_ms = None if at is None else float(at)
        except ValueError:
            raise _Refused(400, f"at: expected milliseconds since the epoch, got {at!r}") from None
        return JSONResponse({"bookmark": await obs.bookmark(binding, oid, at_ms), "at": at_ms})

    async def restore_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        bookmark = (await _json_body(request)).get("bookmark")
        if not isinstance(bookmark, str):
            raise _Refused(400, 'expected a JSON body {"bookmark": "<bookmark>"}')
        undo = await obs.restore(binding, oid, bookmark)
        return JSONResponse({"restored": bookmark, "undo": undo, "state": obs.state(binding, oid)})

    async def export_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        dump = await obs.export(binding, oid)
        if dump is None:
            raise _Refused(404, f"{binding} {oid.toString()}: the object has no storage")
        return PlainTextResponse(dump, media_type="application/sql")

    async def import_api(request: Request, obs: Observer) -> Response:
        binding, oid = target(request, obs)
        text = (await request.body()).decode("utf-8")
        await obs.import_dump(binding, oid, text)
        return JSONResponse({"imported": True, "id": oid.toString()})

    one = "/__dohost/api/objects/{binding}/{object}"
    page = "/__dohost/inspector/{binding}/{object}"
    return [
        Route("/__dohost/inspector", endpoint(list_page), methods=["GET"]),
        Route("/__dohost/api/objects", endpoint(list_api), methods=["GET"]),
        Route("/__dohost/api/objects/{binding}", endpoint(list_api), methods=["GET"]),
        Route(one, endpoint(detail_api), methods=["GET"]),
        Route(one + "/sql", endpoint(sql_api), methods=["POST"]),
        Route(one + "/kv", endpoint(kv_api), methods=["GET"]),
        Route(one + "/kv/{key:path}", endpoint(kv_api), methods=["GET", "PUT", "DELETE"]),
        Route(one + "/alarm", endpoint(alarm_api), methods=["GET", "DELETE"]),
        Route(one + "/alarm/run", endpoint(alarm_api), methods=["POST"]),
        Route(one + "/export", endpoint(export_api), methods=["GET"]),
        Route(one + "/bookmarks", endpoint(bookmarks_api), methods=["GET"]),
        Route(one + "/bookmark", endpoint(bookmarks_api), methods=["GET"]),
        Route(one + "/restore", endpoint(restore_api), methods=["POST"]),
        Route(one + "/import", endpoint(import_api), methods=["POST"]),
        Route(page, endpoint(object_page), methods=["GET"]),
        Route(page + "/query", endpoint(query_page), methods=["POST"]),
        Route(page + "/{action}", endpoint(action), methods=["POST"]),
    ]


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise _Refused(400, f"{what}: expected a whole number >= 0, got {text!r}")
    return int(text)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise _Refused(400, f"expected a JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise _Refused(400, f"expected a JSON object, got {type(body).__name__}")
    return body


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json" or request.url.path.startswith("/__dohost/api/")


def _render(request: Request, template: str, data: dict[str, Any]) -> Response:
    if _wants_json(request):
        return JSONResponse(data)
    return HTMLResponse(_TEMPLATES.get_template(template).render(**data, path=request.url.path))


def _error(request: Request, status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if request.query_params.get("format") == "json" or request.url.path.startswith("/__dohost/api/") \
            or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    body = _TEMPLATES.get_template("error.html").render(status=status, message=message, path=request.url.path)
    return HTMLResponse(body, status_code=status, headers=headers)
