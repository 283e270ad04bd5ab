"""Keys and values: distinct encodings, exact round trips, clear refusals."""

from __future__ import annotations

import datetime as dt
import json
import math
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistence.collections import InvalidKeyError, ValueEncodingError, decode_key, encode_key
from persistence.collections._codec import decode_value, encode_value, literal, project


def test_numbers_and_strings_are_distinct_keys() -> None:
    assert encode_key(1) == "n:1"
    assert encode_key("1") == "s:1"
    assert decode_key("n:1") == 1 and type(decode_key("n:1")) is int
    assert decode_key("s:1") == "1"


def test_numbers_are_written_as_javascript_writes_them() -> None:
    assert encode_key(1.0) == encode_key(1) == "n:1"
    assert encode_key(1.5) == "n:1.5"
    assert [encode_key(x) for x in (1e-7, 1.5e-5, 1e21, 1e16, 2**80)] == [
        "n:1e-7", "n:0.000015", "n:1e+21", "n:10000000000000000", "n:1.2089258196146292e+24"]
    assert decode_key(encode_key(0.1)) == 0.1
    assert decode_key(encode_key(2**80)) == 2**80 and type(decode_key("n:1e+21")) is int


def test_negative_zero_is_its_own_key_as_in_tanstack() -> None:
    assert encode_key(-0.0) == "n:-0" and encode_key(0.0) == encode_key(0) == "n:0"
    back = decode_key("n:-0")
    assert back == 0 and math.copysign(1, back) == -1


def test_integers_javascript_cannot_hold_are_refused_as_keys() -> None:
    with pytest.raises(InvalidKeyError, match=r"^collection key 9007199254740993 is not a number JavaScript can hold "
                                              r"exactly \(beyond 2\*\*53 a key must be a double\); use a str key$"):
        encode_key(2**53 + 1)


@pytest.mark.parametrize("key", [math.nan, math.inf, -math.inf])
def test_non_finite_numeric_keys_are_rejected(key: float) -> None:
    with pytest.raises(InvalidKeyError, match=r"^collection key must be a finite number or a string, got (nan|inf|-inf)$"):
        encode_key(key)


@pytest.mark.parametrize("key", [True, None, b"x", (1,)])
def test_other_key_types_are_rejected(key: object) -> None:
    with pytest.raises(InvalidKeyError, match=r"^collection key must be a finite number or a string, got "):
        encode_key(key)


@given(st.one_of(st.text(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)))
def test_keys_round_trip_to_an_equal_key(key: object) -> None:
    assert decode_key(encode_key(key)) == key


def test_tagged_values_are_restored_exactly() -> None:
    value = {
        "aware": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
        "zoned": dt.datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
        "naive": dt.datetime(1, 1, 1),
        "day": dt.date(2024, 2, 29),
        "big": 2**200, "neg": -(2**64), "safe": 2**53,
        "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "negzero": -0.0, "float_int": 3.0,
        "nested": [{"x": [2**60, None, True]}],
    }
    back = decode_value(encode_value(value))
    assert back["aware"] == value["aware"] and back["aware"].utcoffset() == dt.timedelta(hours=-3)
    assert back["zoned"].tzinfo == ZoneInfo("America/New_York")
    assert back["zoned"].utcoffset() == value["zoned"].utcoffset()
    assert back["naive"] == value["naive"] and back["day"] == value["day"]
    assert type(back["day"]) is dt.date
    assert back["big"] == 2**200 and back["neg"] == -(2**64) and type(back["safe"]) is int
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["ninf"] == -math.inf
    assert math.copysign(1, back["negzero"]) == -1 and type(back["float_int"]) is float
    assert back["nested"] == [{"x": [2**60, None, True]}]


def test_values_use_tanstacks_tags() -> None:
    text = encode_value({"big": 2**60, "nan": math.nan, "inf": math.inf, "ninf": -math.inf,
                         "at": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)})
    tag = "__tanstack_db_persisted_type__"
    assert json.loads(text) == {
        "big": {tag: "bigint", "value": str(2**60)}, "nan": {tag: "nan", "value": "NaN"},
        "inf": {tag: "infinity", "value": "Infinity"}, "ninf": {tag: "-infinity", "value": "-Infinity"},
        "at": {tag: "date", "value": "2024-01-02T03:04:05.678Z"},
    }


def test_a_date_written_by_tanstack_reads_as_an_aware_utc_datetime() -> None:
    tag = "__tanstack_db_persisted_type__"
    back = decode_value(json.dumps({"at": {tag: "date", "value": "2024-01-02T03:04:05.678Z"},
                                    "bad": {tag: "date", "value": "not a date"},
                                    "plain": {tag: "bigint", "value": 5}}))
    assert back["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    assert back["bad"] is None  # TanStack: an invalid Date reads as null
    assert back["plain"] == {tag: "bigint", "value": 5}  # not a tag for TanStack either


def test_user_dicts_that_would_read_back_as_tags_are_refused() -> None:
    with pytest.raises(ValueEncodingError, match=r"^cannot store value at \$\.x: a dict with "
                                                 r"'__tanstack_db_persisted_type__' = 'nan' reads back as"):
        encode_value({"x": {"__tanstack_db_persisted_type__": "nan", "value": "NaN"}})
    fine = {"x": {"__tanstack_db_persisted_type__": "other", "value": 1}}
    assert decode_value(encode_value(fine)) == fine


def test_unsupported_values_are_refused_with_their_path() -> None:
    with pytest.raises(ValueEncodingError, match=r"^cannot store value of type 'set' at \$\.a\[1\]\.b$"):
        encode_value({"a": [1, {"b": {1, 2}}]})
    with pytest.raises(ValueEncodingError, match=r"^cannot store value at \$\.a: dict keys must be str, got int 1$"):
        encode_value({"a": {1: "x"}})
    with pytest.raises(ValueEncodingError, match=r"^cannot store value at \$\.s: '\\ud800' is not valid Unicode text$"):
        encode_value({"s": "\ud800"})


def test_aware_datetimes_beyond_the_utc_range_are_refused() -> None:
    edge = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    with pytest.raises(ValueEncodingError, match=r"^cannot store value at \$\.at: 0001-01-01T00:00:00\+05:00 is "
                                                 r"outside the UTC range$"):
        encode_value({"at": edge})


def test_the_sql_value_model_projects_tags_to_sqlite_scalars() -> None:
    assert literal(True) == 1
    assert literal(2**62) == 2**62
    assert literal(2**64) == float(2**64)
    assert literal(math.nan) is None
    assert literal(dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == \
        "2024-01-01T00:00:00.000Z"
    assert literal(dt.date(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"
    assert project({"a": [1, "x"]}) == '{"a":[1,"x"]}'


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
              st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31),
                           timezones=st.one_of(st.none(), st.timezones())), st.dates()),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=5), children, max_size=4)),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@given(json_values)
def test_values_round_trip_exactly(value: object) -> None:
    assert _same(decode_value(encode_value({"v": value})), {"v": value})
