"""Properties of history's side-file format 3 pieces, against plain reference versions:
the WAL's commits as read from strided header views, a page's changed span, and an
entry's bytes (stored raw or deflated) replayed over the pages they were made from."""

from __future__ import annotations

import os
import struct
import zlib

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from persistence import StorageError, _pitr

PAGE = 512
STEP = PAGE + 24


def _wal(tmp_path, commits: list[list[int]]) -> tuple[int, int]:
    """A WAL file with these commits (the pages each writes, in order); its fd and frames."""
    out = bytearray(struct.pack(">IIII", 0x377F0682, 3007000, PAGE, 0) + bytes(16))
    size = 0
    for pages in commits:
        size = max([size, *pages])
        for i, n in enumerate(pages):
            last = i == len(pages) - 1
            out += struct.pack(">II", n, size if last else 0) + bytes(16) + bytes([n % 251]) * PAGE
    path = tmp_path / "o.sqlite-wal"
    path.write_bytes(bytes(out))
    return os.open(path, os.O_RDONLY), sum(len(p) for p in commits)


COMMITS = st.lists(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=7), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(commits=COMMITS, chunk=st.integers(min_value=1, max_value=6), skip=st.integers(min_value=0, max_value=11))
def test_the_commits_read_a_chunk_at_a_time_are_those_read_a_frame_at_a_time(tmp_path_factory, commits, chunk, skip):
    fd, frames = _wal(tmp_path_factory.mktemp("wal"), commits)
    skip = min(skip, len(commits) - 1)
    start = sum(len(p) for p in commits[:skip])
    expected, pages, frame, size = [], {}, start, 0
    for i, written in enumerate(commits):
        size = max([size, *written])
        if i < skip:
            continue
        for n in written:
            frame += 1
            pages[n] = frame  # the newest frame of each page in the commit
        expected.append((frame, size, pages))
        pages = {}
    saved = _pitr._CHUNK_FRAMES
    _pitr._CHUNK_FRAMES = chunk
    try:
        got = [(f, s, dict(p)) for f, s, p in _pitr.History._commit_frames(fd, start, frames, STEP)]
    finally:
        _pitr._CHUNK_FRAMES = saved
        os.close(fd)
    assert got == expected


PAGES = st.binary(min_size=PAGE, max_size=PAGE)


@st.composite
def _edits(draw: st.DrawFn) -> tuple[bytes, bytes]:
    old = draw(PAGES)
    new = bytearray(old)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=PAGE - 1))
        new[at : at + draw(st.integers(min_value=1, max_value=40))] = draw(st.binary(min_size=1, max_size=40))[: PAGE - at]
    return bytes(new[:PAGE]).ljust(PAGE, b"\0"), old


@settings(max_examples=300, deadline=None)
@given(pair=_edits())
def test_the_changed_span_is_the_first_and_last_byte_that_differ(pair):
    new, old = pair
    differ = [i for i in range(PAGE) if new[i] != old[i]]
    assert _pitr._changed_span(new, old) == ((differ[0], differ[-1]) if differ else (0, 0))


@settings(max_examples=200, deadline=None)
@given(pages=st.lists(st.tuples(_edits(), st.booleans()), min_size=1, max_size=6), grow=st.integers(0, 2))
def test_an_entry_stored_raw_or_deflated_replays_to_the_new_pages(pages, grow):
    # Built as History._entries builds it: changed spans of pages with a known
    # previous version, whole pages for the rest (new pages past the old end).
    size = len(pages) + grow
    image = bytearray(b"".join(old for (_new, old), _known in pages))
    body = _pitr._EntryBody(_pitr._ENTRY_HEADER.pack(PAGE, size))
    plain = _pitr._ENTRY_HEADER.size
    for n, ((new, old), known) in enumerate(pages, start=1):
        if not known:
            body.add(_pitr._PGNO.pack(n) + new)
            plain += 4 + PAGE
            continue
        lo, hi = _pitr._changed_span(new, old)
        span = bytes(a ^ b for a, b in zip(new[lo : hi + 1], old[lo : hi + 1]))
        body.add(_pitr._SPAN.pack(n | _pitr._DELTA_BIT | _pitr._SPAN_BIT, zlib.crc32(new), lo, hi) + span)
        plain += _pitr._SPAN.size + len(span)
    blob = body.done()
    assert blob[:1] == (_pitr._RAW_MARK if plain <= _pitr._RAW_MAX else _pitr._ENTRY_MARK)
    _pitr._apply(image, blob)
    assert bytes(image) == b"".join(new for (new, _old), _known in pages) + bytes(grow * PAGE)


@pytest.mark.parametrize("raw", [True, False], ids=["stored raw", "deflated"])
@pytest.mark.parametrize("where", ["header", "middle", "last byte"])
def test_an_entry_with_any_byte_changed_is_refused_as_damaged_not_replayed(raw, where):
    # Whole-page records carry no CRC of their own and raw deflate has no checksum:
    # the entry's own CRC is what catches a side file a power cut left half old.
    old = bytes(PAGE)
    new = bytearray(old)
    new[10:14] = b"abcd"
    body = _pitr._EntryBody(_pitr._ENTRY_HEADER.pack(PAGE, 1 if raw else 3))
    span = bytes(new[10:14])  # its XOR with a zero page is itself
    body.add(_pitr._SPAN.pack(1 | _pitr._DELTA_BIT | _pitr._SPAN_BIT, zlib.crc32(new), 10, 13) + span)
    if not raw:
        for n in (2, 3):  # whole pages: past the old end
            body.add(_pitr._PGNO.pack(n) + bytes([n]) * PAGE)
    blob = bytearray(body.done())
    assert blob[:1] == (_pitr._RAW_MARK if raw else _pitr._ENTRY_MARK)
    image = bytearray(old)
    _pitr._apply(image, bytes(blob))  # as stored: it replays
    assert bytes(image[:PAGE]) == bytes(new)
    at = {"header": 1, "middle": len(blob) // 2, "last byte": len(blob) - 1}[where]
    blob[at] ^= 0x20
    with pytest.raises(StorageError, match="history damaged"):
        _pitr._apply(bytearray(old), bytes(blob))
