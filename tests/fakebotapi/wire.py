"""Bot API requests as they travel: URL routes, form/JSON/multipart bodies, typed parameters.

Both transports (the in-process ``FakeRequest`` and the HTTP ``FakeBotApiServer``) decode
requests here, from the same wire format PTB's ``HTTPXRequest`` sends, so they cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.fakebotapi.records import BotApiError, UploadedFile, bad_request

_API_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_FILE_PATH = re.compile(r"/file/bot(?P<token>[^/]+)/(?P<path>.+)$")

# Parameters Telegram reads as strings, even when the value looks like a number or JSON.
_STRING_FIELDS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "custom_emoji_id",
        "description",
        "document",
        "emoji",
        "file_id",
        "first_name",
        "inline_message_id",
        "ip_address",
        "language_code",
        "last_name",
        "message_effect_id",
        "name",
        "parse_mode",
        "payload",
        "photo",
        "query",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "video",
        "voice",
    }
)


@dataclass(frozen=True)
class ApiTarget:
    token: str
    method: str


@dataclass(frozen=True)
class FileTarget:
    token: str
    file_path: str


def route(path: str) -> ApiTarget | FileTarget | None:
    """``…/bot<token>/<method>`` or ``…/file/bot<token>/<file_path>``; any prefix is accepted."""
    path = unquote(path)
    if match := _FILE_PATH.search(path):
        return FileTarget(match["token"], match["path"])
    if match := _API_PATH.search(path):
        return ApiTarget(match["token"], match["method"])
    return None


def decode_fields(fields: Mapping[str, str]) -> dict[str, Any]:
    """Form values to typed parameters: JSON-looking values are JSON, except string fields."""
    params: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _STRING_FIELDS:
            params[name] = value
            continue
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """The parameters and uploaded files of a request body."""
    media_type, _, options = content_type.partition(";")
    media_type = media_type.strip().lower()
    if not body:
        return {}, {}
    if media_type == "application/json":
        try:
            params = json.loads(body)
        except ValueError as exc:
            raise bad_request("can't parse JSON object") from exc
        if not isinstance(params, dict):
            raise bad_request("can't parse JSON object")
        return params, {}
    if media_type == "multipart/form-data":
        boundary = _header_params(options).get("boundary")
        if not boundary:
            raise bad_request("multipart boundary is missing")
        fields, files = parse_multipart(body, boundary.encode("latin-1"))
        return decode_fields(fields), files
    # Telegram also reads a body without a content type as a URL-encoded form
    pairs = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    return decode_fields(dict(pairs)), {}


def query_params(query: str) -> dict[str, Any]:
    return decode_fields(dict(parse_qsl(query, keep_blank_values=True)))


def parse_multipart(body: bytes, boundary: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Splits a ``multipart/form-data`` body into text fields and files, bytes kept exact."""
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    sections = body.split(b"--" + boundary)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise bad_request("can't parse multipart body")
    for section in sections[1:-1]:
        head, separator, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise bad_request("can't parse multipart body")
        content = content.removesuffix(b"\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.partition(":") for line in head.decode(errors="replace").split("\r\n")
            )
        }
        disposition = _header_params(headers.get("content-disposition", "").partition(";")[2])
        name = disposition.get("name")
        if name is None:
            raise bad_request("multipart part without a name")
        filename = disposition.get("filename")
        if filename is None:
            fields[name] = content.decode(errors="replace")
        else:
            mime_type = headers.get("content-type", "application/octet-stream")
            files[name] = UploadedFile(name, filename, content, mime_type)
    return fields, files


_PARAM = re.compile(r"""\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*;?""")
_FORM_ESCAPE = re.compile(r"%(22|[01][0-9A-Fa-f])")


def _header_params(options: str) -> dict[str, str]:
    """``name="a"; filename="b.py"`` → dict, undoing httpx's HTML5 form escaping."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(options):
        key, quoted, bare = match.group(1).lower(), match.group(2), match.group(3)
        if quoted is not None:
            value = re.sub(r"\\(.)", r"\1", quoted)
            value = _FORM_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
        else:
            value = bare or ""
        if key.endswith("*"):  # RFC 5987: filename*=UTF-8''name
            key, value = key[:-1], unquote(value.partition("''")[2] or value)
        params[key] = value
    return params


def error_body(error: BotApiError) -> bytes:
    return json.dumps(error.to_json()).encode()
