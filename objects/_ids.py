"""Durable Object IDs: workerd's local scheme, extended with jurisdictions.

An ID is 32 bytes shown as 64 lowercase hex digits. As in workerd's local
``ActorIdFactoryImpl`` (``server/actor-id-impl.c++``):

* the namespace key is ``SHA-256(unique_key)``;
* ``idFromName(name)``: the first 16 bytes are the first 16 bytes of
  ``HMAC-SHA256(key, name)``;
* ``newUniqueId()``: the first 16 bytes are random;
* the last 16 bytes are the first 16 bytes of ``HMAC-SHA256(key, first 16)``,
  a MAC that lets ``idFromString`` reject IDs minted by another namespace.

So an ID made here for a name equals the one ``wrangler dev`` makes for the
same unique key, and IDs stay valid across restarts (nothing is stored).

Jurisdictions, which local workerd refuses ("Jurisdiction restrictions are
not implemented in workerd."), are supported: a jurisdiction ``j`` uses the
key ``HMAC-SHA256(key, "dohost-jurisdiction:" + j)`` for both halves. Hence
the same name gives a different ID per jurisdiction (as Cloudflare
documents), and the ID string itself encodes its jurisdiction: parsing tries
the namespace's own key first and the few jurisdiction keys after, so
``idFromString`` on the unrestricted namespace recovers ``id.jurisdiction``
and a jurisdictional view refuses IDs of another jurisdiction.

IDs are immutable and compare (``==``, ``equals``, hashing) by their 32 bytes
only, never by name, as ``ActorIdImpl::equals`` does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Callable, Final

from persistence._names import cf_names
from persistence._webidl import to_dom_string

from .errors import InvalidIdError, JurisdictionError

__all__ = ["DurableObjectId", "IdFactory", "JURISDICTIONS"]

#: Jurisdictions Cloudflare accepts for ``jurisdiction()`` / ``newUniqueId``.
JURISDICTIONS: Final = ("eu", "fedramp", "fedramp-high", "us")  # CF: workers-types DurableObjectJurisdiction; changelog 2026-06-26 adds "us"

_BASE_LENGTH: Final = 16  # CF: server/actor-id-impl.h BASE_LENGTH = SHA256_DIGEST_LENGTH / 2
_HEX_LENGTH: Final = 64
_NAME_CACHE_SIZE: Final = 4096
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_JURISDICTION_LABEL: Final = b"dohost-jurisdiction:"


@cf_names("toString")
class DurableObjectId:
    """An immutable Durable Object ID: ``toString()``, ``name``, ``equals``, ``jurisdiction``."""

    __slots__ = ("_hex", "_name", "_jurisdiction", "_namespace")

    _hex: str
    _name: str | None
    _jurisdiction: str | None
    _namespace: bytes

    def __init__(
        self, hex_id: str, *, name: str | None, jurisdiction: str | None, namespace: bytes
    ) -> None:
        # Built only by IdFactory, which has validated every field.
        object.__setattr__(self, "_hex", hex_id)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_jurisdiction", jurisdiction)
        object.__setattr__(self, "_namespace", namespace)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DurableObjectId is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"DurableObjectId is immutable; cannot delete {name!r}")

    def toString(self) -> str:
        """The 64 lowercase hex digits, suitable for ``idFromString``."""
        return self._hex

    to_string: Callable[[], str]  # installed by cf_names

    @property
    def name(self) -> str | None:
        """The name given to ``idFromName``; ``None`` for unique or parsed IDs."""
        return self._name

    @property
    def jurisdiction(self) -> str | None:
        """The jurisdiction the ID was minted in, or ``None``."""
        return self._jurisdiction

    def equals(self, other: DurableObjectId) -> bool:
        """Same object? Compares the ID bytes only, ignoring ``name``."""
        return isinstance(other, DurableObjectId) and other._hex == self._hex

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DurableObjectId):
            return NotImplemented
        return other._hex == self._hex

    def __hash__(self) -> int:
        return hash(self._hex)

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        extra = f", name={self._name!r}" if self._name is not None else ""
        if self._jurisdiction is not None:
            extra += f", jurisdiction={self._jurisdiction!r}"
        return f"DurableObjectId({self._hex!r}{extra})"

    def __reduce__(self) -> tuple[object, ...]:
        # __setattr__ is blocked, so pickling/copying goes through __init__.
        return (
            _rebuild_id,
            (self._hex, self._name, self._jurisdiction, self._namespace),
        )


def _rebuild_id(
    hex_id: str, name: str | None, jurisdiction: str | None, namespace: bytes
) -> DurableObjectId:
    return DurableObjectId(hex_id, name=name, jurisdiction=jurisdiction, namespace=namespace)


@cf_names("idFromName", "idFromString", "newUniqueId")
class IdFactory:
    """Mints and parses the IDs of one namespace (one Durable Object class).

    ``unique_key`` identifies the namespace, as workerd's ``uniqueKey`` does;
    ``jurisdiction`` restricts this view to one jurisdiction. ``random_bytes``
    is the source of ``newUniqueId``; tests pass a deterministic one.
    """

    __slots__ = ("_unique_key", "_namespace", "_jurisdiction", "_key", "_keys", "_random_bytes", "_by_name")

    def __init__(
        self,
        unique_key: str,
        jurisdiction: str | None = None,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not isinstance(unique_key, str):
            raise TypeError(f"IdFactory: unique_key: expected str, got {type(unique_key).__name__}")
        self._unique_key = unique_key
        # CF: server/actor-id-impl.c++ ActorIdFactoryImpl ctor: key = SHA256(uniqueKey)
        self._namespace = hashlib.sha256(unique_key.encode()).digest()
        self._jurisdiction = _check_jurisdiction(jurisdiction, "jurisdiction")
        # Keys per jurisdiction, derived on first use; parsing may try them all.
        self._keys: dict[str | None, bytes] = {}
        self._key = self._key_for(self._jurisdiction)
        self._random_bytes = random_bytes
        self._by_name: dict[str, DurableObjectId] = {}

    @property
    def unique_key(self) -> str:
        return self._unique_key

    @property
    def jurisdiction_name(self) -> str | None:
        """The jurisdiction this view is restricted to, or ``None``."""
        return self._jurisdiction

    def jurisdiction(self, name: str | None) -> IdFactory:
        """A view of the same namespace restricted to ``name`` (``None``: unrestricted)."""
        return IdFactory(self._unique_key, name, random_bytes=self._random_bytes)

    def id_from_name(self, name: str) -> DurableObjectId:
        """The ID for ``name``: the same name always gives the same ID."""
        if type(name) is not str:
            # CF: workerd 1.20261117.1 (observed): idFromName(1) is idFromName("1"),
            # None (Pyodide's undefined) is "undefined" — Web IDL DOMString conversion.
            if not isinstance(name, (str, int, float)) and name is not None:
                raise TypeError(f"idFromName: name: expected str, got {type(name).__name__}")
            name = to_dom_string(name, "idFromName: name")
        hit = self._by_name.get(name)
        if hit is not None:
            return hit
        base = hmac.digest(self._key, name.encode(), "sha256")[:_BASE_LENGTH]
        made = self._make(base, name=name, jurisdiction=self._jurisdiction)
        # Hot objects are looked up by name on every request: keep recent IDs.
        if len(self._by_name) >= _NAME_CACHE_SIZE:
            self._by_name.clear()
        self._by_name[name] = made
        return made

    def new_unique_id(self, jurisdiction: str | None = None) -> DurableObjectId:
        """A fresh random ID, optionally in ``jurisdiction``."""
        wanted = _check_jurisdiction(jurisdiction, "newUniqueId: jurisdiction")
        if wanted is None:
            wanted = self._jurisdiction
        elif self._jurisdiction is not None and wanted != self._jurisdiction:
            raise JurisdictionError(
                f"newUniqueId: jurisdiction {wanted!r} conflicts with this namespace's "
                f"jurisdiction {self._jurisdiction!r}"
            )
        base = self._random_bytes(_BASE_LENGTH)
        if len(base) != _BASE_LENGTH:
            raise ValueError(f"random_bytes returned {len(base)} bytes, expected {_BASE_LENGTH}")
        return self._make(base, name=None, jurisdiction=wanted)

    def id_from_string(self, id_string: str) -> DurableObjectId:
        """Parse an ID made by ``toString()``; refuses IDs of other namespaces."""
        if (
            not isinstance(id_string, str)
            or len(id_string) != _HEX_LENGTH
            or not _HEX_DIGITS.issuperset(id_string)
        ):
            raise InvalidIdError(InvalidIdError.NOT_HEX)
        raw = bytes.fromhex(id_string)
        base, mac = raw[:_BASE_LENGTH], raw[_BASE_LENGTH:]
        matched, found = self._jurisdiction_of(base, mac)
        if not matched:
            raise InvalidIdError(InvalidIdError.WRONG_NAMESPACE)
        if self._jurisdiction is not None and found != self._jurisdiction:
            raise InvalidIdError(InvalidIdError.PARSE_WRONG_JURISDICTION)
        return DurableObjectId(raw.hex(), name=None, jurisdiction=found, namespace=self._namespace)

    def check_get(self, object_id: DurableObjectId) -> None:
        """Refuse an ID that ``get(id)`` on this view must not route.

        An ID of another namespace (dohost's check: routing it would reach
        the wrong object), or, on a jurisdictional view, of another
        jurisdiction (Cloudflare's check and message).
        """
        if not isinstance(object_id, DurableObjectId):
            raise TypeError(f"get: id: expected DurableObjectId, got {type(object_id).__name__}")
        if object_id._namespace != self._namespace:
            raise InvalidIdError(InvalidIdError.WRONG_NAMESPACE)
        if self._jurisdiction is not None and object_id._jurisdiction != self._jurisdiction:
            raise InvalidIdError(InvalidIdError.GET_WRONG_JURISDICTION)

    def _make(
        self, base: bytes, *, name: str | None, jurisdiction: str | None
    ) -> DurableObjectId:
        mac = hmac.digest(self._key_for(jurisdiction), base, "sha256")[:_BASE_LENGTH]
        return DurableObjectId(
            (base + mac).hex(), name=name, jurisdiction=jurisdiction, namespace=self._namespace
        )

    def _key_for(self, jurisdiction: str | None) -> bytes:
        key = self._keys.get(jurisdiction)
        if key is None:
            key = self._namespace
            if jurisdiction is not None:
                key = hmac.digest(key, _JURISDICTION_LABEL + jurisdiction.encode(), "sha256")
            self._keys[jurisdiction] = key
        return key

    def _jurisdiction_of(self, base: bytes, mac: bytes) -> tuple[bool, str | None]:
        """Which key minted this MAC: (found, jurisdiction)."""
        # Own key first: the common case costs one HMAC.
        for jurisdiction in dict.fromkeys((self._jurisdiction, None, *JURISDICTIONS)):
            expected = hmac.digest(self._key_for(jurisdiction), base, "sha256")
            if hmac.compare_digest(expected[:_BASE_LENGTH], mac):
                return True, jurisdiction
        return False, None

    def __repr__(self) -> str:
        j = f", jurisdiction={self._jurisdiction!r}" if self._jurisdiction else ""
        return f"IdFactory({self._unique_key!r}{j})"


def _check_jurisdiction(value: str | None, where: str) -> str | None:
    if value is None or value in JURISDICTIONS:
        return value
    expected = ", ".join(repr(j) for j in JURISDICTIONS)
    raise JurisdictionError(f"{where}: unknown jurisdiction {value!r}; expected one of {expected}")
