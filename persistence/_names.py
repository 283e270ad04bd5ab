"""Cloudflare camelCase names and their snake_case twins, from one table per class.

Cloudflare's API names (``toArray``, ``getByName``) exist so copied code runs;
Python users expect ``to_array``. Each class declares one table mapping the
name it implements to the other spelling, and :func:`cf_names` installs the
twins. The same tables feed the README's mapping table and a test, so the
documentation cannot drift from the code.

This lives in the lowest layer because the SQL cursor (persistence) needs it
as much as the object API does; it imports nothing.
"""

from __future__ import annotations

import re
from typing import Any, Callable, TypeVar

__all__ = ["cf_names", "camel_to_snake", "alias_table", "ALL_ALIAS_TABLES"]

T = TypeVar("T", bound=type)

#: Every class decorated with :func:`cf_names`, in definition order, for the
#: README mapping table and the test that checks it.
ALL_ALIAS_TABLES: dict[str, dict[str, str]] = {}

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def camel_to_snake(name: str) -> str:
    """``getByName`` -> ``get_by_name``; ``idFromString`` -> ``id_from_string``."""
    return _CAMEL_RE.sub(r"_\1", name).lower()


def cf_names(*camel: str) -> Callable[[T], T]:
    """Class decorator: for each Cloudflare ``camel`` name, add its snake twin.

    Whichever spelling the class defines is the implementation; the other is
    an alias to the very same attribute (functions and properties alike), so
    there is no extra call on the hot path.
    """

    def install(cls: T) -> T:
        table: dict[str, str] = {}
        for cf in camel:
            snake = camel_to_snake(cf)
            if cf == snake:
                raise ValueError(f"{cls.__name__}: {cf!r} has no distinct snake_case twin")
            have_cf = _defined(cls, cf)
            have_snake = _defined(cls, snake)
            if have_cf and have_snake:
                raise ValueError(f"{cls.__name__}: both {cf!r} and {snake!r} are defined")
            if not (have_cf or have_snake):
                raise ValueError(f"{cls.__name__}: neither {cf!r} nor {snake!r} is defined")
            src, dst = (cf, snake) if have_cf else (snake, cf)
            setattr(cls, dst, _raw_attr(cls, src))
            table[cf] = snake
        ALL_ALIAS_TABLES[f"{cls.__module__}.{cls.__qualname__}"] = table
        cls.__cf_aliases__ = dict(getattr(cls, "__cf_aliases__", {}), **table)  # type: ignore[attr-defined]
        return cls

    return install


def alias_table(cls: type) -> dict[str, str]:
    """The camelCase -> snake_case table of ``cls`` (including inherited ones)."""
    return dict(getattr(cls, "__cf_aliases__", {}))


def _defined(cls: type, name: str) -> bool:
    return any(name in vars(klass) for klass in cls.__mro__)


def _raw_attr(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    raise AttributeError(name)  # pragma: no cover - guarded by _defined
