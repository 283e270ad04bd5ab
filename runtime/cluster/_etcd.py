"""A small async etcd v3 client over etcd's gRPC-gateway JSON API (``/v3/...``), on httpx.

Why our own: the maintained Python clients are either asyncio-only over gRPC
(``aetcd``) or synchronous with a thread per watch (``etcd3gw``); dohost runs
on trio, and httpx (already a dependency) speaks to the gateway natively
through anyio. This is a wire adapter only -- consensus, leases and
transactions are etcd's.

Guarantees:

* Several endpoints: a request that cannot connect (or times out) moves on
  to the next endpoint; when every endpoint failed, :class:`EtcdUnavailable`
  names them all. A request that reached etcd but failed is :class:`EtcdError`.
* Keys and values are ``bytes`` on our side and base64 on the wire; etcd's
  int64 fields (sent as strings, omitted when zero) come back as ``int``.
* :meth:`EtcdClient.watch` yields batches of events from a streaming
  ``/v3/watch`` request, starting after a known revision, so a cache built
  from a range read plus the watch misses nothing; a watch silent for its
  ``idle`` seconds ends too (a member may have stopped without a word).
"""

from __future__ import annotations

import base64
import json
from typing import Any, AsyncIterator, Sequence

import httpx
import msgspec

__all__ = ["EtcdClient", "EtcdError", "EtcdUnavailable", "KeyValue", "WatchEvent", "prefix_end"]


class EtcdError(Exception):
    """etcd answered, but with an error."""


class EtcdUnavailable(EtcdError):
    """No endpoint could be reached."""


class KeyValue(msgspec.Struct, frozen=True, kw_only=True):
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


class WatchEvent(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "PUT" | "DELETE"
    kv: KeyValue


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(raw.get("key", "")),
        value=base64.b64decode(raw.get("value", "")),
        create_revision=int(raw.get("create_revision", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
        lease=int(raw.get("lease", 0)),
    )


class EtcdClient:
    """See the module docstring. ``async with EtcdClient([...]) as etcd:``."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 2.0) -> None:
        if not endpoints:
            raise ValueError("etcd: expected at least one endpoint URL, got none")
        for url in endpoints:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"etcd endpoint: expected an http:// or https:// URL, got {url!r}")
        self.endpoints = [u.rstrip("/") for u in endpoints]
        self._preferred = 0
        self._timeout = timeout
        self._http = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _order(self) -> list[int]:
        n = len(self.endpoints)
        return [(self._preferred + i) % n for i in range(n)]

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>`` on the first endpoint that answers."""
        failures = []
        for i in self._order():
            url = f"{self.endpoints[i]}/v3/{path}"
            try:
                resp = await self._http.post(url, json=body)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                failures.append(f"{self.endpoints[i]}: {type(exc).__name__}")
                continue
            data = resp.json() if resp.content else {}
            if resp.status_code != 200 or "error" in data and "result" not in data and "header" not in data:
                message = data.get("message") or data.get("error") or resp.text
                if resp.status_code in (502, 503) or "leader" in str(message):
                    # A member without a leader (an election under way): try another.
                    failures.append(f"{self.endpoints[i]}: {message}")
                    continue
                raise EtcdError(f"etcd {path}: {message}")
            self._preferred = i
            return data
        raise EtcdUnavailable(f"etcd unreachable ({'; '.join(failures)})")

    # ------------------------------------------------------------ leases
    async def lease_grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: ``(id, granted ttl)``."""
        data = await self.call("lease/grant", {"TTL": ttl})
        return int(data["ID"]), int(data["TTL"])

    async def lease_keepalive(self, lease: int) -> int:
        """Refresh ``lease``; the TTL it now has (0 or less: it has expired)."""
        data = await self.call("lease/keepalive", {"ID": lease})
        result = data.get("result", data)
        return int(result.get("TTL", 0))

    async def lease_revoke(self, lease: int) -> None:
        await self.call("lease/revoke", {"ID": lease})

    # ---------------------------------------------------------------- kv
    async def get(self, key: bytes) -> KeyValue | None:
        data = await self.call("kv/range", {"key": _b64(key)})
        kvs = data.get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    async def get_prefix(self, prefix: bytes) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix`` and the store revision of the read."""
        data = await self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        return [_kv(kv) for kv in data.get("kvs") or []], int(data["header"]["revision"])

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = lease
        data = await self.call("kv/put", body)
        return int(data["header"]["revision"])

    async def create(self, key: bytes, value: bytes, *, lease: int = 0) -> int | None:
        """Put ``key`` only if it does not exist; its create revision, or ``None`` if it existed."""
        put: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            put["lease"] = lease
        data = await self.call("kv/txn", {
            "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": put}],
        })
        if not data.get("succeeded"):
            return None
        return int(data["header"]["revision"])

    async def delete_if_created(self, key: bytes, create_revision: int) -> bool:
        """Delete ``key`` only if it is the incarnation created at ``create_revision``."""
        data = await self.call("kv/txn", {
            "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": str(create_revision)}],
            "success": [{"request_delete_range": {"key": _b64(key)}}],
        })
        return bool(data.get("succeeded"))

    async def txn_append(self, guard: bytes, epoch: int, items: Sequence[tuple[bytes, bytes]]) -> bool:
        """Put ``items`` in one transaction, only while ``guard`` has create revision ``epoch``."""
        data = await self.call("kv/txn", {
            "compare": [{"key": _b64(guard), "target": "CREATE", "result": "EQUAL", "create_revision": str(epoch)}],
            "success": [{"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in items],
        })
        return bool(data.get("succeeded"))

    # ------------------------------------------------------------- watch
    async def watch(
        self, prefix: bytes, start_revision: int, *, idle: float | None = None
    ) -> AsyncIterator[list[WatchEvent]]:
        """Batches of events under ``prefix`` from ``start_revision`` on, until the stream breaks.

        The stream ending (a member died, the network broke) raises
        :class:`EtcdUnavailable`; the caller re-reads and watches again. So does
        a stream silent for ``idle`` seconds: etcd sends nothing on a quiet
        watch, so silence cannot tell a quiet prefix from a member that stopped
        without closing the connection, and a re-read is cheap.
        """
        body = {"create_request": {
            "key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "start_revision": str(start_revision),
        }}
        url = f"{self.endpoints[self._preferred]}/v3/watch"
        try:
            async with self._http.stream("POST", url, json=body, timeout=httpx.Timeout(self._timeout, read=idle)) as resp:
                decoder = json.JSONDecoder()
                buffer = ""
                async for chunk in resp.aiter_text():
                    buffer += chunk
                    while True:
                        buffer = buffer.lstrip()
                        if not buffer:
                            break
                        try:
                            message, end = decoder.raw_decode(buffer)
                        except json.JSONDecodeError:
                            break
                        buffer = buffer[end:]
                        result = message.get("result", {})
                        if result.get("compact_revision"):
                            raise EtcdError(f"etcd watch: revision {start_revision} was compacted")
                        events = [
                            WatchEvent(kind=e.get("type", "PUT"), kv=_kv(e["kv"])) for e in result.get("events") or []
                        ]
                        if events:
                            yield events
        except httpx.ReadTimeout as exc:
            # Not a member known to be gone: the re-read finds out (and moves on if it is).
            raise EtcdUnavailable(f"etcd watch on {url} was silent for {idle}s") from exc
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            self._preferred = (self._preferred + 1) % len(self.endpoints)
            raise EtcdUnavailable(f"etcd watch on {url} broke: {type(exc).__name__}") from exc
        self._preferred = (self._preferred + 1) % len(self.endpoints)
        raise EtcdUnavailable(f"etcd watch on {url} ended")
