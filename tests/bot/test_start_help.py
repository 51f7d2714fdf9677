"""/start, /help and the command menu registered at start-up."""

from __future__ import annotations

from telegram.ext import CommandHandler

from bot.render import COMMANDS
from tests.bot.conftest import BotHarness

CONTRACT_COMMANDS = {
    "signup",
    "verify",
    "login",
    "logout",
    "save",
    "get",
    "list",
    "search",
    "edit",
    "delete",
    "reset",
    "cancel",
    "help",
}


async def test_start_welcomes_and_lists_the_commands(harness: BotHarness) -> None:
    replies = await harness.exchange(1, harness.tg.private_message(1, 1, "/start", enqueue=False))

    assert len(replies) == 1
    reply = replies[0]
    assert reply.parse_mode == "HTML"
    assert reply.text.startswith("👋 Welcome to SnippetVault")
    assert reply.text.count("SnippetVault") == 1  # the introduction, once
    assert reply.text.count("email them to you") == 1
    for name in CONTRACT_COMMANDS:
        assert f"/{name} — " in reply.text


async def test_help_lists_every_command_with_an_example(harness: BotHarness) -> None:
    text = await harness.say(1, "/help")

    lines = text.splitlines()
    for name in CONTRACT_COMMANDS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"/{name} — "))
        example = lines[index + 1].strip()
        assert example.startswith(f"/{name}"), (name, example)
    assert "/save Quick sort\ndef sort(xs): ..." in text


async def test_help_and_the_menu_list_every_command_the_bot_answers(harness: BotHarness) -> None:
    """Not only the contract's: /rename, /tag, /history, /share, /export… too (/start is the
    welcome itself)."""
    answered = {
        command
        for handlers in harness.app.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for command in handler.commands
    } - {"start"}
    text = await harness.say(1, "/help")
    lines = text.splitlines()

    assert answered >= {"rename", "tag", "untag", "tags", "history", "share", "shares", "export"}
    assert {name for name, _, _ in COMMANDS} == answered
    for name in answered:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"/{name} — "))
        assert lines[index + 1].strip().startswith(f"/{name}"), name


async def test_help_examples_are_shown_literally_not_as_markup(harness: BotHarness) -> None:
    text = await harness.say(1, "/help")

    assert "/verify K7QX2M9P" in text
    assert "<code>" not in text


async def test_commands_menu_is_registered_at_start_up(harness: BotHarness) -> None:
    calls = harness.tg.calls("setMyCommands")

    assert len(calls) == 1 and calls[0].ok
    registered = {command["command"] for command in harness.tg.commands()}
    assert registered == {name for name, _, _ in COMMANDS}
    assert registered >= CONTRACT_COMMANDS


async def test_unknown_command_points_to_help(harness: BotHarness) -> None:
    assert "/help" in await harness.say(1, "/frobnicate")


async def test_plain_text_without_a_flow_explains_how_to_save(harness: BotHarness) -> None:
    assert "/save <title>" in await harness.say(1, "print('hi')")
