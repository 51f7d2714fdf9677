"""Turns an outbox row into a MIME message: plain text and HTML, plus the snippet attachment.

Templates live in `mail/templates` (`<kind>.txt` and `<kind>.html`, both extending a base
layout) and are loaded through the package, so they ship inside the wheel. Every value in an
email's context is user data as far as the HTML is concerned: it is autoescaped, and the only
markup that is not comes from Pygments, which escapes the code itself.

The MIME structure is assembled here rather than by `set_content`/`add_attachment`: those parse
every header they write (again on each change of a parameter), then the generator parses them
once more and searches the whole body for a free boundary. That was two thirds of a worker's
CPU per email. Here the parts' headers are stored pre-formatted (`set_raw`; all ASCII, short,
so the generator writes them as they are), the bodies pre-encoded (quoted-printable, base64)
and the boundaries chosen so that no encoded body can contain them. The result is still an
ordinary `EmailMessage`, the same structure as before.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message, MIMEPart
from email.utils import encode_rfc2231, format_datetime, quote
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from core.entities import EmailKind, OutgoingEmail
from core.sandbox import Sandbox, SandboxError

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


SLOW_CODE_CHARS = 4000
"""Emails of snippets longer than this are assembled off the event loop (it takes a while)."""
HIGHLIGHT_MAX_CHARS = 32_768
"""Longer snippets are shown plain: highlighting takes time linear at best (~3 µs a character),
and worse with some lexers."""
HIGHLIGHT_DEADLINE_SECONDS = 0.5
"""Longest highlighting may take, in its child process, before the code is shown plain.

Some lexers take super-linear time (systemd: 39 s on 2,000 characters), so it runs in a child
process that is killed when it overruns; one email waits for another's at most this long."""

_FORMATTER = HtmlFormatter(noclasses=True)
"""Building one computes its whole style table; it keeps no state between `format` calls."""


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    """Lexers are looked up by scanning every alias, and keep no state between uses."""
    try:
        return get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False)


def highlight_code(code: str, language: str) -> Markup:
    """The code as HTML with inline styles (mail clients drop stylesheets).

    Unbounded in time: a server calls it through `CodeHighlighter`."""
    html = highlight(code, _lexer(language), _FORMATTER)
    return Markup(html)  # noqa: S704 - Pygments escapes every token it emits


def plain_code(code: str) -> Markup:
    """The code escaped, without colours: what an email shows when highlighting is not done."""
    return Markup(
        '<div style="background: #f8f8f8"><pre style="line-height: 125%;">{}</pre></div>\n'
    ).format(code)


def _highlight_html(code: str, language: str) -> str:
    """`highlight_code` as a plain string: what the child process sends back."""
    return str(highlight_code(code, language))


def _warm_up_highlighting() -> None:
    highlight_code("x = 1\n", "python")


class CodeHighlighter:
    """Highlights in a child process with a deadline; plain code when it overruns or the code is
    long. The process starts on first use and is replaced when it is killed; `close()` stops it.
    """

    def __init__(
        self,
        *,
        deadline: float = HIGHLIGHT_DEADLINE_SECONDS,
        max_chars: int = HIGHLIGHT_MAX_CHARS,
    ) -> None:
        self._max_chars = max_chars
        self._sandbox = Sandbox(
            deadline=deadline, name="email highlighting", warm_up=_warm_up_highlighting
        )

    async def __call__(self, code: str, language: str) -> Markup:
        if len(code) > self._max_chars:
            return plain_code(code)
        try:
            html = await self._sandbox.run(_highlight_html, code, language)
        except SandboxError:
            return plain_code(code)
        return Markup(html)  # noqa: S704 - Pygments escapes every token it emits

    async def close(self) -> None:
        await self._sandbox.close()


def check_header(name: str, value: str) -> str:
    """Refuses values that would end the header early and start another one."""
    if "\0" in value or value.splitlines() != [value]:
        raise ValueError(f"{name} header must be one non-empty line without control characters")
    return value


class EmailRenderer:
    """Renders outbox rows; one instance serves all emails and threads (templates are cached).

    Snippets are highlighted by `highlighter` when one is given (`highlight`), else shown plain.
    """

    def __init__(self, highlighter: CodeHighlighter | None = None) -> None:
        self._highlighter = highlighter
        self._templates = Environment(
            loader=PackageLoader("mail", "templates"),
            # HTML (and anything unexpected) is escaped; only the plain-text part is not.
            autoescape=select_autoescape(disabled_extensions=("txt",), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
        )
        self._templates.filters["when"] = format_when

    @staticmethod
    def is_slow(email: OutgoingEmail) -> bool:
        """Whether rendering `email` may hold a thread long enough to matter (a large snippet)."""
        return len(str(email.context.get("code", ""))) > SLOW_CODE_CHARS

    async def highlight(self, email: OutgoingEmail) -> Markup | None:
        """The snippet's code as HTML for `render`, within the highlighter's deadline; None for
        an email without code."""
        if email.kind is not EmailKind.SNIPPET_RETRIEVED:
            return None
        code, language = str(email.context["code"]), str(email.context["language"])
        if self._highlighter is None:
            return plain_code(code)
        return await self._highlighter(code, language)

    async def close(self) -> None:
        if self._highlighter is not None:
            await self._highlighter.close()

    def render(
        self, email: OutgoingEmail, sender: str, *, highlighted: Markup | None = None
    ) -> EmailMessage:
        """Raises `ValueError` for a header value with a line break, and Jinja's errors for a
        context that misses a key: both mean the row can never be sent as it is.

        A snippet's code is shown as `highlighted` (from `highlight`), else plain."""
        subject = SUBJECTS[email.kind]
        message = EmailMessage(policy=_POLICY)
        _set_address(message, "From", check_header("From", sender))
        _set_address(message, "To", check_header("To", email.to))
        message.set_raw("Subject", check_header("Subject", subject))
        message.set_raw("Date", format_datetime(email.created_at))
        message.set_raw("Message-ID", _bracketed(check_header("Message-ID", email.message_id)))
        message.set_raw("MIME-Version", "1.0")

        context: dict[str, Any] = {**email.context, "subject": subject}
        retrieved = email.kind is EmailKind.SNIPPET_RETRIEVED
        if retrieved:
            context["highlighted_code"] = highlighted or plain_code(context["code"])
        # Quoted-printable keeps long lines and non-ASCII text safe on servers without 8BITMIME.
        alternative: list[Message] = [
            _text_part("plain", self._render(email.kind, "txt", context)),
            _text_part("html", self._render(email.kind, "html", context)),
        ]
        if not retrieved:
            _set_multipart(message, "alternative", alternative)
            return message
        body = MIMEPart(policy=_POLICY)
        _set_multipart(body, "alternative", alternative)
        # Bytes in base64, so the file arrives exactly as stored (line endings included).
        filename = check_header("Attachment filename", context["filename"])
        attachment = MIMEPart(policy=_POLICY)
        attachment.set_raw("Content-Type", 'text/plain; charset="utf-8"')
        attachment.set_raw("Content-Transfer-Encoding", "base64")
        attachment.set_raw("Content-Disposition", f"attachment; {_filename_param(filename)}")
        attachment.set_payload(base64.encodebytes(context["code"].encode("utf-8")).decode("ascii"))
        _set_multipart(message, "mixed", [body, attachment])
        return message

    def _render(self, kind: EmailKind, suffix: str, context: dict[str, Any]) -> str:
        return self._templates.get_template(f"{kind.value}.{suffix}").render(context)


class _HeaderCache(HeaderRegistry):
    """The registry, remembering the headers it parsed: the generator reads each part's
    Content-Type several times, and these values are the same in every email."""

    @lru_cache(maxsize=256)  # noqa: B019 - one module-level instance, kept for the process
    def __call__(self, name: str, value: str) -> BaseHeader:
        return super().__call__(name, value)


_POLICY = email.policy.default.clone(header_factory=_HeaderCache())


def _set_address(message: EmailMessage, name: str, value: str) -> None:
    if value.isascii() and len(value) < 70:
        message.set_raw(name, value)
    else:  # RFC 2047 for a display name, SMTPUTF8 for an address: the policy knows how
        message[name] = value


def _text_part(subtype: str, text: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    # Line endings made uniform, as `set_content` does; the generator writes CRLF for SMTP.
    data = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    return part


def _set_multipart(message: MIMEPart, subtype: str, parts: Sequence[Message]) -> None:
    # Quoted-printable writes "=" as "=3D" and base64 has no "_", so "=_" occurs in no body;
    # one fixed boundary per subtype keeps the nested ones apart and the header cacheable.
    message.set_raw("Content-Type", f'multipart/{subtype}; boundary="=_snippetvault_{subtype}"')
    message.set_payload(list(parts))


def _filename_param(filename: str) -> str:
    if filename.isascii() and len(filename) < 40:
        return f'filename="{quote(filename)}"'
    return f"filename*={encode_rfc2231(filename, 'utf-8')}"


def _bracketed(message_id: str) -> str:
    return message_id if message_id.startswith("<") else f"<{message_id}>"
