"""Saving snippets: /save with code, fences, Telegram code blocks, replies, files, flows."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import BotHarness


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def shown(harness: BotHarness, chat_id: int, number: int) -> Any:
    """The snippet message `/get number` shows: (visible text, raw HTML, pre entity)."""
    replies = await harness.exchange(
        chat_id, harness.tg.private_message(chat_id, chat_id, f"/get {number}", enqueue=False)
    )
    [message] = replies
    pre = next(entity for entity in message.entities if entity["type"] == "pre")
    return message.text, message.raw_text, pre


def code_of(text: str, pre: dict[str, Any]) -> str:
    """The part of `text` the `pre` entity covers (offsets are in UTF-16 code units)."""
    encoded = text.encode("utf-16-le")
    start, length = pre["offset"] * 2, pre["length"] * 2
    return encoded[start : start + length].decode("utf-16-le")


async def test_save_with_title_and_code_lines(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save Quick sort\ndef sort(xs):\n    return sorted(xs)")

    assert reply.startswith("✅ Saved Quick sort · #1 · Python.")
    assert "Fetch it with /get 1" in reply
    assert "A confirmation email is on its way" in reply
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == "def sort(xs):\n    return sorted(xs)"
    assert pre["language"] == "python"
    await harness.deliver_emails()
    assert harness.inbox.to("user1@example.com", "New Snippet Created")


async def test_the_reply_names_the_exact_get_command_for_each_snippet(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    for number in (1, 2, 3):
        reply = await harness.say(1, f"/save Snippet {number}\nprint({number})")
        assert f"#{number}" in reply and f"Fetch it with /get {number}" in reply


async def test_fenced_block_is_unwrapped_and_names_the_language(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save Greeting\n```python\nprint('hi')\n```")

    assert "Greeting · #1 · Python" in reply
    text, raw, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == "print('hi')"
    assert "```" not in text
    assert '<code class="language-python">' in raw


async def test_fence_language_wins_over_guessing(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save Query\n```sql\nselect 1\n```")

    assert "Query · #1 · SQL" in reply


async def test_telegram_code_block_language_is_used(harness: BotHarness) -> None:
    await harness.user(1)
    text = '/save Kotlin hello\nval greeting = "hi"'
    code = 'val greeting = "hi"'
    update = harness.tg.private_message(1, 1, text, enqueue=False)
    update["message"]["entities"].append(
        {
            "type": "pre",
            "offset": utf16_len(text) - utf16_len(code),
            "length": utf16_len(code),
            "language": "kotlin",
        }
    )

    [reply] = await harness.exchange(1, update)

    assert "Kotlin hello · #1 · Kotlin" in reply.text
    message_text, _, pre = await shown(harness, 1, 1)
    assert code_of(message_text, pre) == code


async def test_save_as_a_reply_to_a_text_message(harness: BotHarness) -> None:
    await harness.user(1)
    original = harness.tg.private_message(1, 1, "SELECT name FROM users;", enqueue=False)
    await harness.send(original)

    reply = await harness.say(1, "/save Names", reply_to=original["message"]["message_id"])

    assert "Names · #1 · SQL" in reply
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == "SELECT name FROM users;"


async def test_save_as_a_reply_to_a_fenced_message_unwraps_it(harness: BotHarness) -> None:
    await harness.user(1)
    original = harness.tg.private_message(1, 1, "```js\nconsole.log(1)\n```", enqueue=False)
    await harness.send(original)

    reply = await harness.say(1, "/save Log", reply_to=original["message"]["message_id"])

    assert "Log · #1 · JavaScript" in reply
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == "console.log(1)"


async def test_save_as_a_reply_to_a_save_command_takes_its_code(harness: BotHarness) -> None:
    await harness.user(1)
    original = harness.tg.private_message(1, 1, "/save First\nprint(1)", enqueue=False)
    await harness.send(original)

    reply = await harness.say(1, "/save Second", reply_to=original["message"]["message_id"])

    assert "Second · #2" in reply
    text, _, pre = await shown(harness, 1, 2)
    assert code_of(text, pre) == "print(1)"


async def test_save_as_a_reply_to_a_document_message(harness: BotHarness) -> None:
    await harness.user(1)
    document = harness.tg.document(1, 1, "tool.rs", b"fn main() {}\n", enqueue=False)
    await harness.send(document)

    reply = await harness.say(1, "/save My tool", reply_to=document["message"]["message_id"])

    assert "My tool · #2 · Rust" in reply
    text, _, pre = await shown(harness, 1, 2)
    assert code_of(text, pre) == "fn main() {}\n"


async def test_save_without_code_asks_for_it_and_saves_the_next_message(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    assert await harness.say(1, "/save Later") == "Now send me the code (/cancel to stop)."
    reply = await harness.say(1, "package main\n\nfunc main() {}")

    assert "Later · #1 · Go" in reply
    assert "/get 1" in reply
    assert "There was nothing to cancel" in await harness.say(1, "/cancel")


async def test_save_flow_unwraps_a_fenced_answer(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.say(1, "/save Later")

    reply = await harness.say(1, "```ruby\nputs 'hi'\n```")

    assert "Later · #1 · Ruby" in reply
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == "puts 'hi'"


async def test_save_without_a_title_explains_the_usage(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save")

    assert "Give the snippet a title: /save Quick sort" in reply
    assert "You have no snippets yet" in await harness.say(1, "/list")


async def test_a_document_is_saved_under_its_file_name(harness: BotHarness) -> None:
    await harness.user(1)
    data = "def hello():\n    return 'héllo'\n".encode()

    replies = await harness.exchange(1, harness.tg.document(1, 1, "hello.py", data, enqueue=False))

    assert "Saved hello.py · #1 · Python" in replies[-1].text
    assert "/get 1" in replies[-1].text
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == data.decode()


async def test_a_document_with_a_caption_takes_the_caption_as_title(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    replies = await harness.exchange(
        1,
        harness.tg.document(
            1, 1, "main.go", b"package main\n", caption="Entry point", enqueue=False
        ),
    )

    assert "Saved Entry point · #1 · Go" in replies[-1].text


async def test_a_document_captioned_with_save_takes_the_rest_as_title(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    replies = await harness.exchange(
        1,
        harness.tg.document(
            1, 1, "main.go", b"package main\n", caption="/save Entry point", enqueue=False
        ),
    )

    assert "Saved Entry point · #1 · Go" in replies[-1].text


async def test_a_forwarded_document_is_saved(harness: BotHarness) -> None:
    await harness.user(1)

    replies = await harness.exchange(
        1,
        harness.tg.document(
            1,
            1,
            "script.sh",
            b"#!/bin/bash\necho hi\n",
            forward_origin=harness.tg.user_origin(77),
            enqueue=False,
        ),
    )

    assert "Saved script.sh · #1 · Bash" in replies[-1].text


async def test_a_document_in_a_latin1_encoding_is_decoded(harness: BotHarness) -> None:
    await harness.user(1)
    code = "# Grüße aus Köln, straße und café, schön\nprint('Grüße')\n" * 3

    replies = await harness.exchange(
        1, harness.tg.document(1, 1, "greet.py", code.encode("latin-1"), enqueue=False)
    )

    assert "Saved greet.py · #1" in replies[-1].text
    text, _, pre = await shown(harness, 1, 1)
    assert code_of(text, pre) == code
