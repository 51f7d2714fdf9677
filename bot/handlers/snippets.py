"""Snippet commands, files, buttons, and the plain-text messages that answer a flow."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from html import escape
from io import BytesIO
from uuid import UUID

from telegram import Document, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.context import (
    INVALID_BUTTON,
    BotContext,
    email_note,
    is_private,
    logged_in,
    matched_button,
    reply,
    replying,
)
from bot.handlers import organise
from bot.handlers.parsing import command_text, pre_language
from bot.handlers.steps import Flow, Step
from bot.render import (
    LIST_PAGE_SIZE,
    confirm_delete_keyboard,
    miniapp_url,
    page_keyboard,
    page_text,
    snippet_header,
    snippet_keyboard,
    snippet_message,
    undo_keyboard,
)
from bot.wording import EMAIL_NOT_QUEUED, not_found
from core.entities import Page, Snippet, SnippetSummary, User
from core.errors import NotFound, StorageUnavailable, ValidationError
from core.snippets import MAX_REF, Saved, Shown, parse_ref
from core.text import file_name, unwrap_fence

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""Bots cannot download files larger than this from Telegram's cloud Bot API."""
_CALLBACK = re.compile(r"(open|del|delok|list|keep)(?::(\d{1,10}))?(?::([0-9a-f]{32}))?")
_FOR_ONE_SNIPPET = frozenset({"open", "del", "delok"})


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
        await context.services.flows.start(
            message.chat_id, Flow.SAVE, Step.CODE, title=parts.args, user=str(user.id)
        )
        await reply(update, "Now send me the code (/cancel to stop).")
        return
    saved = await context.services.snippets.create(
        user, parts.args, parts.body, language_hint=parts.language_hint
    )
    await saved_reply(update, saved)


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
    await saved_reply(update, saved)


@logged_in
async def save_document(update: Update, context: BotContext, user: User) -> None:
    message = _message(update)
    assert message.document is not None
    if organise.is_archive(message.document):
        await organise.import_archive(update, context, user, message.document)
        return
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
    await saved_reply(update, saved)


async def saved_reply(update: Update, saved: Saved) -> None:
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


async def _show(
    update: Update, context: BotContext, user: User, ref: int, snippet_id: UUID | None = None
) -> None:
    snippets = context.services.snippets
    shown = await snippets.show(user, ref, snippet_id=snippet_id)
    # The reply goes out while the email copy is queued, not after.
    sent, queued = await asyncio.gather(
        _send_snippet(update, context, shown),
        snippets.queue_copy(shown),
        return_exceptions=True,
    )
    if isinstance(sent, BaseException):
        raise sent
    if isinstance(queued, StorageUnavailable):
        log.warning("database unavailable while queueing the email of update %s", update.update_id)
        await reply(update, EMAIL_NOT_QUEUED.format(ref=shown.snippet.ref))
    elif isinstance(queued, BaseException):
        raise queued


async def _send_snippet(update: Update, context: BotContext, shown: Shown) -> None:
    snippet = shown.snippet
    footer = email_note(shown.copy is not None, "The full code")
    text = snippet_message(snippet, footer)
    keyboard = snippet_keyboard(snippet, miniapp_url(context.services.settings, snippet.ref))
    chat = update.effective_chat
    assert chat is not None
    if text is not None:
        await chat.send_message(text, parse_mode=ParseMode.HTML, reply_markup=keyboard)
        return
    await chat.send_document(
        InputFile(
            BytesIO(snippet.code.encode()), filename=file_name(snippet.title, snippet.language)
        ),
        caption=f"{snippet_header(snippet)}\nToo long for one message, so here it is as a file.\n"
        f"{footer}",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


@logged_in
async def list_snippets(update: Update, context: BotContext, user: User) -> None:
    text, tag = _tag_filter(command_text(_message(update)).args)
    if tag is not None:
        page = await context.services.organise.filter(user, tag, text, 0, LIST_PAGE_SIZE)
        await reply(
            update,
            page_text(page, f"Snippets tagged #{escape(tag)}", f"None tagged #{escape(tag)}."),
            reply_markup=page_keyboard(page, None) if page.items else None,
        )
        return
    page = await context.services.snippets.list(user, 0, LIST_PAGE_SIZE)
    await reply(
        update,
        page_text(page, "Your snippets", "You have no snippets yet. Save one with /save."),
        reply_markup=_list_keyboard(context, page),
    )


def _list_keyboard(context: BotContext, page: Page[SnippetSummary]) -> InlineKeyboardMarkup | None:
    """The list's buttons, and "Open in app" when the Mini App is served (PUBLIC_URL)."""
    app_url = miniapp_url(context.services.settings)
    if not page.items and app_url is None:
        return None
    return page_keyboard(page, "list", app_url)


@logged_in
async def search(update: Update, context: BotContext, user: User) -> None:
    query, tag = _tag_filter(command_text(_message(update)).args)
    if tag is not None:
        page = await context.services.organise.filter(user, tag, query, 0, LIST_PAGE_SIZE)
        query = f"{query} #{tag}".strip()
    else:
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
        snippet = await context.services.snippets.view(user, ref)
        await context.services.flows.start(
            _message(update).chat_id,
            Flow.EDIT,
            Step.CODE,
            ref=str(ref),
            snippet=snippet.id.hex,
            user=str(user.id),
        )
        await reply(update, f"Send me the new code for #{ref} (/cancel to stop).")
        return
    snippet = await context.services.snippets.edit(
        user, ref, parts.body, language_hint=parts.language_hint
    )
    await edited_reply(update, snippet)


async def edited_reply(update: Update, snippet: Snippet) -> None:
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


async def _delete(
    update: Update, context: BotContext, user: User, ref: int, snippet_id: UUID | None = None
) -> None:
    saved = await context.services.snippets.delete(user, ref, snippet_id=snippet_id)
    note = email_note(saved.emailed, "A confirmation email")
    await reply(
        update,
        f"🗑 Deleted {snippet_header(saved.snippet)}. Undo within 10 minutes with the "
        f"button.\n{note}".strip(),
        reply_markup=undo_keyboard(saved.snippet),
    )


@logged_in
async def button(update: Update, context: BotContext, user: User) -> None:
    query = update.callback_query
    assert query is not None
    match = await matched_button(update, _CALLBACK)
    if match is None:
        return
    action, number = match.group(1), int(match.group(2) or 0)
    snippet_id = UUID(match.group(3)) if match.group(3) else None
    if (action != "list" and number > MAX_REF) or (
        action in _FOR_ONE_SNIPPET and snippet_id is None
    ):
        # Past the ref column's range (a forged button), or from before buttons named their
        # snippet: the database would refuse the query, or the ref may mean another snippet.
        await query.answer(INVALID_BUTTON)
        return
    try:
        if action == "open":
            await query.answer()
            await _show(update, context, user, number, snippet_id)
        elif action == "list":
            page = await context.services.snippets.list(user, number, LIST_PAGE_SIZE)
            await query.answer()
            try:
                await query.edit_message_text(
                    page_text(page, "Your snippets", "You have no snippets yet."),
                    parse_mode=ParseMode.HTML,
                    reply_markup=_list_keyboard(context, page),
                )
            except BadRequest as error:
                # A double tap (or a second client) asks for the page already shown.
                if "not modified" not in error.message.lower():
                    raise
        elif action == "del":
            snippet = await context.services.snippets.view(user, number, snippet_id=snippet_id)
            await query.answer()
            await reply(
                update,
                f"Delete {snippet_header(snippet)}? You can undo it for 10 minutes.",
                reply_markup=confirm_delete_keyboard(snippet),
            )
        elif action == "delok":
            await query.answer()
            await _without_buttons(query.message)
            await _delete(update, context, user, number, snippet_id)
        else:
            await query.answer("Kept.")
            await _without_buttons(query.message)
    except NotFound as error:
        await query.answer(not_found(error.ref)[:190], show_alert=True)


async def _without_buttons(message: object) -> None:
    if isinstance(message, Message):
        with contextlib.suppress(TelegramError):  # the buttons may be gone already
            await message.edit_reply_markup(None)


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


def _tag_filter(args: str) -> tuple[str, str | None]:
    """`sort #python` → (`sort`, `python`): the first `#word` narrows to that tag."""
    words, tag = [], None
    for word in args.split():
        if tag is None and word.startswith("#") and len(word) > 1 and not word[1:].isdigit():
            tag = word[1:].lower()
        else:
            words.append(word)
    return " ".join(words), tag


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
