"""Replies as Telegram HTML: everything a user typed is escaped, limits are respected."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from uuid import UUID

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from core.entities import Page, SharedSnippet, Snippet, SnippetSummary
from core.settings import Settings
from core.text import language_alias

MESSAGE_LIMIT = 4096
"""Telegram's limit, in UTF-16 code units of the text after HTML entities are parsed."""
LIST_PAGE_SIZE = 8

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("signup", "create an account", "/signup ada@example.com s3cret-pass"),
    ("verify", "verify your email with the emailed code", "/verify K7QX2M9P"),
    ("login", "log in to this chat", "/login ada@example.com s3cret-pass"),
    ("logout", "end this chat's session", "/logout"),
    ("save", "save a snippet: title, then the code on the next lines", "/save Quick sort"),
    ("get", "show a snippet and email it to you", "/get 3"),
    ("list", "your snippets, newest first", "/list"),
    ("search", "find snippets by title or code", "/search quicksort"),
    ("edit", "replace a snippet's code (code on the next lines)", "/edit 3"),
    ("rename", "change a snippet's title", "/rename 3 Faster sort"),
    ("delete", "delete a snippet (an Undo button brings it back for 10 minutes)", "/delete 3"),
    ("tag", "add tags to a snippet (or #tags in a /save title)", "/tag 3 python sorting"),
    ("untag", "remove tags from a snippet", "/untag 3 sorting"),
    ("tags", "your tags with how many snippets each; /list #python filters", "/tags"),
    ("history", "a snippet's earlier versions, to view or restore", "/history 3"),
    ("share", "a read-only link to a snippet: 1h, 1d, 7d (default) or once", "/share 3 1d"),
    ("shares", "your live share links, with buttons to revoke them", "/shares"),
    ("unshare", "end every share link of a snippet", "/unshare 3"),
    ("export", "all your snippets as a zip; send such a zip (or a Gist zip) to import", "/export"),
    ("reset", "reset your password by an emailed code", "/reset ada@example.com"),
    ("cancel", "leave a step-by-step command", "/cancel"),
    ("help", "this list", "/help"),
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


INTRODUCTION = "I keep your code snippets and email them to you."


def help_text(*, introduce: bool = True) -> str:
    lines = [f"<b>SnippetVault</b>: {INTRODUCTION}", ""] if introduce else []
    for name, what, example in COMMANDS:
        lines.append(f"/{name} — {escape(what)}\n    <code>{escape(example)}</code>")
    lines += [
        "",
        "You can also send or forward a code file: it is saved with its name as the title.",
        "To save code, put it under the title:\n<code>/save Quick sort\ndef sort(xs): ...</code>",
    ]
    return "\n".join(lines)


def code_block(code: str, language: str) -> str:
    """`code` as an HTML code block that Telegram highlights as `language`."""
    return (
        f'<pre><code class="language-{escape(language_alias(language))}">'
        f"{escape(code)}</code></pre>"
    )


def snippet_header(snippet: Snippet) -> str:
    return f"<b>{escape(snippet.title)}</b> · #{snippet.ref} · {escape(snippet.language)}"


def snippet_message(snippet: Snippet, footer: str) -> str | None:
    """The snippet as one HTML message, or None when it does not fit one."""
    code = code_block(snippet.code, snippet.language)
    tags = f"{tags_text(snippet.tags)}\n" if snippet.tags else ""
    text = f"{snippet_header(snippet)}\n{tags}{code}\n{footer}"
    visible = (
        f"{snippet.title} · #{snippet.ref} · {snippet.language}\n{tags}{snippet.code}\n{footer}"
    )
    return text if utf16_len(visible) <= MESSAGE_LIMIT else None


def snippet_button(action: str, snippet: Snippet | SnippetSummary) -> str:
    """Button data that names the snippet by ref and id: a button outlives the login that
    made it, and must never act on what the ref means for whoever is logged in later."""
    return f"{action}:{snippet.ref}:{snippet.id.hex}"


def tags_text(tags: tuple[str, ...]) -> str:
    return " ".join(f"#{escape(tag)}" for tag in tags)


def shared_message(shared: SharedSnippet) -> str | None:
    """A shared snippet as one HTML message (title, language, code), or None if too long."""
    code = code_block(shared.code, shared.language)
    note = "Shared with you through SnippetVault (read-only)."
    visible = f"{shared.title} · {shared.language}\n{shared.code}\n{note}"
    if utf16_len(visible) > MESSAGE_LIMIT:
        return None
    return f"<b>{escape(shared.title)}</b> · {escape(shared.language)}\n{code}\n{note}"


def undo_keyboard(snippet: Snippet) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton("↩️ Undo", callback_data=f"undo:{snippet.id.hex}")]]
    )


def miniapp_url(settings: Settings, ref: int | None = None) -> str | None:
    """The Mini App at `<PUBLIC_URL>/app/` (opened on snippet `ref`), or None without PUBLIC_URL."""
    if not settings.public_url:
        return None
    url = f"{str(settings.public_url).rstrip('/')}/app/"
    return url if ref is None else f"{url}?snippet={ref}"


def open_in_app_button(url: str) -> InlineKeyboardButton:
    return InlineKeyboardButton("📱 Open in app", web_app=WebAppInfo(url))


def snippet_keyboard(snippet: Snippet, app_url: str | None = None) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton("🗑 Delete", callback_data=snippet_button("del", snippet))]
    if app_url is not None:
        row.insert(0, open_in_app_button(app_url))
    return InlineKeyboardMarkup([row])


def confirm_delete_keyboard(snippet: Snippet) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "Yes, delete it", callback_data=snippet_button("delok", snippet)
                ),
                InlineKeyboardButton("Keep it", callback_data="keep"),
            ]
        ]
    )


def resend_keyboard(user_id: UUID) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    "📧 Send the verification email again", callback_data=f"resend:{user_id.hex}"
                )
            ]
        ]
    )


def page_text(page: Page[SnippetSummary], heading: str, empty: str) -> str:
    if not page.items:
        return empty
    first, last = page.offset + 1, page.offset + len(page.items)
    lines = [f"{heading} ({first}–{last} of {page.total}):", ""]
    lines += [
        f"<b>#{item.ref}</b> {escape(item.title)} · <i>{escape(item.language)}</i>"
        + (f" · {tags_text(item.tags)}" if item.tags else "")
        for item in page.items
    ]
    lines += ["", "Open one with /get &lt;number&gt; or the buttons."]
    return "\n".join(lines)


@lru_cache(maxsize=256)
def page_keyboard(
    page: Page[SnippetSummary], nav_prefix: str | None, app_url: str | None = None
) -> InlineKeyboardMarkup:
    """A button per snippet, the page turns, and "Open in app".

    Cached by the page's content (a page and its items are immutable, and so is the markup,
    which may go to any chat): every /list and page turn of an unchanged list shows the same
    page, and making PTB's button objects costs more than the rest of the reply's text."""
    rows = [
        [InlineKeyboardButton(_button_label(item), callback_data=snippet_button("open", item))]
        for item in page.items
    ]
    nav = []
    if nav_prefix is not None and page.has_previous:
        previous = max(0, page.offset - page.limit)
        nav.append(InlineKeyboardButton("◀ Newer", callback_data=f"{nav_prefix}:{previous}"))
    if nav_prefix is not None and page.has_next:
        following = page.offset + page.limit
        nav.append(InlineKeyboardButton("Older ▶", callback_data=f"{nav_prefix}:{following}"))
    if nav:
        rows.append(nav)
    if app_url is not None:
        rows.append([open_in_app_button(app_url)])
    return InlineKeyboardMarkup(rows)


def _button_label(item: SnippetSummary) -> str:
    title = item.title if len(item.title) <= 40 else item.title[:39] + "…"
    return f"#{item.ref} {title}"
