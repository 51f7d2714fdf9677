"""PostgreSQL becomes unreachable under a running bot: every command answers "temporarily
unavailable" within a bound instead of hanging, and once the database is back everything works
again in the same process."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.settings import Settings
from storage.database import Database
from storage.engine import (
    CHECKOUT_TIMEOUT_SECONDS,
    COMMAND_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
)
from tests.fakebotapi import FakeTelegram
from tests.resilience.faults import (
    PASSWORD,
    UNAVAILABLE,
    FaultBot,
    TcpProxy,
    bot_settings,
    running_bot,
)

if TYPE_CHECKING:
    from tests.conftest import ThrowawayRedis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ALICE, BOB = 7301, 7302
REFUSED_BOUND_SECONDS = 10.0
"""A command must give up within this (a bound against hanging, not a speed claim)."""
SCALE = 0.2
"""The bot's database timeouts here, as a share of production's: a silent server makes every
command wait them out, and the same mechanism shows at a fifth of the wait."""
CONNECT, COMMAND, CHECKOUT = (
    SCALE * CONNECT_TIMEOUT_SECONDS,
    SCALE * COMMAND_TIMEOUT_SECONDS,
    SCALE * CHECKOUT_TIMEOUT_SECONDS,
)
SILENT_BOUND_SECONDS = COMMAND + CHECKOUT + 4.0
"""A silent server is noticed only when a statement on a pooled connection times out (there is
no pre-ping); after that, reconnecting gives up within the checkout timeout (plus four seconds
of slack for a busy machine: 6.6 s in all, where a command without the timeouts hangs)."""


@pytest.fixture
def short_database_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's `Database` with the scaled timeouts (production's are the defaults)."""

    def from_settings(cls: type[Database], /, settings: Settings, **options: Any) -> Database:
        return cls(
            settings.effective_database_url,
            connect_timeout=CONNECT,
            command_timeout=COMMAND,
            checkout_timeout=CHECKOUT,
            **options,
        )

    monkeypatch.setattr(Database, "from_settings", classmethod(from_settings))


def commands_needing_the_database(email: str) -> list[str]:
    return [
        "/get 1",
        "/list",
        "/search snippet",
        "/save Another\nprint('another')",
        "/edit 1\nprint('edited')",
        "/rename 1 Renamed",
        "/delete 1",
        "/logout",
        f"/login {email} {PASSWORD}",
        f"/signup fault-new@example.com {PASSWORD}",
    ]


async def answers_unavailable_within_the_bound(
    bot: FaultBot, chat_id: int, email: str, commands: int, bound: float
) -> None:
    slow: list[str] = []
    wrong: list[str] = []
    for command in commands_needing_the_database(email)[:commands]:
        answer, took = await bot.timed_say(chat_id, command)
        if UNAVAILABLE not in answer:
            wrong.append(f"{command!r} → {answer!r}")
        if took >= bound:
            slow.append(f"{command!r} took {took:.1f} s")
    assert wrong == [], wrong
    assert slow == [], slow


async def works_normally(bot: FaultBot, chat_id: int, code: str) -> None:
    assert code in await bot.say(chat_id, "/get 1")
    assert "of 1" in await bot.say(chat_id, "/list")
    assert "Saved" in await bot.say(chat_id, "/save Second\nprint('second')")
    assert "Updated" in await bot.say(chat_id, "/edit 2\nprint('second, edited')")
    assert "print('second, edited')" in await bot.say(chat_id, "/get 2")


@pytest.mark.parametrize(
    ("fault", "commands", "bound"),
    [
        ("refused", 10, REFUSED_BOUND_SECONDS),
        # Each command waits out a timeout here: three make the point (the first one's
        # statement times out on its pooled connection, the next ones' connects; Bob's one
        # shows another chat is not stuck behind Alice's).
        ("silent", 3, SILENT_BOUND_SECONDS),
    ],
)
async def test_commands_answer_temporarily_unavailable_then_recover_without_a_restart(
    fault: str,
    commands: int,
    bound: float,
    fault_postgres_proxy: TcpProxy,
    fault_postgres_proxy_url: str,
    throwaway_redis: ThrowawayRedis,
    fault_tg: FakeTelegram,
    tmp_path: Path,
    short_database_timeouts: None,
) -> None:
    settings = bot_settings(
        fault_tg, tmp_path, database_url=fault_postgres_proxy_url, redis_url=throwaway_redis.url
    )
    async with running_bot(settings, fault_tg) as bot:
        alice = await bot.log_in_new_user(ALICE)
        bob = await bot.log_in_new_user(BOB)
        for chat_id in (ALICE, BOB):
            assert "Saved" in await bot.say(chat_id, f"/save First\nprint({chat_id})")
            assert f"print({chat_id})" in await bot.say(chat_id, "/get 1")  # now cached too

        if fault == "refused":
            await fault_postgres_proxy.cut()  # the server is down: connections refused
        else:
            await fault_postgres_proxy.hang()  # a partition: connections hang in silence
        await answers_unavailable_within_the_bound(bot, ALICE, alice.email, commands, bound)
        await answers_unavailable_within_the_bound(bot, BOB, bob.email, commands // 2, bound)

        await fault_postgres_proxy.restore()
        await works_normally(bot, ALICE, f"print({ALICE})")
        await works_normally(bot, BOB, f"print({BOB})")
