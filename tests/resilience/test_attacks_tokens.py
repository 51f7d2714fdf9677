"""Forged and stale session tokens, through the real session path.

A person logs in through the bot; the test then replaces the token in the chat's session row
(as an attacker who can write tokens, or who stole one, would) and asks the real
`AccountService.current_user` on SQLite and PostgreSQL who is logged in. Forgeries are made
with PyJWT, and with the real secret where that isolates a single check (the client claim, the
session id, the subject), so each case proves one protection on its own. The API's side
(`AccountService.authenticate`) gets the same forgeries as bearer tokens.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from core.entities import Client
from core.errors import AuthenticationError, NoSession, SessionExpired
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import HOSTILE_JWT_SECRET, HostileBots, query_rows
from tests.secrets_guard import SecretsGuard, _Recorder, fake_bot_token

CHAT = 8101
OTHER_CHAT = 8102
EMAIL = "ada@example.com"
OTHER_EMAIL = "bob@example.com"
PASSWORD = "tokens-Pass-8"
NEW_PASSWORD = "tokens-Pass-9"


@dataclass(frozen=True)
class Session:
    jti: str
    user_id: str
    token: str
    claims: dict[str, Any]


@dataclass(frozen=True)
class World:
    mine: Session
    """The session of CHAT (EMAIL)."""
    theirs: Session
    """The session of OTHER_CHAT (OTHER_EMAIL)."""


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], alg: str) -> str:
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _hmac_signed(claims: dict[str, Any], alg: str, key: str, digest: str = "sha256") -> str:
    """Signed by hand, so any header and any key (even an empty one) can be used."""
    signing_input = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _tampered(session: Session, **changes: Any) -> str:
    """The real token with its payload edited and the original signature kept."""
    header, _, signature = session.token.split(".")
    return f"{header}.{_b64({**session.claims, **changes})}.{signature}"


def _signed(claims: dict[str, Any], **changes: Any) -> str:
    return jwt.encode({**claims, **changes}, HOSTILE_JWT_SECRET, algorithm="HS256")


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in claims.items() if key != name}


_PAST = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())

Forge = Callable[[World], str]
FORGERIES: dict[str, Forge] = {
    "alg none": lambda w: _unsigned(w.mine.claims, "none"),
    "alg None (case)": lambda w: _unsigned(w.mine.claims, "None"),
    "alg none, other user": lambda w: _unsigned({**w.mine.claims, "sub": w.theirs.user_id}, "none"),
    "HS512 with the right secret": lambda w: _hmac_signed(
        w.mine.claims, "HS512", HOSTILE_JWT_SECRET, "sha512"
    ),
    "RS256 signed with an attacker's key": lambda w: jwt.encode(
        w.mine.claims, _rsa_key(), algorithm="RS256"
    ),
    # Key confusion: the header says RS256, the signature is HMAC with the server's secret.
    "RS256 header, HMAC-signed with the secret": lambda w: _hmac_signed(
        w.mine.claims, "RS256", HOSTILE_JWT_SECRET
    ),
    "tampered payload: another user": lambda w: _tampered(w.mine, sub=w.theirs.user_id),
    "tampered payload: later expiry": lambda w: _tampered(w.mine, exp=w.mine.claims["exp"] + 9999),
    "wrong secret": lambda w: jwt.encode(w.mine.claims, "x" * 48, algorithm="HS256"),
    "empty secret": lambda w: _hmac_signed(w.mine.claims, "HS256", ""),
    "expired": lambda w: _signed(w.mine.claims, exp=_PAST),
    "another chat's token": lambda w: w.theirs.token,
    "real secret, another chat's claim": lambda w: _signed(
        w.mine.claims, client=f"chat:{OTHER_CHAT}"
    ),
    "real secret, an API token's claim": lambda w: _signed(w.mine.claims, client="api"),
    "real secret, the old chat claim": lambda w: _signed(
        _without(w.mine.claims, "client"), chat=CHAT
    ),
    "real secret, another session id": lambda w: _signed(w.mine.claims, jti="forged-jti"),
    "real secret, another user (same session id)": lambda w: _signed(
        w.mine.claims, sub=w.theirs.user_id
    ),
    "real secret, no exp": lambda w: jwt.encode(
        _without(w.mine.claims, "exp"), HOSTILE_JWT_SECRET, algorithm="HS256"
    ),
    "real secret, no jti": lambda w: jwt.encode(
        _without(w.mine.claims, "jti"), HOSTILE_JWT_SECRET, algorithm="HS256"
    ),
    "real secret, sub not a UUID": lambda w: _signed(w.mine.claims, sub="admin"),
    "real secret, client not a string": lambda w: _signed(w.mine.claims, client=CHAT),
    "not a JWT": lambda w: "definitely-not-a-token",
    "empty token": lambda w: "",
}


@pytest.fixture
async def token_bot(hostile_bots: HostileBots, database_url: str) -> BotHarness:
    """A bot on a fresh SQLite or PostgreSQL database."""
    return await hostile_bots.start(database_url=database_url, migrate=False)


async def _account(bot: BotHarness, chat: int, email: str) -> None:
    await bot.sign_up(chat, email, PASSWORD)
    assert "is verified" in await bot.say(chat, f"/verify {bot.verification_code(email)}")
    assert "Logged in" in await bot.log_in(chat, email, PASSWORD)


async def _session(bot: BotHarness, chat: int) -> Session:
    rows = await query_rows(
        bot,
        "SELECT jti, user_id, token FROM sessions "
        "WHERE client_kind = 'chat' AND client_key = :chat AND revoked_at IS NULL",
        chat=str(chat),
    )
    [(jti, user_id, token)] = rows
    claims = jwt.decode(token, HOSTILE_JWT_SECRET, algorithms=["HS256"])
    return Session(jti, str(uuid.UUID(str(user_id))), token, claims)


async def _world(bot: BotHarness, guard: SecretsGuard) -> World:
    guard.remember(PASSWORD)
    await _account(bot, CHAT, EMAIL)
    await _account(bot, OTHER_CHAT, OTHER_EMAIL)
    return World(await _session(bot, CHAT), await _session(bot, OTHER_CHAT))


async def _refused(bot: BotHarness, chat: int) -> None:
    """Core refuses the chat's session, and the bot asks to log in."""
    with pytest.raises(AuthenticationError):
        await bot.services.accounts.current_user(Client.chat(chat))
    reply = await bot.say(chat, "/list")
    assert "log in first" in reply, reply


async def test_the_real_token_is_accepted(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    """The control: without forgery the same path finds the user (so refusals mean something)."""
    world = await _world(token_bot, secrets_guard)
    user = await token_bot.services.accounts.current_user(Client.chat(CHAT))
    assert str(user.id) == world.mine.user_id
    assert user.email == EMAIL
    assert "You have no snippets yet" in await token_bot.say(CHAT, "/list")


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_token_in_the_session_row_is_refused(
    forge: Forge, token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    world = await _world(token_bot, secrets_guard)
    forged = forge(world)
    await _write_token(token_bot, world.mine.jti, forged)

    await _refused(token_bot, CHAT)
    # The other chat's own session is untouched, so nothing was refused wholesale.
    other = await token_bot.services.accounts.current_user(Client.chat(OTHER_CHAT))
    assert other.email == OTHER_EMAIL


async def test_expired_token_reads_as_an_ended_session(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    world = await _world(token_bot, secrets_guard)
    await _write_token(token_bot, world.mine.jti, _signed(world.mine.claims, exp=_PAST))

    with pytest.raises(SessionExpired):
        await token_bot.services.accounts.current_user(Client.chat(CHAT))
    assert "session has ended" in await token_bot.say(CHAT, "/list")


async def test_token_is_refused_after_logout_even_when_written_back(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    world = await _world(token_bot, secrets_guard)
    assert "Logged out" in await token_bot.say(CHAT, "/logout")
    await _refused(token_bot, CHAT)

    # The stolen token, replayed into a newer session row of the chat, is still refused:
    # it names the revoked session.
    await token_bot.log_in(CHAT, EMAIL, PASSWORD)
    fresh = await _session(token_bot, CHAT)
    await _write_token(token_bot, fresh.jti, world.mine.token)
    await _refused(token_bot, CHAT)


async def test_every_session_is_refused_after_a_password_reset(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    bot = token_bot
    await _world(bot, secrets_guard)
    second_chat = CHAT + 50
    assert "Logged in" in await bot.log_in(second_chat, EMAIL, PASSWORD)
    stolen = await _session(bot, second_chat)

    reset_chat = CHAT + 60
    await bot.say(reset_chat, f"/reset {EMAIL}")
    await bot.deliver_emails()
    code = _reset_code(bot)
    secrets_guard.remember(code)
    secrets_guard.remember(NEW_PASSWORD)
    assert "Code accepted" in await bot.say(reset_chat, code)
    assert "Password changed" in await bot.say(reset_chat, NEW_PASSWORD)

    await _refused(bot, CHAT)
    await _refused(bot, second_chat)
    # Written back into a live row, the pre-reset token still names a revoked session.
    assert "Logged in" in await bot.log_in(second_chat, EMAIL, NEW_PASSWORD)
    fresh = await _session(bot, second_chat)
    await _write_token(bot, fresh.jti, stolen.token)
    await _refused(bot, second_chat)
    assert "Wrong email or password" in await bot.log_in(CHAT, EMAIL, PASSWORD)


API = Client.api("203.0.113.9")

ApiForge = Callable[[Session, World], str]
API_FORGERIES: dict[str, ApiForge] = {
    "the chat's own real token": lambda api, w: w.mine.token,
    "alg none": lambda api, w: _unsigned(api.claims, "none"),
    "HS512 with the right secret": lambda api, w: _hmac_signed(
        api.claims, "HS512", HOSTILE_JWT_SECRET, "sha512"
    ),
    "wrong secret": lambda api, w: jwt.encode(api.claims, "x" * 48, algorithm="HS256"),
    "tampered payload: another user": lambda api, w: _tampered(api, sub=w.theirs.user_id),
    "expired": lambda api, w: _signed(api.claims, exp=_PAST),
    "real secret, a chat's claim": lambda api, w: _signed(api.claims, client=f"chat:{CHAT}"),
    "real secret, another session id": lambda api, w: _signed(api.claims, jti="forged-jti"),
    "real secret, the chat session's id": lambda api, w: _signed(api.claims, jti=w.mine.jti),
    "real secret, another user (same session id)": lambda api, w: _signed(
        api.claims, sub=w.theirs.user_id
    ),
    "not a JWT": lambda api, w: "definitely-not-a-token",
}


async def _api_session(bot: BotHarness) -> Session:
    result = await bot.services.accounts.login(EMAIL, PASSWORD, API)
    claims = jwt.decode(result.token, HOSTILE_JWT_SECRET, algorithms=["HS256"])
    return Session(result.session.jti, str(result.user.id), result.token, claims)


@pytest.mark.parametrize("forge", API_FORGERIES.values(), ids=API_FORGERIES.keys())
async def test_forged_bearer_token_is_refused_by_the_api(
    forge: ApiForge, token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    world = await _world(token_bot, secrets_guard)
    api = await _api_session(token_bot)
    accounts = token_bot.services.accounts
    assert (await accounts.authenticate(api.token, API)).email == EMAIL  # the control

    with pytest.raises(AuthenticationError):
        await accounts.authenticate(forge(api, world), API)


async def test_an_api_token_in_the_chats_session_row_is_refused_by_the_chat(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    world = await _world(token_bot, secrets_guard)
    api = await _api_session(token_bot)
    await _write_token(token_bot, world.mine.jti, api.token)
    await _refused(token_bot, CHAT)


async def test_an_api_token_ends_with_its_logout_and_with_a_password_reset(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    bot = token_bot
    await _world(bot, secrets_guard)
    accounts = bot.services.accounts
    logged_out, kept = await _api_session(bot), await _api_session(bot)
    assert await accounts.logout(API, logged_out.token)
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(logged_out.token, API)
    assert (await accounts.authenticate(kept.token, API)).email == EMAIL

    reset_chat = CHAT + 60
    await bot.say(reset_chat, f"/reset {EMAIL}")
    await bot.deliver_emails()
    code = _reset_code(bot)
    secrets_guard.remember(code)
    secrets_guard.remember(NEW_PASSWORD)
    await accounts.confirm_reset(EMAIL, code, NEW_PASSWORD, API)
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(kept.token, API)
    await _refused(bot, CHAT)


async def test_the_mini_apps_token_ends_with_its_chats_session(
    token_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    bot = token_bot
    await _world(bot, secrets_guard)
    accounts = bot.services.accounts
    linked = await accounts.open_linked_session(CHAT)
    assert (await accounts.authenticate(linked.token, API)).email == EMAIL

    assert "Logged out" in await bot.say(CHAT, "/logout")
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(linked.token, API)
    with pytest.raises(NoSession):
        await accounts.open_linked_session(CHAT)

    await bot.log_in(CHAT, EMAIL, PASSWORD)
    linked = await accounts.open_linked_session(CHAT)
    await bot.log_in(CHAT, OTHER_EMAIL, PASSWORD)  # another account in that chat now
    with pytest.raises(AuthenticationError):
        await accounts.authenticate(linked.token, API)


def test_the_secrets_guard_sees_tokens_jwts_and_remembered_secrets() -> None:
    """The guard the suite relies on (tests/secrets_guard.py) reports each kind of leak,
    in messages and in exception text, and reports nothing for clean lines."""
    recorder = _Recorder()
    guard = SecretsGuard(recorder)
    guard.remember("hunter2-password")
    logger = logging.getLogger("tests.resilience.guard_probe")
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.info("clean line about %s", "nothing")
        logger.debug("url https://api.telegram.org/bot%s/getMe", fake_bot_token())
        logger.debug("other token 987654321:%s", "A" * 35)
        logger.info("token %s", jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256"))
        logger.info("none token %s", _unsigned({"sub": "x"}, "none"))
        logger.warning("login with %s", "hunter2-password")
        try:
            raise ValueError("bad password hunter2-password")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(recorder)
        logger.propagate = True
    leaks = guard.leaks()
    assert len(leaks) == 6, leaks
    assert not any("hunter2-password" in leak for leak in leaks)
    assert "the fake bot token" in leaks[0]
    assert "a bot token" in leaks[1]
    assert "a JWT" in leaks[2]
    assert "a JWT" in leaks[3]
    assert "remembered secret" in leaks[4]
    assert "remembered secret" in leaks[5]


async def _write_token(bot: BotHarness, jti: str, token: str) -> None:
    async with bot.services.database.engine.begin() as connection:
        result = await connection.execute(
            text("UPDATE sessions SET token = :token WHERE jti = :jti"),
            {"token": token, "jti": jti},
        )
        assert result.rowcount == 1


def _reset_code(bot: BotHarness) -> str:
    body = bot.inbox.last_text(EMAIL, "Reset your password")
    match = re.search(r"\b([A-Z2-9]{8})\b", body)
    assert match, body
    return match.group(1)


async def test_an_api_logout_on_one_process_is_refused_at_once_by_another(
    hostile_bots: HostileBots, fresh_postgres_url: str, secrets_guard: SecretsGuard
) -> None:
    first, second = [
        await hostile_bots.start(database_url=fresh_postgres_url, migrate=False) for _ in range(2)
    ]
    await _world(first, secrets_guard)
    api = await _api_session(first)
    assert (await second.services.accounts.authenticate(api.token, API)).email == EMAIL

    assert await second.services.accounts.logout(API, api.token)

    with pytest.raises(AuthenticationError):
        await first.services.accounts.authenticate(api.token, API)
