"""Snippet commands, files, buttons, and the plain-text messages that answer a flow."""

from __future__ import annotations

import contextlib
import re
from html import escape
from io import BytesIO

from telegram import Document, InputFile, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.context import BotContext, email_note, is_private, logged_in, reply, replying
from bot.handlers import accounts
from bot.handlers.parsing import command_text, pre_language
from bot.render import (
    LIST_PAGE_SIZE,
    confirm_delete_keyboard,
    page_keyboard,
    page_text,
    snippet_header,
    snippet_keyboard,
    snippet_message,
)
from core.entities import Snippet, User
from core.errors import FlowConflict, NotFound, ValidationError
from core.flows import WORKING
from core.snippets import MAX_REF, Saved, parse_ref
from core.text import file_name, unwrap_fence

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""Bots cannot download files larger than this from Telegram's cloud Bot API."""
_BOT_USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_CALLBACK = re.compile(r"(open|del|delok|list|keep)(?::(\d{1,10}))?")


@logged_in
async def save(update: Update, context: BotContext, user: User) -> None:
    message = _message(update)
    parts = command_text(message)
    source = message.reply_to_message
    if source is not None and not parts.body:
        await _save_from_message(update, context, user, source, parts.args or None)
        return
    if not parts.args:
        raise ValidationError(
            "Give the snippet a title: /save Quick sort — then the code on the next lines."
        )
    if not parts.body.strip():
        await context.services.flows.start(message.chat_id, "save", "code", title=parts.args)
        await reply(update, "Now send me the code (/cancel to stop).")
        return
    saved = await context.services.snippets.create(
        user, parts.args, parts.body, language_hint=parts.language_hint
    )
    await _saved_reply(update, saved)


async def _save_from_message(
    update: Update, context: BotContext, user: User, source: Message, title: str | None
) -> None:
    if source.document is not None:
        await _save_document(update, context, user, source.document, title)
        return
    text = source.text or source.caption
    if not text:
        raise ValidationError("That message has no text or file to save.")
    if text.startswith("/"):
        parts = command_text(source)
        code, hint = parts.body, parts.language_hint
    else:
        fenced = unwrap_fence(text)
        code, hint = fenced.code, fenced.language_hint or pre_language(source)
    saved = await context.services.snippets.create(
        user, title or _first_line(code), code, language_hint=hint
    )
    await _saved_reply(update, saved)


@logged_in
async def save_document(update: Update, context: BotContext, user: User) -> None:
    message = _message(update)
    assert message.document is not None
    caption = (message.caption or "").strip()
    if caption.startswith("/save"):
        caption = caption.removeprefix("/save").strip()
    await _save_document(update, context, user, message.document, caption or None)


async def _save_document(
    update: Update, context: BotContext, user: User, document: Document, title: str | None
) -> None:
    limit = context.services.snippets.max_snippet_bytes
    size = document.file_size or 0
    if size > TELEGRAM_DOWNLOAD_LIMIT:
        raise ValidationError(
            "That file is too big: bots can only download files up to 20 MB, and snippets "
            f"are limited to {limit // 1024} KB."
        )
    if size > limit:
        raise ValidationError(
            # Rounded up, so a file just over the limit never reads as equal to it.
            f"That file is too large to keep as a snippet ({-(-size // 1024)} KB; "
            f"the limit is {limit // 1024} KB)."
        )
    try:
        telegram_file = await document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except BadRequest as error:
        if "too big" in error.message.lower():
            raise ValidationError("That file is too big for bots to download (20 MB).") from None
        raise
    name = document.file_name or "snippet.txt"
    saved = await context.services.snippets.create_from_file(user, data, name, title)
    await _saved_reply(update, saved)


async def _saved_reply(update: Update, saved: Saved) -> None:
    snippet = saved.snippet
    note = email_note(saved.emailed, "A confirmation email")
    await reply(
        update,
        f"✅ Saved {snippet_header(snippet)}.\nFetch it with /get {snippet.ref}\n{note}".strip(),
    )


@logged_in
async def get(update: Update, context: BotContext, user: User) -> None:
    ref = parse_ref(_required_arg(update, "Which snippet? e.g. /get 3 (see /list)"))
    await _show(update, context, user, ref)


async def _show(update: Update, context: BotContext, user: User, ref: int) -> None:
    saved = await context.services.snippets.get(user, ref)
    snippet = saved.snippet
    footer = email_note(saved.emailed, "The full code")
    text = snippet_message(snippet, footer)
    chat = update.effective_chat
    assert chat is not None
    if text is not None:
        await chat.send_message(
            text, parse_mode=ParseMode.HTML, reply_markup=snippet_keyboard(snippet)
        )
        return
    await chat.send_document(
        InputFile(
            BytesIO(snippet.code.encode()), filename=file_name(snippet.title, snippet.language)
        ),
        caption=f"{snippet_header(snippet)}\nToo long for one message, so here it is as a file.\n"
        f"{footer}",
        parse_mode=ParseMode.HTML,
        reply_markup=snippet_keyboard(snippet),
    )


@logged_in
async def list_snippets(update: Update, context: BotContext, user: User) -> None:
    page = await context.services.snippets.list(user, 0, LIST_PAGE_SIZE)
    await reply(
        update,
        page_text(page, "Your snippets", "You have no snippets yet. Save one with /save."),
        reply_markup=page_keyboard(page, "list") if page.items else None,
    )


@logged_in
async def search(update: Update, context: BotContext, user: User) -> None:
    query = command_text(_message(update)).args
    page = await context.services.snippets.search(user, query, 0, LIST_PAGE_SIZE)
    await reply(
        update,
        page_text(
            page,
            f"Snippets matching “{escape(query)}”",
            f"Nothing matches “{escape(query)}”. /list shows all your snippets.",
        ),
        reply_markup=page_keyboard(page, None) if page.items else None,
    )


@logged_in
async def edit(update: Update, context: BotContext, user: User) -> None:
    parts = command_text(_message(update))
    ref = parse_ref(_required_arg(update, "Which snippet? e.g. /edit 3, new code below it"))
    if not parts.body.strip():
        await context.services.snippets.view(user, ref)
        await context.services.flows.start(_message(update).chat_id, "edit", "code", ref=str(ref))
        await reply(update, f"Send me the new code for #{ref} (/cancel to stop).")
        return
    snippet = await context.services.snippets.edit(
        user, ref, parts.body, language_hint=parts.language_hint
    )
    await _edited_reply(update, snippet)


async def _edited_reply(update: Update, snippet: Snippet) -> None:
    await reply(update, f"✏️ Updated {snippet_header(snippet)}. See it with /get {snippet.ref}")


@logged_in
async def rename(update: Update, context: BotContext, user: User) -> None:
    ref_text, _, title = command_text(_message(update)).args.partition(" ")
    if not ref_text or not title.strip():
        # Domain errors are escaped when shown: plain text here.
        raise ValidationError("Send /rename <number> <new title>, e.g. /rename 3 Sort")
    snippet = await context.services.snippets.rename(user, parse_ref(ref_text), title)
    await reply(update, f"✏️ Renamed to {snippet_header(snippet)}.")


@logged_in
async def delete(update: Update, context: BotContext, user: User) -> None:
    ref = parse_ref(_required_arg(update, "Which snippet? e.g. /delete 3 (see /list)"))
    await _delete(update, context, user, ref)


async def _delete(update: Update, context: BotContext, user: User, ref: int) -> None:
    saved = await context.services.snippets.delete(user, ref)
    note = email_note(saved.emailed, "A confirmation email")
    await reply(update, f"🗑 Deleted {snippet_header(saved.snippet)}.\n{note}".strip())


@logged_in
async def button(update: Update, context: BotContext, user: User) -> None:
    query = update.callback_query
    assert query is not None
    match = _CALLBACK.fullmatch(query.data or "")
    if match is None:
        await query.answer("This button is no longer valid.")
        return
    action, number = match.group(1), int(match.group(2) or 0)
    if action != "list" and number > MAX_REF:
        # Past the ref column's range (a forged button): the database would refuse the query.
        await query.answer("This button is no longer valid.")
        return
    try:
        if action == "open":
            await query.answer()
            await _show(update, context, user, number)
        elif action == "list":
            page = await context.services.snippets.list(user, number, LIST_PAGE_SIZE)
            await query.answer()
            try:
                await query.edit_message_text(
                    page_text(page, "Your snippets", "You have no snippets yet."),
                    parse_mode=ParseMode.HTML,
                    reply_markup=page_keyboard(page, "list") if page.items else None,
                )
            except BadRequest as error:
                # A double tap (or a second client) asks for the page already shown.
                if "not modified" not in error.message.lower():
                    raise
        elif action == "del":
            snippet = await context.services.snippets.view(user, number)
            await query.answer()
            await reply(
                update,
                f"Delete {snippet_header(snippet)}? This cannot be undone.",
                reply_markup=confirm_delete_keyboard(number),
            )
        elif action == "delok":
            await query.answer()
            await _without_buttons(query.message)
            await _delete(update, context, user, number)
        else:
            await query.answer("Kept.")
            await _without_buttons(query.message)
    except NotFound as error:
        await query.answer(str(error)[:190], show_alert=True)


async def _without_buttons(message: object) -> None:
    if isinstance(message, Message):
        with contextlib.suppress(TelegramError):  # the buttons may be gone already
            await message.edit_reply_markup(None)


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
    if flow.step == WORKING:
        raise FlowConflict("That step is being answered already.")
    if await accounts.continue_flow(update, context, flow, text):
        return
    user = await context.services.accounts.current_user(message.chat_id)
    # The whole message is the code: a fence around it is unwrapped, its first line included.
    fenced = unwrap_fence(text)
    code, hint = fenced.code, fenced.language_hint or pre_language(message)
    if flow.name == "save":
        async with context.services.flows.claim(flow):
            saved = await context.services.snippets.create(
                user, flow.data["title"], code, language_hint=hint
            )
        await _saved_reply(update, saved)
    elif flow.name == "edit":
        async with context.services.flows.claim(flow):
            snippet = await context.services.snippets.edit(
                user, int(flow.data["ref"]), code, language_hint=hint
            )
        await _edited_reply(update, snippet)
    else:
        await context.services.flows.finish(message.chat_id)
        await reply(update, "That conversation had expired; please start again. /help")


@replying
async def unsupported(update: Update, context: BotContext) -> None:
    await reply(
        update,
        "I keep code: send text with /save &lt;title&gt;, or a code file. "
        "Photos, stickers and other media cannot be saved.",
    )


async def edited_message(update: Update, context: BotContext) -> None:
    if is_private(update):
        await reply(
            update,
            "I don't follow edits of sent messages. To change a snippet, send "
            "/edit &lt;number&gt; with the new code below it.",
        )


def _required_arg(update: Update, usage: str) -> str:
    args = command_text(_message(update)).args
    if not args:
        raise ValidationError(usage)
    return args.split()[0]


def _first_line(code: str) -> str:
    for line in code.splitlines():
        if line.strip():
            return line.strip()[:80]
    return "Untitled"


def _message(update: Update) -> Message:
    assert update.effective_message is not None
    return update.effective_message
