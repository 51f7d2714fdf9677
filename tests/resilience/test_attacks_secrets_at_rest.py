"""Secrets at rest (issue 9, item 9): whoever reads the database or DATA_DIR later finds no
one-time code or link of a sent email, old emails are purged, and the embedded defaults' files
(SQLite database, .eml emails, generated JWT key) are readable by this service's user only."""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bootstrap import Services, bootstrap
from core.entities import Client
from core.security import PasswordHasher
from core.settings import load_settings
from storage.migrate import upgrade
from tests.bot.conftest import BotHarness, Clock
from tests.resilience.conftest import HostileBots, query_rows

ADDRESS = "secret-owner@example.com"
PASSWORD = "at-rest-Pass-5"


@pytest.fixture
def rest_clock(services_clock: Clock) -> Clock:
    return services_clock


@pytest.fixture
async def rest_bot(hostile_bots: HostileBots, sqlite_url: str, rest_clock: Clock) -> BotHarness:
    return await hostile_bots.start(database_url=sqlite_url, migrate=False)


async def test_sent_emails_keep_no_codes_or_links(rest_bot: BotHarness) -> None:
    bot = rest_bot
    await bot.sign_up(1, ADDRESS, PASSWORD)  # delivers the verification email
    code = bot.verification_code(ADDRESS)
    payload = bot.verification_payload(ADDRESS)
    await bot.say(1, f"/verify {code}")
    await bot.say(2, f"/reset {ADDRESS}")
    await bot.deliver_emails()
    reset_code = re.search(
        r"\b([A-Z0-9]{8})\b", bot.inbox.last_text(ADDRESS, "Reset your password")
    )
    assert reset_code is not None

    rows = await query_rows(bot, "SELECT status, context FROM outbox")
    assert {status for status, _ in rows} == {"sent"}
    stored = " ".join(str(context) for _, context in rows)
    for secret in (code, payload, reset_code.group(1)):
        assert secret not in stored


async def test_old_emails_are_purged_by_the_worker(rest_bot: BotHarness, rest_clock: Clock) -> None:
    bot = rest_bot
    await bot.sign_up(1, ADDRESS, PASSWORD)
    await bot.say(1, f"/verify {bot.verification_code(ADDRESS)}")
    await bot.say(2, f"/reset {ADDRESS}")  # pending: not sent yet, so it stays
    assert len(await query_rows(bot, "SELECT id FROM outbox")) == 2

    rest_clock.advance(8 * 86400)
    bot.services.start_worker()
    try:
        for _ in range(200):  # the running worker purges at start, then sends the new email
            statuses = await query_rows(bot, "SELECT status FROM outbox")
            if statuses == [("sent",)]:
                break
            await asyncio.sleep(0.05)
    finally:
        await bot.services.stop_worker()
    assert await query_rows(bot, "SELECT kind, status FROM outbox") == [("password_reset", "sent")]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def embedded_services(tmp_path: Path) -> AsyncIterator[tuple[Services, Path]]:
    data_dir = tmp_path / "fresh" / "var"  # neither exists yet
    settings = load_settings(telegram_bot_token="1:x", data_dir=data_dir, _env_file=None)
    await upgrade(settings.effective_database_url)
    services = await bootstrap(settings, hasher=PasswordHasher(rounds=4))
    yield services, data_dir
    await services.close()


async def test_the_embedded_files_are_private(
    embedded_services: tuple[Services, Path],
) -> None:
    services, data_dir = embedded_services
    await services.accounts.signup(
        ADDRESS, PASSWORD, Client.chat(1)
    )  # a verification email with its code
    assert await services.worker.drain_once() == 1

    assert _mode(data_dir) == 0o700
    assert _mode(data_dir.parent) == 0o700  # created along the way
    database = data_dir / "snippetvault.db"
    for path in (database, Path(f"{database}-wal"), data_dir / "jwt_secret"):
        assert _mode(path) == 0o600, path
    assert _mode(data_dir / "mail") == 0o700
    emails = list((data_dir / "mail").glob("*.eml"))
    assert emails
    assert all(_mode(path) == 0o600 for path in emails)
