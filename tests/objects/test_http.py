"""Request, Response and Headers: Python Workers' shapes with workerd's checks."""

from __future__ import annotations

from http import HTTPMethod, HTTPStatus

import pytest

from objects._http import Headers, Request, RequestHeaders, Response
from objects.errors import BodyUsedError, HttpStatusRangeError, InvalidHttpError

URL = "https://example.com/path?q=1"

# --------------------------------------------------------------------- headers


def test_headers_are_case_insensitive() -> None:
    headers = Headers({"Content-Type": "text/html"})
    assert headers.get("content-type") == "text/html"
    assert headers["CONTENT-TYPE"] == "text/html"
    assert headers.has("Content-type") and "content-TYPE" in headers
    headers.set("CONTENT-type", "application/json")
    assert headers.get("content-type") == "application/json"
    assert len(headers) == 1


def test_appended_values_are_joined_with_a_comma() -> None:
    headers = Headers([("Accept", "a"), ("accept", "b")])
    assert headers.get("accept") == "a, b"
    assert headers.get_all("accept") == ["a", "b"]


def test_set_cookie_values_stay_apart() -> None:
    headers = Headers()
    headers.append("Set-Cookie", "a=1")
    headers.append("Set-Cookie", "b=2")
    assert headers.getSetCookie() == ["a=1", "b=2"]
    assert headers.get_set_cookie() == ["a=1", "b=2"]
    assert headers.items() == [("set-cookie", "a=1"), ("set-cookie", "b=2")]


def test_iteration_yields_lowercase_names_in_sorted_order() -> None:
    headers = Headers({"X-B": "2", "x-a": "1", "Content-Length": "3"})
    assert list(headers) == ["content-length", "x-a", "x-b"]
    assert headers.keys() == ["content-length", "x-a", "x-b"]
    assert headers.values() == ["3", "1", "2"]


def test_missing_headers_read_as_none_or_key_error() -> None:
    headers = Headers()
    assert headers.get("x") is None
    assert headers.get("x", "fallback") == "fallback"
    assert headers.get_all("x") is None
    with pytest.raises(KeyError):
        headers["x"]
    with pytest.raises(KeyError):
        del headers["x"]


def test_delete_removes_every_value_of_a_name() -> None:
    headers = Headers([("a", "1"), ("A", "2")])
    headers.delete("a")
    assert not headers.has("a")
    headers["b"] = "1"
    del headers["B"]
    assert len(headers) == 0


def test_values_are_trimmed_and_numbers_are_coerced() -> None:
    headers = Headers({"x-a": "  spaced\t", "content-length": 12})
    assert headers.get("x-a") == "spaced"
    assert headers.get("content-length") == "12"


@pytest.mark.parametrize("name", ["", "bad name", "x:y", "é", 5])
def test_invalid_header_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidHttpError, match=r"^Invalid header name: "):
        Headers().set(name, "v")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\0b"])
def test_header_values_with_line_breaks_or_nul_are_refused(value: str) -> None:
    with pytest.raises(InvalidHttpError, match=r"^Invalid header value: "):
        Headers().set("x", value)


def test_a_header_value_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidHttpError, match=r"^Invalid header value: expected str, got list$"):
        Headers({"x": ["a"]})  # type: ignore[dict-item]


def test_headers_from_something_that_is_not_pairs_are_refused() -> None:
    with pytest.raises(InvalidHttpError, match=r"^headers: expected a dict, a list of \(name, value\) pairs or Headers, got 'abc'$"):
        Headers("abc")  # type: ignore[arg-type]


def test_headers_copy_independently_and_compare_with_dicts() -> None:
    headers = Headers({"A": "1"})
    twin = Headers(headers)
    twin.set("a", "2")
    assert headers == {"a": "1"}
    assert twin == Headers({"A": "2"})
    assert headers != twin
    assert headers.copy() == headers
    assert repr(headers) == "Headers([('a', '1')])"


# -------------------------------------------------------------------- responses


def test_a_response_defaults_to_200_ok_without_a_body() -> None:
    response = Response()
    assert (response.status, response.ok, response.status_text) == (200, True, "OK")
    assert response.statusText == "OK"
    assert response.body is None
    assert response.web_socket is None and response.webSocket is None
    assert response.url == "" and response.redirected is False
    assert repr(response) == "<Response [200 OK]>"


def test_a_response_takes_python_workers_positional_order() -> None:
    response = Response("gone", 404, "Missing", {"x-a": "1"})
    assert (response.status, response.status_text, response.ok) == (404, "Missing", False)
    assert response.headers.get("x-a") == "1"


def test_status_may_be_an_http_status() -> None:
    assert Response(None, HTTPStatus.CREATED).status == 201


def test_a_text_body_gets_a_text_content_type_unless_one_is_given() -> None:
    assert Response("hi").headers.get("content-type") == "text/plain;charset=UTF-8"
    assert Response("hi", headers={"Content-Type": "text/html"}).headers.get("content-type") == "text/html"
    assert Response(b"\x00").headers.get("content-type") is None


@pytest.mark.parametrize(("body", "name"), [({"a": 1}, "dict"), ([1], "list"), (3, "int")])
def test_unsupported_body_types_are_refused_in_python_workers_words(body: object, name: str) -> None:
    with pytest.raises(InvalidHttpError, match=rf"^Unsupported type in Response: {name}$"):
        Response(body)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [0, 101, 199, 600])
def test_status_codes_outside_200_to_599_are_refused(status: int) -> None:
    with pytest.raises(
        HttpStatusRangeError,
        match=r"^Responses may only be constructed with status codes in the range 200 to 599, inclusive\.$",
    ):
        Response(None, status)


def test_a_websocket_response_must_be_101() -> None:
    with pytest.raises(HttpStatusRangeError, match=r"^Responses with a WebSocket must have status code 101\.$"):
        Response(None, web_socket=object())
    response = Response(None, 101, web_socket="ws")
    assert (response.status, response.webSocket) == (101, "ws")
    assert response.status_text == "Switching Protocols"


@pytest.mark.parametrize("status", [204, 205, 304])
def test_null_body_statuses_refuse_a_body(status: int) -> None:
    with pytest.raises(
        InvalidHttpError,
        match=r"^Response with null body status \(101, 204, 205, or 304\) cannot have a body\.$",
    ):
        Response("x", status)


def test_an_empty_body_on_a_null_body_status_becomes_no_body() -> None:
    assert Response(b"", 204).body is None


def test_a_status_text_with_control_characters_is_refused() -> None:
    with pytest.raises(InvalidHttpError, match=r"^Invalid statusText$"):
        Response("x", 200, "OK\r\nSet-Cookie: a=1")


def test_unknown_status_codes_have_an_empty_default_text() -> None:
    assert Response(None, 299).status_text == ""


async def test_response_json_on_the_class_builds_a_json_response() -> None:
    response = Response.json({"a": [1, 2]}, status=201)
    assert response.status == 201
    assert response.headers.get("content-type") == "application/json"
    assert await response.clone().text() == '{"a": [1, 2]}'  # json.dumps, as the Python SDK writes it
    assert await response.json() == {"a": [1, 2]}


async def test_response_json_keeps_a_given_content_type() -> None:
    response = Response.json([1], headers={"Content-Type": "application/vnd.api+json"})
    assert response.headers.get("content-type") == "application/vnd.api+json"
    assert await Response.from_json("x").text() == '"x"'


async def test_a_body_can_be_read_once_in_any_form() -> None:
    for reader in ("text", "bytes", "buffer", "arrayBuffer", "array_buffer", "json"):
        response = Response('{"n": 1}')
        await getattr(response, reader)()
        assert response.bodyUsed and response.body_used
        with pytest.raises(BodyUsedError, match=r"^Response body is already used$"):
            await response.text()


async def test_a_second_read_is_caught_as_os_error_or_type_error() -> None:
    response = Response("x")
    assert await response.bytes() == b"x"
    with pytest.raises(OSError):
        await response.bytes()
    with pytest.raises(TypeError):
        await response.text()


async def test_a_missing_body_reads_as_empty_and_is_never_used() -> None:
    response = Response()
    assert await response.text() == ""
    assert await response.bytes() == b""
    assert response.body_used is False


async def test_invalid_utf8_decodes_with_replacement_characters() -> None:
    assert await Response(b"a\xffb").text() == "a\ufffdb"


async def test_clone_gives_an_independent_unread_copy() -> None:
    response = Response("data", 202, headers={"x": "1"})
    twin = response.clone()
    twin.headers.set("x", "2")
    assert await response.text() == "data"
    assert await twin.text() == "data"
    assert (twin.status, response.headers.get("x")) == (202, "1")


async def test_clone_after_reading_is_refused() -> None:
    response = Response("data")
    await response.text()
    with pytest.raises(BodyUsedError, match=r"^Response body is already used$"):
        response.clone()


def test_a_websocket_response_cannot_be_cloned() -> None:
    with pytest.raises(InvalidHttpError, match=r"^Cannot clone a response to a WebSocket handshake\.$"):
        Response(None, 101, web_socket="ws").clone()


def test_redirect_defaults_to_302_with_a_location() -> None:
    response = Response.redirect("https://example.com/next")
    assert response.status == 302
    assert response.headers.get("location") == "https://example.com/next"
    assert Response.redirect("/x", 308).status == 308


@pytest.mark.parametrize("status", [200, 300, 304, 404])
def test_redirect_refuses_a_status_that_is_not_a_redirect(status: int) -> None:
    with pytest.raises(
        HttpStatusRangeError,
        match=rf"^{status} is not a redirect status code\. It must be one of: 301, 302, 303, 307, or 308\.$",
    ):
        Response.redirect("https://example.com/", status)


def test_redirect_refuses_a_url_with_a_line_break() -> None:
    with pytest.raises(InvalidHttpError, match=r"^Redirect URL cannot contain '\\r', '\\n', or '\\0': /a\nb$"):
        Response.redirect("/a\nb")


# --------------------------------------------------------------------- requests


def test_a_request_defaults_to_get() -> None:
    request = Request(URL)
    assert request.method == "GET" and request.method is HTTPMethod.GET
    assert request.url == URL
    assert request.body is None
    assert repr(request) == f"Request(method='GET', url={URL!r})"


@pytest.mark.parametrize(("given", "method"), [("post", "POST"), ("Delete", "DELETE"), ("PATCH", "PATCH"), ("options", "OPTIONS")])
def test_methods_are_normalised_as_the_fetch_standard_says(given: str, method: str) -> None:
    assert Request(URL, method=given).method == method


@pytest.mark.parametrize("method", ["patch", "FOO", ""])
def test_other_methods_must_be_exact(method: str) -> None:
    with pytest.raises(InvalidHttpError, match=rf"^Invalid HTTP method string: {method}$"):
        Request(URL, method=method)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_requests_cannot_have_a_body(method: str) -> None:
    with pytest.raises(InvalidHttpError, match=r"^Request with a GET or HEAD method cannot have a body\.$"):
        Request(URL, method=method, body="x")
    with pytest.raises(InvalidHttpError, match=r"^Request with a GET or HEAD method cannot have a body\.$"):
        Request(URL, body=b"x")


@pytest.mark.parametrize("url", ["/relative", "example.com", ""])
def test_a_request_needs_an_absolute_url(url: str) -> None:
    with pytest.raises(InvalidHttpError, match=r"^Request: url: expected an absolute URL, got "):
        Request(url)


def test_a_request_input_must_be_a_url_or_request() -> None:
    with pytest.raises(InvalidHttpError, match=r"^Request: input: expected a URL str or Request, got int$"):
        Request(5)  # type: ignore[arg-type]


async def test_a_request_built_from_a_request_copies_it_with_overrides() -> None:
    original = Request(URL, method="PUT", headers={"x": "1"}, body="data")
    copy = Request(original, headers={"y": "2"})
    assert (copy.url, copy.method, copy.headers.get("y"), copy.headers.get("x")) == (URL, "PUT", "2", None)
    assert await copy.text() == "data"
    assert Request(original, method="POST").headers.get("x") == "1"


async def test_a_request_with_a_used_body_cannot_be_rebuilt() -> None:
    original = Request(URL, method="POST", body="data")
    await original.text()
    with pytest.raises(InvalidHttpError, match=r"^Cannot reconstruct a Request with a used body\.$"):
        Request(original)


async def test_a_request_body_is_read_once_with_python_workers_message() -> None:
    request = Request(URL, method="POST", body=b'{"a": 1}')
    assert await request.json() == {"a": 1}
    assert request.bodyUsed
    with pytest.raises(BodyUsedError, match=r"^Body already used$"):
        await request.bytes()
    with pytest.raises(BodyUsedError, match=r"^Body already used$"):
        request.clone()


async def test_a_cloned_request_reads_independently() -> None:
    request = Request(URL, method="POST", headers={"a": "1"}, body="x")
    twin = request.clone()
    assert await twin.text() == "x"
    assert await request.text() == "x"
    assert (twin.method, twin.url, twin.headers) == ("POST", URL, request.headers)


def test_a_text_request_body_gets_a_text_content_type() -> None:
    assert Request(URL, method="POST", body="x").headers.get("content-type") == "text/plain;charset=UTF-8"


def test_request_json_is_only_an_instance_reader() -> None:
    with pytest.raises(AttributeError, match=r"^json is read from an instance's body$"):
        Request.json  # noqa: B018


def test_camel_case_and_snake_case_names_are_the_same_attributes() -> None:
    assert Response.statusText is Response.status_text
    assert Response.webSocket is Response.web_socket
    assert Response.bodyUsed is Response.body_used
    assert Request.arrayBuffer is Request.array_buffer
    assert Headers.getSetCookie is Headers.get_set_cookie


# ------------------------------------------------------------ the HTTP front's requests


def test_a_front_request_decodes_its_headers_when_first_read_and_behaves_as_any_request() -> None:
    from objects._http import front_request

    request = front_request(URL, "POST", [(b"host", b"example.com"), (b"x-a", b"1"), (b"x-a", b"2")], None, None)
    assert request.method == HTTPMethod.POST and request.url == URL and request.body is None
    assert request.headers.get("X-A") == "1, 2" and "host" in request.headers
    request.headers.set("x-b", "3")
    twin = request.clone()
    assert list(twin.headers) == ["host", "x-a", "x-b"]
    assert twin.headers == Headers([("host", "example.com"), ("x-a", "1"), ("x-a", "2"), ("x-b", "3")])
    assert Request(request, headers=None).headers.get_all("x-a") == ["1, 2"]  # JavaScript joined them


def test_a_plain_text_response_is_what_the_general_constructor_makes() -> None:
    quick, general = Response("héllo"), Response("héllo", 200, "", {"content-type": "text/plain;charset=UTF-8"})
    assert (quick.status, quick.status_text, quick.ok, quick.headers) == (general.status, general.status_text, general.ok, general.headers)
    assert quick._body == general._body == "héllo".encode()
    assert quick.web_socket is None and quick.url == "" and not quick.bodyUsed


def test_response_headers_go_to_the_wire_sorted_with_content_length_first() -> None:
    from objects._http import wire_headers

    response = Response("x", headers=[("x-b", "2"), ("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-a", "1"), ("x-a", "é")])
    assert wire_headers(response, 5000) == [
        (b"content-length", b"5000"), (b"content-type", b"text/plain;charset=UTF-8"),
        (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"x-a", "1, é".encode("latin-1")), (b"x-b", b"2"),
    ]
    assert wire_headers(Response("x"), 1) == [(b"content-length", b"1"), (b"content-type", b"text/plain;charset=UTF-8")]


def test_the_memo_of_encoded_wire_headers_keeps_short_pairs_only_and_stays_bounded() -> None:
    from objects._http import _WIRE_PAIRS, wire_headers

    long_name = "x-" + "n" * 4000  # a Worker echoing a client's header names
    for i in range(3000):  # and a value unique to each response
        wire_headers(Response("x", headers={long_name: "1", "x-id": str(i)}), 1)
    assert len(_WIRE_PAIRS) <= 1024
    assert all(len(name) <= 64 and len(value) <= 64 for name, value in _WIRE_PAIRS)
    # Filled with one-off values, it still takes in a pair seen later.
    assert wire_headers(Response("x", headers={"x-late": "v"}), 1)[2] == (b"x-late", b"v")
    assert ("x-late", "v") in _WIRE_PAIRS


# -- a Request's headers read as Cloudflare's SDK gives them: an http.client.HTTPMessage


def _message_of(pairs: list[tuple[str, str]]) -> object:
    """What workers-py's ``Request.headers`` builds from the JavaScript headers these pairs make."""
    import http.client

    joined: dict[str, list[str]] = {}
    for name, value in pairs:
        joined.setdefault(name.lower(), []).append(value)
    message = http.client.HTTPMessage()
    for name in sorted(joined):
        for value in joined[name] if name == "set-cookie" else [", ".join(joined[name])]:
            message[name] = value
    return message


PAIRS = [("Accept", "text/html"), ("accept", "application/json"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
         ("Content-Type", "multipart/form-data; boundary=XyZ; charset=utf-8"), ("X-Date", "Wed, 21 Oct 2015 07:28:00 GMT")]


@pytest.mark.parametrize("name", ["accept", "ACCEPT", "set-cookie", "content-type", "x-date", "x-missing"])
def test_a_requests_headers_read_as_the_sdks_http_message_does(name: str) -> None:
    from typing import Any

    ours, theirs = Request("https://example.com/", headers=PAIRS).headers, _message_of(PAIRS)
    message: Any = theirs
    assert isinstance(ours, RequestHeaders)
    assert ours[name] == message[name]
    assert ours.get(name) == message.get(name)
    assert ours.get(name, "fallback") == message.get(name, "fallback")
    assert ours.get_all(name) == message.get_all(name)
    assert (name in ours) == (name in message)
    assert ours.keys() == message.keys() and ours.values() == message.values() and ours.items() == message.items()
    assert list(ours) == list(message) and len(ours) == len(message)
    assert ours.get_content_type() == message.get_content_type() == "multipart/form-data"
    assert ours.get_param("boundary") == message.get_param("boundary") == "XyZ"
    assert ours.get_content_charset() == message.get_content_charset() == "utf-8"
    assert str(ours) == str(message)


def test_a_missing_request_header_reads_as_none_and_deleting_it_is_no_error() -> None:
    headers = Request("https://example.com/").headers
    assert headers["authorization"] is None
    del headers["authorization"]
    assert len(headers) == 0


def test_a_request_copied_or_cloned_keeps_http_message_reads() -> None:
    original = Request("https://example.com/", headers={"x-a": "1"})
    for twin in (original.clone(), Request(original), Request(original, headers={"x-b": "2"})):
        assert isinstance(twin.headers, RequestHeaders)
        assert twin.headers["x-missing"] is None
    assert original.headers.copy()["x-missing"] is None


def test_message_writes_on_a_requests_headers_change_a_copy_as_on_cloudflare() -> None:
    headers = Request("https://example.com/", headers={"x-a": "1"}).headers
    headers.add_header("x-b", "2")  # each read of request.headers is a fresh copy there
    assert "x-b" not in headers
    headers.set("x-c", "3")  # the JavaScript methods still write
    assert headers["x-c"] == "3"


def test_a_requests_headers_refuse_unknown_names_as_an_http_message() -> None:
    headers = Request("https://example.com/").headers
    with pytest.raises(AttributeError, match="HTTPMessage"):
        headers.has_key("x")  # noqa: W601 (Python 2's Message API, gone)
    with pytest.raises(AttributeError):
        headers._private


def test_a_responses_headers_still_raise_key_error_for_a_missing_name_as_the_sdks_dict_does() -> None:
    with pytest.raises(KeyError):
        Response("x").headers["x-missing"]


async def test_a_request_body_reads_as_a_blob_typed_by_its_content_type() -> None:
    request = Request("https://example.com/", method="POST", headers={"content-type": "Text/Plain"}, body="hi")
    blob = await request.blob()
    assert (blob.content_type, await blob.text()) == ("text/plain", "hi")
    with pytest.raises(BodyUsedError, match="^Body already used$"):
        await request.blob()


def test_a_constructed_response_raises_for_an_error_status_with_pyodides_words() -> None:
    from objects.errors import HttpStatusError

    Response("ok").raise_for_status()
    with pytest.raises(HttpStatusError, match=r"^503 Server Error: Service Unavailable for url: $") as caught:
        Response("down", 503).raise_for_status()
    assert isinstance(caught.value, OSError) and caught.value.status == 503


@pytest.mark.parametrize(
    ("content_type", "blob_type"),
    [
        # CF: workerd api/http.c++ Body::blob (blob_standard_mime_type): MimeType::extract(...).toString()
        (None, ""),
        ("Text/Plain", "text/plain"),
        ("text/plain; charset=UTF-8", "text/plain;charset=UTF-8"),
        ("Application/JSON;Charset=\"utf-8\"", "application/json;charset=utf-8"),
        ("multipart/form-data; boundary=XyZ", "multipart/form-data; boundary=XyZ"),
        ("text/html;a=\"b c\";a=x", 'text/html;a="b c"'),
        ("text/plain, text/html", "text/html"),
        ("text/html;charset=gbk, text/html", "text/html;charset=gbk"),
        ("not a type", ""),
    ],
)
async def test_a_body_read_as_a_blob_is_typed_by_its_content_type_as_javascript_serializes_it(content_type, blob_type) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = Response(b"x", headers=headers)
    assert (await response.blob()).type == blob_type
    request = Request("https://example.com/", method="POST", headers=headers, body=b"x")
    assert (await request.blob()).type == blob_type


async def test_a_text_responses_blob_keeps_javascripts_default_type() -> None:
    assert (await Response("hi").blob()).type == "text/plain;charset=UTF-8"


def test_a_requests_redirect_mode_defaults_to_follow_is_kept_by_copies_and_refuses_error_in_workerds_words() -> None:
    plain = Request("https://example.com/")
    assert (plain.redirect, plain.keepalive, plain.integrity) == ("follow", False, "")
    manual = Request("https://example.com/", redirect="manual")
    assert manual.redirect == manual.clone().redirect == Request(manual).redirect == "manual"
    assert Request(manual, redirect="follow").redirect == "follow"
    for bad in ("error", "Follow", 1):
        with pytest.raises(TypeError, match=r'^Invalid redirect value, must be one of "follow" or "manual" \("error" won\'t'):
            Request("https://example.com/", redirect=bad)  # type: ignore[arg-type]
