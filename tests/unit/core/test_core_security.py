"""Session tokens, password hashing and one-time secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from core.entities import Client
from core.errors import AuthenticationError, NotLoggedIn, SessionExpired, ValidationError
from core.security import (
    CODE_ALPHABET,
    CODE_LENGTH,
    HASHING_NICENESS,
    PasswordHasher,
    SessionTokens,
    check_password_rules,
    hash_secret,
    new_code,
    new_link_payload,
    normalise_code,
)

from .fakes import JWT_SECRET, JWT_TTL

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
USER = uuid.UUID("12345678-1234-5678-1234-567812345678")
CHAT = Client.chat(4242)
API = Client.api("203.0.113.7")


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": str(USER),
        "client": "chat:4242",
        "jti": "session-id",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + JWT_TTL).timestamp()),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def tokens() -> SessionTokens:
    return SessionTokens(JWT_SECRET, JWT_TTL)


# -- session tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC),  # long before the real clock
        datetime(2090, 6, 1, tzinfo=UTC),  # long after it
    ],
)
def test_an_issued_token_decodes_to_its_claims_by_the_injected_clock(
    tokens: SessionTokens, now: datetime
) -> None:
    token, issued = tokens.issue(USER, CHAT, now)
    claims = tokens.decode(token, CHAT, now + timedelta(seconds=1))
    assert claims == issued
    assert (claims.user_id, claims.client) == (USER, "chat:4242")
    assert claims.expires_at - claims.issued_at == JWT_TTL


def test_each_token_has_its_own_session_id(tokens: SessionTokens) -> None:
    first, one = tokens.issue(USER, CHAT, NOW)
    second, two = tokens.issue(USER, CHAT, NOW)
    assert first != second
    assert one.jti != two.jti


def test_a_token_expires_at_exactly_its_ttl(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(USER, CHAT, NOW)
    assert tokens.decode(token, CHAT, NOW + JWT_TTL - timedelta(seconds=1))
    with pytest.raises(SessionExpired):
        tokens.decode(token, CHAT, NOW + JWT_TTL)


def test_a_token_of_another_chat_is_refused(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(USER, CHAT, NOW)
    with pytest.raises(NotLoggedIn, match="another client"):
        tokens.decode(token, Client.chat(4243), NOW)


def test_a_chat_token_is_refused_by_the_api_and_an_api_token_by_the_chat(
    tokens: SessionTokens,
) -> None:
    chat_token, _ = tokens.issue(USER, CHAT, NOW)
    api_token, claims = tokens.issue(USER, API, NOW)
    assert claims.client == "api"
    with pytest.raises(NotLoggedIn, match="another client"):
        tokens.decode(chat_token, API, NOW)
    with pytest.raises(NotLoggedIn, match="another client"):
        tokens.decode(api_token, CHAT, NOW)
    # An API token is not bound to the caller's address: it moves with its holder.
    assert tokens.decode(api_token, Client.api("198.51.100.1"), NOW) == claims


def test_a_token_may_end_before_its_ttl_but_never_after(tokens: SessionTokens) -> None:
    _, early = tokens.issue(USER, API, NOW, expires_at=NOW + timedelta(minutes=5))
    assert early.expires_at == NOW + timedelta(minutes=5)
    _, capped = tokens.issue(USER, API, NOW, expires_at=NOW + JWT_TTL * 2)
    assert capped.expires_at == NOW + JWT_TTL


def _tampered_payload() -> str:
    header, payload, signature = _sign(_claims()).split(".")
    claims = json.loads(_unb64(payload))
    claims["sub"] = str(uuid.uuid4())
    return ".".join([header, _b64(json.dumps(claims).encode()), signature])


def _foreign_signature() -> str:
    header, payload, _ = _sign(_claims()).split(".")
    signature = _sign(_claims(client="chat:1")).split(".")[2]
    return ".".join([header, payload, signature])


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _alg_none_with_signature() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    _, payload, signature = _sign(_claims()).split(".")
    return f"{header}.{payload}.{signature}"


def _header_says_hs256_but_signed_hs512() -> str:
    _, payload, _ = _sign(_claims()).split(".")
    hs512 = _sign(_claims(), algorithm="HS512").split(".")
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return f"{header}.{payload}.{hs512[2]}"


BAD_TOKENS: dict[str, Any] = {
    "alg none": _alg_none,
    "alg none keeping a signature": _alg_none_with_signature,
    "HS512": lambda: _sign(_claims(), algorithm="HS512"),
    "HS384": lambda: _sign(_claims(), algorithm="HS384"),
    "HS512 signature under an HS256 header": _header_says_hs256_but_signed_hs512,
    "tampered payload": _tampered_payload,
    "signature of another token": _foreign_signature,
    "wrong secret": lambda: _sign(_claims(), secret="another-secret-" + "y" * 64),
    "missing exp": lambda: _sign(_claims(exp=None)),
    "missing iat": lambda: _sign(_claims(iat=None)),
    "missing sub": lambda: _sign(_claims(sub=None)),
    "missing jti": lambda: _sign(_claims(jti=None)),
    "missing client": lambda: _sign(_claims(client=None)),
    "the old chat claim instead": lambda: _sign(_claims(client=None, chat=4242)),
    "sub not a uuid": lambda: _sign(_claims(sub="admin")),
    "sub not a string": lambda: _sign(_claims(sub=12345)),
    "client of another chat": lambda: _sign(_claims(client="chat:4243")),
    "client of the api": lambda: _sign(_claims(client="api")),
    "client not a string": lambda: _sign(_claims(client=4242)),
    "exp not a number": lambda: _sign(_claims(exp="tomorrow")),
    "exp out of range": lambda: _sign(_claims(exp=10**20)),
    "iat out of range": lambda: _sign(_claims(iat=-(10**20))),
    "empty": lambda: "",
    "garbage": lambda: "not a token",
    "three dots": lambda: "a.b.c",
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_refused(tokens: SessionTokens, make: Any) -> None:
    with pytest.raises(AuthenticationError) as caught:
        tokens.decode(make(), CHAT, NOW + timedelta(seconds=1))
    assert type(caught.value) is NotLoggedIn  # never mistaken for a mere expiry


def test_the_well_formed_reference_token_is_accepted(tokens: SessionTokens) -> None:
    # The matrix above differs from this token in one thing each.
    claims = tokens.decode(_sign(_claims()), CHAT, NOW + timedelta(seconds=1))
    assert (claims.user_id, claims.client, claims.jti) == (USER, "chat:4242", "session-id")


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=1), timedelta(days=400)])
def test_expired_tokens_are_session_expired(tokens: SessionTokens, delta: timedelta) -> None:
    token = _sign(_claims())
    with pytest.raises(SessionExpired):
        tokens.decode(token, CHAT, NOW + JWT_TTL + delta)


def test_a_token_is_verified_once_and_its_claims_judged_on_every_decode(
    tokens: SessionTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, issued = tokens.issue(USER, CHAT, NOW)
    verified = 0
    verify = jwt.decode

    def counted(*args: Any, **options: Any) -> Any:
        nonlocal verified
        verified += 1
        return verify(*args, **options)

    monkeypatch.setattr(jwt, "decode", counted)
    for _ in range(3):
        assert tokens.decode(token, CHAT, NOW + timedelta(seconds=1)) == issued
    assert verified == 1  # every command checks its chat's token: the signature once
    # What the remembered check does not cover is still judged each time.
    with pytest.raises(NotLoggedIn, match="another client"):
        tokens.decode(token, Client.chat(4243), NOW)
    with pytest.raises(SessionExpired):
        tokens.decode(token, CHAT, NOW + JWT_TTL)
    # A refused token is not remembered: refused again, checked again.
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(NotLoggedIn):
            tokens.decode(tampered, CHAT, NOW)
    assert verified == 3


# -- passwords ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("a" * 7, False),
        ("a" * 8, True),
        ("ä" * 8, True),
        ("a" * 72, True),
        ("a" * 73, False),
        ("€" * 24, True),  # 72 bytes
        ("€" * 25, False),  # 75 bytes
        ("😀" * 200, False),
    ],
)
def test_password_rules(password: str, ok: bool) -> None:
    if ok:
        check_password_rules(password)
    else:
        with pytest.raises(ValidationError):
            check_password_rules(password)


async def test_hasher_round_trip(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("correct horsf", hashed)
    assert not await hasher.verify("correct horse", None)  # unknown account
    assert await hasher.hash("correct horse") != hashed  # salted


async def test_hasher_treats_an_overlong_password_as_a_mismatch(hasher: PasswordHasher) -> None:
    password = "a" * 72
    hashed = await hasher.hash(password)
    assert await hasher.verify(password, hashed)
    assert not await hasher.verify(password + "a", hashed)
    assert not await hasher.verify("😀" * 200, hashed)


@pytest.mark.skipif(sys.platform != "linux", reason="a thread has a nice value of its own on Linux")
async def test_hashing_runs_in_threads_of_lower_priority_than_the_event_loop(
    hasher: PasswordHasher,
) -> None:
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_niceness = niceness()
    hashed = await hasher.hash("correct horse")
    assert await hasher.verify("correct horse", hashed)
    hashing = [t for t in threading.enumerate() if t.name.startswith(PasswordHasher.THREAD_NAME)]
    assert hashing
    assert all(t.native_id != threading.get_native_id() for t in hashing)
    lowered = min(19, loop_niceness + HASHING_NICENESS)
    assert {os.getpriority(os.PRIO_PROCESS, t.native_id or 0) for t in hashing} == {lowered}
    # Only they: the event loop and the pool of everyone's `to_thread` keep their priority.
    assert niceness() == loop_niceness
    assert await asyncio.to_thread(niceness) == loop_niceness


# -- one-time secrets ---------------------------------------------------------------------


def test_codes_are_typeable() -> None:
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(CODE_ALPHABET)
    assert not set("0O1I") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("ABCD2345", "ABCD2345"),
        ("abcd2345", "ABCD2345"),
        (" abcd 2345\n", "ABCD2345"),
        ("ABCD-2345", "ABCD2345"),
        ("a b\tc d-2 3 4 5", "ABCD2345"),
    ],
)
def test_normalise_code(typed: str, code: str) -> None:
    assert normalise_code(typed) == code


def test_link_payloads_fit_telegram_start_parameters() -> None:
    payload = new_link_payload()
    assert 16 <= len(payload) <= 64
    assert all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in payload)


def test_secret_hashing() -> None:
    assert hash_secret("x") == hash_secret("x")
    assert hash_secret("x") != hash_secret("X")
    assert len(hash_secret("x")) == 64
