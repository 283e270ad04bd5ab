"""Cloudflare's RPC contract through a live runtime: lookup errors, value copies, remote errors."""

from __future__ import annotations

import datetime
import re

import pytest

from objects import (
    DataCloneError,
    DurableObject,
    RemoteError,
    Request,
    Response,
    RpcMethodNotFoundError,
    RpcReservedMethodError,
)
from runtime import open_runtime


class Target(DurableObject):
    limit = 3  # a class attribute that is not a method

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.kept: list[object] = []

    def keep(self, value):
        self.kept.append(value)
        return value

    def mutate_kept(self):
        self.kept[-1].append("changed inside")

    def last(self):
        return self.kept[-1]

    def give(self):
        return self.kept

    def echo(self, value):
        return value

    def fail(self, kind):
        if kind == "value":
            raise ValueError("bad value 42")
        if kind == "custom":
            raise Full("the room is full")
        raise RuntimeError("plain failure")

    async def fail_async(self):
        raise KeyError("missing")

    def make_error(self, message):
        return ValueError(message)

    def _private(self):
        return "secret"

    async def fetch(self, request):
        raise AssertionError("fetch must not be reachable over RPC")

    def alarm(self, info=None):
        pass

    async def relay(self, name, kind):
        return await self.env.T.getByName(name).fail(kind)


class Full(ValueError):
    pass


def _message(text: str) -> str:
    return rf"^{re.escape(text)}$"


async def test_unknown_method_raises_cloudflare_message() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(RpcMethodNotFoundError, match=_message('The RPC receiver does not implement the method "nope".')):
            await stub.nope()


@pytest.mark.parametrize("name", ["_private", "__init__", "ctx", "env"])
async def test_private_names_and_instance_attributes_are_not_methods(name: str) -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(TypeError, match=_message(f'The RPC receiver does not implement the method "{name}".')):
            await rt.call_method("T", stub.id, name, (), {})


async def test_base_class_members_are_not_callable_over_rpc() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        for name in ("__class__", "__init__"):
            with pytest.raises(RpcMethodNotFoundError):
                await rt.call_method("T", stub.id, name, (), {})


@pytest.mark.parametrize("name", ["fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError", "constructor", "dup", "connect"])
async def test_reserved_names_cannot_be_called_over_rpc(name: str) -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(RpcReservedMethodError, match=_message(f"'{name}' is a reserved method and cannot be called over RPC.")):
            await rt.call_method("T", stub.id, name, (), {})


async def test_a_class_attribute_that_is_not_a_function_cannot_be_called() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        with pytest.raises(TypeError, match=_message('"limit" is not a function.')):
            await rt.env.T.getByName("a").limit()


async def test_exception_in_object_reaches_caller_with_type_name_message_and_flags() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        with pytest.raises(ValueError, match=_message("bad value 42")) as info:
            await stub.fail("value")
        err = info.value
        assert isinstance(err, RemoteError)
        assert type(err).__name__ == "ValueError"
        assert (err.remote, err.retryable, err.overloaded, err.durableObjectReset) == (True, False, False, False)
        assert err.durable_object_reset is False


async def test_user_exception_subclass_keeps_its_name_and_builtin_base() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        with pytest.raises(ValueError, match=_message("the room is full")) as info:
            await rt.env.T.getByName("a").fail("custom")
        assert type(info.value).__name__ == "Full"
        with pytest.raises(RemoteError, match=_message("plain failure")) as plain:
            await rt.env.T.getByName("a").fail("other")
        assert type(plain.value).__name__ == "RuntimeError"
        with pytest.raises(KeyError) as key:
            await rt.env.T.getByName("a").fail_async()
        assert type(key.value).__name__ == "KeyError" and str(key.value) == "'missing'"


async def test_errors_relayed_through_another_object_keep_their_original_type() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        with pytest.raises(ValueError, match=_message("bad value 42")) as info:
            await rt.env.T.getByName("outer").relay("inner", "value")
        assert type(info.value).__name__ == "ValueError" and info.value.remote is True


async def test_an_object_survives_an_exception_raised_by_its_handler() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        await stub.keep([1])
        with pytest.raises(ValueError):
            await stub.fail("value")
        assert await stub.last() == [1]


async def test_arguments_are_copied_not_shared() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        sent = ["original"]
        await stub.keep(sent)
        sent.append("changed by caller")
        assert await stub.last() == ["original"]
        await stub.mutate_kept()
        assert sent == ["original", "changed by caller"]
        assert await stub.last() == ["original", "changed inside"]


async def test_results_are_copied_not_shared() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        await stub.keep({"k": [1]})
        got = await stub.give()
        got[0]["k"].append(2)
        got.append("extra")
        assert await stub.give() == [{"k": [1]}]


async def test_values_convert_as_python_workers_convert_them() -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        stub = rt.env.T.getByName("a")
        when = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
        value = {"n": None, "b": True, "i": 7, "f": 1.5, "s": "x", "by": b"\x00", "l": [1, [2]], "set": {1, 2}, "d": when}
        assert await stub.echo(value) == value
        assert await stub.echo(memoryview(b"ab")) == b"ab"
        shared = [1]
        back = await stub.echo([shared, shared])
        assert back[0] is back[1] and back[0] is not shared
        err = await stub.make_error("boom")
        assert type(err) is Exception and str(err) == "Error: boom"
        # Each crossing goes Python -> JS Error -> Python, so a round trip prefixes twice.
        assert str(await stub.echo(ValueError("boom"))) == "Error: Error: boom"


async def test_requests_and_responses_cross_as_independent_copies() -> None:
    class Http(DurableObject):
        def make(self, text):
            return Response(text, status=202, headers={"x-kind": "rpc"})

        async def read(self, request):
            return [request.method, request.url, await request.text()]

    async with open_runtime(bindings={"H": Http}) as rt:
        stub = rt.env.H.getByName("a")
        resp = await stub.make("made inside")
        assert isinstance(resp, Response) and resp.status == 202 and resp.headers["x-kind"] == "rpc"
        assert await resp.text() == "made inside"
        sent = Request("https://x/y", method="POST", body="payload")
        assert await stub.read(sent) == ["POST", "https://x/y", "payload"]
        assert await sent.text() == "payload"  # the caller's body was not consumed


@pytest.mark.parametrize("value", [(1, 2), bytearray(b"x"), object(), lambda: 1])
async def test_values_that_cannot_cross_raise_data_clone_error(value: object) -> None:
    async with open_runtime(bindings={"T": Target}) as rt:
        with pytest.raises(DataCloneError, match=_message(f"{type(value)} cannot be sent over RPC.")):
            await rt.env.T.getByName("a").echo(value)


async def test_a_result_that_cannot_cross_errors_the_call() -> None:
    class Leaky(DurableObject):
        def tuple_please(self):
            return (1, 2)

    async with open_runtime(bindings={"L": Leaky}) as rt:
        with pytest.raises(TypeError, match=_message("<class 'tuple'> cannot be sent over RPC.")):
            await rt.env.L.getByName("a").tuple_please()
