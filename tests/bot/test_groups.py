"""Group chats: accounts and snippets are handled only in a private chat."""

from __future__ import annotations

import pytest

from tests.bot.conftest import PASSWORD, BotHarness

GROUP = -1001234567890
PRIVATE_ONLY = (
    "For your safety I handle accounts and snippets only in a private chat with me: "
    "https://t.me/SnippetVaultTestBot"
)


async def in_group(harness: BotHarness, user_id: int, text: str) -> str:
    replies = await harness.exchange(
        GROUP, harness.tg.group_message(GROUP, user_id, text, enqueue=False)
    )
    assert len(replies) == 1, [reply.text for reply in replies]
    return replies[0].text


@pytest.mark.parametrize(
    "text",
    [
        "/signup",
        "/login",
        "/reset",
        "/reset ada@example.com",
        "/verify ABCDEFGH",
        "/save Title\nprint('x')",
        "/get 1",
        "/list",
        "/search x",
        "/edit 1\nx = 2",
        "/rename 1 New",
        "/delete 1",
        "/logout",
        "/cancel",
        "/start",
    ],
)
async def test_account_and_snippet_commands_are_refused_in_a_group(
    harness: BotHarness, text: str
) -> None:
    assert await in_group(harness, 7, text) == PRIVATE_ONLY


async def test_a_password_sent_in_a_group_is_deleted_and_nothing_happens(
    harness: BotHarness,
) -> None:
    for command in ("signup", "login"):
        update = harness.tg.group_message(
            GROUP, 7, f"/{command} ada@example.com {PASSWORD}", enqueue=False
        )
        replies = await harness.exchange(GROUP, update)

        assert update["message"]["message_id"] in harness.tg.deleted(GROUP)
        assert replies[-1].text.startswith("🔒 I deleted your message")
        assert PRIVATE_ONLY in replies[-1].text
    await harness.deliver_emails()
    assert harness.inbox.messages() == []
    assert "Wrong email or password" in await harness.log_in(7, "ada@example.com")


async def test_a_password_the_bot_cannot_delete_in_a_group_gets_a_warning(
    harness: BotHarness,
) -> None:
    harness.tg.fail_next("deleteMessage", "Bad Request: message can't be deleted")

    text = await in_group(harness, 7, f"/login ada@example.com {PASSWORD}")

    assert "please delete it yourself" in text


async def test_nothing_is_saved_from_a_group_even_when_logged_in_privately(
    harness: BotHarness,
) -> None:
    await harness.user(7)

    assert await in_group(harness, 7, "/save Leak\nprint('x')") == PRIVATE_ONLY
    document = harness.tg.document(GROUP, 7, "leak.py", b"print('x')\n", enqueue=False)
    # No reply either: every file a group shares would get one (a spam vector).
    assert await harness.exchange(GROUP, document) == []
    assert "You have no snippets yet" in await harness.say(7, "/list")


async def test_plain_group_chatter_is_ignored(harness: BotHarness) -> None:
    replies = await harness.exchange(
        GROUP, harness.tg.group_message(GROUP, 7, "hello everyone", enqueue=False)
    )

    assert replies == []


async def test_help_works_in_a_group(harness: BotHarness) -> None:
    assert "/signup — create an account" in await in_group(harness, 7, "/help")


async def test_commands_addressed_to_the_bot_by_name_are_refused_too(
    harness: BotHarness,
) -> None:
    assert await in_group(harness, 7, "/signup@SnippetVaultTestBot") == PRIVATE_ONLY
