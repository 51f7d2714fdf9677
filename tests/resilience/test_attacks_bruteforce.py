"""Password guessing is throttled for the whole deployment, not per bot process.

Two bot `Application`s (two processes of one deployment: one Telegram bot, one PostgreSQL
database, one Redis) take turns answering the guesses. An account takes five failures, wherever
they came from; after that each try from a chat that never logged in to it waits, twice as long
after each further failure (never more than five minutes), even with the right password.
A chat gets 10 failures too, however many accounts it spreads them over.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.bot.conftest import BotHarness, Clock
from tests.fakebotapi import FakeTelegram
from tests.resilience.conftest import HostileBots
from tests.secrets_guard import SecretsGuard

VICTIM = "victim@example.com"
PASSWORD = "brute-Pass-3"
THROTTLED = "Too many failed attempts"
WRONG = "Wrong email or password"
LIMIT = 10
FREE = 5


@pytest.fixture
async def two_bots(
    hostile_bots: HostileBots,
    fresh_postgres_url: str,
    redis_url: str,
    services_clock: Clock,
    secrets_guard: SecretsGuard,
) -> tuple[BotHarness, BotHarness]:
    secrets_guard.remember(PASSWORD)
    tg = FakeTelegram()
    first, second = [
        await hostile_bots.start(
            database_url=fresh_postgres_url, redis_url=redis_url, tg=tg, migrate=False
        )
        for _ in range(2)
    ]
    await first.sign_up(1, VICTIM, PASSWORD)
    assert "is verified" in await first.say(1, f"/verify {first.verification_code(VICTIM)}")
    return first, second


async def test_an_accounts_failures_delay_the_next_try_across_two_bot_processes(
    two_bots: tuple[BotHarness, BotHarness], services_clock: Clock
) -> None:
    first, second = two_bots
    # Ten wrong guesses, alternating processes and from ten chats (so only the account's
    # count can stop them), a minute apart: the waits after the fifth are shorter.
    for n in range(LIMIT):
        bot = (first, second)[n % 2]
        assert WRONG in await bot.log_in(100 + n, VICTIM, f"guess-{n:04d}")
        services_clock.offset += timedelta(minutes=1)
    services_clock.offset -= timedelta(minutes=1)

    # The next try, on either process and from a fresh chat, waits: even with the right
    # password (it would confirm the guess). Every failure past five doubles the wait.
    for bot, chat in ((first, 200), (second, 201)):
        reply = await bot.log_in(chat, VICTIM, PASSWORD)
        assert THROTTLED in reply, reply
    assert "log in first" in await second.say(201, "/list")

    # A wait, not a lock: after it, the owner gets in from anywhere.
    services_clock.offset += timedelta(seconds=65)
    assert "Logged in" in await second.log_in(202, VICTIM, PASSWORD)


async def test_one_chat_is_throttled_across_many_accounts(
    two_bots: tuple[BotHarness, BotHarness],
) -> None:
    first, second = two_bots
    attacker = 300
    # Nine guesses at nine accounts, then a login to an account of the attacker's own: a
    # success must not reset the chat's count.
    for n in range(LIMIT - 1):
        bot = (first, second)[n % 2]
        assert WRONG in await bot.log_in(attacker, f"user{n}@example.com", f"guess-{n:04d}")
    assert "Logged in" in await first.log_in(attacker, VICTIM, PASSWORD)
    assert WRONG in await second.log_in(attacker, "user9@example.com", "guess-0009")

    for bot in (first, second):
        reply = await bot.log_in(attacker, "user10@example.com", "guess-0010")
        assert THROTTLED in reply, reply
        # Also for an account that never failed, with its right password.
        assert THROTTLED in await bot.log_in(attacker, VICTIM, PASSWORD)
    # Only that chat: the victim logs in from another one, on either process.
    assert "Logged in" in await second.log_in(301, VICTIM, PASSWORD)
    assert "Logged in" in await first.log_in(302, VICTIM, PASSWORD)


async def test_failures_below_the_limit_are_not_throttled(
    two_bots: tuple[BotHarness, BotHarness],
) -> None:
    """The control: until five failures nobody waits; a success clears them."""
    first, second = two_bots
    for n in range(FREE - 1):
        assert WRONG in await (first, second)[n % 2].log_in(400 + n, VICTIM, f"guess-{n:04d}")
    assert "Logged in" in await first.log_in(420, VICTIM, PASSWORD)
    for n in range(FREE - 1):
        assert WRONG in await (first, second)[n % 2].log_in(430 + n, VICTIM, f"guess-{n:04d}")
    assert "Logged in" in await second.log_in(450, VICTIM, PASSWORD)
