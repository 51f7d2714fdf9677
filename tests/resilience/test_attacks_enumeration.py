"""Nobody learns which emails have accounts: not from the words of a reply, nor from its time.

Through the bot with production's bcrypt cost (12): /signup, /login and /reset for an address
with a verified account and for an unknown one. The replies are the same text once the echoed
address is masked, and the median reply time differs by less than 10% (samples interleaved,
so load on the machine hits both sides alike).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from core.security import BCRYPT_ROUNDS
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import HostileBots
from tests.secrets_guard import SecretsGuard

KNOWN = "known@example.com"
PASSWORD = "enumerate-Pass-1"
WRONG = "enumerate-Wrong-2"
SAMPLES = 9
MAX_RELATIVE_GAP = 0.10
MAX_ROUNDS = 3


@pytest.fixture
async def slow_bot(
    hostile_bots: HostileBots, sqlite_url: str, secrets_guard: SecretsGuard
) -> BotHarness:
    """Production's bcrypt cost, and one verified account."""
    bot = await hostile_bots.start(database_url=sqlite_url, migrate=False, rounds=BCRYPT_ROUNDS)
    secrets_guard.remember(PASSWORD)
    secrets_guard.remember(WRONG)
    await bot.sign_up(1, KNOWN, PASSWORD)
    assert "is verified" in await bot.say(1, f"/verify {bot.verification_code(KNOWN)}")
    return bot


Command = Callable[[str, int], str]
"""(email, sample number) → the message to send."""

FLOWS: dict[str, Command] = {
    "signup": lambda email, n: f"/signup {email} {PASSWORD}",
    "login": lambda email, n: f"/login {email} {WRONG}",
    "reset": lambda email, n: f"/reset {email}",
}


def _unknown(flow: str, n: int) -> str:
    return f"nobody-{flow}-{n}@example.com"


def _masked(reply: str, email: str) -> str:
    return reply.replace(email, "<email>")


@pytest.mark.parametrize("flow", FLOWS)
async def test_replies_and_their_timing_do_not_reveal_accounts(
    flow: str, slow_bot: BotHarness
) -> None:
    command = FLOWS[flow]
    times: dict[bool, list[float]] = {True: [], False: []}
    replies: dict[bool, set[str]] = {True: set(), False: set()}
    sample = 0

    async def take(known: bool) -> None:
        email = KNOWN if known else _unknown(flow, sample)
        # A chat per sample: the per-chat login throttle (10 failures) never skews one side.
        chat = 1000 + 2 * sample + known
        # Nor do the known address's own limits (its failures, its requests an hour): those
        # answer any address alike, known or not, and would time the throttle instead.
        async with slow_bot.services.database.engine.begin() as connection:
            await connection.execute(sa.text("DELETE FROM login_attempts"))
        started = time.perf_counter()
        reply = await slow_bot.say(chat, command(email, sample))
        elapsed = time.perf_counter() - started
        replies[known].add(_masked(reply, email))
        if sample:  # sample 0 warms both paths up
            times[known].append(elapsed)

    gap = 1.0
    # Other processes share the CPU: a round whose medians are apart by noise is followed by
    # another, pooled with it (at most 3 × SAMPLES). A real difference (bcrypt skipped for
    # unknown addresses: most of the time) shows in every round.
    for _ in range(MAX_ROUNDS):
        for _ in range(SAMPLES + (sample == 0)):
            for known in (True, False) if sample % 2 else (False, True):
                await take(known)
            sample += 1
        known_median = statistics.median(times[True])
        unknown_median = statistics.median(times[False])
        gap = abs(known_median - unknown_median) / min(known_median, unknown_median)
        if gap < MAX_RELATIVE_GAP:
            break

    assert len(replies[True]) == 1, replies[True]
    assert replies[True] == replies[False]
    assert "Too many" not in next(iter(replies[True]))
    assert gap < MAX_RELATIVE_GAP, (
        f"{flow}: median {known_median * 1000:.0f} ms for a known address, "
        f"{unknown_median * 1000:.0f} ms for an unknown one ({gap:.0%} apart, "
        f"{len(times[True])} samples each)"
    )
