"""Cloudflare contract: key-value storage on ``_cf_KV`` (sync ``kv`` and the async API's ops).

Sources: ``src/workerd/api/tests/sync-kv-test.js``, ``src/workerd/api/sync-kv.c++``,
``src/workerd/api/actor-state.c++`` (list option compilation),
``src/workerd/util/sqlite-kv.c++``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re

import pytest

from persistence import (
    ObjectDatabase,
    SqlError,
    StorageError,
    StorageRangeError,
    StorageTypeError,
    compile_list_options,
)
from persistence import _cf

INVALIDATED = (
    "kv.list() iterator was invalidated because a new call to kv.list() was started. Only one "
    "kv.list() iterator can exist at a time."
)


@pytest.fixture
def kv(db):
    return db.kv


def exact(message: str) -> str:
    return rf"^{re.escape(message)}$"


def file_digest(db) -> str:
    """Hash of the database file and its WAL, after committing whatever is pending."""
    db.commit()
    h = hashlib.sha256()
    for suffix in ("", "-wal"):
        try:
            h.update(db.path.with_name(db.path.name + suffix).read_bytes())
        except FileNotFoundError:
            h.update(b"<none>")
    return h.hexdigest()


def dump(db):
    tables = db._exec_internal("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()
    rows = {}
    for kind, name, _ in tables:
        if kind == "table":
            rows[name] = db._exec_internal(f'SELECT * FROM "{name}"').fetchall()
    return tables, rows


# -- workerd's sync-kv-test.js, step by step ------------------------------------------------


def test_sync_kv_follows_workerds_own_test(kv):
    assert kv.get("foo") is None
    kv.put("foo", 123)
    assert kv.get("foo") == 123
    assert kv.get("bar") is None
    kv.put("bar", "abc")
    assert kv.get("bar") == "abc"
    assert [*kv.list()] == [("bar", "abc"), ("foo", 123)]
    assert [*kv.list({"reverse": True})] == [("foo", 123), ("bar", "abc")]

    cursor1 = kv.list()
    cursor2 = kv.list()
    with pytest.raises(StorageError, match=exact(INVALIDATED)):
        [*cursor1]
    assert [*cursor2] == [("bar", "abc"), ("foo", 123)]

    kv.put("baz", False)
    assert [*kv.list({"prefix": "ba"})] == [("bar", "abc"), ("baz", False)]
    assert [*kv.list({"limit": 1})] == [("bar", "abc")]
    assert [*kv.list({"limit": 1, "reverse": True})] == [("foo", 123)]
    assert [*kv.list({"start": "b", "end": "c"})] == [("bar", "abc"), ("baz", False)]
    assert [*kv.list({"start": "b", "end": "baz"})] == [("bar", "abc")]  # end is exclusive
    assert [*kv.list({"start": "bar", "end": "c"})] == [("bar", "abc"), ("baz", False)]
    assert [*kv.list({"startAfter": "bar", "end": "c"})] == [("baz", False)]

    assert kv.delete("qux") is False
    assert kv.delete("bar") is True
    assert [*kv.list()] == [("baz", False), ("foo", 123)]


def test_list_is_lazy_and_pages_through_many_keys(db, kv):
    for i in range(300):
        kv.put(f"k{i:03d}", i)
    it = kv.list()
    assert next(it) == ("k000", 0)
    assert [k for k, _ in it] == [f"k{i:03d}" for i in range(1, 300)]
    assert [k for k, _ in kv.list(reverse=True, limit=130)] == [f"k{i:03d}" for i in range(299, 169, -1)]


def test_a_list_iterator_is_invalidated_mid_way(kv):
    for k in "abc":
        kv.put(k, k)
    first = kv.list()
    assert next(first) == ("a", "a")
    [*kv.list()]
    with pytest.raises(StorageError, match=exact(INVALIDATED)):
        next(first)


def test_the_async_list_also_invalidates_the_live_iterator(db, kv):
    kv.put("a", 1)
    it = kv.list()
    db.kv_store.list_dict(compile_list_options())
    with pytest.raises(StorageError, match=exact(INVALIDATED)):
        next(it)


def test_an_empty_range_opens_no_cursor_and_invalidates_nothing(kv):
    kv.put("a", 1)
    it = kv.list()
    assert [*kv.list(start="z", end="a")] == []
    assert [*it] == [("a", 1)]


def test_list_options_may_be_keywords_a_dict_or_snake_case(kv):
    for k in ("a", "ab", "abc", "b"):
        kv.put(k, k)
    assert [*kv.list({"prefix": "a", "reverse": True, "limit": 1})] == [("abc", "abc")]
    assert [*kv.list(prefix="a", reverse=True, limit=1)] == [("abc", "abc")]
    assert [k for k, _ in kv.list(start_after="a")] == ["ab", "abc", "b"]


# -- list option compilation (actor-state.c++ list) -------------------------------------------


@pytest.fixture
def keyed(kv):
    for k in ("a", "b", "ba", "bar", "baz", "bb", "c", "d"):
        kv.put(k, k)
    return kv


def keys(kv, *args, **kw):
    return [k for k, _ in kv.list(*args, **kw)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["a", "b", "ba", "bar", "baz", "bb", "c", "d"]),
        ({"start": "b"}, ["b", "ba", "bar", "baz", "bb", "c", "d"]),
        ({"startAfter": "b"}, ["ba", "bar", "baz", "bb", "c", "d"]),
        ({"end": "bar"}, ["a", "b", "ba"]),
        ({"start": "b", "end": "c"}, ["b", "ba", "bar", "baz", "bb"]),
        ({"prefix": "ba"}, ["ba", "bar", "baz"]),
        ({"prefix": "ba", "start": "a"}, ["ba", "bar", "baz"]),  # start before the prefix: clamped
        ({"prefix": "ba", "start": "bar"}, ["bar", "baz"]),  # start inside the prefix: kept
        ({"prefix": "ba", "start": "bb"}, []),  # start after the prefix: nothing
        ({"prefix": "ba", "startAfter": "ba"}, ["bar", "baz"]),
        ({"prefix": "ba", "end": "baz"}, ["ba", "bar"]),  # end inside the prefix: kept
        ({"prefix": "ba", "end": "c"}, ["ba", "bar", "baz"]),  # end after: clamped
        ({"prefix": "ba", "end": "b"}, []),  # end before the prefix: nothing
        ({"prefix": ""}, ["a", "b", "ba", "bar", "baz", "bb", "c", "d"]),
        ({"start": "c", "end": "b"}, []),
        ({"start": "b", "end": "b"}, []),
        ({"reverse": True}, ["d", "c", "bb", "baz", "bar", "ba", "b", "a"]),
        ({"reverse": True, "start": "b", "end": "c"}, ["bb", "baz", "bar", "ba", "b"]),  # not swapped
        ({"reverse": True, "startAfter": "bb"}, ["d", "c"]),
        ({"reverse": True, "prefix": "ba", "limit": 2}, ["baz", "bar"]),
        ({"limit": 3, "start": "b"}, ["b", "ba", "bar"]),
        ({"limit": 100}, ["a", "b", "ba", "bar", "baz", "bb", "c", "d"]),
    ],
)
def test_list_options_compile_as_cloudflare_compiles_them(keyed, db, options, expected):
    assert keys(keyed, options) == expected
    assert [*db.kv_store.list_dict(compile_list_options(options))] == expected


def test_keys_order_by_their_utf8_bytes(kv):
    ks = ["b", "a", "\u00e9", "\uffff", "\U0001f600", "A", "a\x00", "\ud7ff", "\ue000"]
    for k in ks:
        kv.put(k, 1)
    by_bytes = sorted(ks, key=lambda k: k.encode())
    assert keys(kv) == by_bytes
    assert keys(kv, reverse=True) == by_bytes[::-1]
    assert keys(kv, prefix="\uffff") == ["\uffff"]


def test_start_and_start_after_together_are_a_type_error(kv):
    with pytest.raises(TypeError, match=exact("list() cannot be called with both start and startAfter values.")):
        kv.list(start="a", startAfter="b")


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_must_be_positive(kv, limit):
    with pytest.raises(TypeError, match=exact("List limit must be positive.")):
        kv.list(limit=limit)


def test_options_convert_as_web_idl_does(kv):
    # CF: workerd 1.20261117.1 (observed, tests/conformance/cases/list_options.json)
    for k in ("1", "10", "2", "a"):
        kv.put(k, k)
    assert [k for k, _ in kv.list({"start": 1, "end": 2})] == ["1", "10"]
    assert [k for k, _ in kv.list({"reverse": "yes", "limit": "2"})] == ["a", "2"]
    assert [k for k, _ in kv.list({"limit": 1.9})] == ["1"]
    assert [k for k, _ in kv.list({"bogus": 1, "prefix": None})] == ["1", "10", "2", "a"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 1e20}, "Value out of range. Must be between -2147483648 and 2147483647 (inclusive)."),
        ({"limit": 0.5}, "List limit must be positive."),
        ({"limit": float("nan")}, "List limit must be positive."),
        ({"start": [1]}, "list(): option 'start' must be a str (or a number, bool or None, converted as JavaScript does), got list"),
    ],
)
def test_bad_option_values_are_type_errors(kv, options, message):
    with pytest.raises(StorageTypeError, match=exact(message)):
        kv.list(options)


# -- the async API's operations ---------------------------------------------------------------


def test_get_many_returns_found_keys_sorted(db, kv):
    store = db.kv_store
    assert store.get_many(["a"]) == {}
    store.put_many({"b": 2, "a": 1, "c": None})
    got = store.get_many(["c", "zz", "b", "a", "b"])
    assert got == {"a": 1, "b": 2, "c": None}
    assert list(got) == ["a", "b", "c"]


def test_delete_and_delete_many_report_what_they_removed(db):
    store = db.kv_store
    assert store.delete("a") is False
    assert store.delete_many(["a", "b"]) == 0
    store.put_many({"a": 1, "b": 2, "c": 3})
    assert store.delete("a") is True
    assert store.delete_many(["b", "b", "c", "zz"]) == 2
    assert store.list_dict(compile_list_options()) == {}


def test_put_many_writes_all_or_nothing(db):
    store = db.kv_store
    store.put("keep", 1)
    before = dump(db)
    with pytest.raises(TypeError, match=exact("$.bad: set cannot be stored; expected None, bool, int, float, str, bytes, list, dict or datetime")):
        store.put_many({"a": 1, "bad": {1, 2}, "c": 3})
    assert dump(db) == before


def test_batches_have_no_128_key_limit(db):
    # CF: workerd 1.20261117.1 (observed) does not enforce the legacy 128-key limit.
    db.kv_store.put_many({f"k{i}": i for i in range(1000)})
    assert len(db.kv_store.get_many([f"k{i}" for i in range(1000)])) == 1000
    assert db.kv_store.delete_many([f"k{i}" for i in range(1000)]) == 1000


def test_list_dict_returns_an_ordered_mapping(db, kv):
    for k in ("b", "a", "c"):
        kv.put(k, k.upper())
    assert db.kv_store.list_dict(compile_list_options(limit=2)) == {"a": "A", "b": "B"}
    assert list(db.kv_store.list_dict(compile_list_options(reverse=True))) == ["c", "b", "a"]


def test_delete_all_returns_how_many_keys_there_were(db, kv):
    assert db.delete_all() == 0
    for k in "abc":
        kv.put(k, 1)
    assert db.delete_all() == 3
    assert kv.get("a") is None and [*kv.list()] == []
    kv.put("again", 1)  # the table is created again
    assert kv.get("again") == 1


# -- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**63),
        2**64 - 1,
        1.5,
        math.inf,
        -math.inf,
        "",
        "text é 😀",
        b"\x00\xff",
        [],
        [1, [2, [3]], {"a": None}],
        {},
        {"nested": {"list": [1.5, "x", b"y", None, True]}},
        dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc),
    ],
)
def test_supported_values_round_trip(kv, db, value):
    kv.put("k", value)
    db.commit()
    got = kv.get("k")
    assert got == value and type(got) is type(value)


def test_nan_round_trips(kv):
    kv.put("nan", math.nan)
    assert math.isnan(kv.get("nan"))


def test_a_naive_datetime_is_taken_as_utc(kv):
    kv.put("when", dt.datetime(2024, 1, 1, 12, 0))
    assert kv.get("when") == dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_buffers_are_stored_as_bytes(kv):
    kv.put("a", bytearray(b"ab"))
    kv.put("b", memoryview(b"cd"))
    assert (kv.get("a"), kv.get("b")) == (b"ab", b"cd")


@pytest.mark.parametrize(
    ("value", "where", "type_name"),
    [
        ({1, 2}, "$", "set"),
        ((1, 2), "$", "tuple"),
        (object(), "$", "object"),
        ({"a": [1, 2, object()]}, "$.a[2]", "object"),
        ([{"deep": {"er": complex(1, 2)}}], "$[0].deep.er", "complex"),
    ],
)
def test_unsupported_values_raise_a_type_error_naming_type_and_path(kv, db, value, where, type_name):
    before = file_digest(db)
    message = f"{where}: {type_name} cannot be stored; expected None, bool, int, float, str, bytes, list, dict or datetime"
    with pytest.raises(TypeError, match=exact(message)):
        kv.put("k", value)
    assert file_digest(db) == before
    assert kv.get("k") is None


def test_non_string_dict_keys_are_refused_and_huge_ints_stored_like_bigints(kv):
    with pytest.raises(TypeError, match=exact("$: dict key 1 is a int; only str keys can be stored")):
        kv.put("k", {1: "a"})
    kv.put("k", [2**64, -(10**40)])  # CF: workerd 1.20261117.1 stores a BigInt of any size
    assert kv.get("k") == [2**64, -(10**40)]


def test_keys_convert_as_web_idl_does_and_have_no_2048_byte_limit(kv, db):
    # CF: workerd 1.20261117.1 (observed, tests/conformance/cases/kv_keys.json)
    kv.put(1, "int")
    kv.put(1.5, "float")
    kv.put(True, "bool")
    kv.put(None, "undefined")
    kv.put(1e21, "big")
    assert dict(kv.list()) == {"1": "int", "1.5": "float", "1e+21": "big", "true": "bool", "undefined": "undefined"}
    before = file_digest(db)
    with pytest.raises(TypeError, match=r"^storage key must be a str .*, got list$"):
        kv.put([1], "x")
    assert file_digest(db) == before
    kv.put("é" * 1025, 1)  # 2050 bytes: fine (no legacy 2 KiB limit locally)


def test_a_key_with_a_lone_surrogate_is_refused_and_changes_nothing(kv, db):
    before = dump(db)
    with pytest.raises(UnicodeEncodeError):
        kv.put("\ud800", 1)
    assert dump(db) == before


def test_a_str_subclass_key_is_stored_as_its_text(kv):
    import enum

    class Key(str, enum.Enum):
        A = "a"

    kv.put(Key.A, 1)
    assert kv.get("a") == 1 and [*kv.list()] == [("a", 1)]
    assert type(next(iter(kv.list()))[0]) is str


def test_an_oversized_value_fails_as_sqlite_does_and_changes_nothing(kv, db):
    before = file_digest(db)
    limit = _cf.SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"]
    with pytest.raises(SqlError, match=exact("string or blob too big: SQLITE_TOOBIG")):
        kv.put("big", b"x" * limit)  # the encoded value is a few bytes longer than the limit
    assert file_digest(db) == before


def test_a_value_that_fits_but_makes_the_row_too_big_changes_nothing(kv, db):
    before = dump(db)
    limit = _cf.SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"]
    with pytest.raises(SqlError, match=exact("string or blob too big: SQLITE_TOOBIG")):
        kv.put("k" * 2000, b"x" * (limit - 1000))
    assert dump(db) == before  # not even the lazily created _cf_KV table is left


def test_a_legacy_object_bounds_values_by_sqlite_only(tmp_path):
    # CF: workerd 1.20261117.1 (observed): no 128 KiB value limit for new_classes locally.
    db = ObjectDatabase(tmp_path / "legacy.sqlite", sqlite_backed=False)
    try:
        store = db.kv_store
        store.put("ok", b"x" * 131_200)
        with pytest.raises(SqlError, match=exact("string or blob too big: SQLITE_TOOBIG")):
            store.put("big", b"x" * (8 * 1024 * 1024 + 34))
        with pytest.raises(StorageError, match=exact(_cf.KV_NOT_SQLITE_BACKED_MESSAGE)):
            db.kv.get("ok")
    finally:
        db.close()


# -- the lazily created table ---------------------------------------------------------------


def test_the_kv_table_is_created_by_the_first_write_only(db, kv):
    def has_table():
        return bool(db._exec_internal("SELECT 1 FROM sqlite_schema WHERE name = '_cf_KV'").fetchall())

    assert kv.get("a") is None and [*kv.list()] == []
    assert not has_table()
    assert kv.delete("a") is False
    assert has_table()  # CF: workerd 1.20261117.1 (observed): a delete is a write
    kv.put("a", 1)
    sql = db._exec_internal("SELECT sql FROM sqlite_schema WHERE name = '_cf_KV'").fetchall()[0][0]
    assert sql == "CREATE TABLE _cf_KV (\n  key TEXT PRIMARY KEY,\n  value BLOB\n) WITHOUT ROWID"


def test_a_rolled_back_first_write_uncreates_the_table(db, kv):
    # CF: sql-test.js testRollbackKvInit
    def fail():
        kv.put("foo", 123)
        raise ValueError("bar")

    with pytest.raises(ValueError, match="^bar$"):
        db.transaction_sync(fail)
    assert kv.get("foo") is None
    kv.put("foo", 456)
    db.commit()
    assert kv.get("foo") == 456


def test_list_returns_any_key_and_value_exactly_whatever_bytes_they_hold(db, kv):
    entries = {
        "": b"\x00\xff",
        "\x00": "nul",
        'q"uo\\te': [1, {"x": None}],
        "é😀\n": 2**70,
        "z": math.inf,
    }
    for key, value in entries.items():
        kv.put(key, value)
    assert db.kv_store.list_dict(compile_list_options()) == dict(sorted(entries.items(), key=lambda kv: kv[0].encode()))
    assert list(db.kv_store.list_dict(compile_list_options(reverse=True, limit=2))) == ["é😀\n", "z"]  # UTF-8 order


def test_a_list_page_bigger_than_one_sqlite_value_is_still_listed(db, kv):
    # The page is gathered into one SQLite value when it fits SQLITE_LIMIT_LENGTH.
    big = _cf.SQLITE_LIMITS["SQLITE_LIMIT_LENGTH"] // 2 - 64
    for key in ("a", "b", "c"):
        kv.put(key, key * big)
    page = db.kv_store.list_dict(compile_list_options())
    assert list(page) == ["a", "b", "c"] and page["c"] == "c" * big
