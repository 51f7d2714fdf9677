"""Turns an outbox row into a MIME message: plain text and HTML, plus the snippet attachment.

Templates live in `mail/templates` (`<kind>.txt` and `<kind>.html`, both extending a base
layout) and are loaded through the package, so they ship inside the wheel. Every value in an
email's context is user data as far as the HTML is concerned: it is autoescaped, and the only
markup that is not comes from Pygments, which escapes the code itself.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from core.entities import EmailKind, OutgoingEmail

SUBJECTS: dict[EmailKind, str] = {
    EmailKind.VERIFY_EMAIL: "Verify your email",
    EmailKind.LOGIN_ALERT: "Login Alert",
    EmailKind.SNIPPET_CREATED: "New Snippet Created",
    EmailKind.SNIPPET_DELETED: "Snippet Deleted",
    EmailKind.SNIPPET_RETRIEVED: "Your Requested Snippet",
    EmailKind.PASSWORD_RESET: "Reset your password",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_when(value: str | datetime) -> str:
    """`2026-11-29T13:45:00+00:00` → `29 Nov 2026, 13:45 UTC`, in the zone the value carries.

    Month names are spelled out here rather than by `strftime`, which follows the locale.
    """
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    offset = moment.utcoffset()
    if offset is None:
        zone = "UTC"  # core's clock is UTC; a naive time can only mean that
    elif not offset:
        zone = "UTC"
    else:
        zone = moment.tzname() or moment.strftime("UTC%z")
    month = _MONTHS[moment.month - 1]
    return f"{moment.day} {month} {moment.year}, {moment:%H:%M} {zone}"


def highlight_code(code: str, language: str) -> Markup:
    """The code as HTML with inline styles (mail clients drop stylesheets)."""
    lexer: Lexer
    try:
        lexer = get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    html = highlight(code, lexer, HtmlFormatter(noclasses=True))
    return Markup(html)  # noqa: S704 - Pygments escapes every token it emits


def check_header(name: str, value: str) -> str:
    """Refuses values that would end the header early and start another one."""
    if "\0" in value or value.splitlines() != [value]:
        raise ValueError(f"{name} header must be one non-empty line without control characters")
    return value


class EmailRenderer:
    """Renders outbox rows; one instance serves all emails and threads (templates are cached)."""

    def __init__(self) -> None:
        self._templates = Environment(
            loader=PackageLoader("mail", "templates"),
            # HTML (and anything unexpected) is escaped; only the plain-text part is not.
            autoescape=select_autoescape(disabled_extensions=("txt",), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
        )
        self._templates.filters["when"] = format_when

    def render(self, email: OutgoingEmail, sender: str) -> EmailMessage:
        """Raises `ValueError` for a header value with a line break, and Jinja's errors for a
        context that misses a key: both mean the row can never be sent as it is."""
        subject = SUBJECTS[email.kind]
        message = EmailMessage()
        message["From"] = check_header("From", sender)
        message["To"] = check_header("To", email.to)
        message["Subject"] = check_header("Subject", subject)
        message["Date"] = format_datetime(email.created_at)
        message["Message-ID"] = _bracketed(check_header("Message-ID", email.message_id))

        context: dict[str, Any] = {**email.context, "subject": subject}
        retrieved = email.kind is EmailKind.SNIPPET_RETRIEVED
        if retrieved:
            context["highlighted_code"] = highlight_code(context["code"], context["language"])
        # Quoted-printable keeps long lines and non-ASCII text safe on servers without 8BITMIME.
        message.set_content(self._render(email.kind, "txt", context), cte="quoted-printable")
        message.add_alternative(
            self._render(email.kind, "html", context), subtype="html", cte="quoted-printable"
        )
        if retrieved:
            # Bytes in base64, so the file arrives exactly as stored (line endings included).
            message.add_attachment(
                context["code"].encode("utf-8"),
                maintype="text",
                subtype="plain",
                filename=check_header("Attachment filename", context["filename"]),
                params={"charset": "utf-8"},
            )
        return message

    def _render(self, kind: EmailKind, suffix: str, context: dict[str, Any]) -> str:
        return self._templates.get_template(f"{kind.value}.{suffix}").render(context)


def _bracketed(message_id: str) -> str:
    return message_id if message_id.startswith("<") else f"<{message_id}>"
