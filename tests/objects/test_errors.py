"""The error tree: roots, builtin bases, Cloudflare's messages and flags."""

from __future__ import annotations

import inspect
import re

import pytest

from objects import errors
from objects.errors import (
    MAX_RPC_PAYLOAD_BYTES,
    AbortError,
    AutoResponseTooLargeError,
    BodyUsedError,
    DataCloneError,
    HttpStatusRangeError,
    InvalidIdError,
    NetworkLostError,
    ObjectResetError,
    ObjectsError,
    OverloadedError,
    RemoteError,
    RpcMethodNotFoundError,
    RpcNotCallableError,
    RpcPayloadTooLargeError,
    RpcReservedMethodError,
    WebSocketLimitError,
    remote_error,
)


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]


def test_every_error_except_abort_derives_from_the_package_root() -> None:
    classes = _exception_classes()
    assert len(classes) > 15
    for cls in classes:
        if cls is AbortError:
            continue
        assert issubclass(cls, ObjectsError), cls


def test_module_docstring_draws_every_error_class() -> None:
    for cls in _exception_classes():
        assert cls.__name__ in (errors.__doc__ or ""), cls


def test_abort_error_is_not_an_exception_so_user_code_cannot_swallow_it() -> None:
    with pytest.raises(AbortError):
        try:
            raise AbortError()
        except Exception:  # what careless user code writes
            pytest.fail("AbortError was swallowed by except Exception")


def test_abort_without_reason_uses_cloudflares_message() -> None:
    exc = AbortError()
    assert str(exc) == "Application called abort() to reset Durable Object."
    caller = exc.to_caller_error()
    assert isinstance(caller, ObjectResetError)
    assert str(caller) == "Application called abort() to reset Durable Object."
    assert caller.durableObjectReset is True


def test_abort_with_reason_reports_the_reason_to_callers() -> None:
    exc = AbortError("schema broken")
    assert str(exc) == "schema broken"
    assert exc.reason == "schema broken"
    assert str(exc.to_caller_error()) == "schema broken"


def test_flags_default_to_false_on_plain_errors() -> None:
    exc = ObjectsError("x")
    assert (exc.remote, exc.retryable, exc.overloaded) == (False, False, False)
    assert exc.durableObjectReset is False
    assert exc.durable_object_reset is False


def test_reset_error_sets_durable_object_reset_under_both_spellings() -> None:
    exc = ObjectResetError(ObjectResetError.CODE_UPDATED)
    assert exc.durableObjectReset is True
    assert exc.durable_object_reset is True
    assert str(exc) == "Durable Object reset because its code was updated."


def test_setting_the_snake_twin_updates_the_camel_case_flag() -> None:
    exc = ObjectsError("x")
    exc.durable_object_reset = True
    assert exc.durableObjectReset is True
    exc.durableObjectReset = False
    assert exc.durable_object_reset is False


def test_overloaded_error_is_flagged_not_to_be_retried() -> None:
    exc = OverloadedError(OverloadedError.TOO_MANY_REQUESTS)
    assert exc.overloaded is True
    assert exc.retryable is False
    assert str(exc) == "Durable Object is overloaded. Too many requests queued."


def test_network_lost_error_is_retryable_with_workerds_message() -> None:
    exc = NetworkLostError()
    assert exc.retryable is True
    assert str(exc) == "Network connection lost."


def test_invalid_id_error_is_a_type_error_as_cloudflare_throws() -> None:
    assert issubclass(InvalidIdError, TypeError)
    assert InvalidIdError.NOT_HEX == "Invalid Durable Object ID: must be 64 hex digits"
    assert InvalidIdError.WRONG_NAMESPACE == "Durable Object ID is not valid for this namespace."


def test_unknown_method_error_uses_cloudflares_words() -> None:
    with pytest.raises(RpcMethodNotFoundError, match=r'^The RPC receiver does not implement the method "nope"\.$'):
        raise RpcMethodNotFoundError("nope")
    assert issubclass(RpcMethodNotFoundError, TypeError)


def test_reserved_method_error_uses_cloudflares_words() -> None:
    with pytest.raises(RpcReservedMethodError, match=r"^'fetch' is a reserved method and cannot be called over RPC\.$"):
        raise RpcReservedMethodError("fetch")


def test_not_callable_error_uses_cloudflares_words() -> None:
    with pytest.raises(RpcNotCallableError, match=r'^"LIMIT" is not a function\.$'):
        raise RpcNotCallableError("LIMIT")


def test_payload_too_large_error_reports_the_size_in_cloudflares_words() -> None:
    with pytest.raises(
        RpcPayloadTooLargeError,
        match=r"^Serialized RPC arguments or return values are limited to 32MiB, "
        r"but the size of this value was: 33554433 bytes\.$",
    ) as info:
        raise RpcPayloadTooLargeError(33554433)
    assert info.value.size == 33554433


def test_rpc_payload_limit_is_32_mib() -> None:
    assert MAX_RPC_PAYLOAD_BYTES == 33554432


def test_data_clone_error_keeps_cloudflares_words_and_puts_the_path_beside_them() -> None:
    exc = DataCloneError("<class 'tuple'> cannot be sent over RPC.", path="$.a[2]")
    assert str(exc) == "<class 'tuple'> cannot be sent over RPC."
    assert exc.path == "$.a[2]"
    assert repr(exc) == "DataCloneError(\"<class 'tuple'> cannot be sent over RPC.\", path='$.a[2]')"
    assert not hasattr(exc, "__notes__")  # pytest's match would see notes
    assert isinstance(exc, TypeError)


def test_body_used_error_is_both_os_error_and_type_error() -> None:
    exc = BodyUsedError(BodyUsedError.RESPONSE)
    assert isinstance(exc, OSError)
    assert isinstance(exc, TypeError)
    assert str(exc) == "Response body is already used"


def test_range_errors_map_to_value_error_as_python_workers_map_them() -> None:
    assert issubclass(HttpStatusRangeError, ValueError)
    assert issubclass(AutoResponseTooLargeError, ValueError)
    assert issubclass(AutoResponseTooLargeError, WebSocketLimitError)


# ------------------------------------------------------------------ remote errors


def test_remote_error_keeps_type_name_and_message_and_is_marked_remote() -> None:
    err = remote_error(RuntimeError("boom"))
    assert type(err).__name__ == "RuntimeError"
    assert str(err) == "boom"
    assert err.message == "boom"
    assert err.remote_type == "RuntimeError"
    assert err.remote is True
    assert isinstance(err, RemoteError)
    assert isinstance(err, RuntimeError)


def test_remote_error_of_a_builtin_is_caught_by_that_builtin() -> None:
    with pytest.raises(ValueError, match=r"^bad input$"):
        raise remote_error(ValueError("bad input"))


def test_remote_error_of_a_user_class_is_caught_by_its_builtin_base() -> None:
    class RoomFull(LookupError):
        pass

    err = remote_error(RoomFull("room 7 is full"))
    assert type(err).__name__ == "RoomFull"
    assert isinstance(err, LookupError)
    assert not isinstance(err, RoomFull)  # the original class never crosses


def test_remote_error_of_a_plain_exception_is_only_a_remote_error() -> None:
    class Custom(Exception):
        pass

    err = remote_error(Custom("c"))
    assert type(err).__name__ == "Custom"
    assert type(err).__mro__[1] is RemoteError


def test_remote_error_classes_are_reused_for_the_same_type() -> None:
    assert type(remote_error(KeyError("a"))) is type(remote_error(KeyError("b")))


def test_remote_error_keeps_a_key_errors_message_verbatim() -> None:
    err = remote_error(KeyError("k"))
    assert str(err) == "'k'"
    assert isinstance(err, KeyError)


def test_remote_error_copies_flags_from_the_original() -> None:
    err = remote_error(OverloadedError("slow"))
    assert err.overloaded is True
    assert err.durableObjectReset is False
    reset = remote_error(ObjectResetError("gone"))
    assert reset.durableObjectReset is True


def test_remote_error_flags_can_be_set_by_the_runtime() -> None:
    err = remote_error(ValueError("x"), retryable=True, durable_object_reset=True)
    assert err.retryable is True
    assert err.durable_object_reset is True


def test_remote_error_of_a_remote_error_keeps_the_first_type() -> None:
    first = remote_error(ZeroDivisionError("division by zero"), traceback_text="tb")
    second = remote_error(first)
    assert type(second) is type(first)
    assert second.remote_type == "ZeroDivisionError"
    assert second.remote_traceback == "tb"
    assert second is not first


def test_remote_error_never_mixes_in_stop_iteration() -> None:
    err = remote_error(StopIteration("done"))
    assert not isinstance(err, StopIteration)
    assert type(err).__name__ == "StopIteration"


def test_remote_error_skips_a_builtin_that_needs_more_than_a_message() -> None:
    original = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    err = remote_error(original)
    assert type(err).__name__ == "UnicodeDecodeError"
    assert not isinstance(err, UnicodeDecodeError)
    assert isinstance(err, UnicodeError)  # the next builtin up still catches it
    assert isinstance(err, ValueError)
    assert re.fullmatch(r".*invalid start byte", str(err))
