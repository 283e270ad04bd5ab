"""Tests of the chat example: two WebSocket clients in process, a room that hibernates.

``dohost.connect_websocket`` opens a WebSocket through the Worker with no
network; ``dohost.evict`` drops the room from memory while its hibernatable
sockets stay connected, and the next message wakes it up.
"""


async def join(dohost, name, room="lobby"):
    return await dohost.connect_websocket(f"ws://chat.example/{room}?name={name}")


async def test_a_message_reaches_every_client_in_the_room(dohost):
    alice = await join(dohost, "alice")
    bob = await join(dohost, "bob")

    await alice.send("hi")
    assert await alice.receive() == "alice: hi"
    assert await bob.receive() == "alice: hi"

    await bob.send("hello")
    assert await alice.receive() == "bob: hello"
    assert await bob.receive() == "bob: hello"


async def test_clients_stay_connected_while_the_room_hibernates(dohost):
    alice = await join(dohost, "alice")
    bob = await join(dohost, "bob")
    room = dohost.env.ROOMS.getByName("lobby")

    assert await dohost.evict(room) is True
    assert dohost.statistics(room).state == "hibernated"

    await alice.send("ping")  # answered by the host from the auto-response: the room stays asleep
    assert await alice.receive() == "pong"
    assert dohost.statistics(room).state == "hibernated"

    await bob.send("still here?")  # wakes the room: a new instance, the same sockets and names
    assert await alice.receive() == "bob: still here?"
    assert await bob.receive() == "bob: still here?"
    assert dohost.statistics(room).state in ("idle", "active")


async def test_a_late_joiner_gets_the_history_even_after_eviction(dohost):
    alice = await join(dohost, "alice")
    await alice.send("first")
    await alice.receive()
    await dohost.evict(dohost.env.ROOMS.getByName("lobby"))

    carol = await join(dohost, "carol")
    assert [await carol.receive()] == ["alice: first"]
    assert await dohost.env.ROOMS.getByName("lobby").history() == ["alice: first"]


async def test_rooms_are_separate(dohost):
    alice = await join(dohost, "alice", room="a")
    bob = await join(dohost, "bob", room="b")
    await alice.send("only in a")
    assert await alice.receive() == "alice: only in a"
    assert bob.receive_nowait() is None
    assert await dohost.env.ROOMS.getByName("b").history() == []


async def test_a_plain_request_is_refused_with_426(dohost):
    response = await dohost.fetch("https://chat.example/lobby")
    assert response.status == 426
    assert await response.text() == "expected a WebSocket upgrade"


async def test_a_client_that_leaves_no_longer_gets_messages(dohost):
    alice = await join(dohost, "alice")
    bob = await join(dohost, "bob")
    room = dohost.env.ROOMS.getByName("lobby")
    await alice.close(1000, "bye")

    sockets = await dohost.run_in_durable_object(room, lambda instance, ctx: len(ctx.getWebSockets()))
    assert sockets == 1
    await bob.send("anyone?")
    assert await bob.receive() == "bob: anyone?"
