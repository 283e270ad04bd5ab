"""Values crossing Python <-> SQLite (``_codec.py``) and the authorizer's argument parsing."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from persistence import MAX_SAFE_INTEGER, StorageTypeError
from persistence._authorizer import _boolean_ok, _is_int, _pragma_ok, is_reserved_name
from persistence._codec import bind_cloudflare, convert_row_cloudflare, decode_kv_value, encode_kv_value


@pytest.mark.parametrize(
    ("value", "bound"),
    [
        (None, None),
        ("s", "s"),
        (1, 1.0),
        (-MAX_SAFE_INTEGER, float(-MAX_SAFE_INTEGER)),
        (1.5, 1.5),
        (True, "true"),
        (False, "false"),
        (b"b", b"b"),
        (bytearray(b"b"), b"b"),
        (memoryview(b"b"), b"b"),
    ],
)
def test_cloudflare_binding_converts_like_pyodide(value, bound):
    got = bind_cloudflare(value)
    assert got == bound and type(got) is type(bound)


def test_int_subclasses_bind_as_numbers_and_str_subclasses_as_text():
    import enum

    class Color(enum.IntEnum):
        RED = 1

    class Name(str, enum.Enum):
        A = "a"

    assert bind_cloudflare(Color.RED) == 1.0
    assert bind_cloudflare(Name.A) == Name.A


def test_unbindable_values_name_their_position():
    with pytest.raises(StorageTypeError, match=r"^SQL binding 3: list cannot be bound"):
        bind_cloudflare([1], 2)


@pytest.mark.parametrize(
    ("row", "converted"),
    [
        ((1.0, 2.5, "x"), (1, 2.5, "x")),
        ((2**53, -(2**53)), (float(2**53), float(-(2**53)))),
        ((float(2**53),), (float(2**53),)),
        ((math.inf, -math.inf), (math.inf, -math.inf)),
        ((None, b"z", 7), (None, b"z", 7)),
    ],
)
def test_result_numbers_convert_like_pyodide(row, converted):
    got = convert_row_cloudflare(row)
    assert got == converted and [type(v) for v in got] == [type(v) for v in converted]


def test_kv_values_encode_as_msgpack_and_decode_back():
    value = {"a": [1, 2.5, None, True, "s", b"b"], "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}
    blob = encode_kv_value(value)
    assert isinstance(blob, bytes) and decode_kv_value(blob) == value


@pytest.mark.parametrize(
    ("text", "unsigned", "ok"),
    [
        ("5", False, True),
        ("-5", False, True),
        ("+5", False, True),
        ("0x10002", False, True),
        ("  7", False, True),
        ("2147483647", False, True),
        ("2147483648", False, False),
        ("1.5", False, False),
        ("", False, False),
        ("٣", False, False),
        ("-1", True, False),
        ("4294967295", True, True),
        ("4294967296", True, False),
    ],
)
def test_pragma_numbers_parse_like_kj(text, unsigned, ok):
    assert _is_int(text, unsigned=unsigned) is ok


@pytest.mark.parametrize(("arg", "ok"), [("1", True), ("10", True), ("onward", True), ("'no'", True), ("nay", False), ("", False)])
def test_boolean_pragma_arguments_match_by_prefix(arg, ok):
    assert _boolean_ok(arg) is ok


def test_pragma_rules_follow_the_allow_list():
    assert _pragma_ok("data_version", None) and not _pragma_ok("data_version", "1")
    assert _pragma_ok("table_list", "anything")
    assert not _pragma_ok("table_info", None) and not _pragma_ok("table_info", "_cf_KV")
    assert _pragma_ok("foreign_key_check", None) and not _pragma_ok("foreign_key_list", None)
    assert not _pragma_ok("cache_size", None)


@pytest.mark.parametrize(("name", "reserved"), [("_cf_KV", True), ("_CF_x", True), ("_dohost_t", True), ("_DOHOST_", True), ("cf_x", False), ("_c", False), (None, False), ("", False)])
def test_reserved_names_are_matched_in_any_case(name, reserved):
    assert is_reserved_name(name) is reserved
