"""The real bot `Application`, with its handlers, on the embedded backends (SQLite, in-process
cache, .eml files), driven through the in-process fake Bot API."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from telegram import Update

from bot.app import build_application
from bot.context import BotApplication
from bot.services import Services
from core.security import PasswordHasher
from core.settings import Settings, load_settings
from storage.migrate import upgrade
from tests.fakebotapi import FakeRequest, FakeTelegram


@dataclass
class Inbox:
    directory: Path

    def messages(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found

    def to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        return [
            message
            for message in self.messages()
            if message["To"] == address and (subject is None or message["Subject"] == subject)
        ]


@dataclass
class BotHarness:
    tg: FakeTelegram
    app: BotApplication
    services: Services
    inbox: Inbox

    async def send(self, update: dict[str, object]) -> None:
        """Handles one update to the end, as the running bot would."""
        await self.app.process_update(Update.de_json(update, self.app.bot))

    async def say(self, chat_id: int, text: str) -> str:
        """Sends a private text message and returns the bot's last reply in that chat."""
        since = self.tg.mark()
        await self.send(self.tg.private_message(chat_id, chat_id, text, enqueue=False))
        replies = [m for m in self.tg.sent_messages(chat_id) if m.seq > since]
        return replies[-1].text if replies else ""

    async def deliver_emails(self) -> int:
        return await self.services.worker.drain_once()


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return load_settings(
        telegram_bot_token=FakeTelegram().token,
        data_dir=tmp_path,
        _env_file=None,
    )


@pytest.fixture
async def harness(bot_settings: Settings) -> AsyncIterator[BotHarness]:
    tg = FakeTelegram()
    await upgrade(bot_settings.effective_database_url)
    services = await Services.open(bot_settings, hasher=PasswordHasher(rounds=4))
    app = build_application(
        bot_settings,
        services=services,
        run_worker=False,
        request=FakeRequest(tg),
        rate_limit=False,
    )
    async with app:
        await app.post_init(app)  # type: ignore[misc]
        yield BotHarness(tg, app, services, Inbox(bot_settings.mail_dir))
        await app.post_shutdown(app)  # type: ignore[misc]
    assert not tg.fake_errors, tg.describe()
