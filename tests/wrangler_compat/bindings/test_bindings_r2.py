"""R2 as Python Workers call it: objects and their metadata, listing with delimiters, ranges, conditions, limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from objects import Headers
from wrangler_compat.bindings import R2Bucket, R2Error, R2Object, R2ObjectBody
from wrangler_compat.bindings._store import StoreHost


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


@pytest.fixture
def bucket(store_host: StoreHost) -> R2Bucket:
    return R2Bucket("BUCKET", "bucket", store_host)


async def test_put_returns_the_objects_metadata_and_get_its_body(bucket: R2Bucket) -> None:
    put = await bucket.put(
        "docs/a.txt", "hello", httpMetadata={"contentType": "text/plain"}, customMetadata={"owner": "ann"}
    )
    assert isinstance(put, R2Object)
    assert (put.key, put.size, put.etag) == ("docs/a.txt", 5, hashlib.md5(b"hello").hexdigest())
    assert put.httpEtag == f'"{put.etag}"' and put.http_etag == put.httpEtag
    assert isinstance(put.uploaded, dt.datetime) and put.uploaded.tzinfo is not None
    assert put.uploaded.getTime() == pytest.approx(put.uploaded.timestamp() * 1000)
    got = await bucket.get("docs/a.txt")
    assert isinstance(got, R2ObjectBody)
    assert got.httpMetadata == {"contentType": "text/plain"} and got.customMetadata == {"owner": "ann"}
    assert got.version == put.version and got.checksums.md5 == hashlib.md5(b"hello").digest()
    assert await got.text() == "hello" and got.bodyUsed


async def test_a_body_reads_as_json_bytes_or_a_stream(bucket: R2Bucket) -> None:
    await bucket.put("j", b'{"n": 1}')
    assert (await (await bucket.get("j")).json()).n == 1
    assert await (await bucket.get("j")).arrayBuffer() == b'{"n": 1}'
    body = (await bucket.get("j")).body
    assert b"".join([c async for c in body]) == b'{"n": 1}'


async def test_head_and_get_of_a_missing_key_are_none(bucket: R2Bucket) -> None:
    assert await bucket.head("nope") is None and await bucket.get("nope") is None


async def test_write_http_metadata_sets_response_headers(bucket: R2Bucket) -> None:
    await bucket.put("p", "x", httpMetadata=Headers({"content-type": "image/png", "cache-control": "max-age=60"}))
    headers = Headers()
    (await bucket.head("p")).writeHttpMetadata(headers)
    assert headers.get("content-type") == "image/png" and headers.get("cache-control") == "max-age=60"


@pytest.mark.parametrize(
    ("range_", "expected", "reported"),
    [
        ({"offset": 2, "length": 3}, b"234", {"offset": 2, "length": 3}),
        ({"offset": 8}, b"89", {"offset": 8, "length": 2}),
        ({"suffix": 3}, b"789", {"offset": 7, "length": 3}),
        ({"offset": 5, "length": 100}, b"56789", {"offset": 5, "length": 5}),
        (Headers({"range": "bytes=1-2"}), b"12", {"offset": 1, "length": 2}),
    ],
)
async def test_range_reads_return_the_requested_bytes(bucket: R2Bucket, range_, expected, reported) -> None:  # type: ignore[no-untyped-def]
    await bucket.put("r", b"0123456789")
    got = await bucket.get("r", range=range_)
    assert await got.arrayBuffer() == expected and got.range == reported and got.size == 10


async def test_an_unsatisfiable_range_is_r2s_error(bucket: R2Bucket) -> None:
    await bucket.put("r", b"0123")
    with pytest.raises(R2Error, match=exact("get: The requested range is not satisfiable (10039)")):
        await bucket.get("r", range={"offset": 10})


async def test_only_if_conditions_gate_get_and_put(bucket: R2Bucket) -> None:
    first = await bucket.put("c", "v1")
    assert await bucket.put("c", "v2", onlyIf={"etagDoesNotMatch": first.etag}) is None
    assert await (await bucket.get("c")).text() == "v1"
    no_body = await bucket.get("c", onlyIf={"etagMatches": "other"})
    assert type(no_body) is R2Object
    assert isinstance(await bucket.get("c", onlyIf={"etagMatches": first.etag}), R2ObjectBody)
    assert await bucket.put("c", "v3", onlyIf={"etagMatches": first.etag}) is not None


async def test_delete_takes_one_key_or_a_list(bucket: R2Bucket) -> None:
    for key in "abc":
        await bucket.put(key, key)
    await bucket.delete("a")
    await bucket.delete(["b", "missing"])
    assert [o.key for o in (await bucket.list()).objects] == ["c"]


async def test_list_groups_keys_under_a_delimiter_and_pages_with_a_cursor(bucket: R2Bucket) -> None:
    for key in ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/top.jpg", "readme"]:
        await bucket.put(key, "x")
    top = await bucket.list(delimiter="/")
    assert [o.key for o in top.objects] == ["readme"] and top.delimitedPrefixes == ["photos/"]
    inner = await bucket.list(prefix="photos/", delimiter="/")
    assert [o.key for o in inner.objects] == ["photos/top.jpg"]
    assert inner.delimitedPrefixes == ["photos/2024/", "photos/2025/"] and inner.truncated is False
    first = await bucket.list({"prefix": "photos/", "delimiter": "/", "limit": 1})
    assert first.delimitedPrefixes == ["photos/2024/"] and first.truncated is True
    second = await bucket.list(prefix="photos/", delimiter="/", limit=2, cursor=first.cursor)
    assert second.delimitedPrefixes == ["photos/2025/"] and [o.key for o in second.objects] == ["photos/top.jpg"]


async def test_list_includes_metadata_only_when_asked(bucket: R2Bucket) -> None:
    await bucket.put("k", "x", customMetadata={"a": "b"}, httpMetadata={"contentType": "text/plain"})
    assert (await bucket.list()).objects[0].customMetadata == {}
    listed = (await bucket.list(include=["customMetadata", "httpMetadata"])).objects[0]
    assert listed.customMetadata == {"a": "b"} and listed.httpMetadata == {"contentType": "text/plain"}


async def test_an_over_limit_key_is_refused_and_changes_nothing(bucket: R2Bucket) -> None:
    with pytest.raises(R2Error, match=exact("put: The specified object name is not valid. (10020)")):
        await bucket.put("k" * 1025, "x")
    assert (await bucket.list()).objects == []
    await bucket.put("k" * 1024, "x")  # exactly the limit is fine


async def test_too_much_custom_metadata_is_refused(bucket: R2Bucket) -> None:
    with pytest.raises(R2Error, match=exact(
        "put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    )):
        await bucket.put("k", "x", customMetadata={"m": "x" * 2048})
    assert await bucket.head("k") is None


async def test_a_wrong_checksum_is_refused(bucket: R2Bucket) -> None:
    with pytest.raises(R2Error, match=r"^put: The SHA-256 checksum you specified did not match"):
        await bucket.put("k", "x", sha256="00" * 32)
    assert await bucket.head("k") is None
    ok = await bucket.put("k", "x", sha256=hashlib.sha256(b"x").hexdigest())
    assert ok.checksums.sha256 == hashlib.sha256(b"x").digest()


async def test_an_invalid_list_limit_is_r2s_error(bucket: R2Bucket) -> None:
    with pytest.raises(R2Error, match=exact("list: MaxKeys params must be positive integer <= 1000. (10022)")):
        await bucket.list(limit=1001)


async def test_a_request_or_a_stream_can_be_stored_as_the_body(bucket: R2Bucket) -> None:
    from objects import Request

    await bucket.put("from-request", Request("http://x/", method="PUT", body=b"uploaded"))
    assert await (await bucket.get("from-request")).text() == "uploaded"
    copy_from = await bucket.get("from-request")
    await bucket.put("copy", copy_from.body)
    assert await (await bucket.get("copy")).text() == "uploaded"


async def test_listed_objects_read_like_converted_js_objects(bucket: R2Bucket) -> None:
    await bucket.put("k", "xy")
    page = await bucket.list()
    assert page["objects"][0]["key"] == "k" and page["objects"][0]["size"] == 2
    assert page.objects[0].to_py()["httpEtag"] == page.objects[0].httpEtag


def _expected_listing(keys: set[str], prefix: str, delimiter: str | None) -> tuple[list[str], list[str]]:
    objects, prefixes = [], []
    for key in sorted(k for k in keys if k.startswith(prefix)):
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            group = key[: cut + len(delimiter or "")]
            if group not in prefixes:
                prefixes.append(group)
        else:
            objects.append(key)
    return objects, prefixes


@settings(max_examples=40, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ab/", min_size=1, max_size=5), max_size=12),
    prefix=st.text(alphabet="ab/", max_size=2),
    delimiter=st.sampled_from([None, "/"]),
    limit=st.integers(1, 4),
)
def test_paging_through_a_listing_sees_every_object_and_prefix_once(tmp_path_factory, keys, prefix, delimiter, limit) -> None:  # type: ignore[no-untyped-def]
    import time

    import trio

    from wrangler_compat.bindings._store import StoreHost

    host = StoreHost(tmp_path_factory.mktemp("r2"))
    host.attach(durability="none", now_ms=lambda: time.time() * 1000.0)
    bucket = R2Bucket("B", "b", host)

    async def run() -> tuple[list[str], list[str]]:
        for key in keys:
            await bucket.put(key, "x")
        objects: list[str] = []
        prefixes: list[str] = []
        cursor = None
        for _ in range(100):
            page = await bucket.list(prefix=prefix, delimiter=delimiter, limit=limit, cursor=cursor)
            assert len(page.objects) + len(page.delimitedPrefixes) <= limit
            objects += [o.key for o in page.objects]
            prefixes += page.delimitedPrefixes
            if not page.truncated:
                return objects, prefixes
            cursor = page.cursor
        raise AssertionError("the listing never ended")

    try:
        got_objects, got_prefixes = trio.run(run)
    finally:
        host.close()
    want_objects, want_prefixes = _expected_listing(keys, prefix, delimiter)
    assert got_objects == want_objects
    assert sorted(got_prefixes) == want_prefixes and len(set(got_prefixes)) == len(got_prefixes)
