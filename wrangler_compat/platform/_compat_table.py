"""The README's compatibility table for the Python Workers platform modules, as data.

Each row names what user code writes (``workers.fetch``), what Cloudflare
gives, what dohost gives and what is missing. :func:`render` produces the
Markdown between the ``compat-table`` markers in README.md;
``tests/compat/test_compat_platform_table.py`` checks that the README holds
exactly that, that every public name of ``workers``/``js``/``pyodide`` has a
row, and that every name dohost refuses has its reason in the last column.
Regenerate with ``python -m wrangler_compat.platform._compat_table --write``.

To add a section (asyncio, bindings...), add a tuple of rows to
:data:`SECTIONS`; its title becomes a bold line above its table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import msgspec

__all__ = ["CompatRow", "SECTIONS", "render", "write_readme"]

START = "<!-- compat-table:start (generated from wrangler_compat/platform/_compat_table.py) -->"
END = "<!-- compat-table:end -->"


class CompatRow(msgspec.Struct, frozen=True, kw_only=True):
    names: str  #: Markdown, each name in backticks
    cloudflare: str
    dohost: str
    missing: str = ""


WORKERS_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`workers.Request`, `workers.Response`, `workers.FetchResponse`, `workers.Headers`",
        cloudflare="wrappers over JS `Request`/`Response`; `Headers` is a type alias",
        dohost="dohost's own classes (`objects`): same constructors (bodies `str`, bytes, `FormData`, `Blob`), `await .text()/.json()/.bytes()/.form_data()/.blob()`, `Response.json(data)`, a response's `pyodide.http.FetchResponse` API (`raise_for_status()`, `string()`, `memoryview()`, `replace_body()`, `type`, `redirected` after a followed redirect); `Request(..., redirect=)` and `request.redirect`/`keepalive`/`integrity` (`redirect` is `follow` or `manual`; `error` is refused in workerd's words, by `fetch` too); `request.headers` reads as the `http.client.HTTPMessage` the SDK builds (`headers[name]` is `None` for a missing header, repeated values joined with `\", \"` except `Set-Cookie`, `get_content_type()`, `get_param()`, `get_content_charset()` and Message's other reads) and keeps the JS methods (`has`, `set`, `getSetCookie`); a response's headers raise `KeyError` for a missing name, as the SDK's `dict` does",
        missing="the SDK's `request.headers` is a fresh copy per read, so writes to it are lost there and kept by dohost (Message's own writers, such as `add_header`, write to a copy as there); `request.cf` is wrangler dev's offline placeholder under `dohost dev` (Austin, `colo` DFW) and `None` under `dohost serve` and the plugin; `ReadableStream` bodies",
    ),
    CompatRow(
        names="`workers.fetch`",
        cloudflare="outbound `fetch(url_or_request, method=, headers=, body=, redirect=, cf=)`",
        dohost="the same through httpx; body `str`, bytes-like, `FormData`, `Blob`/`File`, `URLSearchParams`, a list (sent as JS `String(array)`); waits for the output gate inside an object; a failed connection raises `ConnectionError`",
        missing="`cf` options are ignored; streaming bodies; a dict body is refused (JS would send `[object Object]`)",
    ),
    CompatRow(
        names="`workers.Blob`, `workers.File`, `workers.FormData`, `workers.BlobEnding`",
        cloudflare="wrappers over JS `Blob`/`File`/`FormData`",
        dohost="in-memory equivalents (`size`, `content_type`, `await text()/bytes()`, `slice`; `FormData` as an ordered multi-dict, multipart when sent)",
    ),
    CompatRow(
        names="`workers.DurableObject`, `workers.WorkerEntrypoint`",
        cloudflare="base classes of objects and Workers",
        dohost="the same (`objects`), with every `ctx`/`env` API of dohost",
    ),
    CompatRow(
        names="`workers.WorkflowEntrypoint`, `workers.workflows.NonRetryableError`",
        cloudflare="base class of a Workflow",
        dohost="importable and subclassable, so a Worker declaring one loads",
        missing="Workflows do not run",
    ),
    CompatRow(
        names="`workers.handler`",
        cloudflare="converts JS handler arguments to Python",
        dohost="identity: handler arguments already are Python",
    ),
    CompatRow(
        names="`workers.env`, `workers.wait_until`, `workers.waitUntil`",
        cloudflare="the env and `waitUntil` of `cloudflare:workers`",
        dohost="the env of the runtime serving the current request; `wait_until` inside an object",
        missing="`wait_until` outside an object: use `ctx.waitUntil`",
    ),
    CompatRow(
        names="`workers.import_from_javascript`",
        cloudflare="imports a JS module (`cloudflare:workers`, `cloudflare:sockets`, npm modules)",
        dohost="`cloudflare:workers` (`env`, `waitUntil`, base classes)",
        missing="any other module raises `NotProvidedError`",
    ),
    CompatRow(
        names="`workers.python_to_rpc`, `workers.python_from_rpc`, `workers.rpc.python_to_rpc`, `workers.rpc.python_from_rpc`",
        cloudflare="convert values for Workers RPC (module `workers.rpc`, which also holds the SDK's binding wrapper classes)",
        dohost="a checked deep copy / JS-shaped dicts and lists; `workers.rpc._BindingWrapper`, `_FetcherWrapper`, `_RpcStubWrapper`, `_DurableObjectNamespaceWrapper`, `_EnvWrapper` are abstract classes dohost's bindings are registered with, so `isinstance` answers as on Cloudflare",
    ),
    CompatRow(
        names="`workers.wsgi.fetch`",
        cloudflare="`await wsgi.fetch(app, request, env)` runs a WSGI app (Flask, Django), `environ['workers.env']`",
        dohost="the same; the app runs on the serving task",
        missing="response bodies are collected, not streamed",
    ),
    CompatRow(
        names="`workers.asgi.fetch`, `asgi.fetch`, `asgi.env`",
        cloudflare="`await asgi.fetch(app, request, env)` runs an ASGI app (FastAPI, Starlette) with lifespan per request; `scope['env']`; `asgi.env` FastAPI dependency",
        dohost="the same, on trio (anyio)",
        missing="`asgi.websocket` (WebSocket ASGI apps); bodies are collected, not streamed",
    ),
    CompatRow(
        names="`workers.patch_env`",
        cloudflare="context manager overriding values of the `cloudflare:workers` env",
        dohost="overrides `workers.env` attributes inside the `with` block (per task)",
        missing="`self.env` is not patched",
    ),
    CompatRow(
        names="`workers.DurableObjectId`, `workers.DurableObjectNamespace`, `workers.DurableObjectState`, `workers.DurableObjectStub`, `workers.ExecutionContext`, `workers.WebSocket`, `workers.WebSocketPair`, `workers.WebSocketRequestResponsePair`",
        cloudflare="not in the SDK (JS types reached through `js` or `env`)",
        dohost="dohost's classes, exported for annotations and tests",
    ),
    CompatRow(
        names="`workers.Context`, `workers.Body`, `workers.JSBody`, `workers.FetchKwargs`, `workers.RequestInitCfProperties`, `workers.BlobValue`, `workers.FormDataValue`",
        cloudflare="type aliases for annotations",
        dohost="type aliases",
    ),
)

JS_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`js.Response`, `js.Request`, `js.Headers`",
        cloudflare="JS classes; `Response.new(body, status=, headers=)`, `Response.json(data)`, `Response.redirect(url)`",
        dohost="the same spellings, building dohost's `Response`/`Request`/`Headers`",
    ),
    CompatRow(
        names="`js.fetch`",
        cloudflare="JS `fetch(url, options)`",
        dohost="as `workers.fetch` (options as a dict or keywords)",
    ),
    CompatRow(
        names="`js.URL`, `js.URLSearchParams`",
        cloudflare="WHATWG URL",
        dohost="`URL.new(url)`: `href`, `protocol`, `host`, `hostname`, `port`, `pathname`, `search`, `hash`, `origin`, `searchParams`",
        missing="IDNA and WHATWG's exact parsing edge cases (urllib.parse underneath)",
    ),
    CompatRow(
        names="`js.Blob`, `js.File`, `js.FormData`",
        cloudflare="JS classes",
        dohost="the `workers` classes with `.new(...)`",
    ),
    CompatRow(
        names="`js.Date`",
        cloudflare="JS `Date`",
        dohost="`Date.now()` on the runtime's clock (fake under pytest), `Date.new(ms | iso)`, `getTime`, `toISOString`",
        missing="local-time getters (`getHours`...)",
    ),
    CompatRow(
        names="`js.Object`, `js.JSON`, `js.Array`, `js.Math`, `js.Number`",
        cloudflare="JS globals",
        dohost="`Object.fromEntries/keys/values/entries/assign`, `JSON.stringify/parse`, `Array.isArray/of/from`, `Math` functions, `Number` checks",
    ),
    CompatRow(
        names="`js.Uint8Array`, `js.ArrayBuffer`, `js.TextEncoder`, `js.TextDecoder`, `js.btoa`, `js.atob`, `js.encodeURIComponent`, `js.decodeURIComponent`",
        cloudflare="JS globals",
        dohost="byte arrays as `bytearray` subclasses (`to_bytes()`, `to_py()`); the codecs",
    ),
    CompatRow(
        names="`js.Error`, `js.TypeError`, `js.RangeError`, `js.SyntaxError`, `js.ReferenceError`, `js.EvalError`, `js.URIError`, `js.DOMException`, `js.JsException`",
        cloudflare="JS errors; Python sees `JsException`",
        dohost="Python exceptions under `JsException` (`.new(message)`, `.message`, `.name`, `.stack` with the Python frames where it was made; `Error.stackTraceLimit` settable); KV, D1 and R2 errors are `JsException`s too",
    ),
    CompatRow(
        names="`js.console`",
        cloudflare="`console.log/info/warn/error`",
        dohost="to the `dohost.console` logger",
    ),
    CompatRow(
        names="`js.crypto`",
        cloudflare="Web Crypto",
        dohost="`crypto.randomUUID()`, `crypto.getRandomValues(array)`",
        missing="`crypto.subtle` (use `hashlib`/`hmac`)",
    ),
    CompatRow(
        names="`js.WebSocketPair`, `js.WebSocketRequestResponsePair`",
        cloudflare="server-side WebSocket pair; hibernation auto-response pair",
        dohost="the same (`.new()`, `object_values()`)",
    ),
    CompatRow(
        names="`js.WebSocket`",
        cloudflare="outbound WebSocket client: `WebSocket.new(url)`, `addEventListener('open'/'message'/'error'/'close', fn)`, `send`, `close(code, reason)`",
        dohost="the same on trio-websocket, run as the object's `waitUntil` work (input and output gates apply; the object stays resident while it is open)",
        missing="only inside a Durable Object; `binaryType` is always bytes",
    ),
    CompatRow(
        names="`js.setTimeout`, `js.setInterval`",
        cloudflare="timers",
        dohost="—",
        missing="use `asyncio.sleep` / `trio.sleep`",
    ),
    CompatRow(
        names="`js.HTMLRewriter`, `js.caches`, `js.ReadableStream`, `js.WritableStream`, `js.TransformStream`, `js.AbortController`, `js.EventSource`, `js.connect`",
        cloudflare="Workers runtime APIs",
        dohost="—",
        missing="not provided: raise `NotProvidedError` naming the name",
    ),
)

PYODIDE_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`pyodide.__version__`",
        cloudflare="the Pyodide release of the Python Workers bundle",
        dohost='the version Cloudflare picks from the project\'s date and flags: `"0.28.2"` from 2025-10-16, `"0.26.0a2"` before, `"314.0.4"`/`"314.0.5"` with `python_workers_20260610`/`python_workers_20260817`',
        missing="the interpreter is dohost's CPython either way",
    ),
    CompatRow(
        names="`pyodide.ffi.to_js`, `pyodide.ffi.JsProxy`, `pyodide.ffi.JsArray`, `pyodide.ffi.JsMap`, `pyodide.ffi.JsBuffer`, `pyodide.ffi.JsException`, `pyodide.ffi.IN_BROWSER`",
        cloudflare="conversion to JS values and their proxy types",
        dohost="`to_js` gives JS-shaped Python values (dict → `JsMap`, or `dict_converter=Object.fromEntries` → object) whose `to_py()` round-trips; no dohost value is a `JsProxy` (as the current SDK promises for RPC values)",
    ),
    CompatRow(
        names="`pyodide.ffi.create_proxy`, `pyodide.ffi.create_once_callable`, `pyodide.ffi.destroy_proxies`, `pyodide.ffi.PyProxy`",
        cloudflare="Python callables handed to JS",
        dohost="callable wrappers with `destroy()`",
    ),
    CompatRow(
        names="`pyodide.ffi.run_sync`",
        cloudflare="block on an awaitable from sync code (JSPI)",
        dohost="completes awaitables that never wait (storage, settled values) and KV/D1/R2 binding calls (local and synchronous underneath: django-cf's D1 backend runs its queries this way)",
        missing="an awaitable that waits (I/O, timers, a binding call held by the object's output gate) raises `RuntimeError`",
    ),
    CompatRow(
        names="`pyodide.webloop.WebLoop`, `pyodide.webloop.PyodideFuture`",
        cloudflare="Pyodide's event loop class and its futures",
        dohost="`WebLoop` is a subclass of dohost's loop class (`runtime.TrioEventLoop`, the class of the running loop), so code that patches `WebLoop` (the SDK's and django-cf's in-Worker test harnesses do) changes nothing dohost runs; `PyodideFuture` is `asyncio.Future`",
        missing="the running loop is not a `WebLoop` instance",
    ),
    CompatRow(
        names="`pyodide.http.pyfetch`, `pyodide.http.FetchResponse`, `pyodide.http.HttpStatusError`, `pyodide.http.BodyUsedError`, `pyodide.http.AbortError`",
        cloudflare="`pyfetch(url, **options)`; `status`, `ok`, `headers`, `json()`, `text()`, `bytes()`, `string()`, `buffer()`, `raise_for_status()`...",
        dohost="the same API over dohost's fetch",
        missing="`abort()`",
    ),
    CompatRow(
        names="`pyodide.http.open_url`, `pyodide.http.pyxhr`, `pyodide.code`, `pyodide.console`, `pyodide.webloop.WebLoopPolicy`, `pyodide.webloop.PyodideTask`",
        cloudflare="Pyodide modules",
        dohost="—",
        missing="not provided: raise `NotProvidedError`",
    ),
)

VALUE_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`storage.get`, `storage.list`, `storage.kv.get`, `storage.kv.list`, RPC arguments and results, `request.json()`, `response.json()`",
        cloudflare="before mid-2026: `JsProxy` objects (`.to_py()`, `.as_object_map()`/`.as_py_json()`, Map `keys()/values()/entries()/get/has/size`, `object_values()`, `js_id`); now: plain dicts and lists",
        dohost="dict/list subclasses (`objects.JsObject`, `JsMap`, `JsArray`) that are plain values (equal, JSON, pickle, msgspec, storable) and answer the proxy methods; a Map's `keys()`/`values()`/`entries()` are iterators with JS's `next()` (`vals.keys().next().value`) that also support `len` and `in`",
        missing="a Map's `keys()` is not a set-like view (`m.keys() & other` fails)",
    ),
    CompatRow(
        names="`env` (`self.env`, the `env` of `on_fetch(request, env)`)",
        cloudflare="before mid-2026: a `JsProxy` (`env.as_object_map()`, `env.to_py()`, `object_keys()`...); now: the SDK's env wrapper",
        dohost="an object with the bindings and vars as attributes and items (`env.X`, `env['X']`, `'X' in env`) that also answers `to_py()`, `as_object_map()` (a new dict of names → values, bindings unconverted), `object_keys()`/`object_values()`/`object_entries()`",
    ),
    CompatRow(
        names="`kv.get(key, 'arrayBuffer')`, `r2_object.arrayBuffer()`",
        cloudflare="a JS `ArrayBuffer`, which the SDK hands over as a `memoryview`",
        dohost="a `memoryview` (equal to the bytes; `bytes(view)` copies)",
    ),
    CompatRow(
        names="`sql.exec(...).raw()`, `sql.exec(...).next()`",
        cloudflare="a cursor of row arrays; JS iterator results `{done, value}`",
        dohost="`raw()` is an iterator of row lists with `toArray()` / `next()`; `next()` results answer `.value`/`.done` and `['value']`; `toArray()` lists answer `to_py()` (JsProxy-era code, e.g. django-cf's DO backend, calls it)",
    ),
)

ASYNCIO_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`asyncio.sleep`, `asyncio.gather`, `asyncio.create_task`, `asyncio.wait_for`, `asyncio.timeout`, `asyncio.shield`, `asyncio.Event`, `asyncio.Lock`, `asyncio.Semaphore`, `asyncio.Queue`, `asyncio.get_running_loop`",
        cloudflare="Pyodide's asyncio loop (the JS event loop) runs every handler",
        dohost="an asyncio loop of dohost's over trio's scheduler and clock (`runtime/_asyncio/`): in Worker handlers, object handlers, RPC methods, alarms, `waitUntil` work, `blockConcurrencyWhile` and `transaction()` callbacks, with the gates' semantics; `asyncio.sleep(3600)` is instant under `autojump_clock`; an object's tasks are cancelled when it is reset or evicted",
        missing="tasks are not `asyncio.Task` instances; `run_until_complete` returns a future (as Pyodide's); `run_in_executor`/`to_thread` run at once; sockets and subprocesses raise `NotImplementedError` (see \"asyncio in Worker and object code\")",
    ),
)

BINDING_ROWS: tuple[CompatRow, ...] = (
    CompatRow(
        names="`env.<KV>` (`kv_namespaces`)",
        cloudflare="Workers KV: `get` (`text`/`json`/`arrayBuffer`/`stream`), `getWithMetadata`, `put` (`expiration`, `expirationTtl`, `metadata`), `delete`, `list` (`prefix`, `limit`, `cursor`)",
        dohost="the same, in one SQLite file per namespace id under the state folder; expiry on the runtime's clock; KV's size limits and messages",
        missing="eventual consistency; `cacheTtl` is validated and ignored",
    ),
    CompatRow(
        names="`env.<D1>` (`d1_databases`)",
        cloudflare="D1: `prepare().bind().first()/all()/run()/raw()`, `batch`, `exec`, `withSession`; results with `results`, `success`, `meta`",
        dohost="the same on a real SQLite file per database id (`dohost d1 execute`/`migrations apply` seed it)",
        missing="`dump()`, read replicas, Time Travel",
    ),
    CompatRow(
        names="`env.<R2>` (`r2_buckets`)",
        cloudflare="R2: `put`/`get`/`head`/`delete`/`list`, range reads, conditional requests, multipart uploads",
        dohost="the same in one SQLite file per bucket (bodies as BLOBs), multipart uploads included; `R2Object` fields as Cloudflare's",
        missing="storage classes, SSE-C",
    ),
    CompatRow(
        names="`env.ASSETS` (`assets`)",
        cloudflare="static assets served ahead of the Worker (`html_handling`, `not_found_handling`, `run_worker_first`), `env.ASSETS.fetch(request)`",
        dohost="the same, read from the folder on each request",
        missing="`_headers`, `_redirects`, `.assetsignore`",
    ),
    CompatRow(
        names="`env.<SERVICE>` (`services`)",
        cloudflare="`fetch` and RPC to another Worker",
        dohost="the same to a Worker loaded in the same process (`dohost dev -c main/ -c other/`)",
        missing="Workers not loaded in the process",
    ),
    CompatRow(
        names="`.dev.vars`, `vars`, secrets",
        cloudflare="strings on `env`",
        dohost="the same (`.dev.vars` for `dohost dev`; `--var` overrides)",
    ),
    CompatRow(
        names="`triggers.crons`, `scheduled(self, controller, env, ctx)`, `on_scheduled`",
        cloudflare="Cron Triggers (UTC, at most 5 per Worker): `scheduled` gets a `ScheduledController` (`scheduledTime`, `cron`, `noRetry()`); `ctx.waitUntil` keeps the event alive; `wrangler dev` fires none and runs one on `GET /__scheduled?cron=` or `/cdn-cgi/handler/scheduled`",
        dohost="the same: crons checked by croniter at load; `dohost serve` fires them on the runtime's clock, `dohost dev` only with `--crons` and serves both test paths; `await dohost.run_scheduled(cron)` and `dohost.serve_crons` in the plugin",
        missing="the dashboard's history of past runs",
    ),
    CompatRow(
        names="`queues`, `ai`, `vectorize`, `hyperdrive`, `workflows`, `analytics_engine_datasets`, `images`, `ratelimits`, `version_metadata`, `mtls_certificates`, `browser`, `send_email`…",
        cloudflare="their bindings",
        dohost="a warning at start naming each binding and its kind",
        missing="not provided: `env.<NAME>` raises `UnsupportedBindingError` at first use",
    ),
)

SECTIONS: dict[str, tuple[CompatRow, ...]] = {
    "`workers`": WORKERS_ROWS,
    "`js`": JS_ROWS,
    "`pyodide`": PYODIDE_ROWS,
    "Values handed to your code": VALUE_ROWS,
    "asyncio": ASYNCIO_ROWS,
    "Bindings": BINDING_ROWS,
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def render() -> str:
    """The Markdown tables of every section, between the README markers."""
    out = [START]
    for title, rows in SECTIONS.items():
        out += ["", f"**{title}**", "", "| name | Cloudflare | dohost | missing |", "| --- | --- | --- | --- |"]
        out += [f"| {r.names} | {_cell(r.cloudflare)} | {_cell(r.dohost)} | {_cell(r.missing)} |" for r in rows]
    out += ["", END]
    return "\n".join(out)


def readme_block(readme: str) -> str | None:
    match = re.search(re.escape(START) + r".*?" + re.escape(END), readme, re.S)
    return match.group(0) if match else None


def write_readme(path: Path) -> None:
    text = path.read_text()
    block = readme_block(text)
    if block is None:
        raise SystemExit(f"{path}: no compat-table markers")
    path.write_text(text.replace(block, render()))


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    if sys.argv[1:] == ["--write"]:
        write_readme(Path(__file__).resolve().parents[2] / "README.md")
    else:
        print(render())
