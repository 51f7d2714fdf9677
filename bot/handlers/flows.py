"""Plain messages that answer a step-by-step command: one table says which step does what.

A flow is started by its command (`/login` asks for the email, `/save Title` for the code, …)
under a `Flow` and a `Step`; the next plain message of the chat goes to `STEPS[flow, step]`.
"""

from __future__ import annotations

import re
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
from bot.handlers import accounts, snippets
from bot.handlers.parsing import pre_language
from bot.handlers.steps import Flow, Step
from bot.wording import error_reply
from core.accounts import normalise_email
from core.entities import ChatFlow, User
from core.errors import ValidationError
from core.security import check_password_rules, normalise_password
from core.text import unwrap_fence

StepHandler = Callable[[Update, BotContext, ChatFlow, str], Awaitable[None]]

EXPIRED = "That conversation had expired; please start again. /help"

_BOT_USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")


@replying
async def text_message(update: Update, context: BotContext) -> None:
    """A message that is not a command: the answer to a step-by-step question, or help."""
    message = _message(update)
    text = message.text or ""
    if text.startswith("/"):
        addressee = text.split(maxsplit=1)[0].partition("@")[2]
        # Only a possible bot username is repeated: the reply must fit in one message.
        if (
            _BOT_USERNAME.fullmatch(addressee)
            and addressee.lower() != (context.bot.username or "").lower()
        ):
            await reply(
                update,
                f"That command is for @{escape(addressee)}, not for me. /help lists mine.",
            )
            return
        await reply(update, "I don't know that command. /help lists what I can do.")
        return
    flow = await context.services.flows.current(message.chat_id)
    if flow is None:
        await reply(
            update,
            "To save this, send /save &lt;title&gt; with the code on the next lines, or reply "
            "to it with /save &lt;title&gt;. /help lists everything.",
        )
        return
    handler = _handler(flow)
    if handler is None:
        await context.services.flows.finish(message.chat_id)
        await reply(update, EXPIRED)
        return
    await handler(update, context, flow, text)


def _handler(flow: ChatFlow) -> StepHandler | None:
    try:
        return STEPS.get((Flow(flow.name), Step(flow.step)))
    except ValueError:  # a flow of an older version of the bot
        return None


# -- accounts -------------------------------------------------------------------------------


async def _email(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    normalise_email(text)
    await context.services.flows.advance(flow, Step.PASSWORD, email=text.strip())
    await reply(update, accounts.ASK_PASSWORD)


async def _signup_password(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    note = await delete_secret_message(update)
    if not await _password_follows_rules(update, note, text):
        return
    async with noted_errors(update, note), context.services.flows.claim(flow):
        await accounts.signup_reply(update, context, flow.data["email"], text, note)


async def _login_password(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    note = await delete_secret_message(update)
    async with noted_errors(update, note), context.services.flows.claim(flow):
        await accounts.login_reply(update, context, flow.data["email"], text, note)


async def _verify_code(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    await context.services.flows.finish(flow.chat_id)
    await accounts.verify_secret(update, context, text)


async def _reset_email(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    await accounts.request_reset(update, context, text)


async def _reset_code(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    handle = await context.services.accounts.check_reset_code(text, chat_client(update))
    await context.services.flows.advance(flow, Step.PASSWORD, handle=handle)
    await reply(update, "Code accepted. Now send your new password (at least 8 characters).")


async def _reset_password(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    note = await delete_secret_message(update)
    if not await _password_follows_rules(update, note, text):
        return
    async with noted_errors(update, note), context.services.flows.claim(flow):
        await context.services.accounts.reset_password(flow.data["handle"], text)
        await reply(
            update, f"{note}\n\n✅ Password changed. Every session was logged out; /login again."
        )


async def _password_follows_rules(update: Update, note: str, password: str) -> bool:
    """A new password that breaks the rules is answered with a request for another one; the
    step stays where it is."""
    try:
        check_password_rules(normalise_password(password))
    except ValidationError as error:
        await reply(
            update,
            f"{note}\n\n{error_reply(error)} Please send another one (/cancel to stop).".strip(),
        )
        return False
    return True


# -- snippets -------------------------------------------------------------------------------


async def _save_code(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    user = await _flow_user(update, context, flow)
    if user is None:
        return
    code, hint = _code(update, text)
    async with context.services.flows.claim(flow):
        saved = await context.services.snippets.create(
            user, flow.data["title"], code, language_hint=hint
        )
    await snippets.saved_reply(update, saved)


async def _edit_code(update: Update, context: BotContext, flow: ChatFlow, text: str) -> None:
    user = await _flow_user(update, context, flow)
    if user is None:
        return
    code, hint = _code(update, text)
    async with context.services.flows.claim(flow):
        snippet = await context.services.snippets.edit(
            user,
            int(flow.data["ref"]),
            code,
            language_hint=hint,
            snippet_id=UUID(flow.data["snippet"]),
        )
    await snippets.edited_reply(update, snippet)


async def _flow_user(update: Update, context: BotContext, flow: ChatFlow) -> User | None:
    """The chat's user, if it is the one who started the flow; otherwise the flow ends (it
    was another login's, since logged out) and None."""
    user = await context.services.accounts.current_user(chat_client(update))
    if flow.data.get("user") == str(user.id):
        return user
    await context.services.flows.finish(flow.chat_id)
    await reply(update, EXPIRED)
    return None


def _code(update: Update, text: str) -> tuple[str, str | None]:
    """The whole message is the code: a fence around it is unwrapped, its first line too."""
    fenced = unwrap_fence(text)
    return fenced.code, fenced.language_hint or pre_language(_message(update))


def _message(update: Update) -> Message:
    assert update.effective_message is not None
    return update.effective_message


STEPS: dict[tuple[Flow, Step], StepHandler] = {
    (Flow.SIGNUP, Step.EMAIL): _email,
    (Flow.SIGNUP, Step.PASSWORD): _signup_password,
    (Flow.LOGIN, Step.EMAIL): _email,
    (Flow.LOGIN, Step.PASSWORD): _login_password,
    (Flow.VERIFY, Step.CODE): _verify_code,
    (Flow.RESET, Step.EMAIL): _reset_email,
    (Flow.RESET, Step.CODE): _reset_code,
    (Flow.RESET, Step.PASSWORD): _reset_password,
    (Flow.SAVE, Step.CODE): _save_code,
    (Flow.EDIT, Step.CODE): _edit_code,
}
