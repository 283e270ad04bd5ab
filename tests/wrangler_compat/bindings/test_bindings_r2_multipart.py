"""R2 multipart uploads as Python Workers call them: parts, complete, abort, resume, and R2's refusals."""

from __future__ import annotations

import hashlib
import re

import pytest

from wrangler_compat.bindings import R2Bucket, R2Error
from wrangler_compat.bindings._r2_multipart import MIN_PART_SIZE
from wrangler_compat.bindings._store import StoreHost


def exact(text: str) -> str:
    return f"^{re.escape(text)}$"


@pytest.fixture
def bucket(store_host: StoreHost) -> R2Bucket:
    return R2Bucket("BUCKET", "bucket", store_host)


async def test_parts_completed_in_order_become_one_object_with_a_multipart_etag(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("big", customMetadata={"kind": "video"},
                                                httpMetadata={"contentType": "video/mp4"})
    assert upload["key"] == "big" and upload.uploadId == upload["uploadId"] == upload.upload_id
    first = await upload.uploadPart(1, b"A" * MIN_PART_SIZE)
    second = await upload.upload_part(2, "tail")
    assert (first["partNumber"], second.partNumber) == (1, 2)
    obj = await upload.complete([first, second])
    md5s = hashlib.md5(b"A" * MIN_PART_SIZE).digest() + hashlib.md5(b"tail").digest()
    assert (obj.key, obj.size, obj.etag) == ("big", MIN_PART_SIZE + 4, f"{hashlib.md5(md5s).hexdigest()}-2")
    got = await bucket.get("big")
    assert got is not None and got.customMetadata == {"kind": "video"} and got.httpMetadata == {"contentType": "video/mp4"}
    assert await got.bytes() == b"A" * MIN_PART_SIZE + b"tail"


async def test_an_aborted_upload_leaves_no_object_and_cannot_take_parts(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("gone")
    await upload.uploadPart(1, "data")
    await upload.abort()
    assert await bucket.head("gone") is None
    with pytest.raises(R2Error, match=exact("uploadPart: The specified multipart upload does not exist. (10024)")):
        await upload.uploadPart(2, "more")


async def test_a_resumed_upload_completes_the_parts_sent_before(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("resumed")
    part = await upload.uploadPart(1, "only part")
    again = bucket.resumeMultipartUpload("resumed", upload.uploadId)
    assert (await again.complete([part])).size == len("only part")
    assert await (await bucket.get("resumed")).text() == "only part"  # type: ignore[union-attr]


async def test_a_small_leading_part_is_refused_and_changes_nothing(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("small")
    parts = [await upload.uploadPart(1, "tiny"), await upload.uploadPart(2, "tail")]
    message = "completeMultipartUpload: Your proposed upload is smaller than the minimum allowed object size. (10011)"
    with pytest.raises(R2Error, match=exact(message)):
        await upload.complete(parts)
    assert await bucket.head("small") is None
    assert (await upload.complete(parts[1:])).size == 4  # the upload is still there


async def test_a_part_with_a_wrong_etag_is_not_found(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("k")
    await upload.uploadPart(1, "x")
    with pytest.raises(R2Error, match=exact("completeMultipartUpload: One or more of the specified parts could not be found. (10025)")):
        await upload.complete([{"partNumber": 1, "etag": "nope"}])
    assert await bucket.head("k") is None


async def test_a_part_number_outside_1_to_10000_is_refused(bucket: R2Bucket) -> None:
    upload = await bucket.createMultipartUpload("k")
    with pytest.raises(TypeError, match=r"^R2 uploadPart: partNumber: expected an integer from 1 to 10000, got 0$"):
        await upload.uploadPart(0, "x")
