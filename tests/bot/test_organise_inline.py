"""Private inline mode: `@bot <text>` answers with the caller's own snippets only."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import BotHarness


async def ask(harness: BotHarness, user_id: int, text: str, **options: Any) -> dict[str, Any]:
    """Sends an inline query; returns the parameters of the bot's answer."""
    before = len(harness.tg.inline_answers())
    await harness.send(harness.tg.inline_query(user_id, text, enqueue=False, **options))
    answers = harness.tg.inline_answers()
    assert len(answers) == before + 1, harness.tg.describe()
    return answers[-1]


def titles(answer: dict[str, Any]) -> list[str]:
    return [result["title"] for result in answer["results"]]


async def test_inline_lists_own_snippets_by_title_code_and_tag(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Quick sort #algo", "def qs(xs):\n    return sorted(xs)")
    await harness.save(1, "Hello", "print('hello')")
    await harness.save(2, "Quick sort too", "def qs2(xs):\n    return xs")

    newest = await ask(harness, 1, "", chat_type="group")
    assert titles(newest) == ["Hello", "Quick sort"]
    assert newest["is_personal"] is True and newest["cache_time"] == 0
    assert titles(await ask(harness, 1, "sort")) == ["Quick sort"]
    assert titles(await ask(harness, 1, "sorted(xs)")) == ["Quick sort"]
    assert titles(await ask(harness, 1, "#algo")) == ["Quick sort"]
    assert titles(await ask(harness, 2, "sort")) == ["Quick sort too"]  # never another's


async def test_a_chosen_result_is_a_code_block_that_reveals_nothing_of_the_account(
    harness: BotHarness,
) -> None:
    address = await harness.user(1)
    await harness.save(1, "Quick sort", "def qs(xs):\n    return sorted(xs)")
    await harness.deliver_emails()
    emails = len(harness.inbox.messages())

    [result] = (await ask(harness, 1, "sort"))["results"]

    content = result["input_message_content"]
    assert content["parse_mode"] == "HTML"
    assert content["message_text"] == (
        '<b>Quick sort</b> · Python\n<pre><code class="language-python">'
        "def qs(xs):\n    return sorted(xs)</code></pre>"
    )
    assert address not in str(result) and "#1" not in str(result)
    await harness.deliver_emails()
    assert len(harness.inbox.messages()) == emails  # no email


async def test_a_long_snippet_is_offered_as_a_document(harness: BotHarness) -> None:
    await harness.user(1)
    code = "\n".join(f"x{n} = {n}" for n in range(900))
    await harness.save(1, "Long one", code)

    [result] = (await ask(harness, 1, "long"))["results"]

    assert result["type"] == "document"
    assert result["caption"] == "<b>Long one</b> · Text"
    stored = harness.tg.file(result["document_file_id"])
    assert stored.data.decode() == code
    assert harness.tg.sent_messages(1)[-1].deleted  # the upload left nothing in the chat
    again = (await ask(harness, 1, "long"))["results"][0]
    assert again["document_file_id"] == result["document_file_id"]  # uploaded once


async def test_without_a_session_the_answer_is_a_login_button(harness: BotHarness) -> None:
    await harness.sign_up(1, "ada@example.com")

    answer = await ask(harness, 1, "sort")

    assert answer["results"] == []
    assert answer["is_personal"] is True and answer["cache_time"] == 0
    assert answer["button"] == {
        "text": "Log in to SnippetVault first",
        "start_parameter": "inline",
    }
    reply = await harness.say(1, "/start inline")
    assert reply.startswith("To list your snippets with @SnippetVaultTestBot")


async def test_deleted_snippets_are_not_offered(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.save(1, "Doomed", "def gone():\n    pass")
    await harness.say(1, "/delete 1")

    assert (await ask(harness, 1, ""))["results"] == []
    assert (await ask(harness, 1, "doomed"))["results"] == []


async def test_an_answer_uploads_a_few_long_snippets_and_later_ones_offer_the_rest(
    harness: BotHarness,
) -> None:
    await harness.user(1)
    for n in range(5):
        code = "\n".join(f"long{n}_{i} = {i}" for i in range(900))
        await harness.save(1, f"Long {n}", code)
    uploads_before = len(harness.tg.sent_messages(1))

    first = await ask(harness, 1, "long")

    assert len(first["results"]) == 3  # three uploads for this answer, no more
    assert len(harness.tg.sent_messages(1)) - uploads_before == 3
    second = await ask(harness, 1, "long")
    assert sorted(titles(second)) == [f"Long {n}" for n in range(5)]
    assert len(harness.tg.sent_messages(1)) - uploads_before == 5  # each uploaded once
