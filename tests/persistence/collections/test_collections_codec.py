"""Keys and values: distinct encodings, exact round trips, clear refusals."""

from __future__ import annotations

import datetime as dt
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


def test_integral_floats_and_negative_zero_are_the_int_key_as_in_a_python_dict() -> None:
    assert encode_key(1.0) == encode_key(1) == "n:1"
    assert encode_key(-0.0) == "n:0"
    assert encode_key(1.5) == "n:1.5"
    assert decode_key(encode_key(0.1)) == 0.1
    assert decode_key(encode_key(2**80)) == 2**80


@pytest.mark.parametrize("key", [math.nan, math.inf, -math.inf])
def test_non_finite_numeric_keys_are_rejected(key: float) -> None:
    with pytest.raises(InvalidKeyError, match=r"^collection key must be a finite number or a string, got (nan|inf|-inf)$"):
        encode_key(key)


@pytest.mark.parametrize("key", [True, None, b"x", (1,)])
def test_other_key_types_are_rejected(key: object) -> None:
    with pytest.raises(InvalidKeyError, match=r"^collection key must be a finite number or a string, got "):
        encode_key(key)


@given(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
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


def test_user_dicts_using_the_tag_key_are_not_mistaken_for_tags() -> None:
    value = {"__dh": "bigint", "v": "12", "inner": {"__dh": "nan"}}
    assert decode_value(encode_value(value)) == value


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
        "2024-01-01T00:00:00.000000Z"
    assert literal(dt.date(2024, 1, 1)) == "2024-01-01"
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
