"""The HTTP API in-process: the real ASGI app over httpx, on SQLite and PostgreSQL, its emails
written as .eml files and delivered on demand."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from bootstrap import Services, bootstrap
from core.entities import Client
from core.security import PasswordHasher
from core.settings import Settings, load_settings
from tests.bot.conftest import Inbox
from tests.fakebotapi import FakeTelegram

PASSWORD = "correct-horse-9"
JWT_SECRET = "api-tests-jwt-secret-of-enough-bytes-0123456789abcdef"
CALLER = ("198.51.100.7", 50000)


@dataclass
class Clock:
    """Real time plus an offset the test moves forward (no sleeping)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class ApiHarness:
    http: httpx.AsyncClient
    services: Services
    settings: Settings
    inbox: Inbox
    clock: Clock

    async def deliver_emails(self) -> int:
        return await self.services.worker.drain_once()

    def verification_code(self, address: str) -> str:
        body = self.inbox.last_text(address, "Verify your email")
        match = re.search(r"/verify ([A-Z0-9]{8})", body)
        assert match, body
        return match.group(1)

    async def account(self, address: str, password: str = PASSWORD) -> None:
        """Signs up and verifies `address` over HTTP."""
        response = await self.http.post(
            "/auth/signup", json={"email": address, "password": password}
        )
        assert response.status_code == 202, response.text
        await self.deliver_emails()
        code = self.verification_code(address)
        response = await self.http.post("/auth/verify", json={"code": code})
        assert response.status_code == 200, response.text

    async def token(self, address: str, password: str = PASSWORD) -> str:
        response = await self.http.post(
            "/auth/login", json={"email": address, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def user(self, address: str | None = None) -> dict[str, str]:
        """A verified account, logged in: the headers that act as it."""
        address = address or f"user-{len(self.inbox.messages())}-{id(self)}@example.com"
        await self.account(address)
        return {"Authorization": f"Bearer {await self.token(address)}"}

    async def chat_token(self, address: str, chat_id: int, password: str = PASSWORD) -> str:
        """The token of a chat session (as the bot's /login makes one)."""
        result = await self.services.accounts.login(address, password, Client.chat(chat_id))
        return result.token

    async def create(
        self, headers: dict[str, str], title: str, code: str, **extra: Any
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/snippets", json={"title": title, "code": code, **extra}, headers=headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def api_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    return load_settings(
        database_url=database_url,
        data_dir=data_dir,
        jwt_secret=JWT_SECRET,
        telegram_bot_token=FakeTelegram().token,
        _env_file=None,
        **overrides,
    )


async def open_api(settings: Settings, clock: Clock) -> tuple[Services, httpx.AsyncClient]:
    services = await bootstrap(settings, clock=clock, hasher=PasswordHasher(rounds=4))
    services.set_bot_username("SnippetVaultTestBot")
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, client=CALLER)
    return services, httpx.AsyncClient(transport=transport, base_url="http://api.test")


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    settings = api_settings(database_url, tmp_path)
    clock = Clock()
    services, http = await open_api(settings, clock)
    async with http:
        yield ApiHarness(http, services, settings, Inbox(settings.mail_dir), clock)
    await services.close()


@pytest.fixture
async def sqlite_api(sqlite_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """The same on SQLite only (for the many-request tables)."""
    settings = api_settings(sqlite_url, tmp_path)
    clock = Clock()
    services, http = await open_api(settings, clock)
    async with http:
        yield ApiHarness(http, services, settings, Inbox(settings.mail_dir), clock)
    await services.close()
