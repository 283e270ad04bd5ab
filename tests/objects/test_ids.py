"""Durable Object IDs: workerd's local scheme, validation, equality, jurisdictions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objects._ids import JURISDICTIONS, DurableObjectId, IdFactory
from objects.errors import InvalidIdError, JurisdictionError

NOT_HEX = r"^Invalid Durable Object ID: must be 64 hex digits$"
WRONG_NAMESPACE = r"^Durable Object ID is not valid for this namespace\.$"
DEADBEEF64 = "deadbeef" * 8


def _hand_made_id(unique_key: str, base: bytes) -> str:
    """workerd's scheme written out independently: base + HMAC(SHA256(key), base)[:16]."""
    key = hashlib.sha256(unique_key.encode()).digest()
    return (base + hmac.new(key, base, hashlib.sha256).digest()[:16]).hex()


def _counter_bytes() -> object:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


# ------------------------------------------------------------------ the ID scheme


def test_id_from_name_matches_workerds_scheme_computed_by_hand() -> None:
    key = hashlib.sha256(b"my-worker-Counter").digest()
    base = hmac.new(key, b"global", hashlib.sha256).digest()[:16]
    expected = _hand_made_id("my-worker-Counter", base)
    assert IdFactory("my-worker-Counter").idFromName("global").toString() == expected


def test_new_unique_id_is_random_half_plus_its_mac() -> None:
    factory = IdFactory("ns", random_bytes=lambda n: bytes(range(n)))
    assert factory.newUniqueId().toString() == _hand_made_id("ns", bytes(range(16)))


def test_workerds_own_test_vector_parses() -> None:
    # actor-id-impl-test.c++: factory keyed by deadbeef64 accepts deadbeef..+proper MAC.
    valid = _hand_made_id(DEADBEEF64, bytes.fromhex(DEADBEEF64)[:16])
    parsed = IdFactory(DEADBEEF64).idFromString(valid)
    assert parsed.toString() == valid
    assert parsed.name is None


def test_workerds_own_test_vector_rejects_an_id_with_a_bad_mac() -> None:
    with pytest.raises(InvalidIdError, match=WRONG_NAMESPACE):
        IdFactory("hello").idFromString(DEADBEEF64)


def test_id_string_is_64_lowercase_hex_digits() -> None:
    text = IdFactory("ns").idFromName("a").toString()
    assert len(text) == 64
    assert text == text.lower()
    int(text, 16)


def test_same_name_gives_the_same_id_and_other_names_differ() -> None:
    factory = IdFactory("ns")
    assert factory.idFromName("a") == IdFactory("ns").idFromName("a")
    assert factory.idFromName("a") != factory.idFromName("b")


def test_other_namespaces_give_other_ids_for_the_same_name() -> None:
    assert IdFactory("ns1").idFromName("a") != IdFactory("ns2").idFromName("a")


def test_new_unique_ids_differ_and_have_no_name() -> None:
    factory = IdFactory("ns")
    first, second = factory.newUniqueId(), factory.newUniqueId()
    assert first != second
    assert first.name is None


def test_named_ids_remember_their_name() -> None:
    object_id = IdFactory("ns").idFromName("room-7")
    assert object_id.name == "room-7"
    assert object_id.jurisdiction is None


def test_snake_case_twins_are_the_same_functions() -> None:
    assert IdFactory.id_from_name is IdFactory.idFromName
    assert IdFactory.id_from_string is IdFactory.idFromString
    assert IdFactory.new_unique_id is IdFactory.newUniqueId
    assert DurableObjectId.to_string is DurableObjectId.toString


def test_id_from_name_converts_numbers_as_workerd_and_refuses_other_objects() -> None:
    ids = IdFactory("ns")
    assert ids.idFromName(5) == ids.idFromName("5")  # type: ignore[arg-type]
    assert ids.idFromName(5).name == "5"  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^idFromName: name: expected str, got list$"):
        ids.idFromName([5])  # type: ignore[arg-type]


def test_unique_key_must_be_a_string() -> None:
    with pytest.raises(TypeError, match=r"^IdFactory: unique_key: expected str, got bytes$"):
        IdFactory(b"ns")  # type: ignore[arg-type]


def test_a_random_source_returning_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^random_bytes returned 3 bytes, expected 16$"):
        IdFactory("ns", random_bytes=lambda n: b"abc").newUniqueId()


# ------------------------------------------------------------------------ parsing


def test_id_from_string_round_trips_but_forgets_the_name() -> None:
    factory = IdFactory("ns")
    named = factory.idFromName("a")
    parsed = factory.idFromString(named.toString())
    assert parsed == named
    assert parsed.name is None


def test_id_from_string_accepts_upper_case_and_returns_lower_case() -> None:
    factory = IdFactory("ns")
    text = factory.idFromName("a").toString()
    assert factory.idFromString(text.upper()).toString() == text


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "g" * 64, "a" * 63, "a" * 65, " " + "a" * 63, None, 12, "é" * 64],
)
def test_id_from_string_refuses_anything_but_64_hex_digits(bad: object) -> None:
    with pytest.raises(InvalidIdError, match=NOT_HEX):
        IdFactory("ns").idFromString(bad)  # type: ignore[arg-type]


def test_id_from_string_refuses_an_id_of_another_namespace() -> None:
    other = IdFactory("other").idFromName("a").toString()
    with pytest.raises(InvalidIdError, match=WRONG_NAMESPACE):
        IdFactory("ns").idFromString(other)


def test_id_from_string_refuses_a_tampered_mac() -> None:
    text = IdFactory("ns").idFromName("a").toString()
    tampered = text[:-1] + ("0" if text[-1] != "0" else "1")
    with pytest.raises(InvalidIdError, match=WRONG_NAMESPACE):
        IdFactory("ns").idFromString(tampered)


# ------------------------------------------------------------- equality and shape


def test_equals_compares_the_bytes_and_ignores_the_name() -> None:
    factory = IdFactory("ns")
    named = factory.idFromName("a")
    parsed = factory.idFromString(named.toString())
    assert named.equals(parsed)
    assert not named.equals(factory.idFromName("b"))
    assert not named.equals("not an id")  # type: ignore[arg-type]


def test_ids_hash_by_their_bytes() -> None:
    factory = IdFactory("ns")
    named = factory.idFromName("a")
    assert {named, factory.idFromString(str(named))} == {named}


def test_str_is_the_hex_string() -> None:
    object_id = IdFactory("ns").idFromName("a")
    assert str(object_id) == object_id.toString()
    assert repr(object_id) == f"DurableObjectId({object_id.toString()!r}, name='a')"


def test_ids_are_immutable() -> None:
    object_id = IdFactory("ns").idFromName("a")
    with pytest.raises(AttributeError, match=r"^DurableObjectId is immutable; cannot set 'name'$"):
        object_id.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError, match=r"^DurableObjectId is immutable; cannot delete '_hex'$"):
        del object_id._hex


def test_ids_survive_pickle_and_copy() -> None:
    object_id = IdFactory("ns").jurisdiction("eu").idFromName("a")
    for clone in (pickle.loads(pickle.dumps(object_id)), copy.deepcopy(object_id)):
        assert clone == object_id
        assert clone.name == "a"
        assert clone.jurisdiction == "eu"


@given(st.text())
def test_any_name_round_trips_through_its_string(name: str) -> None:
    factory = IdFactory("ns")
    object_id = factory.idFromName(name)
    assert factory.idFromString(object_id.toString()).equals(object_id)
    assert object_id.name == name


# ------------------------------------------------------------------ jurisdictions


def test_cloudflares_jurisdictions_are_accepted() -> None:
    assert JURISDICTIONS == ("eu", "fedramp", "fedramp-high", "us")
    for name in JURISDICTIONS:
        assert IdFactory("ns").jurisdiction(name).idFromName("a").jurisdiction == name


def test_a_jurisdiction_gives_another_id_for_the_same_name() -> None:
    factory = IdFactory("ns")
    plain = factory.idFromName("my-name")
    eu = factory.jurisdiction("eu").idFromName("my-name")
    us = factory.jurisdiction("us").idFromName("my-name")
    assert len({plain, eu, us}) == 3
    assert eu.name == "my-name"


def test_the_unrestricted_namespace_recovers_the_jurisdiction_from_the_string() -> None:
    factory = IdFactory("ns")
    eu = factory.jurisdiction("eu").idFromName("a")
    parsed = factory.idFromString(eu.toString())
    assert parsed == eu
    assert parsed.jurisdiction == "eu"
    assert factory.idFromString(factory.idFromName("a").toString()).jurisdiction is None


def test_a_jurisdictional_view_parses_its_own_ids() -> None:
    eu = IdFactory("ns").jurisdiction("eu")
    assert eu.idFromString(eu.newUniqueId().toString()).jurisdiction == "eu"


@pytest.mark.parametrize("source", [None, "us"])
def test_a_jurisdictional_view_refuses_ids_of_another_jurisdiction(source: str | None) -> None:
    factory = IdFactory("ns")
    text = factory.jurisdiction(source).idFromName("a").toString()
    with pytest.raises(
        InvalidIdError,
        match=r"^idFromString called on jurisdictional subnamespace with an ID from a different jurisdiction$",
    ):
        factory.jurisdiction("eu").idFromString(text)


def test_a_jurisdictional_view_still_refuses_other_namespaces() -> None:
    text = IdFactory("other").jurisdiction("eu").idFromName("a").toString()
    with pytest.raises(InvalidIdError, match=WRONG_NAMESPACE):
        IdFactory("ns").jurisdiction("eu").idFromString(text)


def test_jurisdiction_none_is_the_unrestricted_view() -> None:
    view = IdFactory("ns").jurisdiction("eu").jurisdiction(None)
    assert view.jurisdiction_name is None
    assert view.idFromName("a") == IdFactory("ns").idFromName("a")


@pytest.mark.parametrize("bad", ["mars", "EU", "", 7])
def test_unknown_jurisdictions_are_refused_with_the_valid_list(bad: object) -> None:
    expected = rf"^jurisdiction: unknown jurisdiction {bad!r}; expected one of 'eu', 'fedramp', 'fedramp-high', 'us'$"
    with pytest.raises(JurisdictionError, match=expected):
        IdFactory("ns").jurisdiction(bad)  # type: ignore[arg-type]
    with pytest.raises(JurisdictionError, match=expected):
        IdFactory("ns", bad)  # type: ignore[arg-type]


def test_new_unique_id_accepts_a_jurisdiction_on_the_unrestricted_namespace() -> None:
    factory = IdFactory("ns")
    object_id = factory.newUniqueId(jurisdiction="fedramp")
    assert object_id.jurisdiction == "fedramp"
    assert factory.idFromString(object_id.toString()).jurisdiction == "fedramp"


def test_new_unique_id_refuses_an_unknown_jurisdiction() -> None:
    with pytest.raises(JurisdictionError, match=r"^newUniqueId: jurisdiction: unknown jurisdiction 'x'; "):
        IdFactory("ns").newUniqueId(jurisdiction="x")


def test_new_unique_id_refuses_a_jurisdiction_contradicting_the_view() -> None:
    with pytest.raises(
        JurisdictionError,
        match=r"^newUniqueId: jurisdiction 'us' conflicts with this namespace's jurisdiction 'eu'$",
    ):
        IdFactory("ns").jurisdiction("eu").newUniqueId(jurisdiction="us")


def test_a_view_shares_the_random_source_of_its_namespace() -> None:
    factory = IdFactory("ns", random_bytes=_counter_bytes())  # type: ignore[arg-type]
    first = factory.newUniqueId().toString()
    second = factory.jurisdiction("eu").newUniqueId().toString()
    assert first[:32] == (1).to_bytes(16, "big").hex()
    assert second[:32] == (2).to_bytes(16, "big").hex()


# ----------------------------------------------------------------- get() checks


def test_get_accepts_the_namespaces_own_ids() -> None:
    factory = IdFactory("ns")
    factory.check_get(factory.idFromName("a"))
    factory.check_get(factory.jurisdiction("eu").idFromName("a"))  # unrestricted: any jurisdiction


def test_get_refuses_an_id_of_another_namespace() -> None:
    with pytest.raises(InvalidIdError, match=WRONG_NAMESPACE):
        IdFactory("ns").check_get(IdFactory("other").idFromName("a"))


def test_get_on_a_jurisdictional_view_refuses_other_jurisdictions_in_cloudflares_words() -> None:
    factory = IdFactory("ns")
    with pytest.raises(
        InvalidIdError,
        match=r"^get called on jurisdictional subnamespace with an ID from a different jurisdiction$",
    ):
        factory.jurisdiction("eu").check_get(factory.idFromName("a"))


def test_get_refuses_something_that_is_not_an_id() -> None:
    with pytest.raises(TypeError, match=r"^get: id: expected DurableObjectId, got str$"):
        IdFactory("ns").check_get("a" * 64)  # type: ignore[arg-type]
