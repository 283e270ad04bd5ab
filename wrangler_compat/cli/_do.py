"""``dohost do``: look into and operate Durable Objects from the command line (like ``wrangler d1``).

Two ways to reach the objects, chosen per call:

* **Through a server**: ``--to URL`` (and ``--token`` for ``dohost serve``),
  or -- when the data directory's ``dohost-server.json`` names a running
  ``dohost dev``/``serve`` -- that server. The server owns the objects' files,
  so the work goes through its JSON API (``/__dohost/api``) and its gates.
* **Offline** on a data directory (``--persist-to``/``--data-dir``; default
  ``.dohost/state`` beside the wrangler file, as ``dohost dev``). Binding
  names come from the wrangler file (``--config``, default: this folder).
  Reads open the object's file read-only under a shared lock; writes open it
  as a host does (exclusive lock). An object some host holds is refused
  (exit 3), never opened twice. ``alarm run`` runs user code, so offline it
  loads the project like ``dohost dev`` does.

``bookmark`` and ``restore`` are point-in-time recovery from outside the
object: ``bookmark`` is its ``getCurrentBookmark()`` (``--at``:
``getBookmarkForTime()``), ``restore`` is ``onNextSessionRestoreBookmark()``
followed by ending the activation; the restore is applied at once (the
object's next activation finds the restored state) and the undo bookmark is
printed.

Output is a readable table, or JSON with ``--json``. Exit codes: 0 done;
1 the operation failed (bad SQL, a refused write); 2 bad usage or wrangler
file, unknown binding; 3 the object or server could not be reached (locked
by a host, server down, token refused); 4 not found (no such object
storage, KV key or alarm).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["add_do_parser", "run_do", "DoError"]


class DoError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ arguments
def add_do_parser(sub: Any) -> None:
    do = sub.add_parser(
        "do", help="look into and operate Durable Objects (list, sql, kv, alarm, export, import, bookmark, restore)",
        description="Look into and operate Durable Objects, offline on a data directory or through a server.",
        epilog=DO_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = do.add_subparsers(dest="do_command", metavar="DO_COMMAND")
    cmds.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", metavar="FILE", type=Path,
                       help="wrangler.toml / wrangler.jsonc, or a folder holding one (default: this folder)")
        p.add_argument("--env", "-e", metavar="ENV", help="use [env.ENV] of the wrangler file")
        p.add_argument("--persist-to", "--data-dir", dest="data_dir", metavar="DIR", type=Path,
                       default=os.environ.get("DOHOST_DATA_DIR"),
                       help="the data directory (default: .dohost/state beside the wrangler file)")
        p.add_argument("--to", metavar="URL", help="a running dohost dev/serve, e.g. http://host:8787")
        p.add_argument("--token", default=os.environ.get("DOHOST_TOKEN") or None,
                       help="the server's token (dohost serve; env DOHOST_TOKEN)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("binding", metavar="BINDING", help="the Durable Object binding, e.g. COUNTER")
        p.add_argument("object", metavar="NAME_OR_ID", help="the object's name, or its 64-hex ID")

    p = cmds.add_parser("list", help="objects per namespace with their state")
    p.add_argument("binding", metavar="BINDING", nargs="?", help="only this binding")
    common(p)
    p = cmds.add_parser("sql", help="run SQL in an object (reads never wake it)")
    target(p)
    p.add_argument("sql", metavar="SQL")
    common(p)
    kv = cmds.add_parser("kv", help="the object's KV entries (ctx.storage.kv)")
    kv_cmds = kv.add_subparsers(dest="kv_command", metavar="KV_COMMAND")
    kv_cmds.required = True
    p = kv_cmds.add_parser("list", help="entries in key order")
    target(p)
    p.add_argument("--prefix", default="", help="only keys starting with this")
    common(p)
    for name, what in (("get", "one entry"), ("delete", "delete one entry")):
        p = kv_cmds.add_parser(name, help=what)
        target(p)
        p.add_argument("key", metavar="KEY")
        common(p)
    p = kv_cmds.add_parser("put", help="store a value (JSON if it parses as JSON, else the text; --string: always text)")
    target(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE")
    p.add_argument("--string", action="store_true", help="store VALUE as text even if it parses as JSON")
    common(p)
    alarm = cmds.add_parser("alarm", help="the object's alarm")
    alarm_cmds = alarm.add_subparsers(dest="alarm_command", metavar="ALARM_COMMAND")
    alarm_cmds.required = True
    for name, what in (("get", "when it fires"), ("run", "run alarm() now"), ("delete", "delete it")):
        p = alarm_cmds.add_parser(name, help=what)
        target(p)
        common(p)
    p = cmds.add_parser("export", help="a SQL dump of the object's tables and KV entries (sqlite3 loads it)")
    target(p)
    common(p)
    p = cmds.add_parser("import", help="replace the object's contents by a dump made by export")
    target(p)
    p.add_argument("file", metavar="DUMP", help="the .sql file, or - for standard input")
    common(p)
    p = cmds.add_parser("bookmark", help="a point-in-time recovery bookmark of the object (now, or --at a time)")
    target(p)
    p.add_argument("--at", metavar="ISO|MS", type=_moment,
                   help="the object's state at this moment: ISO 8601 (UTC unless it says) or ms since the epoch")
    common(p)
    p = cmds.add_parser("restore", help="restore the object to a bookmark (prints the bookmark that undoes it)")
    target(p)
    p.add_argument("bookmark", metavar="BOOKMARK")
    common(p)


def _moment(text: str) -> float:
    """``--at``: milliseconds since the epoch, or an ISO 8601 time (naive = UTC)."""
    import datetime as _dt

    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time (2026-12-07T06:30:00Z) or milliseconds since the epoch, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp() * 1000.0


DO_EXAMPLES = """\
examples:
  dohost do list                                   every object with its state
  dohost do sql COUNTER global "SELECT * FROM c" --json
  dohost do kv put SETTINGS alice theme '"dark"'
  dohost do alarm run REMINDERS alice
  dohost do export COUNTER global > dump.sql && dohost do import COUNTER copy dump.sql
  dohost do list --to http://server:8787 --token s3cret
  dohost do bookmark COUNTER global --at 2026-12-07T06:30:00Z
  dohost do restore COUNTER global 00000000-00000007-00000000-<32 hex>

exit codes: 0 done; 1 the operation failed; 2 bad usage, wrangler file or binding;
3 object or server unreachable (locked, down, token refused); 4 not found.
"""


# ------------------------------------------------------------------ backends
class Remote:
    """The JSON API of a running dohost dev/serve."""

    def __init__(self, url: str, token: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0)
        self.where = url

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            reply = self._client.request(method, "/__dohost/api" + path, **kw)
        except httpx.HTTPError as exc:
            raise DoError(f"cannot reach the server at {self.where}: {exc}", 3) from None
        if reply.status_code >= 400:
            try:
                message = reply.json().get("error", reply.text)
            except ValueError:
                message = reply.text.strip()
            code = {401: 3, 403: 3, 409: 3, 503: 3, 404: 4}.get(reply.status_code, 1)
            if reply.status_code == 404 and "binding" in message:
                code = 2
            raise DoError(f"{self.where}: {message}", code)
        return reply.json() if "json" in reply.headers.get("content-type", "") else reply.text

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _obj(binding: str, obj: str) -> str:
        from urllib.parse import quote

        return f"/objects/{quote(binding, safe='')}/{quote(obj, safe='')}"

    def objects(self, binding: str | None) -> list[dict[str, Any]]:
        path = "/objects" + (f"/{binding}" if binding else "")
        return list(self._call("GET", path)["objects"])

    def sql(self, binding: str, obj: str, sql: str) -> dict[str, Any]:
        return dict(self._call("POST", self._obj(binding, obj) + "/sql", json={"sql": sql, "write": True}))

    def kv_list(self, binding: str, obj: str, prefix: str) -> list[dict[str, Any]]:
        return list(self._call("GET", self._obj(binding, obj) + "/kv", params={"prefix": prefix})["entries"])

    def kv_get(self, binding: str, obj: str, key: str) -> Any:
        from urllib.parse import quote

        return self._call("GET", self._obj(binding, obj) + "/kv/" + quote(key, safe=""))["value"]

    def kv_put(self, binding: str, obj: str, key: str, value: Any) -> None:
        from urllib.parse import quote

        self._call("PUT", self._obj(binding, obj) + "/kv/" + quote(key, safe=""), json={"value": value})

    def kv_delete(self, binding: str, obj: str, key: str) -> bool:
        from urllib.parse import quote

        return bool(self._call("DELETE", self._obj(binding, obj) + "/kv/" + quote(key, safe=""))["deleted"])

    def alarm_get(self, binding: str, obj: str) -> str | None:
        value = self._call("GET", self._obj(binding, obj) + "/alarm")["alarm"]
        return value if isinstance(value, str) else None

    def alarm_run(self, binding: str, obj: str) -> bool:
        return bool(self._call("POST", self._obj(binding, obj) + "/alarm/run")["ran"])

    def alarm_delete(self, binding: str, obj: str) -> None:
        self._call("DELETE", self._obj(binding, obj) + "/alarm")

    def export(self, binding: str, obj: str) -> str:
        return str(self._call("GET", self._obj(binding, obj) + "/export"))

    def import_(self, binding: str, obj: str, text: str) -> None:
        self._call("POST", self._obj(binding, obj) + "/import", content=text.encode("utf-8"))

    def bookmark(self, binding: str, obj: str, at_ms: float | None) -> str:
        params = {"at": repr(at_ms)} if at_ms is not None else {}
        return str(self._call("GET", self._obj(binding, obj) + "/bookmark", params=params)["bookmark"])

    def restore(self, binding: str, obj: str, bookmark: str) -> str:
        return str(self._call("POST", self._obj(binding, obj) + "/restore", json={"bookmark": bookmark})["undo"])


def _backend(args: argparse.Namespace) -> Any:
    from ._do_offline import Offline, resolve_project
    from ..inspector import read_server_info

    if args.to:
        return Remote(args.to, args.token)
    config_path, data_dir = resolve_project(args.config, args.data_dir)
    info = read_server_info(data_dir)
    if info is not None:
        if info.token_required and not args.token:
            raise DoError(f"{data_dir} is served by `dohost serve` at {info.url}: pass its --token (or DOHOST_TOKEN)", 3)
        return Remote(info.url, args.token)
    return Offline(config_path, data_dir, args.env)


# ------------------------------------------------------------------ output
def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join([line, rule, *body])


def _print(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text())


# ------------------------------------------------------------------ commands
def run_do(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except DoError as exc:
        print(f"dohost: error: do {args.do_command}: {exc}", file=sys.stderr)
        return exc.code


def _dispatch(args: argparse.Namespace) -> int:
    be = _backend(args)
    try:
        return _command(args, be)
    finally:
        if isinstance(be, Remote):
            be.close()


def _command(args: argparse.Namespace, be: Any) -> int:
    cmd = args.do_command
    if cmd == "list":
        objects = be.objects(args.binding)
        cols = ["binding", "name", "id", "state", "storage_bytes", "alarm"]
        _print(args, objects, lambda: _table(cols, [[o.get(c) if o.get(c) is not None else "" for c in cols]
                                                    for o in objects]) if objects else "no objects")
        return 0
    b, o = args.binding, args.object
    if cmd == "sql":
        result = be.sql(b, o, args.sql)
        _print(args, result, lambda: _table(result["columns"], result["rows"]) if result["columns"]
               else f"{result.get('rows_written', 0)} row(s) written")
        return 0
    if cmd == "kv":
        sub = args.kv_command
        if sub == "list":
            entries = be.kv_list(b, o, args.prefix)
            _print(args, entries, lambda: _table(["key", "value"], [[e["key"], e["value"]] for e in entries]))
        elif sub == "get":
            value = be.kv_get(b, o, args.key)
            _print(args, {"key": args.key, "value": value}, lambda: _cell(value))
        elif sub == "put":
            stored: Any = args.value
            if not args.string:
                try:
                    stored = json.loads(args.value)
                except ValueError:
                    pass
            be.kv_put(b, o, args.key, stored)
            _print(args, {"key": args.key, "stored": True}, lambda: f"stored {args.key}")
        else:
            deleted = be.kv_delete(b, o, args.key)
            _print(args, {"key": args.key, "deleted": deleted}, lambda: "deleted" if deleted else f"no key {args.key!r}")
            return 0 if deleted else 4
        return 0
    if cmd == "alarm":
        sub = args.alarm_command
        if sub == "get":
            at = be.alarm_get(b, o)
            _print(args, {"alarm": at}, lambda: at or "no alarm set")
            return 0 if at else 4
        if sub == "run":
            ran = be.alarm_run(b, o)
            _print(args, {"ran": ran}, lambda: "alarm() ran" if ran else "no alarm set")
            return 0 if ran else 4
        be.alarm_delete(b, o)
        _print(args, {"alarm": None}, lambda: "alarm deleted")
        return 0
    if cmd == "export":
        sys.stdout.write(be.export(b, o))
        return 0
    if cmd == "bookmark":
        mark = be.bookmark(b, o, args.at)
        _print(args, {"bookmark": mark}, lambda: mark)
        return 0
    if cmd == "restore":
        undo = be.restore(b, o, args.bookmark)
        _print(args, {"restored": args.bookmark, "undo": undo},
               lambda: f"restored {b} {o} to {args.bookmark}\nto undo: dohost do restore {b} {o} {undo}")
        return 0
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    be.import_(b, o, text)
    _print(args, {"imported": True}, lambda: f"imported into {b} {o}")
    return 0
