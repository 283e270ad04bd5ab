"""R2 multipart uploads: ``createMultipartUpload``, ``resumeMultipartUpload`` and the upload they give.

Parts are kept in the bucket's own SQLite file (tables ``r2_uploads`` and
``r2_parts``, beside ``r2_objects``) until ``complete(parts)`` writes the
object and drops the upload in one transaction, or ``abort()`` drops it, so
a crash leaves either the whole object or none of it. The rules are R2's as
miniflare (``wrangler dev``) checks them: every part but the last at least
5 MiB and all of them the same size, each listed part present with its
etag; the object's etag is the MD5 of the parts' MD5s followed by ``-N``,
as S3 and R2 give a multipart object.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from persistence import cf_names

from ._common import JsObject, checkpoint, options, read_body
from .errors import R2Error

if TYPE_CHECKING:
    from ._r2 import R2Bucket, R2Object

__all__ = ["R2MultipartUpload", "create_upload", "resume_upload"]

# CF: cloudflare/workers-sdk packages/miniflare/src/workers/r2/constants.ts and errors.worker.ts
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
_NO_SUCH_UPLOAD = (10024, "The specified multipart upload does not exist.")
_INVALID_PART = (10025, "One or more of the specified parts could not be found.")
_ENTITY_TOO_SMALL = (10011, "Your proposed upload is smaller than the minimum allowed object size.")
_BAD_UPLOAD = (10048, "There was a problem with the multipart upload.")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS r2_uploads(upload_id TEXT PRIMARY KEY, key TEXT NOT NULL,"
    " http_metadata TEXT NOT NULL, custom_metadata TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS r2_parts(upload_id TEXT NOT NULL, part_number INTEGER NOT NULL,"
    " etag TEXT NOT NULL, size INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY(upload_id, part_number))"
)


def _fail(action: str, error: tuple[int, str]) -> R2Error:
    code, message = error
    return R2Error(f"{action}: {message} ({code})", code)  # CF: workerd src/workerd/api/r2-rpc.c++


async def create_upload(bucket: R2Bucket, key: Any, options_: Any, kwargs: dict[str, Any]) -> R2MultipartUpload:
    """``await bucket.createMultipartUpload(key, {httpMetadata, customMetadata})``."""
    from ._r2 import _check_key, _custom_metadata, _http_metadata

    await checkpoint()
    key = _check_key("createMultipartUpload", key)
    opts = options(options_, kwargs, where="R2 createMultipartUpload")
    custom = _custom_metadata("createMultipartUpload", opts.get("customMetadata"))
    http = _http_metadata(opts.get("httpMetadata"))
    upload_id = uuid.uuid4().hex
    conn = bucket._conn()
    conn.execute(_SCHEMA)
    with conn:
        conn.execute(
            "INSERT INTO r2_uploads(upload_id, key, http_metadata, custom_metadata) VALUES (?, ?, ?, ?)",
            (upload_id, key, json.dumps(http), json.dumps(custom)),
        )
    return R2MultipartUpload(bucket, key, upload_id)


def resume_upload(bucket: R2Bucket, key: Any, upload_id: Any) -> R2MultipartUpload:
    """``bucket.resumeMultipartUpload(key, uploadId)``: no check until the upload is used, as on R2."""
    from ._r2 import _check_key

    if not isinstance(upload_id, str):
        raise TypeError(f"R2 resumeMultipartUpload: uploadId: expected str, got {type(upload_id).__name__}")
    return R2MultipartUpload(bucket, _check_key("resumeMultipartUpload", key), upload_id)


@cf_names("uploadId", "uploadPart")
class R2MultipartUpload:
    """An upload in progress: ``key``, ``uploadId``, ``uploadPart``, ``complete``, ``abort``."""

    def __init__(self, bucket: R2Bucket, key: str, upload_id: str) -> None:
        self._bucket = bucket
        self.key = key
        self._upload_id = upload_id

    @property
    def uploadId(self) -> str:
        return self._upload_id

    def __getitem__(self, name: str) -> Any:
        """``upload["key"]``/``upload["uploadId"]``, as a converted JS object reads."""
        if name in ("key", "uploadId"):
            return getattr(self, name)
        raise KeyError(name)

    def __repr__(self) -> str:
        return f"<R2MultipartUpload {self.key!r} uploadId={self._upload_id!r}>"

    def _upload_row(self, action: str) -> tuple[Any, ...]:
        conn = self._bucket._conn()
        conn.execute(_SCHEMA)
        row = conn.execute(
            "SELECT key, http_metadata, custom_metadata FROM r2_uploads WHERE upload_id = ?", (self._upload_id,)
        ).fetchone()
        if row is None or row[0] != self.key:
            raise _fail(action, _NO_SUCH_UPLOAD)
        return tuple(row)

    async def uploadPart(self, part_number: Any, value: Any, options_: Any = None, **kwargs: Any) -> JsObject:
        await checkpoint()
        if isinstance(part_number, bool) or not isinstance(part_number, int) or not 1 <= part_number <= MAX_PART_NUMBER:
            raise TypeError(
                f"R2 uploadPart: partNumber: expected an integer from 1 to {MAX_PART_NUMBER}, got {part_number!r}"
            )
        data = await read_body(value, "R2 uploadPart")
        self._upload_row("uploadPart")
        etag = hashlib.md5(data).hexdigest()
        conn = self._bucket._conn()
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO r2_parts(upload_id, part_number, etag, size, body) VALUES (?, ?, ?, ?, ?)",
                (self._upload_id, part_number, etag, len(data), data),
            )
        return JsObject(partNumber=part_number, etag=etag)

    async def abort(self) -> None:
        await checkpoint()
        conn = self._bucket._conn()
        conn.execute(_SCHEMA)
        with conn:
            conn.execute("DELETE FROM r2_parts WHERE upload_id = ?", (self._upload_id,))
            conn.execute("DELETE FROM r2_uploads WHERE upload_id = ?", (self._upload_id,))

    async def complete(self, uploaded_parts: Any) -> R2Object:
        from ._r2 import R2Object, _insert_object

        await checkpoint()
        action = "completeMultipartUpload"
        _, http, custom = self._upload_row(action)
        wanted = [options(part, None, where=f"R2 complete: uploadedParts[{i}]") for i, part in enumerate(uploaded_parts)]
        conn = self._bucket._conn()
        parts: list[tuple[str, int, bytes]] = []
        for part in wanted:
            row = conn.execute(
                "SELECT etag, size, body FROM r2_parts WHERE upload_id = ? AND part_number = ?",
                (self._upload_id, part.get("partNumber")),
            ).fetchone()
            if row is None or row[0] != part.get("etag"):
                raise _fail(action, _INVALID_PART)
            parts.append((row[0], row[1], bytes(row[2])))
        leading = [size for _, size, _ in parts[:-1]]
        if any(size < MIN_PART_SIZE for size in leading):
            raise _fail(action, _ENTITY_TOO_SMALL)
        if len(set(leading)) > 1 or (leading and parts[-1][1] > leading[0]):
            raise _fail(action, _BAD_UPLOAD)
        digest = hashlib.md5(b"".join(bytes.fromhex(etag) for etag, _, _ in parts)).hexdigest()
        body = b"".join(data for _, _, data in parts)
        with conn:
            written = _insert_object(self._bucket, conn, self.key, body, f"{digest}-{len(parts)}", http, custom, {})
            conn.execute("DELETE FROM r2_parts WHERE upload_id = ?", (self._upload_id,))
            conn.execute("DELETE FROM r2_uploads WHERE upload_id = ?", (self._upload_id,))
        return R2Object(written)

    upload_id: str  # installed by cf_names
    upload_part: Any
