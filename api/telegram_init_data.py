"""Checks a Mini App's `initData`, exactly as Telegram's Mini App docs describe it
(https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app):

- the data-check-string is every received field but `hash`, as `key=value` with the value
  URL-decoded, sorted by key, joined by line feeds;
- the secret key is HMAC-SHA256 of the bot token, keyed with the constant `WebAppData`;
- `hash` must be the hex HMAC-SHA256 of the data-check-string under that secret key,
  compared in constant time;
- `auth_date` must be recent: a signed but old `initData` is a replay.

Standard library only. A key given twice is refused: which of the two values a parser keeps
differs between parsers, so a signature over one must not vouch for the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

MAX_INIT_DATA_CHARS = 8192
FUTURE_SKEW_SECONDS = 60
"""How far `auth_date` may lie ahead of our clock (clocks differ a little)."""


class InvalidInitData(Exception):
    """Not signed for this bot, tampered with, malformed, or too old."""


@dataclass(frozen=True, slots=True)
class TelegramUser:
    id: int
    auth_date: int
    """Unix time when Telegram signed the data."""
    first_name: str | None = None
    username: str | None = None


def secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def sign(fields: dict[str, str], bot_token: str) -> str:
    """The `hash` Telegram would send for `fields` (tests sign their own initData with it)."""
    return hmac.new(
        secret_key(bot_token), data_check_string(fields).encode(), hashlib.sha256
    ).hexdigest()


def validate(init_data: str, bot_token: str, *, max_age_seconds: int, now: float) -> TelegramUser:
    """The Telegram user `init_data` was signed for; `InvalidInitData` otherwise."""
    if not init_data or len(init_data) > MAX_INIT_DATA_CHARS:
        raise InvalidInitData("initData is empty or too long")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInitData("initData is not a query string") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InvalidInitData("initData names a field twice")
    given = fields.get("hash", "")
    expected = sign(fields, bot_token)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidInitData("initData is not signed for this bot")
    try:
        auth_date = int(fields["auth_date"])
    except (KeyError, ValueError):
        raise InvalidInitData("initData has no auth_date") from None
    if auth_date < now - max_age_seconds:
        raise InvalidInitData("initData is too old: open the Mini App again")
    if auth_date > now + FUTURE_SKEW_SECONDS:
        raise InvalidInitData("initData is dated in the future")
    return _user(fields.get("user"), auth_date)


def _user(raw: str | None, auth_date: int) -> TelegramUser:
    try:
        user = json.loads(raw) if raw is not None else None
    except ValueError:
        user = None
    if not isinstance(user, dict):
        raise InvalidInitData("initData names no user")
    user_id = user.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise InvalidInitData("initData names no user")
    first_name, username = user.get("first_name"), user.get("username")
    return TelegramUser(
        id=user_id,
        auth_date=auth_date,
        first_name=first_name if isinstance(first_name, str) else None,
        username=username if isinstance(username, str) else None,
    )
