"""Private inline mode: `@<bot> <text>` in any chat lists the caller's own snippets.

The answer is personal and never cached by Telegram (`is_personal`, `cache_time=0`). Choosing
one inserts a highlighted code block, or, when too long for one message, the code as a
document. Nothing is emailed, and nothing of the account reaches the chat it lands in.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from html import escape
from io import BytesIO
from uuid import UUID

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultCachedDocument,
    InlineQueryResultsButton,
    InputFile,
    InputTextMessageContent,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.context import BotContext
from bot.render import MESSAGE_LIMIT, code_block, tags_text, utf16_len
from core.entities import Client, Snippet
from core.errors import AuthenticationError, DomainError, StorageUnavailable
from core.text import file_name

log = logging.getLogger(__name__)

INLINE_RESULTS = 10
UPLOADS_PER_ANSWER = 3
"""Long snippets uploaded for one answer (two Bot API calls each): an answer with ten of them
would take twenty calls, past Telegram's patience and a private chat's send rate."""
LOGIN_PAYLOAD = "inline"
"""`/start inline`: where the log-in button of an inline answer leads."""
_FILE_IDS_KEPT = 1000


async def inline_query(update: Update, context: BotContext) -> None:
    query = update.inline_query
    assert query is not None
    try:
        user = await context.services.accounts.current_user(Client.chat(query.from_user.id))
    except StorageUnavailable:
        await query.answer([], cache_time=0, is_personal=True)
        return
    except AuthenticationError:
        await query.answer(
            [],
            cache_time=0,
            is_personal=True,
            button=InlineQueryResultsButton(
                "Log in to SnippetVault first", start_parameter=LOGIN_PAYLOAD
            ),
        )
        return
    try:
        found = await context.services.organise.matching(user, query.query, INLINE_RESULTS)
    except DomainError:
        found = []
    uploads = _Uploads(UPLOADS_PER_ANSWER)
    results = await asyncio.gather(
        *(_result(context, query.from_user.id, snippet, uploads) for snippet in found)
    )
    await query.answer(
        [result for result in results if result is not None], cache_time=0, is_personal=True
    )


class _Uploads:
    """How many new uploads one answer may still make (the rest wait for a later query)."""

    def __init__(self, allowed: int) -> None:
        self.left = allowed

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def _result(
    context: BotContext, user_id: int, snippet: Snippet, uploads: _Uploads
) -> InlineQueryResultArticle | InlineQueryResultCachedDocument | None:
    description = " ".join(part for part in (snippet.language, tags_text(snippet.tags)) if part)
    text = _code_block(snippet)
    if text is not None:
        return InlineQueryResultArticle(
            id=snippet.id.hex,
            title=snippet.title,
            description=f"{description}\n{snippet.code[:80]}",
            input_message_content=InputTextMessageContent(text, parse_mode=ParseMode.HTML),
        )
    file_id = await _uploaded(context, user_id, snippet, uploads)
    if file_id is None:
        return None
    return InlineQueryResultCachedDocument(
        id=snippet.id.hex,
        title=snippet.title,
        document_file_id=file_id,
        description=description,
        caption=f"<b>{escape(snippet.title)}</b> · {escape(snippet.language)}",
        parse_mode=ParseMode.HTML,
    )


def _code_block(snippet: Snippet) -> str | None:
    visible = f"{snippet.title} · {snippet.language}\n{snippet.code}"
    if utf16_len(visible) > MESSAGE_LIMIT:
        return None
    return (
        f"<b>{escape(snippet.title)}</b> · {escape(snippet.language)}\n"
        f"{code_block(snippet.code, snippet.language)}"
    )


async def _uploaded(
    context: BotContext, user_id: int, snippet: Snippet, uploads: _Uploads
) -> str | None:
    """A long snippet as a Telegram file: inline results can only name uploaded files, so it
    is sent once to the caller's own private chat with the bot and the message removed. An
    answer makes at most `UPLOADS_PER_ANSWER` uploads, at once, so it comes in Telegram's time
    and within the chat's send rate; the others are offered once a later query uploaded them."""
    known: OrderedDict[tuple[UUID, str], str] = context.bot_data.setdefault(
        "inline_file_ids", OrderedDict()
    )
    key = (snippet.id, snippet.updated_at.isoformat())
    if key in known:
        return known[key]
    if not uploads.take():
        return None
    try:
        message = await context.bot.send_document(
            user_id,
            InputFile(
                BytesIO(snippet.code.encode()), filename=file_name(snippet.title, snippet.language)
            ),
            disable_notification=True,
        )
        if message.document is None:
            return None
        await message.delete()
    except TelegramError:
        log.warning("could not upload a long snippet for an inline answer", exc_info=True)
        return None
    known[key] = message.document.file_id
    while len(known) > _FILE_IDS_KEPT:
        known.popitem(last=False)
    return message.document.file_id
