"""Kept versions (/history, view and restore buttons) and the undo of a delete."""

from __future__ import annotations

from core.entities import Client
from storage.cache import MemorySnippetCache, list_key
from tests.bot.conftest import BotHarness
from tests.fakebotapi import BotMessage


async def command(harness: BotHarness, chat_id: int, text: str) -> BotMessage:
    replies = await harness.exchange(
        chat_id, harness.tg.private_message(chat_id, chat_id, text, enqueue=False)
    )
    assert replies, text
    return replies[-1]


async def press_data(harness: BotHarness, chat_id: int, message_id: int, data: str) -> str:
    """Sends a callback with any data (a forged or old button); returns the alert or reply."""
    since = harness.tg.mark()
    await harness.send(harness.tg.callback_query(chat_id, message_id, data, enqueue=False))
    sent = [m for m in harness.tg.sent_messages(chat_id) if m.seq > since]
    if sent:
        return sent[-1].text
    return str(harness.tg.callback_answers()[-1].get("text", ""))


def button_data(message: BotMessage, label: str) -> str:
    for text, data in (button for row in message.buttons for button in row):
        if text == label and data is not None:
            return data
    raise AssertionError(f"no button {label!r} in {message.button_texts}")


# -- versions -----------------------------------------------------------------------------


async def test_edit_and_rename_keep_versions_to_view_and_restore(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def sort(xs):\n    return xs")
    await harness.say(1, "/edit 1\ndef sort(xs):\n    return sorted(xs)")
    await harness.say(1, "/rename 1 Sorted")

    history = await command(harness, 1, "/history 1")

    assert history.text.startswith("Versions of Sorted · #1 · Python:")
    assert "v3 (current)" in history.text and "v2 ·" in history.text and "v1 ·" in history.text
    assert "return sorted(xs)" in history.text  # v2's first changed line
    assert history.button_texts == ["👁 v2", "↩️ Restore v2", "👁 v1", "↩️ Restore v1"]

    [old] = await harness.press(1, history.message_id, "👁 v1")
    assert old.text.startswith("Sort · #1 · Python\ndef sort(xs):\n    return xs\nVersion 1")

    [restored] = await harness.press(1, history.message_id, "↩️ Restore v1")
    assert "is back at version 1" in restored.text
    shown = await harness.say(1, "/get 1")
    assert shown.startswith("Sort · #1 · Python\ndef sort(xs):\n    return xs\n")
    again = await harness.say(1, "/history 1")
    assert (
        "v4 (current)" in again.text if isinstance(again, BotMessage) else "v4 (current)" in again
    )


async def test_at_most_fifty_versions_the_oldest_dropped(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Counter", "n = 0")
    user = await harness.services.accounts.current_user(Client.chat(1))
    for number in range(1, 60):
        await harness.services.snippets.edit(user, 1, f"n = {number}")

    snippet, versions = await harness.services.organise.history(user, 1)

    assert len(versions) == 50
    assert versions[-1].is_current and versions[-1].code == "n = 59"
    assert versions[0].code == "n = 10"  # 0 … 9 dropped
    history = await command(harness, 1, "/history 1")
    assert history.text.startswith("Versions of Counter · #1 · Text (1–8 of 50):")
    assert "v60 (current)" in history.text and "v53 ·" in history.text  # numbers go on
    assert history.button_texts[-1] == "Older ▶"

    assert await harness.press(1, history.message_id, "Older ▶") == []  # the message changes
    older = harness.tg.last_message(1)
    assert older is not None and older.message_id == history.message_id
    assert older.text.startswith("Versions of Counter · #1 · Text (9–16 of 50):")
    assert "v52 ·" in older.text and "👁 v52" in older.button_texts
    assert older.button_texts[-2:] == ["◀ Newer", "Older ▶"]
    for _ in range(5):
        last = harness.tg.last_message(1)
        assert last is not None
        if "Older ▶" not in last.button_texts:
            break
        await harness.press(1, history.message_id, "Older ▶")
    oldest_page = harness.tg.last_message(1)
    assert oldest_page is not None and "(49–50 of 50)" in oldest_page.text
    assert f"👁 v{versions[0].number}" in oldest_page.button_texts
    oldest_number = versions[0].number
    old_number = oldest_number - 1
    gone = await press_data(harness, 1, 1, f"restore:{snippet.id.hex}:{old_number}")
    assert gone == f"Version {old_number} of that snippet is no longer kept."


async def test_another_users_history_and_version_buttons_are_not_found(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Mine", "secret = 1")
    await harness.say(1, "/edit 1\nsecret = 2")
    user = await harness.services.accounts.current_user(Client.chat(1))
    mine = await harness.services.snippets.view(user, 1)

    assert await harness.say(2, "/history 1") == await harness.say(2, "/history 1")
    assert await harness.say(2, "/history 1") == (
        "There is no snippet 1 among yours. Send /list to see them."
    )
    for action in ("ver", "restore"):
        theirs = await press_data(harness, 2, 1, f"{action}:{mine.id.hex}:1")
        missing = await press_data(harness, 2, 1, f"{action}:{'0' * 32}:1")
        assert theirs == missing == "That snippet is no longer among yours."
    assert "secret = 2" in await harness.say(1, "/get 1")  # nothing restored


async def test_a_restore_drops_the_cached_snippet_and_list(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "v = 1")
    await harness.say(1, "/rename 1 Renamed")
    for _ in range(2):
        await harness.say(1, "/get 1")
    assert "Renamed" in await harness.say(1, "/list")
    history = await command(harness, 1, "/history 1")

    await harness.press(1, history.message_id, "↩️ Restore v1")

    assert (await harness.say(1, "/get 1")).startswith("Sort · #1")
    assert "#1 Sort" in await harness.say(1, "/list")


# -- undo ---------------------------------------------------------------------------------


async def test_delete_then_undo_brings_back_ref_tags_and_history(harness: BotHarness) -> None:
    address = await harness.user(1)
    await harness.save(1, "Sort #python", "v = 1")
    await harness.say(1, "/edit 1\nv = 2")

    deleted = await command(harness, 1, "/delete 1")
    await harness.deliver_emails()

    assert deleted.text.startswith("🗑 Deleted Sort · #1 · Text. Undo within 10 minutes")
    assert deleted.button_texts == ["↩️ Undo"]
    assert len(harness.inbox.to(address, "Snippet Deleted")) == 1

    [restored] = await harness.press(1, deleted.message_id, "↩️ Undo")
    await harness.deliver_emails()

    assert restored.text == "↩️ Restored Sort · #1 · Text. /get 1"
    after = {m.message_id: m for m in harness.tg.sent_messages(1)}
    assert after[deleted.message_id].buttons == []  # the Undo button is gone
    shown = await harness.say(1, "/get 1")
    assert shown.startswith("Sort · #1 · Text\n#python\nv = 2")
    assert "v1" in await harness.say(1, "/history 1")
    assert len(harness.inbox.to(address, "Snippet Deleted")) == 1  # not again on undo


async def test_a_deleted_snippet_is_invisible_everywhere_until_undone(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    await harness.save(1, "Needle #hay", "needle = 1")
    for _ in range(2):
        await harness.say(1, "/get 1")  # cached ref and snippet
    await harness.say(1, "/list")  # cached list

    deleted = await command(harness, 1, "/delete 1")

    missing = "There is no snippet 1 among yours. Send /list to see them."
    assert await harness.say(1, "/get 1") == missing
    assert await harness.say(1, "/edit 1\nx = 2") == missing
    assert await harness.say(1, "/history 1") == missing
    assert await harness.say(1, "/tag 1 x") == missing
    assert await harness.say(1, "/share 1") == missing
    assert await harness.say(1, "/list") == "You have no snippets yet. Save one with /save."
    assert "Nothing matches" in await harness.say(1, "/search needle")
    assert await harness.say(1, "/list #hay") == "None tagged #hay."
    assert "You have no tags yet" in await harness.say(1, "/tags")

    await harness.press(1, deleted.message_id, "↩️ Undo")

    assert "#1 Needle" in await harness.say(1, "/list")
    assert "needle = 1" in await harness.say(1, "/get 1")


async def test_undo_after_ten_minutes_is_too_late_and_the_purge_removes_it(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    await harness.save(1, "Doomed", "x = 1")
    deleted = await command(harness, 1, "/delete 1")
    undo = button_data(deleted, "↩️ Undo")

    harness.clock.advance(9 * 60)
    assert await harness.services.organise.purge_deleted() == 0
    harness.clock.advance(61)
    assert await harness.services.organise.purge_deleted() == 1

    assert await press_data(harness, 1, deleted.message_id, undo) == (
        "Too late to undo: that snippet is gone for good."
    )
    assert await harness.say(1, "/list") == "You have no snippets yet. Save one with /save."
    # Refs are never reused, even after the purge.
    assert await harness.save(1, "Next", "y = 2") == 2


async def test_another_users_undo_button_is_not_found(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Mine", "x = 1")
    deleted = await command(harness, 1, "/delete 1")
    undo = button_data(deleted, "↩️ Undo")

    theirs = await press_data(harness, 2, 1, undo)
    missing = await press_data(harness, 2, 1, f"undo:{'0' * 32}")

    assert theirs == missing == "Too late to undo: that snippet is gone for good."
    assert await harness.say(1, "/list") == "You have no snippets yet. Save one with /save."


async def test_an_old_undo_button_never_acts_on_another_snippet(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "First", "x = 1")
    first = await command(harness, 1, "/delete 1")
    first_undo = button_data(first, "↩️ Undo")
    await harness.press(1, first.message_id, "↩️ Undo")
    await harness.save(1, "Second", "y = 2")
    await harness.say(1, "/delete 2")

    # The first snippet's button, pressed again, concerns only the first (live already).
    again = await press_data(harness, 1, first.message_id, first_undo)

    assert again == "Too late to undo: that snippet is gone for good."
    assert "There is no snippet 2" in await harness.say(1, "/get 2")


async def test_delete_and_undo_drop_the_cached_list(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Kept", "x = 1")
    await harness.say(1, "/list")
    cache = harness.services.cache
    assert isinstance(cache, MemorySnippetCache)
    owner = (await harness.services.accounts.current_user(Client.chat(1))).id
    assert list_key(owner) in cache._values

    deleted = await command(harness, 1, "/delete 1")
    assert list_key(owner) not in cache._values
    await harness.say(1, "/list")
    await harness.press(1, deleted.message_id, "↩️ Undo")

    assert list_key(owner) not in cache._values
    assert "#1 Kept" in await harness.say(1, "/list")
