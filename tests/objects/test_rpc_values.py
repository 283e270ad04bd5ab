"""RPC values: what crosses, what is refused, copies never shared, size limits, method lookup."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from objects._http import Request, Response
from objects._rpc_values import (
    RESERVED_METHOD_NAMES,
    check_payload,
    lookup_rpc_method,
    payload_size,
    to_rpc,
    to_rpc_call,
)
from objects.errors import (
    BodyUsedError,
    DataCloneError,
    RpcMethodNotFoundError,
    RpcNotCallableError,
    RpcPayloadTooLargeError,
    RpcReservedMethodError,
)

NOW = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)


class Color(enum.IntEnum):
    RED = 1


class Mode(enum.StrEnum):
    FAST = "fast"


@pytest.mark.parametrize("value", [None, True, False, 0, -5, 2**70, 1.5, float("inf"), "", "héllo", b"\x00\xff", NOW])
def test_scalars_cross_unchanged(value: object) -> None:
    assert to_rpc(value) == value
    assert type(to_rpc(value)) is type(value)


def test_scalar_subclasses_arrive_as_their_plain_base() -> None:
    assert type(to_rpc(Color.RED)) is int and to_rpc(Color.RED) == 1
    assert type(to_rpc(Mode.FAST)) is str and to_rpc(Mode.FAST) == "fast"


def test_containers_are_deep_copied_never_shared() -> None:
    original = {"a": [1, {"b": [2, 3]}], "c": {"d": "e"}}
    copied = to_rpc(original)
    assert copied == original
    copied["a"][1]["b"].append(4)
    copied["c"]["d"] = "changed"
    assert original == {"a": [1, {"b": [2, 3]}], "c": {"d": "e"}}


def test_dict_and_list_subclasses_arrive_as_js_shaped_dict_and_list() -> None:
    from collections import OrderedDict

    from objects import JsArray, JsObject

    copied = to_rpc(OrderedDict(a=1))
    assert type(copied) is JsObject and copied == {"a": 1}
    assert type(copied.to_py()) is dict
    listed = to_rpc([OrderedDict(b=2)])
    assert type(listed) is JsArray and listed == [{"b": 2}]


def test_dicts_may_have_scalar_keys_like_a_js_map() -> None:
    value = {1: "one", 2.5: "x", None: "none", True: "t", "s": "s"}
    assert to_rpc(value) == value


def test_sets_cross_as_new_sets() -> None:
    original = {1, "a"}
    copied = to_rpc(original)
    assert copied == original and copied is not original
    assert to_rpc(frozenset({1})) == {1}
    assert type(to_rpc(frozenset({1}))) is set


def test_memoryview_arrives_as_bytes() -> None:
    assert to_rpc(memoryview(b"abc")) == b"abc"
    assert type(to_rpc(memoryview(b"abc"))) is bytes


def test_an_exception_arrives_as_an_error_like_a_js_error() -> None:
    copied = to_rpc(ValueError("bad"))
    assert type(copied) is Exception
    assert str(copied) == "Error: bad"
    assert str(to_rpc(RuntimeError())) == "Error"


@pytest.mark.parametrize(
    ("value", "type_text"),
    [
        ((1, 2), "<class 'tuple'>"),
        (bytearray(b"x"), "<class 'bytearray'>"),
        (lambda: 1, "<class 'function'>"),
        (object(), "<class 'object'>"),
        (datetime.date(2024, 1, 1), "<class 'datetime.date'>"),
        (KeyboardInterrupt(), "<class 'KeyboardInterrupt'>"),
    ],
)
def test_values_python_workers_refuse_are_refused_in_their_words(value: object, type_text: str) -> None:
    with pytest.raises(DataCloneError, match=rf"^{type_text} cannot be sent over RPC\.$") as info:
        to_rpc(value)
    assert info.value.path == "$"


def test_the_path_of_a_refused_value_is_reported_beside_the_message() -> None:
    with pytest.raises(DataCloneError, match=r"^<class 'tuple'> cannot be sent over RPC\.$") as info:
        to_rpc({"a": [0, 1, (2,)]})
    assert info.value.path == "$.a[2]"


def test_a_key_that_is_not_an_identifier_is_quoted_in_the_path() -> None:
    with pytest.raises(DataCloneError) as info:
        to_rpc({"two words": {3: [set(), ()]}})
    assert info.value.path == "$['two words'][3][1]"


def test_a_tuple_dict_key_is_refused() -> None:
    with pytest.raises(DataCloneError, match=r"^<class 'tuple'> cannot be sent over RPC\.$"):
        to_rpc({(1, 2): "x"})


def test_a_tuple_inside_a_set_is_refused() -> None:
    with pytest.raises(DataCloneError, match=r"^<class 'tuple'> cannot be sent over RPC\.$"):
        to_rpc({(1, 2)})


def test_an_awaitable_is_refused_and_should_have_been_awaited() -> None:
    async def work() -> int:
        return 1

    coroutine = work()
    try:
        with pytest.raises(DataCloneError, match=r"^Awaitable <class 'coroutine'> cannot be sent over RPC\.$"):
            to_rpc([coroutine])
    finally:
        coroutine.close()


def test_shared_references_stay_shared_inside_one_value() -> None:
    shared = [1]
    copied = to_rpc({"x": shared, "y": shared})
    assert copied["x"] is copied["y"]
    assert copied["x"] is not shared


def test_cycles_are_copied_as_cycles() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    copied = to_rpc(loop)
    assert copied[1] is copied
    assert copied is not loop


async def test_requests_and_responses_cross_as_independent_unread_copies() -> None:
    response = Response("body", status=201, headers={"x-a": "1"})
    copied = to_rpc({"r": response})["r"]
    assert copied is not response
    assert (copied.status, copied.headers.get("x-a"), await copied.bytes()) == (201, "1", b"body")
    copied.headers.set("x-a", "2")
    assert response.headers.get("x-a") == "1"
    request = Request("https://example.com/", method="POST", body=b"x")
    assert await to_rpc(request).bytes() == b"x"


async def test_a_response_whose_body_was_read_cannot_be_sent() -> None:
    response = Response("body")
    await response.text()
    with pytest.raises(BodyUsedError, match=r"^Response body is already used$"):
        to_rpc(response)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.binary() | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )
)
def test_json_like_values_round_trip_equal_and_unshared(value: Any) -> None:
    copied = to_rpc(value)
    assert copied == value
    if isinstance(value, (list, dict)):
        assert copied is not value


# --------------------------------------------------------------------- call args


def test_call_arguments_are_copied_with_positional_and_keyword_paths() -> None:
    data = {"k": [1]}
    args, kwargs = to_rpc_call([1, data], {"opt": data})
    assert args == (1, {"k": [1]}) and kwargs == {"opt": {"k": [1]}}
    assert args[1] is not data
    assert args[1] is kwargs["opt"]  # one serialized message: shared stays shared
    with pytest.raises(DataCloneError) as positional:
        to_rpc_call([1, (2,)], {})
    assert positional.value.path == "$[1]"
    with pytest.raises(DataCloneError) as keyword:
        to_rpc_call([], {"opt": [(2,)]})
    assert keyword.value.path == "$.opt[0]"


def test_a_call_with_no_arguments_is_empty() -> None:
    assert to_rpc_call((), {}) == ((), {})


def test_a_call_over_32_mib_is_refused_with_cloudflares_message() -> None:
    big = b"x" * (32 * 1024 * 1024)
    with pytest.raises(
        RpcPayloadTooLargeError,
        match=r"^Serialized RPC arguments or return values are limited to 32MiB, but the size of this value was: \d+ bytes\.$",
    ) as info:
        to_rpc_call([big], {})
    assert info.value.size > 32 * 1024 * 1024


def test_check_payload_returns_the_size_under_the_limit() -> None:
    assert check_payload("abc") == payload_size("abc")
    with pytest.raises(RpcPayloadTooLargeError):
        check_payload("x" * (32 * 1024 * 1024 + 1))


def test_payload_size_grows_with_the_content() -> None:
    assert payload_size("a") < payload_size("a" * 100) < payload_size("é" * 100)
    assert payload_size([1, 2, 3]) < payload_size([1, 2, 3, "four"])
    assert payload_size({"a": b"x" * 1000}) > 1000
    assert payload_size(2**100) > payload_size(2**40) > payload_size(7)


def test_payload_size_does_not_count_bodies_which_travel_as_streams() -> None:
    small = Response("x")
    large = Response("x" * 100_000)
    assert payload_size(large) == payload_size(small)


def test_payload_size_counts_a_shared_object_once() -> None:
    shared = ["y" * 1000]
    assert payload_size([shared, shared]) < 2 * payload_size(shared)


# ------------------------------------------------------------------- method lookup


class Base:
    def helper(self) -> str:
        return "base"


class Target(Base):
    LIMIT = 10

    def __init__(self) -> None:
        self.instance_fn = lambda: "instance"

    def increment(self, by: int = 1) -> int:
        return by

    async def slow(self) -> str:
        return "slow"

    def _private(self) -> None:
        pass

    @property
    def prop(self) -> int:
        return 1

    @staticmethod
    def static() -> str:
        return "static"

    def fetch(self) -> None:
        pass


def test_public_methods_are_callable_over_rpc() -> None:
    target = Target()
    assert lookup_rpc_method(target, "increment")(2) == 2
    assert lookup_rpc_method(target, "static")() == "static"
    assert lookup_rpc_method(target, "slow").__name__ == "slow"
    assert lookup_rpc_method(target, "helper")() == "base"


@pytest.mark.parametrize("name", sorted(RESERVED_METHOD_NAMES))
def test_reserved_names_are_refused_in_cloudflares_words(name: str) -> None:
    with pytest.raises(RpcReservedMethodError, match=rf"^'{name}' is a reserved method and cannot be called over RPC\.$"):
        lookup_rpc_method(Target(), name)


@pytest.mark.parametrize("name", ["missing", "_private", "__init__", "__class__", "instance_fn", "prop", ""])
def test_unknown_private_instance_and_property_names_are_not_implemented(name: str) -> None:
    with pytest.raises(RpcMethodNotFoundError, match=rf'^The RPC receiver does not implement the method "{name}"\.$'):
        lookup_rpc_method(Target(), name)


def test_methods_of_the_framework_base_classes_are_not_exposed() -> None:
    with pytest.raises(RpcMethodNotFoundError):
        lookup_rpc_method(Target(), "helper", base_classes=(Base,))


def test_a_class_attribute_that_is_not_a_method_is_not_a_function() -> None:
    with pytest.raises(RpcNotCallableError, match=r'^"LIMIT" is not a function\.$'):
        lookup_rpc_method(Target(), "LIMIT")


def test_a_method_checked_once_is_checked_again_after_its_class_changes() -> None:
    class Changing:
        def ping(self) -> str:
            return "pong"

    target = Changing()
    assert lookup_rpc_method(target, "ping")() == "pong"
    Changing.ping = property(lambda self: "now a property")  # type: ignore[assignment,method-assign]
    with pytest.raises(RpcMethodNotFoundError):
        lookup_rpc_method(target, "ping")
    del Changing.ping
    with pytest.raises(RpcMethodNotFoundError):
        lookup_rpc_method(target, "ping")


def test_a_method_checked_once_is_checked_again_after_a_subclass_overrides_it() -> None:
    class Base:
        def ping(self) -> str:
            return "pong"

    class Child(Base):
        pass

    target = Child()
    assert lookup_rpc_method(target, "ping")() == "pong"
    # The defining class (Base) is unchanged; the subclass now hides it behind a property.
    Child.ping = property(lambda self: lambda: "through a property")  # type: ignore[assignment,method-assign]
    with pytest.raises(RpcMethodNotFoundError):
        lookup_rpc_method(target, "ping")
