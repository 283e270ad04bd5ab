"""Hypothesis strategies for generated cases: a small grammar of storage programs.

A generated case is a list of ops over one fixed table ``g(k TEXT PRIMARY KEY,
n, r REAL, b BLOB)`` (plus an index or a unique column sometimes) and the
object's KV store: SQL statements of each kind with bound values, KV
reads/writes/deletes/lists with every option set, batches, and
transactions wrapping any of those. Values and keys are drawn from the
awkward corners (safe-integer edges, floats that are whole, NaN, empty and
astral-plane strings, bytes, nested values). Every generated case is valid
JSON in the corpus format, so a shrunk failure can be pasted into
``cases/regressions.json`` as it is printed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["cases"]

_KEYS = st.sampled_from(["", "a", "ab", "b", "é", "\U0001F600", "k\u0000", "a/b", "Z", "10", "9"])
_SAFE = 2**53 - 1

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-_SAFE, _SAFE),
    st.sampled_from([0, -1, 2**31, _SAFE, -_SAFE, 2**53, 2**63 - 1]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e21, 1e-7]),
    st.text(alphabet=st.sampled_from("ab é\U0001F600'\"%_"), max_size=6),
)


def _tagged(v: Any) -> Any:
    """Case-JSON for a Python value (ints beyond 2**53 and bytes are tagged)."""
    if isinstance(v, bytes):
        return {"$bytes": v.hex()}
    if type(v) is int and not -_SAFE <= v <= _SAFE:
        return {"$int": str(v)}
    if isinstance(v, float) and v != v:
        return {"$float": "nan"}
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return {"$float": "inf" if v > 0 else "-inf"}
    return v


_binding = st.one_of(_scalars, st.binary(max_size=4)).map(_tagged)
_stored = st.recursive(
    st.one_of(_scalars.filter(lambda v: v is not None), st.binary(max_size=3)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "0", "1", "10"]), inner, max_size=3),
    ),
    max_leaves=6,
).map(lambda v: _to_case(v))


def _to_case(v: Any) -> Any:
    if isinstance(v, list):
        return [_to_case(x) for x in v]
    if isinstance(v, dict):
        return {"$dict": [[k, _to_case(x)] for k, x in v.items()]}
    return _tagged(v)


_STEPS = st.lists(st.sampled_from(["toArray", "one", "raw", "next", "iter", "columnNames"]), min_size=1, max_size=3)


@st.composite
def _sql(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["insert", "upsert", "select", "select_agg", "update", "delete", "returning", "expr"]))
    col = draw(st.sampled_from(["n", "r", "b"]))
    if kind == "insert":
        sql, args = f"INSERT INTO g(k, {col}) VALUES (?, ?)", [draw(_KEYS), draw(_binding)]
    elif kind == "upsert":
        sql = f"INSERT INTO g(k, {col}) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET {col} = excluded.{col}"
        args = [draw(_KEYS), draw(_binding)]
    elif kind == "select":
        order = draw(st.sampled_from(["k", "k DESC", "n, k", "r DESC, k"]))
        sql, args = f"SELECT k, {col} FROM g WHERE k >= ? ORDER BY {order} LIMIT ?", [draw(_KEYS), draw(st.integers(-1, 5))]
    elif kind == "select_agg":
        fn = draw(st.sampled_from(["count(*)", f"sum({col})", f"max({col})", f"typeof(min({col}))", f"group_concat(k)", f"total({col})"]))
        sql, args = f"SELECT {fn} AS v FROM g", []
    elif kind == "update":
        sql, args = f"UPDATE g SET {col} = ? WHERE k = ?", [draw(_binding), draw(_KEYS)]
    elif kind == "delete":
        sql, args = "DELETE FROM g WHERE k < ?", [draw(_KEYS)]
    elif kind == "returning":
        sql, args = f"INSERT OR REPLACE INTO g(k, {col}) VALUES (?, ?) RETURNING k, {col}", [draw(_KEYS), draw(_binding)]
    else:
        expr = draw(st.sampled_from(["? + 1", "? * 2.5", "typeof(?)", "? || 'x'", "abs(?)", "round(?, 1)", "hex(?)", "length(?)", "? = ?"]))
        args = [draw(_binding) for _ in range(expr.count("?"))]
        sql = f"SELECT {expr} AS v"
    steps = draw(_STEPS)
    if kind == "returning":
        # An unread RETURNING cursor breaks workerd's object (regressions.json, _known.py).
        steps.append("toArray")
    return {"op": "exec", "sql": sql, "args": args, "steps": steps}


_options = st.fixed_dictionaries(
    {},
    optional={
        "start": _KEYS, "startAfter": _KEYS, "end": _KEYS, "prefix": _KEYS,
        "reverse": st.booleans(), "limit": st.integers(-1, 4),
    },
).map(lambda d: {"$dict": [[k, v] for k, v in d.items()]})

_kv = st.one_of(
    st.builds(lambda k, v: {"op": "put", "key": k, "value": v}, _KEYS, _stored),
    st.builds(lambda k: {"op": "get", "key": k}, _KEYS),
    st.builds(lambda ks: {"op": "get", "keys": ks}, st.lists(_KEYS, max_size=4)),
    st.builds(lambda k: {"op": "delete", "key": k}, _KEYS),
    st.builds(lambda ks: {"op": "delete", "keys": ks}, st.lists(_KEYS, max_size=4)),
    st.builds(lambda e: {"op": "put", "entries": {"$dict": [[k, v] for k, v in e.items()]}}, st.dictionaries(_KEYS, _stored, max_size=3)),
    st.builds(lambda o: {"op": "list", "options": o}, _options),
    st.builds(lambda o: {"op": "kv.list", "options": o}, _options),
    st.builds(lambda k, v: {"op": "kv.put", "key": k, "value": v}, _KEYS, _stored),
    st.builds(lambda k: {"op": "kv.get", "key": k}, _KEYS),
    st.builds(lambda k: {"op": "kv.delete", "key": k}, _KEYS),
)
_other = st.one_of(
    st.builds(lambda t: {"op": "setAlarm", "time": t}, st.one_of(
        st.integers(4102444800000, 9223372036854), st.floats(4.1e12, 9.3e12), st.sampled_from([0, -1, 0.5]))),
    st.just({"op": "getAlarm"}),
    st.just({"op": "deleteAlarm"}),
    st.just({"op": "deleteAll"}),
    st.just({"op": "bookmark"}),
    st.just({"op": "databaseSize"}),
)
_sync_op = st.one_of(_sql(), _kv.filter(lambda op: op["op"].startswith("kv.")))
_plain = st.one_of(_sql(), _kv, _other)
_async_kv = st.one_of(_kv.filter(lambda op: not op["op"].startswith("kv.")), _other)


@st.composite
def _op(draw: st.DrawFn) -> dict[str, Any]:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return {"op": "transactionSync", "ops": draw(st.lists(_sync_op, max_size=3)), "throw": draw(st.booleans())}
    if choice == 1:
        inner = draw(st.lists(st.one_of(_plain, st.just({"op": "rollback"})), max_size=3))
        return {"op": "transaction", "ops": inner, "throw": draw(st.booleans())}
    return draw(_plain)


_SCHEMAS = [
    "CREATE TABLE g(k TEXT PRIMARY KEY, n, r REAL, b BLOB)",
    "CREATE TABLE g(k TEXT PRIMARY KEY, n INTEGER, r REAL, b BLOB) STRICT",
    "CREATE TABLE g(k TEXT PRIMARY KEY, n UNIQUE, r REAL, b) WITHOUT ROWID",
    "CREATE TABLE g(k TEXT PRIMARY KEY, n NOT NULL DEFAULT 0, r REAL CHECK (r IS NULL OR r > -100), b)",
]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """One generated case, ``id`` filled in by the caller.

    Three in four run on the SQLite-backed class (a schema, then anything);
    the rest on the KV-backed class (async KV, alarms, transactions).
    """
    if draw(st.integers(0, 3)) == 0:
        ops = draw(st.lists(st.one_of(_async_kv, st.builds(
            lambda inner, throw: {"op": "transaction", "ops": inner, "throw": throw},
            st.lists(st.one_of(_async_kv, st.just({"op": "rollback"})), max_size=3), st.booleans(),
        )), min_size=1, max_size=8))
        return {"kind": "kv", "ops": ops}
    schema = {"op": "exec", "sql": draw(st.sampled_from(_SCHEMAS)), "steps": []}
    ops = draw(st.lists(_op(), min_size=1, max_size=8))
    return {"kind": "sql", "ops": [schema, *ops]}
