"""Fixtures of the tests that run SnippetVault as processes (tests/e2e, tests/miniapp): an SMTP
sink, and a fake Telegram with its HTTP Bot API server for the process to talk to."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from aiosmtpd.smtp import SMTP

from tests.e2e.bot_process import HOST, SmtpInbox
from tests.fakebotapi import FakeBotApiServer, FakeTelegram


@pytest.fixture
async def smtp_inbox() -> AsyncIterator[SmtpInbox]:
    inbox = SmtpInbox()
    loop = asyncio.get_running_loop()
    # hostname given, so aiosmtpd does not resolve this machine's FQDN (slow without DNS)
    server = await loop.create_server(lambda: SMTP(inbox, hostname="smtp.e2e.test"), HOST, 0)
    inbox.port = server.sockets[0].getsockname()[1]
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    # A token shaped like a real one (digits, colon, 35 URL-safe characters), random per run,
    # so that finding it in the log can only mean the bot logged it.
    bot_id = 6_000_000_000 + secrets.randbelow(999_999_999)
    telegram = FakeTelegram(token=f"{bot_id}:AA{secrets.token_urlsafe(25)[:33]}")
    yield telegram
    assert not telegram.fake_errors, telegram.describe()


@pytest.fixture
async def bot_api(tg: FakeTelegram) -> AsyncIterator[FakeBotApiServer]:
    async with FakeBotApiServer(tg) as server:
        yield server
