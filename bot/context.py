"""The typed context every handler receives, and the wrapper that turns domain errors into
replies, so handlers stay a straight line: parse, call core, render."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, CallbackContext, ExtBot

from bootstrap import Services
from bot.activity import note_outcome
from bot.ratelimit import SharedRateLimiter
from bot.wording import error_reply
from core.entities import Client, User
from core.errors import DomainError, StorageUnavailable

log = logging.getLogger(__name__)

INVALID_BUTTON = "This button is no longer valid."
"""What a press on a stale or forged button is answered with."""
PRIVATE_ONLY = (
    "For your safety I handle accounts and snippets only in a private chat with me: {link}"
)


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    @property
    def services(self) -> Services:
        services: Services = self.bot_data["services"]
        return services


BotApplication = Application[
    ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any
]

Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]
UserHandler = Callable[[Update, BotContext, User], Coroutine[Any, Any, None]]


async def reply(update: Update, text: str, **kwargs: Any) -> Message | None:
    message = update.effective_message
    if message is None:
        return None
    kwargs.setdefault("parse_mode", ParseMode.HTML)
    kwargs.setdefault("do_quote", False)
    return await message.reply_text(text, **kwargs)


def chat_client(update: Update) -> Client:
    """Who is calling, as core knows it: this chat."""
    assert update.effective_chat is not None
    return Client.chat(update.effective_chat.id)


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


def private_link(context: BotContext) -> str:
    return f"https://t.me/{context.bot.username}"


def replying(handler: Handler) -> Handler:
    """Runs a handler in a private chat and answers domain errors in words."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: BotContext) -> None:
        if update.effective_chat is None:
            return
        if not is_private(update):
            # `/login ada@example.com secret` typed in a group shows the password to everyone.
            note = await delete_secret_message(update) if _holds_password(update) else ""
            refusal = PRIVATE_ONLY.format(link=private_link(context))
            await reply(update, f"{note}\n\n{refusal}".strip())
            return
        limiter = context.bot.rate_limiter
        if isinstance(limiter, SharedRateLimiter):
            limiter.prebook(update.effective_chat.id)  # the reply's slot, booked meanwhile
        try:
            await handler(update, context)
        except DomainError as error:
            note_outcome(type(error).__name__)
            if isinstance(error, StorageUnavailable):
                log.warning("database unavailable while handling update %s", update.update_id)
            await stop_button_spinner(update)
            await reply(update, error_reply(error))

    return wrapper


@contextlib.asynccontextmanager
async def noted_errors(update: Update, note: str) -> AsyncIterator[None]:
    """Answers a domain error with `note` in front: a failed login still says that the
    message with the password was deleted. The error ends there: keep the success reply
    inside the block."""
    try:
        yield
    except DomainError as error:
        note_outcome(type(error).__name__)
        await reply(update, f"{note}\n\n{error_reply(error)}".strip())


async def stop_button_spinner(update: Update) -> None:
    """Answers a pressed button, unless the handler did already (Telegram refuses a second)."""
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()


async def matched_button(update: Update, pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The pressed button's data matched whole against `pattern`; None, with the press answered
    as `INVALID_BUTTON`, when it does not match."""
    query = update.callback_query
    assert query is not None
    match = pattern.fullmatch(query.data or "")
    if match is None:
        await query.answer(INVALID_BUTTON)
    return match


def _holds_password(update: Update) -> bool:
    """`/signup` or `/login` with an email and a password after it."""
    message = update.effective_message
    words = (message.text or "").split() if message is not None else []
    return len(words) >= 3 and words[0].split("@")[0].lower() in {"/signup", "/login"}


def logged_in(handler: UserHandler) -> Handler:
    """Like `replying`, and passes the chat's logged-in user (or asks to log in)."""

    @replying
    @functools.wraps(handler)
    async def wrapper(update: Update, context: BotContext) -> None:
        user = await context.services.accounts.current_user(chat_client(update))
        await handler(update, context, user)

    return wrapper


async def delete_secret_message(update: Update) -> str:
    """Deletes a message that holds a password; returns the sentence that says so."""
    message = update.effective_message
    if message is None:
        return ""
    try:
        await message.delete()
    except TelegramError:
        return "⚠️ I could not delete your message with the password: please delete it yourself."
    return "🔒 I deleted your message because it contained a password."


def email_note(emailed: bool, what: str) -> str:
    if emailed:
        return f"📧 {what} is on its way to your inbox."
    return (
        "✉️ No email sent: your address is not verified yet. "
        "Use the code from the verification email: /verify &lt;code&gt;."
    )
