"""Review of the runtime's commit threads (``runtime._commit_threads``): edge cases of its contract."""

from __future__ import annotations

import trio

from runtime._commit_threads import open_commit_threads


async def test_a_shielded_caller_gets_a_new_thread_while_the_pools_scope_is_cancelled() -> None:
    # An activation's final commit runs shielded so that it reaches the disk while the
    # runtime is cancelled; the thread it needs may not exist yet.
    with trio.CancelScope() as outer:
        async with open_commit_threads() as pool:
            assert pool is not None
            outer.cancel()
            with trio.CancelScope(shield=True):
                assert await pool.run(lambda: "stored") == "stored"
