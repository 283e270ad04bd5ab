"""Workers KV as Python Workers call it: reads, writes, expiry on the runtime's clock, listing, limits."""

from __future__ import annotations

import re

import hypothesis.strategies as st
import pytest
import trio
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from wrangler_compat.bindings import ByteStream, KvError, KVNamespace
from wrangler_compat.bindings._store import StoreHost


@pytest.fixture
def kv(store_host: StoreHost) -> KVNamespace:
    return KVNamespace("KV", "ns-id", store_host)


async def test_a_put_value_reads_back_as_text_json_bytes_and_stream(kv: KVNamespace) -> None:
    await kv.put("k", '{"a": [1, 2]}')
    assert await kv.get("k") == '{"a": [1, 2]}'
    assert await kv.get("k", "text") == '{"a": [1, 2]}'
    data = await kv.get("k", "json")
    assert data == {"a": [1, 2]} and data.a == [1, 2]
    assert await kv.get("k", {"type": "arrayBuffer"}) == b'{"a": [1, 2]}'
    assert await kv.get("k", type="json") == {"a": [1, 2]}
    stream = await kv.get("k", "stream")
    assert isinstance(stream, ByteStream)
    assert b"".join([chunk async for chunk in stream]) == b'{"a": [1, 2]}'


async def test_a_missing_key_reads_as_none(kv: KVNamespace) -> None:
    assert await kv.get("nope") is None
    assert await kv.getWithMetadata("nope") == {"value": None, "metadata": None, "cacheStatus": None}


async def test_bytes_values_round_trip_unchanged(kv: KVNamespace) -> None:
    await kv.put("bin", bytes(range(256)))
    assert await kv.get("bin", "arrayBuffer") == bytes(range(256))


async def test_metadata_comes_back_with_the_value_and_in_list(kv: KVNamespace) -> None:
    await kv.put("k", "v", metadata={"owner": "ann", "n": 2})
    got = await kv.get_with_metadata("k")
    assert got.value == "v" and got.metadata == {"owner": "ann", "n": 2} and got.cacheStatus is None
    listed = await kv.list()
    assert listed["keys"] == [{"name": "k", "metadata": {"owner": "ann", "n": 2}}]


async def test_a_key_expires_after_its_ttl_on_the_runtimes_clock(kv: KVNamespace, autojump_clock: trio.abc.Clock) -> None:
    await kv.put("session", "token", expirationTtl=60)
    listed = await kv.list()
    expiration = listed["keys"][0]["expiration"]
    assert isinstance(expiration, int)
    await trio.sleep(59)
    assert await kv.get("session") == "token"
    await trio.sleep(2)
    assert await kv.get("session") is None
    assert (await kv.list())["keys"] == []


async def test_an_absolute_expiration_is_kept_and_honoured(kv: KVNamespace, autojump_clock: trio.abc.Clock) -> None:
    now = int(kv._host.clock.now_ms() // 1000)
    await kv.put("k", "v", {"expiration": now + 120})
    assert (await kv.list())["keys"] == [{"name": "k", "expiration": now + 120}]
    await trio.sleep(121)
    assert await kv.get("k") is None


async def test_delete_removes_the_key_and_deleting_a_missing_key_is_fine(kv: KVNamespace) -> None:
    await kv.put("k", "v")
    await kv.delete("k")
    await kv.delete("k")
    assert await kv.get("k") is None


async def test_list_pages_with_a_cursor_in_key_order_under_a_prefix(kv: KVNamespace) -> None:
    for name in ["user:3", "user:1", "other", "user:2", "user:10"]:
        await kv.put(name, "x")
    first = await kv.list(prefix="user:", limit=2)
    assert [k["name"] for k in first["keys"]] == ["user:1", "user:10"]
    assert first["list_complete"] is False and isinstance(first["cursor"], str)
    second = await kv.list({"prefix": "user:", "limit": 2, "cursor": first["cursor"]})
    assert [k.name for k in second.keys] == ["user:2", "user:3"]
    assert second.list_complete is True and "cursor" not in second
    assert await kv.list(prefix="nobody") == {"keys": [], "list_complete": True, "cacheStatus": None}


async def test_keys_convert_like_web_idl_strings(kv: KVNamespace) -> None:
    await kv.put(1, "one")
    assert await kv.get("1") == "one"


async def test_bulk_get_returns_a_value_per_key(kv: KVNamespace) -> None:
    await kv.put("a", "1")
    assert await kv.get(["a", "b"]) == {"a": "1", "b": None}


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda kv: kv.put("k" * 513, "v"),
         "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."),
        (lambda kv: kv.get("é" * 257),
         "KV GET failed: 414 UTF-8 encoded length of 514 exceeds key length limit of 512."),
        (lambda kv: kv.put("k", b"x" * (25 * 1024 * 1024 + 1)),
         "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."),
        (lambda kv: kv.put("k", "v", metadata={"m": "x" * 1100}),
         "KV PUT failed: 413 Metadata length of 1108 exceeds limit of 1024."),
        (lambda kv: kv.put("k", "v", expirationTtl=30),
         "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60."),
        (lambda kv: kv.put("", "v"), "KV PUT failed: 400 Key names must not be empty"),
        (lambda kv: kv.put("..", "v"), 'KV PUT failed: 400 Illegal key name "..". Please use a different name.'),
        (lambda kv: kv.list(limit=0),
         "KV LIST failed: 400 Invalid key_count_limit of 0. Please specify an integer greater than 0."),
        (lambda kv: kv.get("k", cacheTtl=10),
         "KV GET failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 60."),
    ],
)
async def test_over_limit_input_gets_cloudflares_error_and_changes_nothing(kv: KVNamespace, call, message) -> None:  # type: ignore[no-untyped-def]
    await kv.put("k", "before")
    with pytest.raises(KvError, match=exact(message)):
        await call(kv)
    assert await kv.get("k") == "before"
    assert [k["name"] for k in (await kv.list())["keys"]] == ["k"]


async def test_an_unknown_get_type_is_a_type_error(kv: KVNamespace) -> None:
    with pytest.raises(TypeError, match=exact(
        'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".'
    )):
        await kv.get("k", "xml")


async def test_data_survives_reopening_the_namespace_file(store_host: StoreHost) -> None:
    await KVNamespace("KV", "shared", store_host).put("k", "v")
    store_host.close()
    assert await KVNamespace("OTHER_NAME", "shared", store_host).get("k") == "v"


async def test_reset_empties_every_namespace(store_host: StoreHost) -> None:
    kv = KVNamespace("KV", "ns", store_host)
    await kv.put("k", "v")
    store_host.reset()
    assert await kv.get("k") is None


class KvAgainstADict(RuleBasedStateMachine):
    """put/delete/list/get agree with a dict, across closing and reopening the file."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile
        from pathlib import Path

        self._tmp = tempfile.TemporaryDirectory()
        self.host = StoreHost(Path(self._tmp.name))
        self.host.attach(durability="none", now_ms=lambda: 1_000_000.0)
        self.kv = KVNamespace("KV", "model", self.host)
        self.model: dict[str, str] = {}

    def teardown(self) -> None:
        self.host.close()
        self._tmp.cleanup()

    keys = st.text(alphabet="ab:é", min_size=1, max_size=4).filter(lambda k: k not in (".", ".."))

    @rule(key=keys, value=st.text(max_size=5))
    def put(self, key: str, value: str) -> None:
        trio.run(self.kv.put, key, value)
        self.model[key] = value

    @rule(key=keys)
    def delete(self, key: str) -> None:
        trio.run(self.kv.delete, key)
        self.model.pop(key, None)

    @rule()
    def reopen(self) -> None:
        self.host.close()

    @rule(prefix=st.text(alphabet="ab:é", max_size=2), limit=st.integers(1, 3))
    def list_pages(self, prefix: str, limit: int) -> None:
        async def all_pages() -> list[str]:
            names: list[str] = []
            cursor = None
            for _ in range(100):
                page = await self.kv.list(prefix=prefix, limit=limit, cursor=cursor)
                names += [k["name"] for k in page["keys"]]
                if page["list_complete"]:
                    return names
                cursor = page["cursor"]
            raise AssertionError("list did not complete")

        expected = sorted((k for k in self.model if k.startswith(prefix)), key=lambda k: k.encode())
        assert trio.run(all_pages) == expected

    @invariant()
    def values_agree(self) -> None:
        for key, value in self.model.items():
            assert trio.run(self.kv.get, key) == value


TestKvAgainstADict = KvAgainstADict.TestCase
TestKvAgainstADict.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)


async def test_buffers_and_streams_are_stored_as_their_bytes(kv: KVNamespace) -> None:
    import array

    await kv.put("arr", array.array("B", [1, 2, 3]))
    assert await kv.get("arr", "arrayBuffer") == b"\x01\x02\x03"
    await kv.put("copy", await kv.get("arr", "stream"))
    assert await kv.get("copy", "arrayBuffer") == b"\x01\x02\x03"
