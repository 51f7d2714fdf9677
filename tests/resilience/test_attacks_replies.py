"""The bot's replies as a weapon: nobody can make it spam a group, and no message, however long,
makes a reply fail (a failed reply is a logged traceback and an apology)."""

from __future__ import annotations

import logging

import pytest

from bot.render import MESSAGE_LIMIT
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import apologies

GROUP = -1009001
MEMBER = 9001
OWNER = 9002


async def test_files_posted_in_a_group_get_no_reply(
    hostile_bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = hostile_bot
    await bot.user(MEMBER)  # logged in privately: still nothing is saved from the group
    bot.tg.group(GROUP)
    since = bot.tg.mark()
    for number in range(20):  # what a busy group shares in an afternoon
        await bot.send(
            bot.tg.document(GROUP, MEMBER, f"notes{number}.py", b"print(1)\n", enqueue=False)
        )
    await bot.send(
        bot.tg.document(GROUP, MEMBER, "x.py", b"print(1)\n", caption="/save x", enqueue=False)
    )
    await bot.send(
        bot.tg.document(GROUP, MEMBER, "a.png", b"\x89PNG\r\n", "image/png", enqueue=False)
    )

    assert [m.text for m in bot.tg.sent_messages(GROUP) if m.seq > since] == []
    assert "You have no snippets yet" in await bot.say(MEMBER, "/list")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_commands_addressed_to_the_bot_in_a_group_still_get_their_answer(
    hostile_bot: BotHarness,
) -> None:
    bot = hostile_bot
    since = bot.tg.mark()
    await bot.send(bot.tg.group_message(GROUP, MEMBER, "/help", enqueue=False))
    await bot.send(bot.tg.group_message(GROUP, MEMBER, "/get 1", enqueue=False))

    replies = [m.text for m in bot.tg.sent_messages(GROUP) if m.seq > since]
    assert len(replies) == 2
    assert "/signup" in replies[0]
    assert "private chat" in replies[1]


COMMANDS = (
    "/x@",
    "/nosuchcommand ",
    "/start ",
    "/help ",
    "/signup ",
    "/signup a@example.com ",
    "/verify ",
    "/login ",
    "/login a@example.com ",
    "/reset ",
    "/cancel ",
    "/save ",
    "/save t\n",
    "/get ",
    "/list ",
    "/search ",
    "/edit ",
    "/edit 1\n",
    "/rename 1 ",
    "/delete ",
    "/logout ",
)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_command_as_long_as_a_message_can_be_gets_a_clear_reply(
    hostile_bot: BotHarness, command: str, caplog: pytest.LogCaptureFixture
) -> None:
    bot = hostile_bot
    await bot.user(OWNER)
    await bot.save(OWNER, "kept", "kept = 1\n")
    for filler in ("a", "<", "&"):  # escaping makes `<` and `&` longer in the reply's HTML
        text = command + filler * (MESSAGE_LIMIT - len(command))
        replies = await bot.exchange(
            OWNER, bot.tg.private_message(OWNER, OWNER, text, enqueue=False)
        )

        assert replies, (command, filler)
        assert all(len(reply.text) <= MESSAGE_LIMIT for reply in replies)
    assert apologies(bot) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
