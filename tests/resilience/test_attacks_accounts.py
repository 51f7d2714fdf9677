"""Attacks on accounts (issue 9, items 3, 4, 5, 7, 8 and 11), each through the real bot.

A login racing a password reset, pre-hijacking an address before its owner signs up, a burst
of guesses against the throttle, floods of /signup and /reset, old buttons and steps acting
for whoever logs in next, and a password typed in another Unicode form.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable

import pytest

from core.security import PasswordHasher
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import HostileBots, query_rows
from tests.secrets_guard import SecretsGuard

OWNER = "owner@example.com"
PASSWORD = "owner-Pass-1"
NEW_PASSWORD = "owner-Pass-2"
ATTACKER_PASSWORD = "attacker-Pass-1"


class WatchedHasher(PasswordHasher):
    """bcrypt at the test cost, that counts its work, notes whether the database had a
    connection out meanwhile, and can hold a password check until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(rounds=4)
        self.checks = 0
        self.hashes = 0
        self.busy_connections: list[int] = []
        self.connections_out: Callable[[], int] = lambda: 0
        self.hold_next_check = False
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def hash(self, password: str) -> str:
        self.hashes += 1
        self.busy_connections.append(self.connections_out())
        return await super().hash(password)

    async def verify(self, password: str, hashed: str | None) -> bool:
        self.checks += 1
        self.busy_connections.append(self.connections_out())
        matched = await super().verify(password, hashed)
        if self.hold_next_check:
            self.hold_next_check = False
            self.holding.set()
            await self.release.wait()
        return matched


async def _watched_bot(
    hostile_bots: HostileBots, database_url: str, hasher: WatchedHasher
) -> BotHarness:
    bot = await hostile_bots.start(database_url=database_url, migrate=False, hasher=hasher)
    hasher.connections_out = bot.services.database.engine.pool.checkedout  # type: ignore[attr-defined]
    return bot


@pytest.fixture
def hasher() -> WatchedHasher:
    return WatchedHasher()


@pytest.fixture
async def watched_bot(
    hostile_bots: HostileBots,
    database_url: str,
    hasher: WatchedHasher,
    secrets_guard: SecretsGuard,
) -> BotHarness:
    for secret in (PASSWORD, NEW_PASSWORD, ATTACKER_PASSWORD):
        secrets_guard.remember(secret)
    return await _watched_bot(hostile_bots, database_url, hasher)


async def _owner(bot: BotHarness, chat: int = 1) -> None:
    await bot.sign_up(chat, OWNER, PASSWORD, verified=True)


def _reset_code(bot: BotHarness) -> str:
    body = bot.inbox.last_text(OWNER, "Reset your password")
    match = re.search(r"\b([A-Z2-9]{8})\b", body)
    assert match, body
    return match.group(1)


# -- item 3: a login racing a password reset ------------------------------------------------


async def test_a_login_that_checked_the_old_password_during_a_reset_gets_no_session(
    watched_bot: BotHarness, hasher: WatchedHasher
) -> None:
    bot = watched_bot
    await _owner(bot)
    await bot.say(1, f"/reset {OWNER}")
    await bot.deliver_emails()
    code = _reset_code(bot)

    # The attacker's login passes the password check with the old password, and is held
    # there while the owner finishes the reset.
    hasher.hold_next_check = True
    login = asyncio.create_task(bot.log_in(66, OWNER, PASSWORD))
    await asyncio.wait_for(hasher.holding.wait(), 30)
    assert "Code accepted" in await bot.say(1, code)
    assert "Password changed" in await bot.say(1, NEW_PASSWORD)
    hasher.release.set()
    answer = await asyncio.wait_for(login, 30)

    assert "Logged in" not in answer, answer
    assert "log in first" in await bot.say(66, "/list")
    assert "Logged in" in await bot.log_in(1, OWNER, NEW_PASSWORD)


# -- item 4: pre-hijacking an address, and the login of unverified accounts -----------------


async def test_an_address_signed_up_by_someone_else_stays_its_owners(
    watched_bot: BotHarness,
) -> None:
    bot = watched_bot
    # The attacker signs the victim's address up first, with a password of their own.
    await bot.sign_up(66, OWNER, ATTACKER_PASSWORD)
    answer = await bot.log_in(66, OWNER, ATTACKER_PASSWORD)
    assert "verify your email first" in answer, answer
    assert "log in first" in await bot.say(66, "/save Mine\nprint('planted')")

    # The owner signs up as they would, and verifies with the code of their own signup.
    await bot.sign_up(1, OWNER, PASSWORD, verified=True)

    assert "Logged in" in await bot.log_in(1, OWNER, PASSWORD)
    assert "Wrong email or password" in await bot.log_in(66, OWNER, ATTACKER_PASSWORD)
    assert "log in first" in await bot.say(66, "/list")


# -- item 5: a burst of guesses, and the owner's own chat -----------------------------------


@pytest.mark.postgres
async def test_a_burst_of_guesses_runs_at_most_ten_checks_and_the_owner_still_gets_in(
    hostile_bots: HostileBots,
    fresh_postgres_url: str,
    hasher: WatchedHasher,
    secrets_guard: SecretsGuard,
) -> None:
    secrets_guard.remember(PASSWORD)
    first = await _watched_bot(hostile_bots, fresh_postgres_url, hasher)
    second = await hostile_bots.start(
        database_url=fresh_postgres_url, migrate=False, tg=first.tg, hasher=hasher
    )
    await _owner(first)
    assert "Logged in" in await first.log_in(1, OWNER, PASSWORD)  # the owner's own chat
    assert "Logged out" in await first.say(1, "/logout")
    checks_before = hasher.checks

    # 40 guesses at once from one chat, spread over two processes of the deployment.
    answers = await asyncio.gather(
        *((first, second)[n % 2].log_in(66, OWNER, f"guess-{n:04d}") for n in range(40))
    )

    assert hasher.checks - checks_before <= 10
    assert all("Wrong email or password" in a or "Too many" in a for a in answers), answers
    # More guesses from other chats only ever wait a little longer each, never lock the
    # account: and the owner, from the chat they logged in from before, gets in at once.
    for n in range(20):
        await (first, second)[n % 2].log_in(100 + n, OWNER, f"other-{n:04d}")
    assert "Logged in" in await second.log_in(1, OWNER, PASSWORD)


# -- item 7: floods of /signup and /reset ---------------------------------------------------


async def test_one_chat_cannot_flood_signups_or_resets(
    watched_bot: BotHarness, hasher: WatchedHasher
) -> None:
    bot = watched_bot
    await _owner(bot)
    hashes_before, checks_before = hasher.hashes, hasher.checks

    for n in range(30):
        await bot.say(66, f"/signup flood{n}@example.com {ATTACKER_PASSWORD}")
    for _ in range(40):
        await bot.say(67, f"/reset {OWNER}")
        await bot.say(67, "/cancel")
    await bot.deliver_emails()

    assert hasher.hashes - hashes_before <= 10
    assert hasher.checks - checks_before <= 10
    verifications = [
        message
        for message in bot.inbox.messages()
        if str(message["To"]).startswith("flood") and message["Subject"] == "Verify your email"
    ]
    assert len(verifications) <= 10
    assert "Too many" in await bot.say(66, f"/signup flood99@example.com {ATTACKER_PASSWORD}")
    # Another chat resetting the same address is limited per address too.
    assert "Too many" in await bot.say(68, f"/reset {OWNER}")
    # Other chats still sign up.
    assert "verification email" in await bot.say(2, f"/signup new@example.com {PASSWORD}")


async def test_no_password_is_hashed_inside_a_transaction(
    watched_bot: BotHarness, hasher: WatchedHasher
) -> None:
    bot = watched_bot
    # The background maintenance takes a connection of its own at start-up: stopped (after
    # its round), so that a connection out while hashing can only be the hashing path's.
    await bot.services.stop_purge()
    await _owner(bot)
    await bot.say(2, f"/reset {OWNER}")
    await bot.say(3, "/reset nobody@example.com")
    await bot.log_in(4, OWNER, PASSWORD)
    await bot.log_in(5, OWNER, "wrong-Pass-1")
    assert hasher.busy_connections
    assert set(hasher.busy_connections) == {0}, hasher.busy_connections


# -- item 8: old buttons and steps of a login that ended ------------------------------------


async def test_an_old_delete_button_never_deletes_the_next_logins_snippet(
    watched_bot: BotHarness,
) -> None:
    bot = watched_bot
    await bot.user(1, "f@example.com")
    number = await bot.save(1, "F's", "print('f')")
    [shown] = await bot.exchange(1, bot.tg.private_message(1, 1, f"/get {number}", enqueue=False))
    [question] = await bot.press(1, shown.message_id, "🗑 Delete")
    assert "/get" not in question.text
    await bot.say(1, "/logout")
    await bot.sign_up(1, "g@example.com", verified=True)
    assert "Logged in" in await bot.log_in(1, "g@example.com")
    assert await bot.save(1, "G's", "print('g')") == number

    await bot.press(1, question.message_id, "Yes, delete it")
    await bot.press(1, shown.message_id, "🗑 Delete")

    assert "G's" in await bot.say(1, f"/get {number}")
    rows = await query_rows(bot, "SELECT title FROM snippets ORDER BY title")
    assert rows == [("F's",), ("G's",)]


@pytest.mark.parametrize("step", ["/edit {number}", "/save Planted"])
async def test_a_pending_step_never_acts_for_the_next_login(
    watched_bot: BotHarness, step: str
) -> None:
    bot = watched_bot
    await bot.user(1, "f@example.com")
    number = await bot.save(1, "F's", "print('f')")
    assert "send me" in (await bot.say(1, step.format(number=number))).lower()
    await bot.say(1, "/logout")
    await bot.sign_up(1, "g@example.com", verified=True)
    assert "Logged in" in await bot.log_in(1, "g@example.com")
    number_g = await bot.save(1, "G's", "print('g')")

    answer = await bot.say(1, "print('overwritten')")

    assert "start again" in answer, answer
    assert "print('g')" in await bot.say(1, f"/get {number_g}")
    rows = await query_rows(bot, "SELECT title, code FROM snippets ORDER BY title")
    assert rows == [("F's", "print('f')"), ("G's", "print('g')")]


# -- item 11: one password, two Unicode forms -----------------------------------------------


async def test_a_password_typed_in_another_unicode_form_logs_in(
    watched_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    bot = watched_bot
    decomposed = unicodedata.normalize("NFD", "Crème-brûlée-1")
    composed = unicodedata.normalize("NFC", decomposed)
    assert decomposed != composed
    for secret in (decomposed, composed):
        secrets_guard.remember(secret)
    await bot.sign_up(1, OWNER, decomposed, verified=True)
    assert "Logged in" in await bot.log_in(2, OWNER, composed)
