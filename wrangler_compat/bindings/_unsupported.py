"""Bindings of kinds dohost does not provide (Queues, Workers AI, Vectorize, ...).

The wrangler file's loader warns at start naming each one; ``env.<NAME>``
is then an :class:`UnsupportedBinding` whose every attribute access or call
raises :class:`UnsupportedBindingError` saying which binding and kind it is,
so code fails where it uses the binding -- never with a ``None`` or an
``AttributeError`` deep inside.
"""

from __future__ import annotations

from typing import Any

from .errors import UnsupportedBindingError

__all__ = ["UnsupportedBinding"]


class UnsupportedBinding:
    __slots__ = ("_name", "_kind")

    def __init__(self, name: str, kind: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_kind", kind)

    def _error(self) -> UnsupportedBindingError:
        name, kind = object.__getattribute__(self, "_name"), object.__getattribute__(self, "_kind")
        return UnsupportedBindingError(
            f"env.{name}: this {kind} binding is not provided by dohost (it runs Durable Objects, Workers KV, D1,"
            f" R2, static assets and service bindings); use it on Cloudflare, or replace it in tests"
        )

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise self._error()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error()

    def __repr__(self) -> str:
        name, kind = object.__getattribute__(self, "_name"), object.__getattribute__(self, "_kind")
        return f"<unsupported {kind} binding {name}>"
