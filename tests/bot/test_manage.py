"""/list with its buttons, /search, /edit, /rename, /delete and the delete buttons."""

from __future__ import annotations

from tests.bot.conftest import BotHarness
from tests.fakebotapi import BotMessage


async def save_many(harness: BotHarness, chat_id: int, count: int) -> None:
    for number in range(1, count + 1):
        await harness.save(chat_id, f"Snippet {number}", f"def f{number}():\n    return {number}")


async def command(harness: BotHarness, chat_id: int, text: str) -> BotMessage:
    replies = await harness.exchange(
        chat_id, harness.tg.private_message(chat_id, chat_id, text, enqueue=False)
    )
    assert replies, text
    return replies[-1]


# -- /list -------------------------------------------------------------------------------


async def test_list_pages_with_buttons_and_edits_the_message(harness: BotHarness) -> None:
    await harness.user(1)
    await save_many(harness, 1, 10)

    listing = await command(harness, 1, "/list")

    assert listing.text.startswith("Your snippets (1–8 of 10):")
    assert listing.text.index("#10 Snippet 10") < listing.text.index("#3 Snippet 3")
    assert "#2 Snippet 2" not in listing.text
    assert listing.button_texts == [f"#{n} Snippet {n}" for n in range(10, 2, -1)] + ["Older ▶"]

    sent = await harness.press(1, listing.message_id, "Older ▶")

    assert sent == []  # the same message changes, nothing new arrives
    older = harness.tg.last_message(1)
    assert older is not None and older.message_id == listing.message_id and older.edited
    assert older.text.startswith("Your snippets (9–10 of 10):")
    assert "#2 Snippet 2" in older.text and "#1 Snippet 1" in older.text
    assert older.button_texts == ["#2 Snippet 2", "#1 Snippet 1", "◀ Newer"]

    await harness.press(1, listing.message_id, "◀ Newer")

    newer = harness.tg.last_message(1)
    assert newer is not None and newer.text.startswith("Your snippets (1–8 of 10):")
    assert newer.button_texts[-1] == "Older ▶"
    assert len(harness.tg.callback_answers()) == 2


async def test_a_list_button_opens_the_snippet(harness: BotHarness) -> None:
    await harness.user(1)
    await save_many(harness, 1, 3)
    listing = await command(harness, 1, "/list")

    [shown] = await harness.press(1, listing.message_id, "#2 Snippet 2")

    assert shown.text.startswith("Snippet 2 · #2 · Python\ndef f2():\n    return 2\n")
    assert shown.parse_mode == "HTML"
    assert harness.tg.callback_answers()


async def test_a_short_list_has_no_page_buttons(harness: BotHarness) -> None:
    await harness.user(1)
    await save_many(harness, 1, 2)

    listing = await command(harness, 1, "/list")

    assert listing.text.startswith("Your snippets (1–2 of 2):")
    assert listing.button_texts == ["#2 Snippet 2", "#1 Snippet 1"]


async def test_an_empty_list(harness: BotHarness) -> None:
    await harness.user(1)

    listing = await command(harness, 1, "/list")

    assert listing.text == "You have no snippets yet. Save one with /save."
    assert listing.buttons == []


async def test_list_titles_are_escaped(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "<b>x</b> & y", "def f():\n    pass")

    listing = await command(harness, 1, "/list")

    assert "#1 <b>x</b> & y" in listing.text


# -- /search -----------------------------------------------------------------------------


async def test_search_by_title_and_by_code(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Quick sort", "def sort(xs):\n    return sorted(xs)")
    await harness.save(1, "Fibonacci", "def fib(n):\n    return n if n < 2 else fib(n - 1)")

    by_title = await command(harness, 1, "/search quick")
    by_code = await command(harness, 1, "/search fib(n - 1)")

    assert by_title.text.startswith("Snippets matching “quick” (1–1 of 1):")
    assert "#1 Quick sort" in by_title.text and "Fibonacci" not in by_title.text
    assert by_title.button_texts == ["#1 Quick sort"]
    assert "#2 Fibonacci" in by_code.text and "Quick sort" not in by_code.text

    [shown] = await harness.press(1, by_code.message_id, "#2 Fibonacci")
    assert shown.text.startswith("Fibonacci · #2 · Python")


async def test_search_without_a_match(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Quick sort", "def sort(xs):\n    return sorted(xs)")

    reply = await command(harness, 1, "/search <nothing>")

    assert reply.text == "Nothing matches “<nothing>”. /list shows all your snippets."
    assert reply.buttons == []


async def test_search_without_text_explains(harness: BotHarness) -> None:
    await harness.user(1)

    assert "Tell me what to look for" in await harness.say(1, "/search")


async def test_search_finds_only_own_snippets(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Secret sort", "def sort(xs):\n    return sorted(xs)")
    await harness.user(2)

    assert (await command(harness, 2, "/search sort")).text.startswith("Nothing matches")


# -- /edit and /rename -------------------------------------------------------------------


async def test_edit_replaces_the_code(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Add", "def add(a, b):\n    return a + b")
    await harness.say(1, f"/get {number}")  # now cached

    reply = await harness.say(1, f"/edit {number}\ndef add(a, b):\n    return b + a")

    assert reply == f"✏️ Updated Add · #{number} · Python. See it with /get {number}"
    assert "return b + a" in await harness.say(1, f"/get {number}")


async def test_edit_with_a_fence_changes_the_language(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Query", "def query():\n    pass")

    reply = await harness.say(1, f"/edit {number}\n```sql\nSELECT 1;\n```")

    assert f"Query · #{number} · SQL" in reply
    shown = await harness.say(1, f"/get {number}")
    assert "SELECT 1;" in shown and "```" not in shown


async def test_edit_without_code_asks_for_it(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Add", "def add(a, b):\n    return a + b")

    assert await harness.say(1, f"/edit {number}") == (
        f"Send me the new code for #{number} (/cancel to stop)."
    )
    reply = await harness.say(1, "def add(a, b):\n    return sum((a, b))")

    assert f"✏️ Updated Add · #{number}" in reply
    assert "sum((a, b))" in await harness.say(1, f"/get {number}")


async def test_edit_of_a_missing_snippet_does_not_ask_for_code(harness: BotHarness) -> None:
    await harness.user(1)

    assert "There is no snippet 5 among yours" in await harness.say(1, "/edit 5")
    assert "To save this" in await harness.say(1, "x = 1")


async def test_edit_without_a_number_explains(harness: BotHarness) -> None:
    await harness.user(1)

    assert "Which snippet? e.g. /edit 3" in await harness.say(1, "/edit")


async def test_rename(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Old name", "def f():\n    pass")
    await harness.say(1, "/list")  # the list is cached now

    reply = await harness.say(1, f"/rename {number} New <name>")

    assert reply == f"✏️ Renamed to New <name> · #{number} · Python."
    assert f"#{number} New <name>" in await harness.say(1, "/list")
    assert (await harness.say(1, f"/get {number}")).startswith("New <name> · #")


async def test_rename_without_a_title_explains(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Old name", "def f():\n    pass")

    assert "Send /rename <number> <new title>" in await harness.say(1, "/rename 1")


# -- /delete and the delete buttons -------------------------------------------------------


async def test_delete_by_command(harness: BotHarness) -> None:
    address = await harness.user(1)
    number = await harness.save(1, "Doomed", "def f():\n    pass")
    await harness.say(1, f"/get {number}")

    reply = await harness.say(1, f"/delete {number}")

    assert reply.startswith(f"🗑 Deleted Doomed · #{number} · Python.")
    assert "A confirmation email is on its way" in reply
    assert "There is no snippet" in await harness.say(1, f"/get {number}")
    assert "You have no snippets yet" in await harness.say(1, "/list")
    await harness.deliver_emails()
    assert "Doomed" in harness.inbox.last_text(address, "Snippet Deleted")


async def test_delete_button_asks_then_deletes(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Doomed", "def f():\n    pass")
    shown = await command(harness, 1, f"/get {number}")

    [question] = await harness.press(1, shown.message_id, "🗑 Delete")

    assert question.text == f"Delete Doomed · #{number} · Python? You can undo it for 10 minutes."
    assert question.button_texts == ["Yes, delete it", "Keep it"]

    [done] = await harness.press(1, question.message_id, "Yes, delete it")

    assert done.text.startswith(f"🗑 Deleted Doomed · #{number}")
    confirm = harness.tg.sent_messages(1)[-2]
    assert confirm.message_id == question.message_id and confirm.buttons == []
    assert "There is no snippet" in await harness.say(1, f"/get {number}")


async def test_keep_it_keeps_the_snippet(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Precious", "def f():\n    pass")
    shown = await command(harness, 1, f"/get {number}")
    [question] = await harness.press(1, shown.message_id, "🗑 Delete")

    sent = await harness.press(1, question.message_id, "Keep it")

    assert sent == []
    assert harness.tg.callback_answers()[-1].get("text") == "Kept."
    kept = next(m for m in harness.tg.sent_messages(1) if m.message_id == question.message_id)
    assert kept.buttons == []
    assert "Precious · #" in await harness.say(1, f"/get {number}")


async def test_pressing_delete_twice_does_not_fail(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Doomed", "def f():\n    pass")
    shown = await command(harness, 1, f"/get {number}")
    [question] = await harness.press(1, shown.message_id, "🗑 Delete")
    [data] = [data for label, data in question.buttons[0] if label == "Yes, delete it"]
    await harness.press(1, question.message_id, "Yes, delete it")

    again = await harness.exchange(
        1, harness.tg.callback_query(1, question.message_id, data, enqueue=False)
    )

    assert again == []
    answer = harness.tg.callback_answers()[-1]
    assert answer.get("show_alert") is True
    assert "There is no snippet" in str(answer.get("text"))


async def test_a_stale_button_after_logout_asks_to_log_in(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Snippet", "def f():\n    pass")
    listing = await command(harness, 1, "/list")
    await harness.say(1, "/logout")

    [reply] = await harness.press(1, listing.message_id, "#1 Snippet")

    assert "log in first" in reply.text
