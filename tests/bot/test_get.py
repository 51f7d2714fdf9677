"""/get: the snippet as an HTML code block, as a file when too long, and by email."""

from __future__ import annotations

import pytest

from core.errors import StorageUnavailable
from core.snippets import Shown
from tests.bot.conftest import BotHarness

TRICKY_TITLE = "a < b && c > d </pre>"
TRICKY_CODE = 'if a < b && c > d:\n    print("</pre></code><b>not bold</b> &amp;")\n'


async def test_get_shows_an_html_code_block(harness: BotHarness) -> None:
    await harness.user(1)
    code = "def add(a, b):\n    return a + b"
    number = await harness.save(1, "Add", code)

    [message] = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    assert message.method == "sendMessage"
    assert message.parse_mode == "HTML"
    assert message.raw_text is not None
    assert f'<pre><code class="language-python">{code}</code></pre>' in message.raw_text
    assert message.text.startswith(f"Add · #{number} · Python\n{code}\n")
    pre = next(entity for entity in message.entities if entity["type"] == "pre")
    assert pre["language"] == "python"
    assert message.button_texts == ["🗑 Delete"]
    assert "The full code is on its way to your inbox" in message.text


async def test_title_and_code_with_markup_characters_arrive_verbatim(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    number = await harness.save(1, TRICKY_TITLE, TRICKY_CODE)

    [message] = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    assert message.text.startswith(f"{TRICKY_TITLE} · #{number} · Python\n{TRICKY_CODE}\n")
    assert not any(entity["type"] == "bold" and entity["offset"] > 0 for entity in message.entities)
    pre = next(entity for entity in message.entities if entity["type"] == "pre")
    start = message.text.index(TRICKY_CODE)
    assert pre["offset"] == start
    assert pre["length"] == len(TRICKY_CODE)


async def test_the_saved_reply_escapes_the_title_too(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, f"/save {TRICKY_TITLE}\n{TRICKY_CODE}")

    assert f"Saved {TRICKY_TITLE} · #1" in reply


async def test_a_snippet_too_long_for_a_message_arrives_as_a_file(harness: BotHarness) -> None:
    await harness.user(1)
    line = "print('héllo wörld, a long line of Python code to fill the message') # ünïcode\n"
    code = line * 80
    assert len(code) > 4096
    number = await harness.save(1, "Long script", code)

    replies = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    [message] = replies
    assert message.method == "sendDocument"
    assert message.document is not None
    assert message.document.filename == "Long_script.py"
    assert message.document.data == code.encode()
    assert message.parse_mode == "HTML"
    assert message.text.startswith(f"Long script · #{number} · Python\nToo long for one message")
    assert message.button_texts == ["🗑 Delete"]
    assert harness.tg.calls("sendMessage")[-1].seq < message.seq


async def test_a_snippet_that_just_fits_stays_a_message(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Fits", "print(1)\n" + "#" * 3800)

    [message] = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    assert message.method == "sendMessage"


async def test_get_emails_the_code_as_an_attachment(harness: BotHarness) -> None:
    address = await harness.user(1)
    code = "def add(a, b):\n    return a < b & True\n"
    number = await harness.save(1, "Add", code)

    await harness.say(1, f"/get {number}")
    await harness.deliver_emails()

    [email] = harness.inbox.to(address, "Your Requested Snippet")
    plain = harness.inbox.last_text(address, "Your Requested Snippet")
    assert "Title:    Add" in plain and "Language: Python" in plain
    assert code.rstrip() in plain
    html = email.get_body(("html",))
    assert html is not None
    assert "&lt;" in html.get_content() and "&amp;" in html.get_content()
    assert "a < b" not in html.get_content()
    [attachment] = list(email.iter_attachments())
    assert attachment.get_filename() == "Add.py"
    assert attachment.get_payload(decode=True) == code.encode()


async def test_get_accepts_a_hash_before_the_number(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Hashed", "def f():\n    pass")

    assert "Hashed · #1" in await harness.say(1, f"/get #{number}")


# -- wrong references --------------------------------------------------------------------


async def test_a_missing_number(harness: BotHarness) -> None:
    await harness.user(1)

    assert await harness.say(1, "/get 999") == (
        "There is no snippet 999 among yours. Send /list to see them."
    )


async def test_not_a_number(harness: BotHarness) -> None:
    await harness.user(1)

    assert await harness.say(1, "/get abc") == (
        "“abc” is not a snippet number. Send /list to see yours."
    )


async def test_no_number(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/get")

    assert reply == "Which snippet? e.g. /get 3 (see /list)"


async def test_huge_and_negative_numbers(harness: BotHarness) -> None:
    await harness.user(1)

    for ref in ("99999999999999999999", "-1", "0", "1.5"):
        assert "is not a snippet number" in await harness.say(1, f"/get {ref}"), ref


async def test_another_users_snippet_is_answered_like_a_missing_one(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Secret", "def secret():\n    pass")
    await harness.save(1, "Secret 2", "def secret():\n    pass")
    await harness.user(2)
    await harness.save(2, "Mine", "def mine():\n    pass")

    others = {}
    for command in ("get", "edit", "delete"):
        others[command] = await harness.say(2, f"/{command} 2\nx = 1")
        missing = await harness.say(2, f"/{command} 3\nx = 1")
        assert others[command] == missing.replace("3", "2"), command
    assert "Secret" not in " ".join(others.values())
    assert (await harness.say(2, "/rename 2 Stolen")) == (
        await harness.say(2, "/rename 3 Stolen")
    ).replace("3", "2")
    assert "Secret 2 · #2" in await harness.say(1, "/get 2")


async def test_the_snippet_is_shown_even_when_its_email_cannot_be_queued(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.user(1)
    number = await harness.save(1, "Add", "def add(a, b):\n    return a + b")
    await harness.deliver_emails()

    async def database_down(shown: Shown) -> None:
        raise StorageUnavailable("connection refused")

    monkeypatch.setattr(harness.services.snippets, "queue_copy", database_down)
    shown, told = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/get {number}", enqueue=False)
    )

    assert "def add(a, b):" in shown.text
    assert "could not be queued" in told.text
    assert f"/get {number} again" in told.text
    assert await harness.deliver_emails() == 0
