"""Share links: /share, opening with /start, /shares with revoke buttons, /unshare, expiry,
single view, and the rules that end a link (revoke, delete)."""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

from storage.models import share_links
from tests.bot.conftest import BotHarness
from tests.fakebotapi import BotMessage

GONE = "This link has expired or was revoked."


async def command(harness: BotHarness, chat_id: int, text: str) -> BotMessage:
    replies = await harness.exchange(
        chat_id, harness.tg.private_message(chat_id, chat_id, text, enqueue=False)
    )
    assert replies, text
    return replies[-1]


async def share(harness: BotHarness, chat_id: int, text: str) -> str:
    """Runs `/share …`; returns the link's start payload."""
    reply = await harness.say(chat_id, text)
    match = re.search(
        rf"https://t\.me/{harness.tg.username}\?start=(share_[A-Za-z0-9_-]{{22}})", reply
    )
    assert match, reply
    return match.group(1)


async def open_link(harness: BotHarness, chat_id: int, payload: str) -> str:
    return await harness.say(chat_id, f"/start {payload}")


async def test_a_share_link_shows_title_language_and_code_to_anyone(
    harness: BotHarness,
) -> None:
    address = await harness.user(1)
    await harness.save(1, "Quick sort #algo", "def qs(xs):\n    return sorted(xs)")

    reply = await harness.say(1, "/share 1")
    payload = await share(harness, 1, "/share 1")

    assert "It works until" in reply and "nothing about you" in reply
    seen = await open_link(harness, 77, payload)  # a stranger, not logged in
    assert seen == (
        "Quick sort · Python\ndef qs(xs):\n    return sorted(xs)\n"
        "Shared with you through SnippetVault (read-only)."
    )
    assert address not in seen and "#1" not in seen and "algo" not in seen
    assert await open_link(harness, 77, payload) == seen  # works again until it expires


async def test_only_the_hash_of_the_token_is_stored(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")

    payload = await share(harness, 1, "/share 1")

    token = payload.removeprefix("share_")
    async with harness.services.database.engine.connect() as connection:
        stored = (await connection.execute(sa.select(share_links.c.token_hash))).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert len(token) == 22  # 128 random bits, base64url


async def test_once_works_for_a_single_view(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    payload = await share(harness, 1, "/share 1 once")

    assert "Sort · Python" in await open_link(harness, 77, payload)
    assert await open_link(harness, 78, payload) == GONE
    assert await open_link(harness, 77, payload) == GONE


async def test_expiry_default_seven_days_and_one_hour(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    hour = await share(harness, 1, "/share 1 1h")
    week = await share(harness, 1, "/share 1")
    assert "1h, 1d or 7d" in await harness.say(1, "/share 1 forever")

    harness.clock.advance(3601)
    assert await open_link(harness, 77, hour) == GONE
    assert "Sort · Python" in await open_link(harness, 77, week)
    harness.clock.advance(7 * 24 * 3600)
    assert await open_link(harness, 77, week) == GONE


async def test_unknown_malformed_revoked_expired_used_all_answer_alike(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    revoked = await share(harness, 1, "/share 1")
    await harness.say(1, "/unshare 1")

    for payload in (revoked, "share_" + "A" * 22, "share_short", "share_" + "x" * 40):
        assert await open_link(harness, 77, payload) == GONE


async def test_shares_lists_live_links_with_revoke_buttons(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    await harness.save(1, "Sum", "def total(xs):\n    return sum(xs)")
    first = await share(harness, 1, "/share 1 1d")
    second = await share(harness, 1, "/share 2 once")

    listing = await command(harness, 1, "/shares")

    assert listing.text.startswith("Your live share links:")
    assert "#1 Sort" in listing.text and "#2 Sum · one view" in listing.text
    assert listing.button_texts[0] == "✖ Revoke #2 (one view)"
    [done] = await harness.press(1, listing.message_id, "✖ Revoke #2 (one view)")
    assert done.text == "🔗 That link no longer works."
    assert await open_link(harness, 77, second) == GONE
    assert "Sort · Python" in await open_link(harness, 77, first)
    assert "#2 Sum" not in await harness.say(1, "/shares")


async def test_unshare_ends_every_link_of_the_snippet(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    links = [await share(harness, 1, "/share 1") for _ in range(2)]

    assert await harness.say(1, "/unshare 1") == "Ended 2 links to #1."

    for payload in links:
        assert await open_link(harness, 77, payload) == GONE
    assert "no live share links" in await harness.say(1, "/shares")


async def test_an_edit_shows_the_new_code(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return xs")
    payload = await share(harness, 1, "/share 1")
    await harness.say(1, "/get 1")  # cached
    await harness.say(1, "/edit 1\ndef qs(xs):\n    return sorted(xs)")

    assert "return sorted(xs)" in await open_link(harness, 77, payload)


async def test_a_delete_ends_the_links_even_after_an_undo(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return xs")
    payload = await share(harness, 1, "/share 1")

    deleted = await command(harness, 1, "/delete 1")

    assert await open_link(harness, 77, payload) == GONE
    assert "no live share links" in await harness.say(1, "/shares")
    await harness.press(1, deleted.message_id, "↩️ Undo")
    assert await open_link(harness, 77, payload) == GONE


async def test_another_users_snippet_and_link_are_not_found(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Mine", "def qs(xs):\n    return xs")
    payload = await share(harness, 1, "/share 1")
    listing = await command(harness, 1, "/shares")
    revoke = listing.buttons[0][0][1]
    assert revoke is not None

    missing = "There is no snippet 1 among yours. Send /list to see them."
    assert await harness.say(2, "/share 1") == missing
    assert await harness.say(2, "/unshare 1") == missing
    assert "no live share links" in await harness.say(2, "/shares")
    since = harness.tg.mark()
    await harness.send(harness.tg.callback_query(2, 1, revoke, enqueue=False))
    assert not [m for m in harness.tg.sent_messages(2) if m.seq > since]
    assert harness.tg.callback_answers()[-1]["text"].startswith("There is no such link")
    assert "Mine · Python" in await open_link(harness, 77, payload)  # still live
