"""The chat example under ``dohost dev``: two real WebSocket clients, a room evicted between messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from _e2e_support import EXAMPLES, run_dohost

pytestmark = pytest.mark.slow


async def receive(ws: object, timeout: float = 10.0) -> str:
    with trio.fail_after(timeout):
        return await ws.get_message()  # type: ignore[attr-defined, no-any-return]


async def test_chat_messages_reach_both_clients_across_an_eviction_of_the_room(tmp_path: Path) -> None:
    argv = ["dohost", "dev", "--config", str(EXAMPLES / "chat"), "--port", "0",
            "--persist-to", str(tmp_path / "state"), "--idle-timeout", "0.5"]
    async with run_dohost(argv) as proc:
        ws_url = proc.url.replace("http://", "ws://")
        async with open_websocket_url(f"{ws_url}/lobby?name=alice") as alice, \
                open_websocket_url(f"{ws_url}/lobby?name=bob") as bob:
            await alice.send_message("hi")
            assert await receive(alice) == "alice: hi"
            assert await receive(bob) == "alice: hi"

            # The room goes idle and is evicted; the sockets stay connected (hibernation).
            mark = proc.mark()
            await proc.wait_for(r"evicted ROOMS 'lobby'", after=mark)
            await alice.send_message("ping")  # answered by the host, without waking the room
            assert await receive(alice) == "pong"
            assert not proc.find(r"activated ROOMS 'lobby'", after=mark)

            await bob.send_message("still here?")
            assert await receive(alice) == "bob: still here?"
            assert await receive(bob) == "bob: still here?"
            await proc.wait_for(r"activated ROOMS 'lobby'", after=mark)

        # A late joiner gets the history from storage.
        async with open_websocket_url(f"{ws_url}/lobby?name=carol") as carol:
            assert [await receive(carol), await receive(carol)] == ["alice: hi", "bob: still here?"]


async def test_a_reload_closes_room_sockets_with_service_restart_and_keeps_the_history(tmp_path: Path) -> None:
    project = tmp_path / "chat"
    shutil.copytree(EXAMPLES / "chat", project, ignore=shutil.ignore_patterns(".dohost", "__pycache__"))
    argv = ["dohost", "dev", "--config", str(project), "--port", "0", "--persist-to", str(tmp_path / "state")]
    async with run_dohost(argv) as proc:
        ws_url = proc.url.replace("http://", "ws://")
        async with open_websocket_url(f"{ws_url}/lobby?name=alice") as alice:
            await alice.send_message("before the reload")
            assert await receive(alice) == "alice: before the reload"

            mark = proc.mark()
            entry = project / "src" / "entry.py"
            entry.write_text(entry.read_text() + "\n# edited\n")
            await proc.wait_for(r"reloaded in", after=mark)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(alice)
            assert closed.value.reason.code == 1012
            # trio-websocket 0.12 leaves its TCP stream open after a close the
            # server started (its reader stops at EOF without closing it).
            await alice._stream.aclose()

        async with open_websocket_url(f"{ws_url}/lobby?name=bob") as bob:
            assert await receive(bob) == "alice: before the reload"
