"""The shape of a bookmark: rendering, decoding, and the refusal messages.

A bookmark is Cloudflare's four groups of hexadecimal digits (8-8-8-32),
lexicographically sortable. It names a position ``seq``: the first two groups
are ``seq`` split at ``_cf.BOOKMARK_DIVISOR`` as workerd splits its counter;
the third is zero. The last group is either zeros (workerd's local counter,
used when no point-in-time history is kept) or a check value tying the
bookmark to one object's history, so a bookmark of another object (or a
made-up one) is refused rather than restored.

Pure functions only; whether a position is still restorable is
:class:`~._pitr.History`'s business.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import _cf
from .errors import PitrError

__all__ = [
    "render", "render_counter", "decode",
    "MALFORMED_MESSAGE", "FOREIGN_MESSAGE", "EXPIRED_MESSAGE", "TIME_EXPIRED_MESSAGE", "LOST_MESSAGE",
]

_BOOKMARK_RE = re.compile(_cf.BOOKMARK_PATTERN)

# Production's wording for these refusals is not public (the PITR back-end is not in
# workerd); the conditions are the documented ones.
# CF: https://developers.cloudflare.com/durable-objects/api/storage-api/ (PITR: "bookmarks
#     older than 30 days are invalid"; format 8-8-8-32 hex digits, lexicographically sortable)
MALFORMED_MESSAGE = "Invalid bookmark: {bookmark!r} is not a bookmark (expected 8-8-8-32 hexadecimal digits)"
FOREIGN_MESSAGE = "Invalid bookmark: {bookmark!r} does not belong to this Durable Object's history"
EXPIRED_MESSAGE = (
    "Invalid bookmark: {bookmark!r} is older than the point-in-time recovery window ({days:g} days)"
)
TIME_EXPIRED_MESSAGE = (
    "getBookmarkForTime(): {ms!r} is older than the point-in-time recovery window ({days:g} days)"
)
LOST_MESSAGE = (
    "Invalid bookmark: {bookmark!r} names a point whose history was lost when the host crashed"
)


def render(history_id: bytes, seq: int) -> str:
    """The bookmark of position ``seq`` in the history identified by ``history_id``."""
    d = _cf.BOOKMARK_DIVISOR  # CF: actor-sqlite.c++ getCurrentBookmark (hi/lo split)
    check = hashlib.blake2b(history_id + seq.to_bytes(8, "big"), digest_size=16).hexdigest()
    return f"{seq // d:08x}-{seq % d:08x}-{0:08x}-{check}"


def render_counter(n: int) -> str:
    """workerd's local bookmark of counter ``n`` (no history kept: the check value is zeros)."""
    d = _cf.BOOKMARK_DIVISOR  # CF: actor-sqlite.c++ getCurrentBookmark
    return _cf.BOOKMARK_TEMPLATE.format(hi=n // d, lo=n % d, zero=0)


def decode(bookmark: Any) -> int:
    """The position a well-formed bookmark names; :class:`PitrError` if it is not one.

    Says nothing of whose bookmark it is: compare with :func:`render` for that.
    """
    if not isinstance(bookmark, str) or not _BOOKMARK_RE.match(bookmark):
        raise PitrError(MALFORMED_MESSAGE.format(bookmark=bookmark))
    hi, lo, _zero, _check = bookmark.split("-")
    return int(hi, 16) * _cf.BOOKMARK_DIVISOR + int(lo, 16)
