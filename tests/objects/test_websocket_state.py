"""WebSocket handles and the hibernation book: states, Cloudflare's limits and messages."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import pytest

from objects._websocket_state import (
    HandleState,
    ReadyState,
    WebSocketBook,
    WebSocketHandle,
    WebSocketPair,
    WebSocketRequestResponsePair,
)
from objects.errors import (
    AutoResponseTooLargeError,
    DataCloneError,
    WebSocketError,
    WebSocketLimitError,
    WebSocketUsageError,
)

NOT_ACCEPTED = (
    r"^You must call one of accept\(\) or state\.acceptWebSocket\(\) on this WebSocket "
    r"before sending messages\.$"
)
NOW = datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)


class FakeTransport:
    """Records frames as the runtime's transport would send them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send_text(self, data: str) -> None:
        self.sent.append(("text", data))

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(("bytes", data))

    def close(self, code: int, reason: str) -> None:
        self.sent.append(("close", (code, reason)))


def accepted(book: WebSocketBook | None = None, tags: list[str] | None = None) -> tuple[WebSocketHandle, FakeTransport]:
    """A server end accepted for hibernation whose client end was returned in a Response."""
    client, server = WebSocketPair.new().object_values()
    (book if book is not None else WebSocketBook()).acceptWebSocket(server, tags)
    transport = FakeTransport()
    client.couple(transport)
    return server, transport


# ------------------------------------------------------------------ sending


def test_frames_sent_before_the_response_flush_in_order_once_coupled() -> None:
    client, server = WebSocketPair()
    WebSocketBook().accept_web_socket(server)
    server.send("hello")
    server.send(b"\x01")
    transport = FakeTransport()
    client.couple(transport)
    server.send("after")
    assert transport.sent == [("text", "hello"), ("bytes", b"\x01"), ("text", "after")]


def test_binary_messages_of_any_buffer_type_are_sent_as_bytes() -> None:
    ws, transport = accepted()
    ws.send(bytearray(b"a"))
    ws.send(memoryview(b"b"))
    assert transport.sent == [("bytes", b"a"), ("bytes", b"b")]


def test_a_message_that_is_not_text_or_bytes_is_refused() -> None:
    ws, _ = accepted()
    with pytest.raises(WebSocketUsageError, match=r"^send: message: expected str or bytes, got dict$"):
        ws.send({"a": 1})  # type: ignore[arg-type]


def test_sending_before_accepting_is_refused_in_cloudflares_words() -> None:
    with pytest.raises(WebSocketUsageError, match=NOT_ACCEPTED):
        WebSocketHandle().send("x")
    with pytest.raises(WebSocketUsageError, match=NOT_ACCEPTED):
        WebSocketHandle().close()


def test_sending_after_close_is_refused_in_cloudflares_words() -> None:
    ws, _ = accepted()
    ws.close()
    with pytest.raises(WebSocketUsageError, match=r"^Can't call WebSocket send\(\) after close\(\)\.$"):
        ws.send("late")
    assert isinstance(WebSocketUsageError("x"), TypeError)


def test_after_a_disconnect_sends_and_closes_are_dropped_silently() -> None:
    ws, transport = accepted()
    ws.note_disconnected()
    ws.send("lost")
    ws.close(1000)
    assert transport.sent == []
    assert ws.readyState == ReadyState.CLOSING


# ------------------------------------------------------------------- closing


def test_close_without_a_code_sends_a_close_frame_with_no_status() -> None:
    ws, transport = accepted()
    ws.close()
    assert transport.sent == [("close", (1005, ""))]


def test_close_forwards_code_and_reason() -> None:
    ws, transport = accepted()
    ws.close(4000, "done")
    assert transport.sent == [("close", (4000, "done"))]


def test_a_second_close_is_ignored() -> None:
    ws, transport = accepted()
    ws.close(1000)
    ws.close(1001, "again")
    assert transport.sent == [("close", (1000, ""))]


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 5000, -1])
def test_invalid_close_codes_are_refused_in_cloudflares_words(code: int) -> None:
    ws, transport = accepted()
    with pytest.raises(WebSocketUsageError, match=rf"^Invalid WebSocket close code: {code}\.$"):
        ws.close(code)
    assert transport.sent == []
    ws.close(1000)  # the failed call closed nothing


@pytest.mark.parametrize("code", [True, "1000", 1000.0])
def test_close_codes_must_be_integers(code: object) -> None:
    ws, _ = accepted()
    with pytest.raises(WebSocketUsageError, match=r"^Invalid WebSocket close code: "):
        ws.close(code)  # type: ignore[arg-type]


def test_a_reason_needs_a_code() -> None:
    ws, _ = accepted()
    with pytest.raises(
        WebSocketUsageError,
        match=r"^If you specify a WebSocket close reason, you must also specify a code\.$",
    ):
        ws.close(reason="bye")


def test_a_reason_must_fit_in_a_close_frame() -> None:
    ws, transport = accepted()
    with pytest.raises(
        WebSocketUsageError, match=r"^WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded\.$"
    ):
        ws.close(1000, "é" * 62)
    assert transport.sent == [] and ws.readyState == ReadyState.OPEN
    ws.close(1000, "x" * 123)
    assert transport.sent == [("close", (1000, "x" * 123))]


def test_a_reason_must_be_text() -> None:
    ws, _ = accepted()
    with pytest.raises(WebSocketUsageError, match=r"^close: reason: expected str, got bytes$"):
        ws.close(1000, b"x")  # type: ignore[arg-type]


def test_ready_state_follows_both_directions_of_closing() -> None:
    ws, _ = accepted()
    assert ws.readyState == ws.OPEN == ReadyState.OPEN == 1
    ws.close()
    assert ws.ready_state == WebSocketHandle.CLOSING == 2
    ws.note_close_received()
    assert ws.readyState == WebSocketHandle.READY_STATE_CLOSED == 3


def test_a_close_from_the_peer_is_answered_so_the_socket_is_closed_and_close_is_a_no_op() -> None:
    # workerd with web_socket_auto_reply_to_close (default from 2026-04-07).
    ws, transport = accepted()
    ws.note_close_received()
    assert ws.readyState == ReadyState.CLOSED
    ws.close(4001, "echo")
    assert transport.sent == []
    with pytest.raises(WebSocketUsageError, match=r"^Can't call WebSocket send\(\) after close\(\)\.$"):
        ws.send("late")


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 999, 5000, True])
def test_a_refused_close_code_raises_even_on_a_closed_socket_and_changes_nothing(code: object) -> None:
    ws, transport = accepted()
    with pytest.raises(WebSocketUsageError, match=rf"^Invalid WebSocket close code: {code}\.$"):
        ws.close(code)  # type: ignore[arg-type]
    assert ws.readyState == ReadyState.OPEN and transport.sent == []
    ws.note_close_received()
    with pytest.raises(WebSocketUsageError, match=rf"^Invalid WebSocket close code: {code}\.$"):
        ws.close(code)  # type: ignore[arg-type]


def test_listeners_are_kept_in_order_once_each_and_can_be_removed() -> None:
    ws = WebSocketHandle(FakeTransport())
    ws.accept()
    first, second = (lambda event: None), (lambda event: None)
    ws.addEventListener("message", first)
    ws.add_event_listener("message", second)
    ws.addEventListener("message", first)
    assert ws.listeners("message") == [first, second] and ws.accepted
    ws.removeEventListener("message", first)
    assert ws.listeners("message") == [second]
    with pytest.raises(WebSocketUsageError, match=r"^addEventListener: listener: expected a function, got int$"):
        ws.addEventListener("close", 3)


# ---------------------------------------------------------------- lifecycle


def test_accept_makes_a_handle_usable_and_may_be_repeated() -> None:
    ws = WebSocketHandle(FakeTransport())
    ws.accept()
    ws.accept()
    assert ws.state is HandleState.ACCEPTED
    ws.send("x")


def test_accept_after_accept_web_socket_is_refused() -> None:
    ws, _ = accepted()
    with pytest.raises(WebSocketUsageError, match=r"^Can't accept\(\) WebSocket after enabling hibernation\.$"):
        ws.accept()


def test_accept_after_being_returned_in_a_response_is_refused() -> None:
    client, _ = WebSocketPair()
    client.couple(FakeTransport())
    with pytest.raises(WebSocketUsageError, match=r"^Can't accept\(\) WebSocket that was already used in a response\.$"):
        client.accept()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda ws: WebSocketBook().acceptWebSocket(ws), r"^Can't return WebSocket in a Response after calling acceptWebSocket\(\)\.$"),
        (lambda ws: ws.accept(), r"^Can't return WebSocket in a Response after calling accept\(\)\.$"),
        (lambda ws: ws.couple(FakeTransport()), r"^Can't return WebSocket that was already used in a response\.$"),
    ],
)
def test_returning_a_socket_in_a_response_twice_or_after_accepting_is_refused(prepare: Any, message: str) -> None:
    client, _ = WebSocketPair()
    prepare(client)
    with pytest.raises(WebSocketUsageError, match=message):
        client.couple(FakeTransport())


def test_the_state_table_refuses_an_illegal_move() -> None:
    ws, _ = accepted()
    with pytest.raises(
        WebSocketUsageError,
        match=r"^WebSocket cannot go from accepted with acceptWebSocket\(\) to accepted with accept\(\)$",
    ):
        ws._move(HandleState.ACCEPTED)


def test_a_pair_indexes_and_unpacks_like_cloudflares() -> None:
    pair = WebSocketPair.new()
    client, server = pair
    assert (pair[0], pair[1]) == (client, server) == pair.object_values()
    assert client is not server


# -------------------------------------------------------------- attachments


def test_an_attachment_round_trips_as_a_fresh_copy_each_time() -> None:
    ws = WebSocketHandle()
    assert ws.deserializeAttachment() is None
    value = {"user": "ada", "rooms": [1, 2], "at": NOW}
    ws.serializeAttachment(value)
    value["rooms"].append(3)  # later changes to the original are not kept
    first = ws.deserialize_attachment()
    assert first == {"user": "ada", "rooms": [1, 2], "at": NOW}
    first["rooms"].clear()
    assert ws.deserializeAttachment()["rooms"] == [1, 2]


def test_tuples_and_sets_come_back_as_lists() -> None:
    ws = WebSocketHandle()
    ws.serialize_attachment({"t": (1, 2), "s": {3}})
    assert ws.deserialize_attachment() == {"t": [1, 2], "s": [3]}


def test_an_attachment_of_16384_serialized_bytes_fits_and_one_more_does_not() -> None:
    ws = WebSocketHandle()
    fitting = "x" * (16384 - 3)  # msgpack str16 header is 3 bytes
    assert len(msgspec.msgpack.encode(fitting)) == 16384
    ws.serializeAttachment(fitting)
    with pytest.raises(
        WebSocketLimitError,
        match=r"^A WebSocket 'attachment' cannot be larger than 16384 bytes\.'attachment' was 16385 bytes\.$",
    ):
        ws.serializeAttachment(fitting + "x")
    assert ws.deserializeAttachment() == fitting  # the failed call kept the old one


def test_an_attachment_that_cannot_be_cloned_is_refused() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    with pytest.raises(DataCloneError, match=r"^Opaque\(\) could not be cloned\.$"):
        WebSocketHandle().serializeAttachment({"x": Opaque()})


# --------------------------------------------------------------------- book


def test_accepted_sockets_are_listed_in_accept_order_and_by_tag() -> None:
    book = WebSocketBook()
    a, _ = accepted(book, ["room:1", "user:a"])
    b, _ = accepted(book, ["room:1"])
    c, _ = accepted(book)
    assert book.getWebSockets() == [a, b, c]
    assert book.get_web_sockets("room:1") == [a, b]
    assert book.getWebSockets("user:a") == [a]
    assert book.getWebSockets("nobody") == []
    assert len(book) == 3 and a in book


def test_tags_keep_first_seen_order_and_ignore_duplicates() -> None:
    book = WebSocketBook()
    ws, _ = accepted(book, ["b", "a", "b"])
    assert book.getTags(ws) == ["b", "a"]
    book.get_tags(ws).append("mutated")
    assert book.getTags(ws) == ["b", "a"]


def test_ten_distinct_tags_fit_and_an_eleventh_does_not() -> None:
    book = WebSocketBook()
    accepted(book, [f"t{i}" for i in range(10)])
    with pytest.raises(WebSocketLimitError, match=r"^a Hibernatable WebSocket cannot have more than 10 tags$"):
        accepted(book, [f"t{i}" for i in range(11)])


def test_any_tag_after_ten_distinct_ones_fails_even_a_duplicate_as_in_workerd() -> None:
    with pytest.raises(WebSocketLimitError, match=r"^a Hibernatable WebSocket cannot have more than 10 tags$"):
        accepted(WebSocketBook(), [f"t{i}" for i in range(10)] + ["t0"])


def test_a_tag_of_256_bytes_fits_and_257_does_not() -> None:
    book = WebSocketBook()
    accepted(book, ["x" * 256])
    long_tag = "é" * 128 + "x"  # 257 bytes, 129 characters: workerd counts bytes
    with pytest.raises(
        WebSocketLimitError,
        match=rf'^"{long_tag}" is longer than the max tag length \(256 characters\)\.$',
    ):
        accepted(book, [long_tag])


def test_a_failed_accept_leaves_the_socket_unaccepted() -> None:
    book = WebSocketBook()
    _, server = WebSocketPair()
    with pytest.raises(WebSocketLimitError):
        book.acceptWebSocket(server, ["x" * 300])
    assert server.state is HandleState.AWAITING and server not in book
    book.acceptWebSocket(server, ["ok"])


@pytest.mark.parametrize(
    ("tags", "message"),
    [("room", r"^acceptWebSocket: tags: expected a list of str, got str$"), ([1], r"^acceptWebSocket: tags: expected str items, got int$")],
)
def test_tags_must_be_a_list_of_strings(tags: Any, message: str) -> None:
    _, server = WebSocketPair()
    with pytest.raises(WebSocketUsageError, match=message):
        WebSocketBook().acceptWebSocket(server, tags)


def test_accept_web_socket_refuses_something_that_is_not_a_web_socket() -> None:
    with pytest.raises(WebSocketUsageError, match=r"^acceptWebSocket: ws: expected a WebSocket, got str$"):
        WebSocketBook().acceptWebSocket("ws")  # type: ignore[arg-type]


@pytest.mark.parametrize("prepare", [lambda book, ws: ws.accept(), lambda book, ws: book.acceptWebSocket(ws)])
def test_accepting_an_accepted_socket_again_is_refused_in_cloudflares_words(prepare: Any) -> None:
    book = WebSocketBook()
    _, server = WebSocketPair()
    prepare(book, server)
    with pytest.raises(
        WebSocketError,
        match=r"^Cannot call `acceptWebSocket\(\)` if the WebSocket was already accepted via `accept\(\)`$",
    ):
        book.acceptWebSocket(server)


def test_accepting_the_end_whose_pair_was_used_is_refused_in_cloudflares_words() -> None:
    book = WebSocketBook()
    client, server = WebSocketPair()
    book.acceptWebSocket(server)
    message = (
        r"^Cannot call `acceptWebSocket\(\)` on this WebSocket because its pair has already "
        r"been accepted or used in a Response\.$"
    )
    with pytest.raises(WebSocketError, match=message):
        book.acceptWebSocket(client)
    client2, server2 = WebSocketPair()
    client2.couple(FakeTransport())
    with pytest.raises(WebSocketError, match=message):
        book.acceptWebSocket(client2)


def test_get_tags_of_a_socket_the_book_does_not_hold_is_refused() -> None:
    with pytest.raises(WebSocketUsageError, match=r"^getTags: the WebSocket was not accepted with acceptWebSocket\(\) by this object$"):
        WebSocketBook().getTags(WebSocketHandle())


def test_removed_sockets_disappear_from_every_listing() -> None:
    book = WebSocketBook()
    ws, _ = accepted(book, ["t"])
    book.remove(ws)
    book.remove(ws)  # idempotent
    assert book.getWebSockets() == [] and book.getWebSockets("t") == []
    assert ws.state is HandleState.RELEASED


def test_camel_case_and_snake_case_names_are_the_same_methods() -> None:
    assert WebSocketBook.acceptWebSocket is WebSocketBook.accept_web_socket
    assert WebSocketBook.setHibernatableWebSocketEventTimeout is WebSocketBook.set_hibernatable_web_socket_event_timeout
    assert WebSocketHandle.serializeAttachment is WebSocketHandle.serialize_attachment
    assert WebSocketHandle.readyState is WebSocketHandle.ready_state


# ----------------------------------------------------------- auto-responses


def test_the_auto_response_answers_only_its_exact_text_request() -> None:
    book = WebSocketBook()
    ws, _ = accepted(book)
    pair = WebSocketRequestResponsePair("ping", "pong")
    book.setWebSocketAutoResponse(pair)
    assert book.getWebSocketAutoResponse() is pair
    assert book.getWebSocketAutoResponseTimestamp(ws) is None
    assert book.auto_response_for(ws, "PING", NOW) is None
    assert book.auto_response_for(ws, b"ping", NOW) is None
    assert book.auto_response_for(ws, "ping", NOW) == "pong"
    assert book.getWebSocketAutoResponseTimestamp(ws) == NOW


def test_no_auto_response_without_a_pair_or_after_close() -> None:
    book = WebSocketBook()
    ws, _ = accepted(book)
    assert book.auto_response_for(ws, "ping", NOW) is None
    book.setWebSocketAutoResponse(WebSocketRequestResponsePair("ping", "pong"))
    ws.close()
    assert book.auto_response_for(ws, "ping", NOW) is None


def test_setting_no_pair_removes_the_auto_response() -> None:
    book = WebSocketBook()
    book.setWebSocketAutoResponse(WebSocketRequestResponsePair("a", "b"))
    book.setWebSocketAutoResponse()
    assert book.getWebSocketAutoResponse() is None


@pytest.mark.parametrize("side", ["Request", "Response"])
def test_auto_response_strings_over_2048_bytes_are_refused_in_cloudflares_words(side: str) -> None:
    fits = WebSocketRequestResponsePair("a" * 2048, "b" * 2048)
    book = WebSocketBook()
    book.setWebSocketAutoResponse(fits)
    too_long = "é" * 1025  # 2050 bytes
    pair = WebSocketRequestResponsePair(too_long, "ok") if side == "Request" else WebSocketRequestResponsePair("ok", too_long)
    with pytest.raises(
        AutoResponseTooLargeError,
        match=rf"^{side} cannot be larger than 2048 bytes\. A {side.lower()} of size 2050 was provided\.$",
    ):
        book.setWebSocketAutoResponse(pair)
    assert book.getWebSocketAutoResponse() is fits


def test_an_auto_response_pair_holds_two_strings() -> None:
    with pytest.raises(WebSocketUsageError, match=r"^response: expected str, got int$"):
        WebSocketRequestResponsePair("a", 1)  # type: ignore[arg-type]
    with pytest.raises(WebSocketUsageError, match=r"^setWebSocketAutoResponse: expected a WebSocketRequestResponsePair, got tuple$"):
        WebSocketBook().setWebSocketAutoResponse(("a", "b"))  # type: ignore[arg-type]


# ------------------------------------------------------------ event timeout


def test_the_event_timeout_can_be_set_and_unset() -> None:
    book = WebSocketBook()
    assert book.getHibernatableWebSocketEventTimeout() is None
    book.setHibernatableWebSocketEventTimeout(5000)
    assert book.get_hibernatable_web_socket_event_timeout() == 5000
    book.setHibernatableWebSocketEventTimeout(0)
    assert book.getHibernatableWebSocketEventTimeout() is None
    book.setHibernatableWebSocketEventTimeout(10)
    book.setHibernatableWebSocketEventTimeout()
    assert book.getHibernatableWebSocketEventTimeout() is None


def test_the_event_timeout_is_at_most_seven_days() -> None:
    book = WebSocketBook()
    book.setHibernatableWebSocketEventTimeout(604_800_000)
    with pytest.raises(WebSocketLimitError, match=r"^Event timeout should not exceed 604800000 ms\.$"):
        book.setHibernatableWebSocketEventTimeout(604_800_001)
    assert book.getHibernatableWebSocketEventTimeout() == 604_800_000


@pytest.mark.parametrize("value", [-1, True, 1.5, "10"])
def test_the_event_timeout_must_be_a_non_negative_int(value: Any) -> None:
    with pytest.raises(WebSocketUsageError, match=r"^setHibernatableWebSocketEventTimeout: expected a non-negative int of milliseconds, got "):
        WebSocketBook().setHibernatableWebSocketEventTimeout(value)
