"""When something breaks: the error handler's apology, and the database being unreachable."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bot.app import APOLOGY
from bot.wording import UNAVAILABLE
from core.security import PasswordHasher
from core.settings import load_settings
from tests.bot.conftest import BotHarness


async def explode(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom in a use case")


async def test_an_unexpected_error_gets_an_apology_and_is_logged(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.user(1)
    monkeypatch.setattr(harness.services.snippets, "list", explode)

    with caplog.at_level(logging.ERROR, logger="bot.app"):
        reply = await harness.say(1, "/list")

    assert reply == APOLOGY
    [record] = [r for r in caplog.records if r.name == "bot.app"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("unhandled error for update")
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_an_error_behind_a_button_answers_the_button_and_apologises(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.user(1)
    for number in range(9):
        await harness.save(1, f"Snippet {number}", "def f():\n    pass")
    [listing] = await harness.exchange(1, harness.tg.private_message(1, 1, "/list", enqueue=False))
    monkeypatch.setattr(harness.services.snippets, "list", explode)

    with caplog.at_level(logging.ERROR, logger="bot.app"):
        [reply] = await harness.press(1, listing.message_id, "Older ▶")

    assert reply.text == APOLOGY
    assert len(harness.tg.callback_answers()) == 1
    assert any(r.name == "bot.app" and r.levelno == logging.ERROR for r in caplog.records)


async def test_the_apology_arrives_even_when_the_button_cannot_be_answered(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.user(1)
    await harness.save(1, "Snippet", "def f():\n    pass")
    [listing] = await harness.exchange(1, harness.tg.private_message(1, 1, "/list", enqueue=False))
    harness.tg.fail_next(
        "answerCallbackQuery",
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
        times=2,
    )

    with caplog.at_level(logging.ERROR, logger="bot.app"):
        [reply] = await harness.press(1, listing.message_id, "#1 Snippet")

    assert reply.text == APOLOGY


async def test_a_failing_apology_is_only_logged(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.user(1)
    monkeypatch.setattr(harness.services.snippets, "list", explode)
    harness.tg.fail_next("sendMessage", "Forbidden: bot was blocked by the user", error_code=403)

    with caplog.at_level(logging.WARNING, logger="bot.app"):
        await harness.say(1, "/list")

    assert any("could not send the apology" in r.getMessage() for r in caplog.records)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting is refused at once


@asynccontextmanager
async def unreachable_database(harness: BotHarness, tmp_path: Path) -> AsyncIterator[None]:
    """Points the bot's services at a PostgreSQL server that is not there."""
    dead = load_settings(
        telegram_bot_token=harness.tg.token,
        data_dir=tmp_path / "dead",
        database_url=f"postgresql+asyncpg://snippetvault@127.0.0.1:{closed_port()}/snippetvault",
        jwt_secret="an-unguessable-test-secret-of-enough-bytes",
        _env_file=None,
    )
    services = await bootstrap(dead, hasher=PasswordHasher(rounds=4))
    services.set_bot_username(harness.tg.username)
    alive = harness.app.bot_data["services"]
    harness.app.bot_data["services"] = services
    try:
        yield
    finally:
        harness.app.bot_data["services"] = alive
        await services.close()


@pytest.fixture
async def database_down(harness: BotHarness, tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with unreachable_database(harness, tmp_path):
        yield harness


@pytest.mark.parametrize(
    "text",
    [
        "/get 1",
        "/list",
        "/save Title\ndef f():\n    pass",
        "/signup ada@example.com s3cret-pass",
        "/login ada@example.com s3cret-pass",
        "/verify ABCDEFGH",
        "/reset ada@example.com",
        "/login",
        "/cancel",
        "some text",
    ],
)
async def test_database_down_says_temporarily_unavailable(
    database_down: BotHarness, text: str
) -> None:
    assert (await database_down.say(1, text)).endswith(UNAVAILABLE)


async def test_database_down_for_a_file(database_down: BotHarness) -> None:
    [reply] = await database_down.exchange(
        1, database_down.tg.document(1, 1, "a.py", b"x = 1\n", enqueue=False)
    )

    assert reply.text == UNAVAILABLE


async def test_database_down_for_a_button(harness: BotHarness, tmp_path: Path) -> None:
    await harness.user(1)
    await harness.save(1, "Snippet", "def f():\n    pass")
    [listing] = await harness.exchange(1, harness.tg.private_message(1, 1, "/list", enqueue=False))
    async with unreachable_database(harness, tmp_path):
        [reply] = await harness.press(1, listing.message_id, "#1 Snippet")

    assert reply.text == UNAVAILABLE
    assert len(harness.tg.callback_answers()) == 1


async def test_the_bot_works_again_once_the_database_is_back(
    harness: BotHarness, tmp_path: Path
) -> None:
    await harness.user(1)
    async with unreachable_database(harness, tmp_path):
        assert await harness.say(1, "/list") == UNAVAILABLE

    assert "You have no snippets yet" in await harness.say(1, "/list")
