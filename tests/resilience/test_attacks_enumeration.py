"""Nobody learns which emails have accounts: not from the words of a reply, nor from its time.

Through the bot: /signup, /login and /reset for an address with a verified account and for an
unknown one. The replies are the same text once the echoed address is masked. The time is
proved by the work each path does, counted, not by wall-clock medians (which a busy machine
skews): both paths make exactly one bcrypt computation, the only costly step, and the
database statements they make differ by no more than the writes a new account or a reset
code needs (each well under a millisecond, against bcrypt's hundreds at production's cost).

One coarse timing guard stays, one-sided so that load cannot fail it: every reply for an
unknown address takes at least half of one bcrypt check at this machine's best speed, so the
counted check really ran rather than being skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from core.security import PasswordHasher
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import HostileBots
from tests.secrets_guard import SecretsGuard

KNOWN = "known@example.com"
PASSWORD = "enumerate-Pass-1"
WRONG = "enumerate-Wrong-2"
ROUNDS = 8
"""Cheap (a check takes milliseconds), yet far above a skipped check for the timing guard."""
SAMPLES = 3
MAX_EXTRA_STATEMENTS = {"signup": 4, "login": 0, "reset": 3}
"""Statements one path may make beyond the other: creating the account and its verification
email (signup of a new address) or the reset code and its email (reset of a known one)."""


class CountingHasher(PasswordHasher):
    """The real hasher, counting the bcrypt computations it makes."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds=rounds)
        self.computations = 0

    async def hash(self, password: str) -> str:
        self.computations += 1
        return await super().hash(password)

    async def verify(self, password: str, hashed: str | None) -> bool:
        self.computations += 1
        return await super().verify(password, hashed)


@dataclass
class CountedBot:
    bot: BotHarness
    hasher: CountingHasher
    statements: int = 0


@pytest.fixture
async def counted_bot(
    hostile_bots: HostileBots, sqlite_url: str, secrets_guard: SecretsGuard
) -> CountedBot:
    """A bot whose bcrypt computations and database statements are counted, and one
    verified account."""
    hasher = CountingHasher(ROUNDS)
    bot = await hostile_bots.start(database_url=sqlite_url, migrate=False, hasher=hasher)
    # The background maintenance runs statements of its own: stopped, so that every statement
    # counted is the command's.
    await bot.services.stop_purge()
    counted = CountedBot(bot, hasher)

    def count(*_: object) -> None:
        counted.statements += 1

    event.listen(bot.services.database.engine.sync_engine, "before_cursor_execute", count)
    secrets_guard.remember(PASSWORD)
    secrets_guard.remember(WRONG)
    await bot.sign_up(1, KNOWN, PASSWORD)
    assert "is verified" in await bot.say(1, f"/verify {bot.verification_code(KNOWN)}")
    return counted


Command = Callable[[str, int], str]
"""(email, sample number) → the message to send."""

FLOWS: dict[str, Command] = {
    "signup": lambda email, n: f"/signup {email} {PASSWORD}",
    "login": lambda email, n: f"/login {email} {WRONG}",
    "reset": lambda email, n: f"/reset {email}",
}


def _unknown(flow: str, n: int) -> str:
    return f"nobody-{flow}-{n}@example.com"


def _fastest_bcrypt_check() -> float:
    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(ROUNDS))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        bcrypt.checkpw(b"y", hashed)
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.parametrize("flow", FLOWS)
async def test_known_and_unknown_addresses_get_the_same_reply_and_the_same_work(
    flow: str, counted_bot: CountedBot
) -> None:
    command = FLOWS[flow]
    replies: dict[bool, set[str]] = {True: set(), False: set()}
    computations: dict[bool, set[int]] = {True: set(), False: set()}
    statements: dict[bool, set[int]] = {True: set(), False: set()}
    unknown_times: list[float] = []

    for sample in range(SAMPLES):
        for known in (True, False):
            email = KNOWN if known else _unknown(flow, sample)
            # A chat per sample: the per-chat login throttle (10 failures) never kicks in.
            chat = 1000 + 2 * sample + known
            # Nor do the known address's own limits (its failures, its requests an hour):
            # those answer any address alike, and would count the throttle's work instead.
            async with counted_bot.bot.services.database.engine.begin() as connection:
                await connection.execute(sa.text("DELETE FROM login_attempts"))
            counted_bot.hasher.computations = counted_bot.statements = 0
            started = time.perf_counter()
            reply = await counted_bot.bot.say(chat, command(email, sample))
            if not known:
                unknown_times.append(time.perf_counter() - started)
            replies[known].add(reply.replace(email, "<email>"))
            computations[known].add(counted_bot.hasher.computations)
            statements[known].add(counted_bot.statements)

    assert len(replies[True]) == 1, replies[True]
    assert replies[True] == replies[False]
    assert "Too many" not in next(iter(replies[True]))
    assert computations == {True: {1}, False: {1}}, f"bcrypt computations per reply: {computations}"
    assert len(statements[True]) == len(statements[False]) == 1, statements
    gap = abs(statements[True].pop() - statements[False].pop())
    assert gap <= MAX_EXTRA_STATEMENTS[flow], f"{flow}: {gap} more statements on one path"
    floor = _fastest_bcrypt_check() / 2
    assert min(unknown_times) >= floor, (
        f"{flow}: an unknown address was answered in {min(unknown_times) * 1000:.1f} ms, "
        f"less than half a bcrypt check ({floor * 2000:.1f} ms): the check was skipped"
    )
