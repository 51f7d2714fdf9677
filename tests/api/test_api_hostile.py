"""Hostile requests: each gets a clear 4xx JSON answer naming the problem, none a 500.

One table, run on SQLite and on PostgreSQL: malformed and truncated JSON, wrong types, missing
and extra fields, a 10 MB body, code over MAX_SNIPPET_BYTES, NUL bytes and unpaired
surrogates, wrong content types, ids that are neither a UUID nor a ref, limit and offset out of
range, and tokens missing, malformed, expired, unsigned (`alg: none`), signed with another
key, logged out, or a chat session's.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.api.conftest import PASSWORD, ApiHarness

MB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    token: str | None = "valid"
    """Which bearer token to send: a key of `tokens` below, or None for none."""
    names: str | None = None
    """A field the 422's `detail` must name."""


def _raw(text: str) -> bytes:
    return text.encode()


JSON = {"content-type": "application/json"}
NEW = "/snippets"

TABLE = [
    # Malformed bodies.
    Hostile(
        "malformed JSON",
        "POST",
        "/auth/login",
        422,
        content=_raw('{"email":'),
        headers=JSON,
        token=None,
    ),
    Hostile(
        "truncated JSON", "POST", NEW, 422, content=_raw('{"title": "t", "code": "x'), headers=JSON
    ),
    Hostile("JSON array", "POST", NEW, 422, json=[], names="body"),
    Hostile("JSON string", "POST", "/auth/signup", 422, json="hello", token=None),
    Hostile(
        "JSON null",
        "POST",
        "/auth/verify",
        422,
        json=None,
        content=b"null",
        headers=JSON,
        token=None,
    ),
    Hostile(
        "invalid UTF-8",
        "POST",
        NEW,
        400,
        content=b'{"title": "\xff\xfe", "code": "x"}',
        headers=JSON,
    ),
    Hostile("deep nesting", "POST", NEW, 400, content=b"[" * 5000 + b"]" * 5000, headers=JSON),
    # Wrong types, missing and extra fields.
    Hostile(
        "email a number",
        "POST",
        "/auth/login",
        422,
        json={"email": 5, "password": "x"},
        token=None,
        names="email",
    ),
    Hostile(
        "password a list",
        "POST",
        "/auth/signup",
        422,
        json={"email": "a@b.co", "password": ["x"]},
        token=None,
        names="password",
    ),
    Hostile(
        "code an object", "POST", NEW, 422, json={"title": "t", "code": {"x": 1}}, names="code"
    ),
    Hostile("title missing", "POST", NEW, 422, json={"code": "x = 1"}, names="title"),
    Hostile("code missing", "POST", NEW, 422, json={"title": "t"}, names="code"),
    Hostile(
        "unknown field",
        "POST",
        NEW,
        422,
        json={"title": "t", "code": "x", "owner_id": "me"},
        names="owner_id",
    ),
    Hostile("patch nothing", "PATCH", "/snippets/1", 422, json={}),
    Hostile("patch nulls", "PATCH", "/snippets/1", 422, json={"title": None, "code": None}),
    Hostile(
        "verify code too long",
        "POST",
        "/auth/verify",
        422,
        json={"code": "X" * 65},
        token=None,
        names="code",
    ),
    Hostile(
        "init_data a number",
        "POST",
        "/auth/telegram",
        422,
        json={"init_data": 5},
        token=None,
        names="init_data",
    ),
    # Sizes.
    Hostile("a body of 10 MB", "POST", NEW, 413, json={"title": "t", "code": "x" * (10 * MB)}),
    Hostile(
        "code over MAX_SNIPPET_BYTES", "POST", NEW, 413, json={"title": "t", "code": "é" * 300_000}
    ),
    Hostile(
        "title of 5000 characters",
        "POST",
        NEW,
        422,
        json={"title": "t" * 5000, "code": "x"},
        names="title",
    ),
    # Text that is not text.
    Hostile("NUL in code", "POST", NEW, 422, json={"title": "t", "code": "a\x00b"}, names="code"),
    Hostile(
        "NUL in email",
        "POST",
        "/auth/signup",
        422,
        json={"email": "a\x00@b.co", "password": PASSWORD},
        token=None,
        names="email",
    ),
    Hostile(
        "surrogate in title",
        "POST",
        NEW,
        422,
        content=_raw('{"title": "\\ud800", "code": "x"}'),
        headers=JSON,
        names="title",
    ),
    Hostile(
        "surrogate in password",
        "POST",
        "/auth/login",
        422,
        content=_raw('{"email": "a@b.co", "password": "\\udfff"}'),
        headers=JSON,
        token=None,
        names="password",
    ),
    Hostile(
        "NUL in password",
        "POST",
        "/auth/login",
        401,
        json={"email": "a@example.com", "password": "pass\x00word-x"},
        token=None,
    ),
    Hostile("blank title", "POST", NEW, 422, json={"title": " \t ", "code": "x"}, names="title"),
    Hostile("blank code", "POST", NEW, 422, json={"title": "t", "code": "\n\n"}, names="code"),
    Hostile(
        "invalid email",
        "POST",
        "/auth/signup",
        422,
        json={"email": "not-an-email", "password": PASSWORD},
        token=None,
        names="email",
    ),
    Hostile(
        "short password",
        "POST",
        "/auth/signup",
        422,
        json={"email": "a@example.com", "password": "x"},
        token=None,
        names="password",
    ),
    # Content types.
    Hostile(
        "text/plain body",
        "POST",
        NEW,
        422,
        content=_raw('{"title": "t", "code": "x"}'),
        headers={"content-type": "text/plain"},
    ),
    Hostile(
        "login as XML",
        "POST",
        "/auth/login",
        415,
        content=b"<login/>",
        headers={"content-type": "application/xml"},
        token=None,
    ),
    Hostile(
        "form to a JSON route",
        "POST",
        "/auth/signup",
        422,
        content=b"email=a%40b.co&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        token=None,
    ),
    Hostile(
        "login form without password",
        "POST",
        "/auth/login",
        422,
        content=b"username=a%40b.co",
        headers={"content-type": "application/x-www-form-urlencoded"},
        token=None,
        names="password",
    ),
    # Ids that are neither a UUID nor a ref.
    Hostile("id a word", "GET", "/snippets/abc", 422, names="id"),
    Hostile("id a huge number", "GET", "/snippets/" + "9" * 30, 422, names="id"),
    Hostile("id past 2**31", "GET", "/snippets/2147483648", 422, names="id"),
    Hostile("id negative", "GET", "/snippets/-1", 422, names="id"),
    Hostile("id zero", "DELETE", "/snippets/0", 422, names="id"),
    Hostile("id dot-dot", "GET", "/snippets/%2e%2e", 422, names="id"),
    Hostile("id with a slash", "GET", "/snippets/..%2Fme", 404),
    Hostile("id with NUL", "GET", "/snippets/1%00", 422, names="id"),
    Hostile("id a unicode digit", "GET", "/snippets/%D9%A3", 422, names="id"),
    Hostile("id a missing UUID", "GET", f"/snippets/{uuid.UUID(int=0)}", 404),
    Hostile("id a missing ref", "PATCH", "/snippets/12345", 404, json={"title": "x"}),
    Hostile("id too long", "GET", "/snippets/" + "a" * 200, 422, names="id"),
    # Paging out of range.
    Hostile("limit zero", "GET", "/snippets?limit=0", 422, names="limit"),
    Hostile("limit 1000", "GET", "/snippets?limit=1000", 422, names="limit"),
    Hostile("limit a word", "GET", "/snippets?limit=ten", 422, names="limit"),
    Hostile("offset negative", "GET", "/snippets?offset=-1", 422, names="offset"),
    Hostile("offset huge", "GET", "/snippets?offset=" + "9" * 40, 422, names="offset"),
    Hostile("search too long", "GET", "/snippets?q=" + "x" * 201, 422, names="q"),
    Hostile("search with NUL", "GET", "/snippets?q=a%00b", 422, names="q"),
    # Tokens.
    Hostile("no token", "GET", "/me", 401, token=None),
    Hostile("empty bearer", "GET", "/me", 401, token=None, headers={"authorization": "Bearer "}),
    Hostile("basic auth", "GET", "/me", 401, token=None, headers={"authorization": "Basic YTpi"}),
    Hostile("malformed token", "GET", "/snippets", 401, token="malformed"),
    Hostile("expired token", "GET", "/me", 401, token="expired"),
    Hostile("alg none", "GET", "/me", 401, token="none"),
    Hostile("another key", "GET", "/snippets/1", 401, token="other_key"),
    Hostile("logged out", "GET", "/me", 401, token="logged_out"),
    Hostile("a chat session's", "GET", "/me", 401, token="chat"),
    Hostile("token of 10 KB", "GET", "/me", 401, token="huge"),
    Hostile("logout without token", "POST", "/auth/logout", 401, token=None),
]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _tokens(api: ApiHarness) -> dict[str, str]:
    address = f"hostile-{uuid.uuid4().hex[:8]}@example.com"
    await api.account(address)
    expired = await api.token(address)
    api.clock.advance(api.settings.jwt_ttl_seconds + 60)
    valid = await api.token(address)
    logged_out = await api.token(address)
    out = await api.http.post("/auth/logout", headers={"Authorization": f"Bearer {logged_out}"})
    assert out.status_code == 204
    claims = jwt.decode(valid, options={"verify_signature": False})
    return {
        "valid": valid,
        "expired": expired,
        "logged_out": logged_out,
        "malformed": "abc.def.ghi",
        "none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "other_key": jwt.encode(claims, "another-key-of-enough-bytes-0123456789abc", "HS256"),
        "chat": await api.chat_token(address, 6061),
        "huge": valid + "A" * 10_000,
    }


@pytest.fixture
async def armed(api: ApiHarness) -> tuple[ApiHarness, dict[str, str]]:
    tokens = await _tokens(api)
    headers = {"Authorization": f"Bearer {tokens['valid']}"}
    await api.create(headers, "Target", "x = 1")
    return api, tokens


async def test_hostile_requests(armed: tuple[ApiHarness, dict[str, str]]) -> None:
    assert len(TABLE) >= 40
    api, tokens = armed
    failures = []
    for case in TABLE:
        headers = dict(case.headers or {})
        if case.token is not None:
            headers["authorization"] = f"Bearer {tokens[case.token]}"
        kwargs: dict[str, Any] = {"headers": headers}
        if case.content is not None:
            kwargs["content"] = case.content
        elif case.json is not None:
            kwargs["json"] = case.json
        response = await api.http.request(case.method, case.path, **kwargs)
        problem = _problem(case, response.status_code, response.headers, response.content)
        if problem:
            failures.append(f"{case.name}: {problem}")
    assert not failures, "\n".join(failures)
    # Nothing hostile got through: the one snippet is untouched.
    valid = {"Authorization": f"Bearer {tokens['valid']}"}
    listed = (await api.http.get("/snippets", headers=valid)).json()
    assert [item["title"] for item in listed["items"]] == ["Target"]


def _problem(case: Hostile, status: int, headers: Any, content: bytes) -> str | None:
    if status != case.status:
        return f"status {status}, expected {case.status}: {content[:300]!r}"
    if not headers.get("content-type", "").startswith("application/json"):
        return f"content type {headers.get('content-type')}"
    body = json.loads(content)
    if "detail" not in body or b"Traceback" in content:
        return f"body {content[:300]!r}"
    if status == 401 and headers.get("www-authenticate") != "Bearer":
        return "401 without WWW-Authenticate: Bearer"
    if case.names is not None:
        named = {str(part) for item in body["detail"] for part in item["loc"]}
        if case.names not in named:
            return f"422 does not name {case.names!r}: {body['detail']}"
        if any("input" in item for item in body["detail"]):
            return "422 echoes the input"
    return None
