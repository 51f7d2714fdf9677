"""Signup, verification, login, logout and sessions, as a person in a chat sees them."""

from __future__ import annotations

import re

import pytest

from tests.bot.conftest import PASSWORD, BotHarness
from tests.bot.test_reset_and_flows import reset_code

ADA = "ada@example.com"
DELETED_NOTE = "🔒 I deleted your message because it contained a password."


# -- signup ------------------------------------------------------------------------------


async def test_one_shot_signup_deletes_the_password_message(harness: BotHarness) -> None:
    update = harness.tg.private_message(1, 1, f"/signup {ADA} {PASSWORD}", enqueue=False)
    message_id = update["message"]["message_id"]

    replies = await harness.exchange(1, update)

    assert harness.tg.deleted(1) == [message_id]
    assert [call.params["message_id"] for call in harness.tg.calls("deleteMessage")] == [message_id]
    assert harness.tg.message(1, message_id) is None
    assert len(replies) == 1
    assert replies[0].text.startswith(DELETED_NOTE)
    assert "verification email is on its way" in replies[0].text
    assert PASSWORD not in replies[0].text


async def test_verification_email_holds_the_start_link_and_the_code(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)

    [sent] = harness.inbox.to(ADA)
    assert sent["Subject"] == "Verify your email"
    body = harness.inbox.last_text(ADA, "Verify your email")
    assert re.search(r"https://t\.me/SnippetVaultTestBot\?start=[A-Za-z0-9_-]{16,64}\b", body)
    assert re.search(r"/verify [A-Z0-9]{8}\b", body)
    html = sent.get_body(("html",))
    assert html is not None
    assert "https://t.me/SnippetVaultTestBot?start=" in html.get_content()


async def test_step_by_step_signup(harness: BotHarness) -> None:
    assert "email address" in await harness.say(1, "/signup")
    assert "password" in await harness.say(1, ADA)

    update = harness.tg.private_message(1, 1, PASSWORD, enqueue=False)
    replies = await harness.exchange(1, update)

    assert harness.tg.deleted(1) == [update["message"]["message_id"]]
    assert replies[-1].text.startswith(DELETED_NOTE)
    assert "verification email" in replies[-1].text
    await harness.deliver_emails()
    assert harness.inbox.to(ADA, "Verify your email")
    assert "nothing to cancel" in await harness.say(1, "/cancel")


async def test_signup_with_the_email_only_asks_for_the_password(harness: BotHarness) -> None:
    assert "password" in await harness.say(1, f"/signup {ADA}")
    await harness.say(1, PASSWORD)
    await harness.deliver_emails()

    assert harness.inbox.to(ADA, "Verify your email")


async def test_signup_with_a_bad_email_says_so(harness: BotHarness) -> None:
    reply = await harness.say(1, "/signup not-an-email s3cret-pass")

    assert "does not look like an email address" in reply
    await harness.deliver_emails()
    assert harness.inbox.messages() == []


async def test_signup_with_a_short_password_says_so_and_deletes_it(harness: BotHarness) -> None:
    update = harness.tg.private_message(1, 1, f"/signup {ADA} short", enqueue=False)

    replies = await harness.exchange(1, update)

    assert harness.tg.deleted(1) == [update["message"]["message_id"]]
    assert "at least 8 characters" in replies[-1].text


async def test_a_short_password_in_the_flow_can_be_answered_again(harness: BotHarness) -> None:
    await harness.say(1, f"/signup {ADA}")

    assert "at least 8 characters" in await harness.say(1, "short")
    assert "verification email" in await harness.say(1, PASSWORD)


# -- verification ------------------------------------------------------------------------


async def test_verify_with_the_emailed_code(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)

    reply = await harness.say(1, f"/verify {harness.verification_code(ADA)}")

    assert reply.startswith(f"✅ {ADA} is verified")


async def test_start_with_the_link_payload_verifies(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)

    reply = await harness.say(1, f"/start {harness.verification_payload(ADA)}")

    assert reply.startswith(f"✅ {ADA} is verified")
    assert "Welcome" not in reply


async def test_verify_without_a_code_asks_for_it(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)

    assert "Send me the code" in await harness.say(1, "/verify")
    reply = await harness.say(1, harness.verification_code(ADA).lower())

    assert reply.startswith(f"✅ {ADA} is verified")


async def test_wrong_verification_code_is_refused_clearly(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)

    reply = await harness.say(1, "/verify AAAAAAAA")

    assert reply == "That code is wrong, used or expired. /signup again to get a new one."
    assert "not verified" in await harness.log_in(1, ADA)


async def test_a_verification_code_works_once(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)
    code = harness.verification_code(ADA)
    await harness.say(1, f"/verify {code}")

    assert "is verified already" in await harness.say(1, f"/verify {code}")


async def test_a_wrong_start_payload_does_not_verify(harness: BotHarness) -> None:
    assert "wrong, used or expired" in await harness.say(1, "/start not-a-real-payload")


# -- login -------------------------------------------------------------------------------


async def test_one_shot_login_deletes_the_password_and_alerts_a_verified_account(
    harness: BotHarness,
) -> None:
    await harness.sign_up(1, ADA)
    await harness.say(1, f"/verify {harness.verification_code(ADA)}")
    update = harness.tg.private_message(1, 1, f"/login {ADA} {PASSWORD}", enqueue=False)

    replies = await harness.exchange(1, update)

    assert update["message"]["message_id"] in harness.tg.deleted(1)
    assert replies[-1].text.startswith(DELETED_NOTE)
    assert f"✅ Logged in as {ADA}. A login alert was emailed to you." in replies[-1].text
    await harness.deliver_emails()
    alert = harness.inbox.last_text(ADA, "Login Alert")
    assert "If this wasn't you, reset your password" in alert
    assert re.search(r"When: .*\d\d:\d\d UTC", alert)


async def test_an_unverified_account_is_asked_to_verify_first_and_offered_a_new_email(
    harness: BotHarness,
) -> None:
    await harness.sign_up(1, ADA)
    first_code = harness.verification_code(ADA)

    [*_, answer] = await harness.exchange(
        1, harness.tg.private_message(1, 1, f"/login {ADA} {PASSWORD}", enqueue=False)
    )

    assert "verify your email first" in answer.text
    assert "log in first" in await harness.say(1, "/list")  # no session
    assert "Wrong email or password" in await harness.log_in(1, ADA, "wrong-password")
    [sent] = await harness.press(1, answer.message_id, "📧 Send the verification email again")
    assert "new verification email is on its way" in sent.text
    await harness.deliver_emails()
    assert len(harness.inbox.to(ADA, "Verify your email")) == 2
    assert harness.verification_code(ADA) != first_code
    assert "is verified" in await harness.say(1, f"/verify {harness.verification_code(ADA)}")
    assert "Logged in" in await harness.log_in(1, ADA)


async def test_step_by_step_login(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)
    await harness.say(1, f"/verify {harness.verification_code(ADA)}")

    assert "email address" in await harness.say(1, "/login")
    assert "password" in await harness.say(1, ADA.upper())
    update = harness.tg.private_message(1, 1, PASSWORD, enqueue=False)
    replies = await harness.exchange(1, update)

    assert update["message"]["message_id"] in harness.tg.deleted(1)
    assert replies[-1].text.startswith(DELETED_NOTE)
    assert f"Logged in as {ADA}" in replies[-1].text
    assert "You have no snippets yet" in await harness.say(1, "/list")


async def test_wrong_password(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)
    update = harness.tg.private_message(1, 1, f"/login {ADA} wrong-password", enqueue=False)

    replies = await harness.exchange(1, update)

    assert update["message"]["message_id"] in harness.tg.deleted(1)
    assert replies[-1].text == (
        "🔒 I deleted your message because it contained a password.\n\nWrong email or password."
    )
    assert "log in first" in await harness.say(1, "/list")


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
    harness: BotHarness,
) -> None:
    await harness.sign_up(1, ADA)

    wrong_password = await harness.say(1, f"/login {ADA} wrong-password")
    unknown = await harness.say(1, f"/login nobody@example.com {PASSWORD}")

    assert wrong_password == unknown


async def test_a_wrong_password_in_the_flow_can_be_answered_again(
    harness: BotHarness,
) -> None:
    await harness.sign_up(1, ADA, verified=True)
    await harness.say(1, f"/login {ADA}")

    assert "Wrong email or password" in await harness.say(1, "wrong-password")
    assert "Logged in" in await harness.say(1, PASSWORD)


# -- sessions ----------------------------------------------------------------------------


async def test_commands_need_a_session(harness: BotHarness) -> None:
    for command in ("/get 1", "/list", "/search x", "/edit 1", "/delete 1", "/save T\nx = 1"):
        reply = await harness.say(1, command)
        assert reply == "Please log in first: /login your@email password (or /signup).", command


async def test_logout_ends_the_session(harness: BotHarness) -> None:
    await harness.user(1)

    assert "Logged out" in await harness.say(1, "/logout")
    assert "log in first" in await harness.say(1, "/get 1")


async def test_logout_without_a_session_says_there_was_none(harness: BotHarness) -> None:
    assert "There was no session to end" in await harness.say(1, "/logout")
    await harness.user(1)
    assert "Logged out" in await harness.say(1, "/logout")
    assert "There was no session to end" in await harness.say(1, "/logout")


async def test_verify_of_a_verified_address_says_so(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA)
    code = harness.verification_code(ADA)
    payload = harness.verification_payload(ADA)
    assert "is verified" in await harness.say(1, f"/start {payload}")

    for again in (f"/verify {code}", f"/start {payload}"):
        reply = await harness.say(1, again)
        assert f"{ADA} is verified already" in reply, reply
    assert "wrong, used or expired" in await harness.say(1, "/verify AAAA2222")


@pytest.mark.parametrize("command", ["/signup", "/reset"])
async def test_a_password_against_the_rules_in_steps_asks_for_another(
    harness: BotHarness, command: str
) -> None:
    if command == "/reset":
        await harness.sign_up(1, ADA, verified=True)
        await harness.say(1, f"/reset {ADA}")
        await harness.deliver_emails()
        assert "Code accepted" in await harness.say(1, reset_code(harness, ADA))
    else:
        await harness.say(1, command)
        await harness.say(1, ADA)

    reply = await harness.say(1, "short")

    assert "at least 8 characters" in reply
    assert "send another one" in reply
    done = "Password changed" if command == "/reset" else "verification email"
    assert done in await harness.say(1, PASSWORD + "-new")


async def test_an_expired_session_says_the_session_has_ended(harness: BotHarness) -> None:
    await harness.user(1)
    harness.clock.advance(harness.services.settings.jwt_ttl_seconds + 1)

    reply = await harness.say(1, "/get 1")

    assert reply.startswith("Your session has ended. Please log in first")


async def test_a_session_is_bound_to_its_chat(harness: BotHarness) -> None:
    await harness.user(1)
    number = await harness.save(1, "Hello", "print('hello')")

    assert "log in first" in await harness.say(2, f"/get {number}")
    assert "log in first" in await harness.say(2, "/list")


async def test_logging_in_elsewhere_keeps_the_first_chat_logged_in(harness: BotHarness) -> None:
    address = await harness.user(1)
    await harness.log_in(2, address)

    assert "You have no snippets yet" in await harness.say(1, "/list")
    assert "You have no snippets yet" in await harness.say(2, "/list")


async def test_another_login_in_the_chat_replaces_the_session(harness: BotHarness) -> None:
    await harness.user(1, "ada@example.com")
    await harness.save(1, "Ada's", "print(1)")
    await harness.sign_up(1, "bob@example.com", verified=True)
    await harness.log_in(1, "bob@example.com")

    assert "You have no snippets yet" in await harness.say(1, "/list")


async def test_a_password_message_that_cannot_be_deleted_gets_a_warning(
    harness: BotHarness,
) -> None:
    harness.tg.fail_next("deleteMessage", "Bad Request: message can't be deleted")

    reply = await harness.say(1, f"/signup {ADA} {PASSWORD}")

    assert reply.startswith("⚠️ I could not delete your message with the password")
    assert "verification email is on its way" in reply


async def test_repeated_wrong_passwords_are_throttled(harness: BotHarness) -> None:
    await harness.sign_up(1, ADA, verified=True)
    assert "Logged in" in await harness.log_in(1, ADA)  # this chat is known to the account
    for _ in range(10):
        assert (await harness.log_in(1, ADA, "wrong-password")).endswith("Wrong email or password.")

    reply = await harness.log_in(1, ADA)

    assert reply.endswith("Too many failed attempts. Try again in 15 minute(s).")
    harness.clock.advance(15 * 60 + 1)
    assert "Logged in" in await harness.log_in(1, ADA)
