"""Decoding requests exactly as httpx (PTB's HTTP client) encodes them."""

import json

import httpx
import pytest

from tests.fakebotapi.records import BotApiError, UploadedFile
from tests.fakebotapi.wire import (
    ApiTarget,
    FileTarget,
    decode_fields,
    parse_body,
    query_params,
    route,
)

DATA = b"\x00\xff\r\n--not-a-boundary\r\n\r\nend\r\n"


def encoded(**kwargs: object) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/botT/sendDocument", **kwargs)  # type: ignore[arg-type]
    return request.headers.get("content-type", ""), request.read()


@pytest.mark.parametrize(
    "filename", ["snippet.py", 'q"uote\\back.py', "ünïcode 🐍.py", "tab\there.txt"]
)
def test_multipart_round_trip_keeps_bytes_and_names(filename: str) -> None:
    content_type, body = encoded(
        data={"chat_id": "42", "caption": "123", "reply_markup": '{"inline_keyboard": []}'},
        files={"document": (filename, DATA, "text/x-python")},
    )
    params, files = parse_body(content_type, body)
    assert params == {"chat_id": 42, "caption": "123", "reply_markup": {"inline_keyboard": []}}
    assert files == {"document": UploadedFile("document", filename, DATA, "text/x-python")}


def test_form_and_json_bodies() -> None:
    content_type, body = encoded(data={"chat_id": "@channel", "text": "true", "offset": "-1"})
    assert parse_body(content_type, body) == (
        {"chat_id": "@channel", "text": "true", "offset": -1},
        {},
    )
    as_json = json.dumps({"chat_id": 1, "text": "42"}).encode()
    assert parse_body("application/json", as_json) == ({"chat_id": 1, "text": "42"}, {})
    assert parse_body("", b"") == ({}, {})
    with pytest.raises(BotApiError, match="can't parse JSON object"):
        parse_body("application/json", b"[1]")
    with pytest.raises(BotApiError, match="can't parse multipart body"):
        parse_body("multipart/form-data; boundary=abc", b"garbage")


def test_string_fields_stay_strings() -> None:
    assert decode_fields({"text": "12", "caption": "null", "file_id": "5", "message_id": "5"}) == {
        "text": "12",
        "caption": "null",
        "file_id": "5",
        "message_id": 5,
    }
    assert query_params("offset=3&timeout=0") == {"offset": 3, "timeout": 0}


def test_routes() -> None:
    assert route("/botT:ok/sendMessage") == ApiTarget("T:ok", "sendMessage")
    assert route("/custom/prefix/botT/getMe/") == ApiTarget("T", "getMe")
    assert route("/file/botT/documents/file_1.py") == FileTarget("T", "documents/file_1.py")
    assert route("/file/botT/documents/a%20b.py") == FileTarget("T", "documents/a b.py")
    assert route("/favicon.ico") is None
