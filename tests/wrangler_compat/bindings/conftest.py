"""A :class:`StoreHost` on a temporary folder, on trio's clock (so ``autojump_clock`` moves KV expiry)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import AsyncIterator

import pytest
import trio

from wrangler_compat.bindings._store import StoreHost


@pytest.fixture
async def store_host(tmp_path: Path) -> AsyncIterator[StoreHost]:
    host = StoreHost(tmp_path / "state")
    epoch_ms = time.time() * 1000.0
    start = trio.current_time()
    host.attach(durability="none", now_ms=lambda: epoch_ms + (trio.current_time() - start) * 1000.0)
    try:
        yield host
    finally:
        host.close()
