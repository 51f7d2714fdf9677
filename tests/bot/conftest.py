"""The real bot `Application`, with its handlers, on the embedded backends (SQLite, in-process
cache, .eml files), driven through the in-process fake Bot API."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bootstrap import Services, bootstrap
from bot.app import build_application
from bot.context import BotApplication
from core.security import PasswordHasher
from core.settings import Settings, load_settings
from storage.migrate import upgrade
from tests.fakebotapi import BotMessage, FakeRequest, FakeTelegram
from tests.secrets_guard import SecretsGuard

PASSWORD = "correct-horse-9"


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

    def last_text(self, address: str, subject: str) -> str:
        """The plain-text body of the newest email with `subject` to `address`."""
        found = self.to(address, subject)
        assert found, f"no {subject!r} email to {address}; subjects: {self.subjects()}"
        body = found[-1].get_body(("plain",))
        assert body is not None
        return str(body.get_content())

    def subjects(self) -> list[tuple[str, str]]:
        return [(str(message["To"]), str(message["Subject"])) for message in self.messages()]


@dataclass
class Clock:
    """The services' clock: real time plus an offset the test moves forward (no sleeping)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class BotHarness:
    tg: FakeTelegram
    app: BotApplication
    services: Services
    inbox: Inbox
    clock: Clock = field(default_factory=Clock)

    async def send(self, update: dict[str, Any]) -> None:
        """Handles one update to the end, as the running bot would."""
        await self.app.process_update(Update.de_json(update, self.app.bot))

    async def say(self, chat_id: int, text: str, **options: Any) -> str:
        """Sends a private text message and returns the bot's last reply in that chat."""
        replies = await self.exchange(
            chat_id, self.tg.private_message(chat_id, chat_id, text, enqueue=False, **options)
        )
        return replies[-1].text if replies else ""

    async def exchange(self, chat_id: int, update: dict[str, Any]) -> list[BotMessage]:
        """Handles `update` and returns the messages the bot sent to the chat meanwhile."""
        since = self.tg.mark()
        await self.send(update)
        return [m for m in self.tg.sent_messages(chat_id) if m.seq > since]

    async def press(self, chat_id: int, message_id: int, label: str) -> list[BotMessage]:
        """Presses an inline button; returns what the bot sent in answer."""
        return await self.exchange(chat_id, self.tg.press_button(chat_id, message_id, label))

    async def deliver_emails(self) -> int:
        return await self.services.worker.drain_once()

    # -- accounts, as a person would set them up ------------------------------------------

    async def sign_up(
        self, chat_id: int, address: str, password: str = PASSWORD, *, verified: bool = False
    ) -> None:
        """Signs an address up (and verifies it: only then does it log in)."""
        await self.say(chat_id, f"/signup {address} {password}")
        await self.deliver_emails()
        if verified:
            reply = await self.say(chat_id, f"/verify {self.verification_code(address)}")
            assert "is verified" in reply, reply

    def verification_code(self, address: str) -> str:
        body = self.inbox.last_text(address, "Verify your email")
        match = re.search(r"/verify ([A-Z0-9]{8})", body)
        assert match, body
        return match.group(1)

    def verification_payload(self, address: str) -> str:
        body = self.inbox.last_text(address, "Verify your email")
        link = f"https://t.me/{self.tg.username}?start="
        match = re.search(re.escape(link) + r"([A-Za-z0-9_-]+)", body)
        assert match, body
        return match.group(1)

    async def log_in(self, chat_id: int, address: str, password: str = PASSWORD) -> str:
        return await self.say(chat_id, f"/login {address} {password}")

    async def user(self, chat_id: int, address: str | None = None, *, verified: bool = True) -> str:
        """Signs up (and verifies) an account and logs it in to `chat_id`; returns the email."""
        address = address or f"user{chat_id}@example.com"
        await self.sign_up(chat_id, address, verified=verified)
        reply = await self.log_in(chat_id, address)
        assert "Logged in" in reply, reply
        await self.deliver_emails()
        return address

    async def save(self, chat_id: int, title: str, code: str) -> int:
        """Saves a snippet with /save; returns its number."""
        reply = await self.say(chat_id, f"/save {title}\n{code}")
        match = re.search(r"/get (\d+)", reply)
        assert match, reply
        return int(match.group(1))


@pytest.fixture
def bot_settings(tmp_path: Path, _sqlite_template: Path) -> Settings:
    # A copy of the session's migrated database: migrating anew costs more than the test.
    shutil.copyfile(_sqlite_template, tmp_path / "snippetvault.db")
    return load_settings(
        telegram_bot_token=FakeTelegram().token,
        data_dir=tmp_path,
        _env_file=None,
    )


@pytest.fixture
def clock() -> Clock:
    """The clock the bot's services run on (sessions, flows, codes, the outbox)."""
    return Clock()


@asynccontextmanager
async def running_bot(
    settings: Settings, tg: FakeTelegram, clock: Clock
) -> AsyncIterator[BotHarness]:
    """One bot process: its own services and `Application`, on `settings`' database."""
    await upgrade(settings.effective_database_url)
    services = await bootstrap(settings, clock=clock, hasher=PasswordHasher(rounds=4))
    app = build_application(
        settings,
        services=services,
        run_worker=False,
        request=FakeRequest(tg),
        rate_limit=False,
    )
    async with app:
        await app.post_init(app)  # type: ignore[misc]
        yield BotHarness(tg, app, services, Inbox(settings.mail_dir), clock)
        await app.post_shutdown(app)  # type: ignore[misc]
    assert not tg.fake_errors, tg.describe()


@pytest.fixture
async def harness(
    bot_settings: Settings, clock: Clock, secrets_guard: SecretsGuard
) -> AsyncIterator[BotHarness]:
    secrets_guard.remember(PASSWORD)  # no log line may show it
    async with running_bot(bot_settings, FakeTelegram(), clock) as bot:
        yield bot
