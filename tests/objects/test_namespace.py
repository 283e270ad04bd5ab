"""Stubs: what ``stub.method`` makes, and how a stub's memory is released."""

from __future__ import annotations

import gc
from typing import Any, Awaitable

from objects import DurableObjectNamespace, DurableObjectStub, IdFactory


class _Host:
    def send_method(self, binding: str, object_id: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Awaitable[Any]:
        raise AssertionError("not called")

    def send_fetch(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        raise AssertionError("not called")


def test_a_stub_that_made_rpc_methods_is_freed_without_the_cyclic_collector() -> None:
    ns = DurableObjectNamespace("B", IdFactory("k"), _Host())
    gc.disable()
    try:
        object_id = ns.newUniqueId()
        stub = ns.get(object_id)
        method = stub.increment
        assert stub.increment is method  # made once per stub
        del stub, method
        # Freed by reference counting: the stub and its method are no cycle.
        assert not [o for o in gc.get_objects() if type(o) is DurableObjectStub and o.id is object_id]
    finally:
        gc.enable()
