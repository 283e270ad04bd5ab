"""Todo lists kept in persisted collections inside a Durable Object.

Each list (``/<list>/...``) is one ``TodoList`` object. It keeps two
persisted collections in its own SQLite storage, reached through
``ctx.storage`` only (the collections' Durable Object driver wraps
``ctx.storage.sql.exec`` and ``ctx.storage.transactionSync``):

* ``todos`` is local-only (*sync-absent* mode): the object is the source of
  truth. Its schema-mismatch policy is ``error``: when
  ``TODOS_SCHEMA_VERSION`` differs from the version stored with the rows, the
  constructor raises ``Schema version mismatch for collection "todos": ...``
  and storage is left exactly as it was, so reverting the version brings the
  list back.
* ``shared`` holds rows owned by a sync source elsewhere (*sync-present*
  mode), pushed in through ``apply_committed_tx``. Its policy is ``reset``
  (inferred from the mode): when ``SHARED_SCHEMA_VERSION`` changes, the rows
  are dropped in one transaction at start-up and the source sends them again;
  ``position()`` tells it where the object stands (``reset_epoch``,
  ``latest_term`` / ``latest_seq``).

Both collections are opened together in the constructor, in one
transaction, before any request is delivered (the input gate holds requests
while the constructor runs): a burst of requests arriving during a reset sees
the collection before it or after it, never half-reset.

HTTP API (JSON bodies and responses)::

    POST   /<list>/todos            {"title": str}                 201 todo
    GET    /<list>/todos            ?done=true|false  ?order=created|-created|title|-title
                                    ?limit=1..100 (20)  ?cursor=<from the previous page>
                                    -> {"items": [todo...], "cursor": str | null}
    GET    /<list>/todos/<id>       -> todo, or 404
    PATCH  /<list>/todos/<id>       {"title"?: str, "done"?: bool}  -> todo, or 404
    DELETE /<list>/todos/<id>       -> 204, or 404
    GET    /<list>/shared           -> {"items": [row...], "position": {...}}
    POST   /<list>/shared/sync      a committed transaction (below) -> {"applied": bool, "position": {...}}

A todo is ``{"id": "3", "title": ..., "done": false, "created": <ms>, "seq": 3}``;
``seq`` numbers the todos of a list in creation order and breaks ties
between todos created in the same millisecond. A committed transaction is
``{"tx_id": str, "term": int, "seq": int, "truncate": bool, "mutations":
[{"type": "insert"|"update"|"delete", "key": str|number, "value": {...}}]}``;
``(term, seq)`` makes it idempotent.

Portability: everything here is Cloudflare's Python Workers API except the
``persistence.collections`` import, which is dohost's persisted-collection
layer (the Python counterpart of TanStack DB's Durable Object SQLite
persistence). It is not part of Cloudflare's runtime: this file runs on dohost
as is, and on Cloudflare only with that package bundled into the Worker.
"""

import base64
import json
from urllib.parse import parse_qs, urlparse

from js import Date
from workers import DurableObject, Response, WorkerEntrypoint

# dohost-specific (see the module docstring).
from persistence.collections import (
    CollectionMode,
    CollectionPersistence,
    CollectionSpec,
    CommittedTx,
    Cursor,
    MetadataMutation,
    Mutation,
    asc,
    desc,
    eq,
    ref,
)

ORDERS = {
    "created": [asc(ref("created")), asc(ref("seq"))],
    "-created": [desc(ref("created")), desc(ref("seq"))],
    "title": [asc(ref("title")), asc(ref("seq"))],
    "-title": [desc(ref("title")), desc(ref("seq"))],
}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class TodoList(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.persistence = CollectionPersistence.for_storage(ctx.storage)
        # Both checked (and `shared` reset if its version changed) in one
        # transaction: if `todos` refuses, `shared` is not reset either.
        collections = self.persistence.open(
            [
                CollectionSpec(id="todos", schema_version=int(env.TODOS_SCHEMA_VERSION)),
                CollectionSpec(
                    id="shared",
                    schema_version=int(env.SHARED_SCHEMA_VERSION),
                    mode=CollectionMode.SYNC_PRESENT,
                ),
            ]
        )
        self.todos = collections["todos"]
        self.shared = collections["shared"]

    # -- todos (local-only) -------------------------------------------------------
    def add(self, title):
        seq = self.todos.metadata().get("last_seq", 0) + 1
        todo_id = str(seq)
        value = {"title": title, "done": False, "created": int(Date.now()), "seq": seq}
        # The row and the id counter are written in one transaction.
        self.todos.apply_local(
            [Mutation.insert(todo_id, value)],
            collection_metadata_mutations=[MetadataMutation.set("last_seq", seq)],
        )
        return {"id": todo_id, **value}

    def get(self, todo_id):
        row = self.todos.get(todo_id)
        return None if row is None else {"id": row.key, **row.value}

    def update(self, todo_id, changes):
        if self.todos.get(todo_id) is None:
            return None
        self.todos.update(todo_id, changes)  # merged into the stored row
        return self.get(todo_id)

    def remove(self, todo_id):
        if self.todos.get(todo_id) is None:
            return False
        self.todos.delete(todo_id)
        return True

    def query(self, done=None, order="created", limit=DEFAULT_LIMIT, after=None):
        """One page of todos; ``after`` is the ``next`` of the previous page."""
        order_by = ORDERS[order]
        cursor = None if after is None else Cursor(values=tuple(after[0]), key=after[1])
        rows = self.todos.load_subset(
            where=None if done is None else eq(ref("done"), done),
            order_by=order_by,
            limit=limit + 1,  # one more, to know whether there is a next page
            cursor=cursor,
        )
        page = rows[:limit]
        next_after = None
        if len(rows) > limit:
            last = self.todos.cursor_after(page[-1], order_by)
            next_after = [list(last.values), last.key]
        return {"items": [{"id": r.key, **r.value} for r in page], "next": next_after}

    # -- shared (sync-present) ----------------------------------------------------
    def apply_committed_tx(self, tx):
        """What the sync source calls: persist one committed transaction (idempotent)."""
        applied = self.shared.apply_committed_tx(committed_tx(tx))
        return {"applied": applied, "position": self.position()}

    def shared_rows(self):
        rows = self.shared.load_subset(order_by=[asc(ref("name"))])
        return {"items": [{"key": r.key, **r.value} for r in rows], "position": self.position()}

    def position(self):
        p = self.shared.stream_position()
        return {
            "reset_epoch": p.reset_epoch,
            "latest_term": p.latest_term,
            "latest_seq": p.latest_seq,
            "latest_row_version": p.latest_row_version,
        }


def committed_tx(data):
    """A ``CommittedTx`` from its JSON form (see the module docstring)."""
    if not isinstance(data, dict):
        raise ValueError(f"a committed transaction must be an object, got {type(data).__name__}")
    mutations = []
    for i, m in enumerate(data.get("mutations", [])):
        ok = (
            isinstance(m, dict)
            and m.get("type") in ("insert", "update", "delete")
            and isinstance(m.get("key"), (str, int, float))
            and not isinstance(m.get("key"), bool)
            and (m["type"] == "delete" or isinstance(m.get("value"), dict))
        )
        if not ok:
            raise ValueError(f"mutations[{i}]: expected {{type: insert|update|delete, key, value}}, got {m!r}")
        mutations.append(Mutation(type=m["type"], key=m["key"], value=m.get("value")))
    for field in ("term", "seq"):
        if isinstance(data.get(field), bool) or not isinstance(data.get(field), int):
            raise ValueError(f"{field}: expected an integer, got {data.get(field)!r}")
    return CommittedTx(
        tx_id=str(data.get("tx_id", f"{data['term']}:{data['seq']}")),
        term=data["term"],
        seq=data["seq"],
        truncate=bool(data.get("truncate", False)),
        mutations=mutations,
    )


# -- the Worker: HTTP in front of the objects ------------------------------------
class BadRequest(Exception):
    pass


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        parts = [p for p in urlparse(request.url).path.split("/") if p]
        if len(parts) < 2:
            return error(404, "expected /<list>/todos or /<list>/shared")
        stub = self.env.TODOS.getByName(parts[0])
        try:
            return await self.route(request, stub, parts[1:])
        except BadRequest as exc:
            return error(400, str(exc))

    async def route(self, request, stub, rest):
        method = request.method
        if rest == ["todos"] and method == "POST":
            body = await json_body(request)
            title = body.get("title")
            if set(body) != {"title"} or not isinstance(title, str) or not title.strip():
                raise BadRequest('expected {"title": "<non-empty text>"}')
            return Response.json(await stub.add(title.strip()), status=201)
        if rest == ["todos"] and method == "GET":
            return Response.json(await list_page(request, stub))
        if len(rest) == 2 and rest[0] == "todos":
            todo_id = rest[1]
            if method == "GET":
                todo = await stub.get(todo_id)
            elif method == "PATCH":
                todo = await stub.update(todo_id, todo_changes(await json_body(request)))
            elif method == "DELETE":
                return Response(None, status=204) if await stub.remove(todo_id) else error(404, "no such todo")
            else:
                return error(405, f"{method} is not allowed here")
            return Response.json(todo) if todo is not None else error(404, "no such todo")
        if rest == ["shared"] and method == "GET":
            return Response.json(await stub.shared_rows())
        if rest == ["shared", "sync"] and method == "POST":
            tx = await json_body(request)
            try:
                committed_tx(tx)  # validate here: a bad transaction is the client's error
            except (KeyError, ValueError, TypeError) as exc:
                raise BadRequest(f"invalid transaction: {exc}") from None
            return Response.json(await stub.apply_committed_tx(tx))
        return error(404, f"no route for {method} /{'/'.join(rest)}")


async def list_page(request, stub):
    params = {k: v[-1] for k, v in parse_qs(urlparse(request.url).query).items()}
    done = {"true": True, "false": False, None: None}.get(params.get("done"), "bad")
    if done == "bad":
        raise BadRequest("done: expected true or false")
    order = params.get("order", "created")
    if order not in ORDERS:
        raise BadRequest(f"order: expected one of {', '.join(ORDERS)}")
    limit = params.get("limit", str(DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise BadRequest(f"limit: expected 1 to {MAX_LIMIT}")
    after = None
    if "cursor" in params:
        after = decode_cursor(params["cursor"], order)
    page = await stub.query(done=done, order=order, limit=int(limit), after=after)
    cursor = None if page["next"] is None else encode_cursor(order, page["next"])
    return {"items": page["items"], "cursor": cursor}


def todo_changes(body):
    allowed = {"title": str, "done": bool}
    if not body or not set(body) <= set(allowed):
        raise BadRequest('expected some of {"title": "<text>", "done": true|false}')
    for name, kind in allowed.items():
        if name in body and not isinstance(body[name], kind):
            raise BadRequest(f"{name}: expected {kind.__name__}")
    if "title" in body and not body["title"].strip():
        raise BadRequest("title: expected non-empty text")
    return body


def encode_cursor(order, after):
    text = json.dumps({"order": order, "after": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor, order):
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        ok = (
            data["order"] == order
            and len(after) == 2
            and isinstance(after[1], str)
            and len(after[0]) == len(ORDERS[order])
            and all(v is None or isinstance(v, (str, int, float)) for v in after[0])
        )
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise BadRequest("cursor: not a cursor of this listing (same order) returned by this API")
    return after


async def json_body(request):
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise BadRequest("expected a JSON body") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


def error(status, message):
    return Response.json({"error": message}, status=status)
