"""Organising commands: /tag, /untag, /tags, /history, /share, /shares, /unshare, the undo
and version buttons, and share links opened with /start."""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from html import escape
from io import BytesIO
from uuid import UUID

from telegram import Document, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import (
    INVALID_BUTTON,
    BotContext,
    logged_in,
    matched_button,
    reply,
    replying,
)
from bot.handlers.parsing import command_text
from bot.render import shared_message, snippet_header, snippet_message, tags_text
from core.archive import MAX_ARCHIVE_BYTES
from core.entities import Snippet, User
from core.errors import NotFound, ValidationError
from core.organise import Version
from core.snippets import MAX_REF, parse_ref
from core.text import file_name

HISTORY_PAGE = 8
"""Versions per /history page; the buttons page through all that are kept."""
_CALLBACK = re.compile(r"(undo|ver|restore|unshare|hist):([0-9a-f]{32})(?::(\d{1,10}))?")
CALLBACK_PATTERN = r"^(undo|ver|restore|unshare|hist):"
ARCHIVE_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


# -- tags ---------------------------------------------------------------------------------


@logged_in
async def tag(update: Update, context: BotContext, user: User) -> None:
    ref, tags = _ref_and_words(update, "Send /tag <number> <tag…>, e.g. /tag 3 python sorting")
    snippet = await context.services.organise.tag(user, ref, tags)
    await reply(update, f"🏷 {snippet_header(snippet)}\n{tags_text(snippet.tags) or 'No tags.'}")


@logged_in
async def untag(update: Update, context: BotContext, user: User) -> None:
    ref, tags = _ref_and_words(update, "Send /untag <number> <tag…>, e.g. /untag 3 python")
    snippet = await context.services.organise.untag(user, ref, tags)
    await reply(update, f"🏷 {snippet_header(snippet)}\n{tags_text(snippet.tags) or 'No tags.'}")


@logged_in
async def tags(update: Update, context: BotContext, user: User) -> None:
    counted = await context.services.organise.tags(user)
    if not counted:
        await reply(
            update,
            "You have no tags yet. Add some with /tag 3 python, or #python in a /save title.",
        )
        return
    lines = [f"#{escape(name)} · {count}" for name, count in counted]
    await reply(update, "Your tags:\n\n" + "\n".join(lines) + "\n\nFilter with /list #tag")


def _ref_and_words(update: Update, usage: str, *, least: int = 2) -> tuple[int, list[str]]:
    """The command's snippet number and the words after it; `usage` when fewer than `least`
    words were given."""
    assert update.effective_message is not None
    words = command_text(update.effective_message).args.split()
    if len(words) < least:
        raise ValidationError(usage)
    return parse_ref(words[0]), words[1:]


# -- versions -------------------------------------------------------------------------------


@logged_in
async def history(update: Update, context: BotContext, user: User) -> None:
    ref, _ = _ref_and_words(update, "Which snippet? e.g. /history 3", least=1)
    snippet, versions = await context.services.organise.history(user, ref)
    text, keyboard = _history_page(snippet, versions, 0)
    await reply(update, text, reply_markup=keyboard)


def _history_page(
    snippet: Snippet, versions: list[Version], offset: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Newest first, `HISTORY_PAGE` at a time, each kept one with view and restore buttons."""
    newest_first = list(reversed(versions))
    offset = max(0, min(offset, len(newest_first) - 1))
    shown = newest_first[offset : offset + HISTORY_PAGE]
    heading = f"Versions of {snippet_header(snippet)}"
    if len(versions) > HISTORY_PAGE:
        heading += f" ({offset + 1}–{offset + len(shown)} of {len(versions)})"
    lines = [heading + ":", ""] + [_version_line(version) for version in shown]
    rows = []
    for version in shown:
        if version.is_current:
            continue
        data = f"{snippet.id.hex}:{version.number}"
        rows.append(
            [
                InlineKeyboardButton(f"👁 v{version.number}", callback_data=f"ver:{data}"),
                InlineKeyboardButton(
                    f"↩️ Restore v{version.number}", callback_data=f"restore:{data}"
                ),
            ]
        )
    nav = []
    if offset > 0:
        newer = max(0, offset - HISTORY_PAGE)
        nav.append(InlineKeyboardButton("◀ Newer", callback_data=f"hist:{snippet.id.hex}:{newer}"))
    if offset + HISTORY_PAGE < len(newest_first):
        older = offset + HISTORY_PAGE
        nav.append(InlineKeyboardButton("Older ▶", callback_data=f"hist:{snippet.id.hex}:{older}"))
    if nav:
        rows.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None


def _version_line(version: Version) -> str:
    when = version.created_at.strftime("%Y-%m-%d %H:%M UTC")
    size = len(version.code.encode())
    changed = version.first_changed_line[:60] or "(no change in the code)"
    current = " (current)" if version.is_current else ""
    return (
        f"<b>v{version.number}</b>{current} · {when} · {size} bytes\n"
        f"    <code>{escape(changed)}</code>"
    )


# -- share links ----------------------------------------------------------------------------


@logged_in
async def share(update: Update, context: BotContext, user: User) -> None:
    ref, rest = _ref_and_words(
        update, "Which snippet? e.g. /share 3, or /share 3 1d (1h, 1d, 7d, once)", least=1
    )
    created = await context.services.organise.share(user, ref, rest[0] if rest else "")
    link = f"https://t.me/{context.bot.username}?start={created.payload}"
    public_url = context.services.settings.public_url
    if public_url:
        link += f"\nor on the web: {public_url.rstrip('/')}/s/{created.token}"
    lasts = (
        "It works for one view"
        if created.link.single_use
        else "It works until " + created.link.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    )
    await reply(
        update,
        f"🔗 Read-only link to #{created.link.snippet_ref}:\n{escape(link)}\n\n{lasts}; whoever "
        "opens it sees the title, language and code, nothing about you. /shares lists your "
        f"links; /unshare {created.link.snippet_ref} ends them.",
        disable_web_page_preview=True,
    )


@logged_in
async def shares(update: Update, context: BotContext, user: User) -> None:
    links = await context.services.organise.shares(user)
    if not links:
        await reply(update, "You have no live share links. Make one with /share &lt;number&gt;.")
        return
    lines = ["Your live share links:", ""]
    rows = []
    for link in links:
        until = "one view" if link.single_use else link.expires_at.strftime("until %Y-%m-%d %H:%M")
        lines.append(f"#{link.snippet_ref} {escape(link.snippet_title)} · {until}")
        rows.append(
            [
                InlineKeyboardButton(
                    f"✖ Revoke #{link.snippet_ref} ({until})"[:60],
                    callback_data=f"unshare:{link.id.hex}",
                )
            ]
        )
    await reply(update, "\n".join(lines), reply_markup=InlineKeyboardMarkup(rows))


@logged_in
async def unshare(update: Update, context: BotContext, user: User) -> None:
    ref, _ = _ref_and_words(update, "Which snippet? e.g. /unshare 3", least=1)
    count = await context.services.organise.unshare(user, ref)
    await reply(update, f"Ended {count} link{'s' if count != 1 else ''} to #{ref}.")


@replying
async def open_share(update: Update, context: BotContext) -> None:
    """`/start share_<token>`: anyone may open it, logged in or not."""
    payload = " ".join(context.args or [])
    shared = await context.services.organise.open_share(payload)
    chat = update.effective_chat
    assert chat is not None
    text = shared_message(shared)
    if text is not None:
        await chat.send_message(text, parse_mode=ParseMode.HTML)
        return
    await chat.send_document(
        InputFile(BytesIO(shared.code.encode()), filename=file_name(shared.title, shared.language)),
        caption=f"<b>{escape(shared.title)}</b> · {escape(shared.language)}",
        parse_mode=ParseMode.HTML,
    )


@replying
async def inline_login(update: Update, context: BotContext) -> None:
    """`/start inline`: the button of an inline answer given without a session."""
    await reply(
        update,
        "To list your snippets with @"
        + escape(context.bot.username or "")
        + " in other chats, log in here first: <code>/login your@email password</code> "
        "(or /signup). Then type @"
        + escape(context.bot.username or "")
        + " and a word in any chat.",
    )


# -- export and import ------------------------------------------------------------------------


@logged_in
async def export(update: Update, context: BotContext, user: User) -> None:
    data = await context.services.archive.export(user)
    chat = update.effective_chat
    assert chat is not None
    await chat.send_document(
        InputFile(BytesIO(data), filename="snippetvault-export.zip"),
        caption="📦 Your snippets: one file each, and snippets.json with tags and versions. "
        "Send this zip back to me to import it.",
    )


def is_archive(document: Document) -> bool:
    name = (document.file_name or "").lower()
    return name.endswith(".zip") or document.mime_type in ARCHIVE_TYPES


async def import_archive(
    update: Update, context: BotContext, user: User, document: Document
) -> None:
    if (document.file_size or 0) > MAX_ARCHIVE_BYTES:
        raise ValidationError(
            f"That archive is too large to import (at most {MAX_ARCHIVE_BYTES // 2**20} MB)."
        )
    telegram_file = await document.get_file()
    data = bytes(await telegram_file.download_as_bytearray())
    result = await context.services.archive.import_archive(user, data)
    await reply(
        update,
        f"📥 Imported {result.added} snippet{'s' if result.added != 1 else ''}; skipped "
        f"{result.skipped} already there. /list shows them.",
    )


# -- buttons ----------------------------------------------------------------------------------


@logged_in
async def button(update: Update, context: BotContext, user: User) -> None:
    """Undo, view and restore a version, revoke a link: each bound to a snippet's (or link's)
    id, so an old button never acts on another snippet."""
    query = update.callback_query
    assert query is not None
    match = await matched_button(update, _CALLBACK)
    if match is None:
        return
    action, target, number = match.group(1), UUID(hex=match.group(2)), int(match.group(3) or 0)
    if number > MAX_REF:  # past the column's range: a forged button
        await query.answer(INVALID_BUTTON)
        return
    organise = context.services.organise
    try:
        if action == "undo":
            snippet = await organise.undelete(user, target)
            await query.answer("Restored.")
            await _without_buttons(update)
            await reply(update, f"↩️ Restored {snippet_header(snippet)}. /get {snippet.ref}")
        elif action == "hist":
            snippet, versions = await organise.history(user, target)
            await query.answer()
            text, keyboard = _history_page(snippet, versions, number)
            if query.message is not None:
                with contextlib.suppress(BadRequest):  # a double tap: the page is shown
                    await query.edit_message_text(
                        text, parse_mode=ParseMode.HTML, reply_markup=keyboard
                    )
        elif action == "ver":
            snippet, version = await organise.version(user, target, number)
            await query.answer()
            old = replace(
                snippet, title=version.title, code=version.code, language=version.language
            )
            shown = snippet_message(old, f"Version {version.number} of #{snippet.ref}.")
            await reply(update, shown or f"Version {version.number} is too long to show here.")
        elif action == "restore":
            snippet = await organise.restore(user, target, number)
            await query.answer("Restored.")
            await reply(
                update,
                f"↩️ {snippet_header(snippet)} is back at version {number}, kept as a new "
                f"version. /get {snippet.ref}",
            )
        else:
            await organise.revoke_share(user, target)
            await query.answer("Link revoked.")
            await reply(update, "🔗 That link no longer works.")
    except NotFound as error:
        await query.answer(str(error)[:190], show_alert=True)


async def _without_buttons(update: Update) -> None:
    query = update.callback_query
    if query is not None and query.message is not None:
        with contextlib.suppress(BadRequest):  # the buttons may be gone already
            await query.edit_message_reply_markup(None)
