"""With PUBLIC_URL the chat leads to the Mini App: the menu button of every private chat, and an
"Open in app" button under /get and /list. Without it nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.settings import Settings
from tests.bot.conftest import BotHarness, Clock, running_bot
from tests.fakebotapi import FakeTelegram

PUBLIC_URL = "https://snippets.example.org"


@pytest.fixture
async def with_app(bot_settings: Settings, clock: Clock) -> AsyncIterator[BotHarness]:
    settings = bot_settings.model_copy(update={"public_url": PUBLIC_URL})
    async with running_bot(settings, FakeTelegram(), clock) as bot:
        yield bot


def _web_apps(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(b["text"], b["web_app"]["url"]) for row in rows for b in row if "web_app" in b]


async def test_the_menu_button_opens_the_app(with_app: BotHarness) -> None:
    button = with_app.tg.menu_button()

    assert button == {
        "type": "web_app",
        "text": "Open app",
        "web_app": {"url": f"{PUBLIC_URL}/app/"},
    }


async def test_get_offers_the_snippet_in_the_app(with_app: BotHarness) -> None:
    await with_app.user(1)
    number = await with_app.save(1, "Add", "def add(a, b):\n    return a + b")

    [message] = await with_app.exchange(
        1, with_app.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    assert _web_apps(message.reply_markup) == [
        ("📱 Open in app", f"{PUBLIC_URL}/app/?snippet={number}")
    ]
    assert "🗑 Delete" in message.button_texts


async def test_list_offers_the_app_also_when_empty_and_across_pages(with_app: BotHarness) -> None:
    await with_app.user(1)
    [empty] = await with_app.exchange(1, with_app.tg.private_message(1, 1, "/list", enqueue=False))
    assert _web_apps(empty.reply_markup) == [("📱 Open in app", f"{PUBLIC_URL}/app/")]

    for n in range(10):
        await with_app.save(1, f"Snippet {n}", f"print({n})")
    [listed] = await with_app.exchange(1, with_app.tg.private_message(1, 1, "/list", enqueue=False))
    assert _web_apps(listed.reply_markup) == [("📱 Open in app", f"{PUBLIC_URL}/app/")]

    await with_app.press(1, listed.message_id, "Older ▶")
    paged = with_app.tg.last_message(1)
    assert paged is not None and paged.message_id == listed.message_id and paged.edited
    assert "◀ Newer" in paged.button_texts
    assert _web_apps(paged.reply_markup) == [("📱 Open in app", f"{PUBLIC_URL}/app/")]


async def test_without_public_url_nothing_changes(harness: BotHarness) -> None:
    assert harness.tg.menu_button() == {"type": "default"}
    await harness.user(1)
    number = await harness.save(1, "Add", "x = 1")

    [shown] = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )
    [listed] = await harness.exchange(1, harness.tg.private_message(1, 1, "/list", enqueue=False))

    assert shown.button_texts == ["🗑 Delete"]
    assert not _web_apps(listed.reply_markup)
    assert not any(call.method == "setChatMenuButton" for call in harness.tg.calls())
