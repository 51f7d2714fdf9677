from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from telegram.ext import Application, ApplicationBuilder

from bot.logs import redact_library_logs
from tests.fakebotapi import FakeBotApiServer, FakeTelegram, application_builder


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    tg = FakeTelegram()
    # PTB logs its Bot API URLs, token included; the bot scrubs them (bot/app.py) and so do
    # these tests of bare applications, whatever ran before them.
    redact_library_logs((tg.token,))
    yield tg
    assert not tg.fake_errors, tg.describe()


@pytest.fixture
async def server(tg: FakeTelegram) -> AsyncIterator[FakeBotApiServer]:
    async with FakeBotApiServer(tg) as server:
        yield server


@pytest.fixture(params=["in-process", "http"])
async def builder(
    request: pytest.FixtureRequest, tg: FakeTelegram
) -> AsyncIterator[ApplicationBuilder[Any, Any, Any, Any, Any, Any]]:
    """An application builder wired to the fake, through FakeRequest or the real HTTP stack."""
    if request.param == "in-process":
        yield application_builder(tg)
        return
    async with FakeBotApiServer(tg) as server:
        yield (
            Application.builder()
            .token(tg.token)
            .base_url(server.base_url)
            .base_file_url(server.base_file_url)
        )
