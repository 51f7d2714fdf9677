"""Account commands: /start, /help, /signup, /verify, /login, /logout, /reset, /cancel.

Each works in one message (`/login ada@example.com secret`) or step by step (`/login`, then
the bot asks for each value); every message that carries a password is deleted at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from uuid import UUID

from telegram import Message, Update

from bot.context import (
    BotContext,
    chat_client,
    delete_secret_message,
    noted_errors,
    reply,
    replying,
)
from bot.handlers.parsing import command_text
from bot.handlers.steps import Flow, Step
from bot.render import INTRODUCTION, help_text, resend_keyboard
from bot.wording import not_verified
from core.accounts import normalise_email
from core.errors import EmailNotVerified

WELCOME = f"👋 Welcome to <b>SnippetVault</b>. {INTRODUCTION}\n\n"
ASK_EMAIL = "What is your email address? (/cancel to stop)"
ASK_PASSWORD = "Now your password. I will delete the message right after reading it."  # noqa: S105


@replying
async def start(update: Update, context: BotContext) -> None:
    payload = " ".join(context.args or [])
    if payload:
        await verify_secret(update, context, payload)
        return
    await reply(update, WELCOME + help_text(introduce=False))


async def help_command(update: Update, context: BotContext) -> None:
    await reply(update, help_text())


@replying
async def signup(update: Update, context: BotContext) -> None:
    await _credentials_command(update, context, Flow.SIGNUP, signup_reply)


Finish = Callable[[Update, BotContext, str, str, str], Awaitable[None]]


async def _credentials_command(
    update: Update, context: BotContext, flow: Flow, finish: Finish
) -> None:
    """`/signup` and `/login`: email and password in one message, or the email alone, or
    nothing; the bot asks for what is missing."""
    words = command_text(_message(update)).args.split()
    chat_id = _chat_id(update)
    if len(words) >= 2:
        note = await delete_secret_message(update)
        async with noted_errors(update, note):
            await finish(update, context, words[0], _password(update), note)
    elif len(words) == 1:
        normalise_email(words[0])
        await context.services.flows.start(chat_id, flow, Step.PASSWORD, email=words[0])
        await reply(update, ASK_PASSWORD)
    else:
        await context.services.flows.start(chat_id, flow, Step.EMAIL)
        await reply(update, ASK_EMAIL)


async def signup_reply(
    update: Update, context: BotContext, email: str, password: str, note: str = ""
) -> None:
    await context.services.accounts.signup(email, password, chat_client(update))
    shown = escape(normalise_email(email))
    await reply(
        update,
        f"{note}\n\nIf {shown} is new here, your account is ready and a verification email is "
        "on its way. Open its link, or send /verify &lt;code&gt;; then /login.".strip(),
    )


@replying
async def verify(update: Update, context: BotContext) -> None:
    code = command_text(_message(update)).args
    if not code:
        await context.services.flows.start(_chat_id(update), Flow.VERIFY, Step.CODE)
        await reply(update, "Send me the code from the verification email.")
        return
    await verify_secret(update, context, code)


async def verify_secret(update: Update, context: BotContext, secret: str) -> None:
    user = await context.services.accounts.verify(secret, chat_client(update))
    await reply(
        update,
        f"✅ {escape(user.email)} is verified. From now on I email you logins, new, fetched "
        "and deleted snippets. /login to start.",
    )


@replying
async def login(update: Update, context: BotContext) -> None:
    await _credentials_command(update, context, Flow.LOGIN, login_reply)


async def login_reply(
    update: Update, context: BotContext, email: str, password: str, note: str = ""
) -> None:
    try:
        result = await context.services.accounts.login(email, password, chat_client(update))
    except EmailNotVerified as error:
        await reply(
            update,
            f"{note}\n\n{not_verified(error.email)}".strip(),
            reply_markup=resend_keyboard(error.user_id),
        )
        return
    alert = (
        "A login alert was emailed to you."
        if result.alert_emailed
        else "Your email is not verified yet, so no login alert was sent (/verify &lt;code&gt;)."
    )
    await reply(
        update,
        f"{note}\n\n✅ Logged in as {escape(result.user.email)}. {alert}\n"
        "Save code with /save &lt;title&gt; and the code below it, or send a file.".strip(),
    )


@replying
async def resend_verification(update: Update, context: BotContext) -> None:
    """The button under "verify your email first": only the right password shows it."""
    query = update.callback_query
    assert query is not None
    _, _, user_id = (query.data or "").partition(":")
    try:
        sent = await context.services.accounts.resend_verification(UUID(hex=user_id))
    except ValueError:
        sent = False
    await query.answer()
    await reply(
        update,
        "📧 A new verification email is on its way."
        if sent
        else "No new email: the address is verified already, or had three this hour.",
    )


@replying
async def logout(update: Update, context: BotContext) -> None:
    if await context.services.accounts.logout(chat_client(update)):
        await reply(update, "👋 Logged out. /login to come back.")
    else:
        await reply(update, "There was no session to end: you were not logged in. /login")


@replying
async def reset(update: Update, context: BotContext) -> None:
    email = command_text(_message(update)).args
    if not email:
        await context.services.flows.start(_chat_id(update), Flow.RESET, Step.EMAIL)
        await reply(update, ASK_EMAIL)
        return
    await request_reset(update, context, email)


async def request_reset(update: Update, context: BotContext, email: str) -> None:
    await context.services.accounts.request_reset(email, chat_client(update))
    await context.services.flows.start(_chat_id(update), Flow.RESET, Step.CODE)
    await reply(
        update,
        f"If {escape(normalise_email(email))} belongs to a verified account, a reset code is on "
        "its way. Send it to me here (/cancel to stop).",
    )


@replying
async def cancel(update: Update, context: BotContext) -> None:
    ended = await context.services.flows.finish(_chat_id(update))
    await reply(update, "Cancelled." if ended else "There was nothing to cancel.")


def _password(update: Update) -> str:
    """Everything after the email, inner spaces kept: the same password as when it is sent
    step by step (`/login`, then the password alone)."""
    return command_text(_message(update)).args.split(maxsplit=1)[1]


def _chat_id(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


def _message(update: Update) -> Message:
    assert update.effective_message is not None
    return update.effective_message
