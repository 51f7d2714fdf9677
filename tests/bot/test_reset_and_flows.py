"""/reset, /cancel, and step-by-step flows that outlive the process that started them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.settings import Settings
from core.snippets import Saved
from tests.bot.conftest import PASSWORD, BotHarness, Clock, running_bot
from tests.fakebotapi import FakeTelegram

ADA = "ada@example.com"
NEW_PASSWORD = "brand-new-pass"


def reset_code(harness: BotHarness, address: str) -> str:
    body = harness.inbox.last_text(address, "Reset your password")
    match = re.search(r"^\s+([A-Z0-9]{8})\s*$", body, re.MULTILINE)
    assert match, body
    return match.group(1)


async def test_password_reset_by_emailed_code(harness: BotHarness) -> None:
    await harness.user(1, ADA)
    await harness.log_in(2, ADA)

    reply = await harness.say(3, f"/reset {ADA}")
    assert f"If {ADA} belongs to a verified account, a reset code is on its way" in reply
    await harness.deliver_emails()
    assert "Code accepted" in await harness.say(3, reset_code(harness, ADA))
    update = harness.tg.private_message(3, 3, NEW_PASSWORD, enqueue=False)
    replies = await harness.exchange(3, update)

    assert harness.tg.deleted(3) == [update["message"]["message_id"]]
    assert replies[-1].text.startswith("🔒 I deleted your message")
    assert "✅ Password changed. Every session was logged out" in replies[-1].text
    for chat in (1, 2):
        assert "log in first" in await harness.say(chat, "/list"), chat
    assert (await harness.log_in(1, ADA, PASSWORD)).endswith("Wrong email or password.")
    assert "Logged in" in await harness.log_in(1, ADA, NEW_PASSWORD)


async def test_reset_step_by_step_asks_for_the_email(harness: BotHarness) -> None:
    await harness.user(1, ADA)

    assert "email address" in await harness.say(1, "/reset")
    assert "reset code is on its way" in await harness.say(1, ADA)
    await harness.deliver_emails()
    assert "Code accepted" in await harness.say(1, reset_code(harness, ADA))
    assert "Password changed" in await harness.say(1, NEW_PASSWORD)


async def test_reset_with_a_wrong_code_says_so_and_waits_for_the_right_one(
    harness: BotHarness,
) -> None:
    await harness.user(1, ADA)
    await harness.say(1, f"/reset {ADA}")
    await harness.deliver_emails()

    assert "reset code is wrong, used or expired" in await harness.say(1, "AAAAAAAA")
    assert "Code accepted" in await harness.say(1, reset_code(harness, ADA))


async def test_reset_of_an_unverified_or_unknown_address_sends_nothing(
    harness: BotHarness,
) -> None:
    await harness.sign_up(1, ADA)

    unverified = await harness.say(1, f"/reset {ADA}")
    unknown = await harness.say(1, "/reset nobody@example.com")
    await harness.deliver_emails()

    assert unverified.replace(ADA, "x") == unknown.replace("nobody@example.com", "x")
    assert harness.inbox.to(ADA, "Reset your password") == []
    assert harness.inbox.to("nobody@example.com") == []


async def test_a_too_short_new_password_can_be_sent_again(harness: BotHarness) -> None:
    await harness.user(1, ADA)
    await harness.say(1, f"/reset {ADA}")
    await harness.deliver_emails()
    await harness.say(1, reset_code(harness, ADA))

    assert "at least 8 characters" in await harness.say(1, "short")
    assert "Password changed" in await harness.say(1, NEW_PASSWORD)


# -- /cancel -----------------------------------------------------------------------------


async def test_cancel_leaves_a_flow(harness: BotHarness) -> None:
    await harness.say(1, "/login")

    assert await harness.say(1, "/cancel") == "Cancelled."
    assert "To save this" in await harness.say(1, ADA)
    assert await harness.say(1, "/cancel") == "There was nothing to cancel."


async def test_cancel_leaves_a_save_flow_without_saving(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.say(1, "/save Later")

    assert await harness.say(1, "/cancel") == "Cancelled."
    await harness.say(1, "print('not saved')")
    assert "You have no snippets yet" in await harness.say(1, "/list")


async def test_a_new_command_replaces_the_running_flow(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA, verified=True)
    await harness.say(1, "/signup")

    assert "email address" in await harness.say(1, "/login")
    assert "password" in await harness.say(1, ADA)
    assert "Logged in" in await harness.say(1, PASSWORD)


async def test_an_expired_flow_is_forgotten(harness: BotHarness) -> None:
    await harness.say(1, "/login")
    harness.clock.advance(16 * 60)

    assert "To save this" in await harness.say(1, ADA)


async def test_a_flow_survives_a_restart(bot_settings: Settings, clock: Clock) -> None:
    tg = FakeTelegram()
    async with running_bot(bot_settings, tg, clock) as first:
        await first.sign_up(1, ADA, verified=True)
        assert "email address" in await first.say(1, "/login")
        assert "password" in await first.say(1, ADA)

    async with running_bot(bot_settings, tg, clock) as second:
        assert second.services is not first.services
        assert "Logged in" in await second.say(1, PASSWORD)
        assert "You have no snippets yet" in await second.say(1, "/list")


async def test_a_session_survives_a_restart(bot_settings: Settings, clock: Clock) -> None:
    tg = FakeTelegram()
    async with running_bot(bot_settings, tg, clock) as first:
        await first.user(1)
        number = await first.save(1, "Kept", "print(1)")

    async with running_bot(bot_settings, tg, clock) as second:
        assert "Kept" in await second.say(1, f"/get {number}")


async def test_a_second_answer_while_the_first_is_saved_is_refused(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.user(1)
    await harness.say(1, "/save Once")
    second = harness.tg.private_message(1, 1, "print('second')", enqueue=False)
    create = harness.services.snippets.create
    answers: list[str] = []

    async def second_answer_arrives_meanwhile(*args: Any, **kwargs: Any) -> Saved:
        monkeypatch.setattr(harness.services.snippets, "create", create)
        answers.extend(message.text for message in await harness.exchange(1, second))
        return await create(*args, **kwargs)

    monkeypatch.setattr(harness.services.snippets, "create", second_answer_arrives_meanwhile)

    assert "Saved Once · #1" in await harness.say(1, "print('first')")
    assert answers == ["That step was already answered by another message of yours."]
    assert (await harness.say(1, "/list")).startswith("Your snippets (1–1 of 1):")
    assert "print('first')" in await harness.say(1, "/get 1")


def test_every_flow_has_its_steps_in_the_one_table() -> None:
    from bot.handlers.flows import STEPS
    from bot.handlers.steps import Flow, Step

    assert {flow for flow, _ in STEPS} == set(Flow)
    assert {step for _, step in STEPS} == set(Step)
