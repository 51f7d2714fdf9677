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
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message, MIMEPart
from email.policy import Policy
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

BODY_CACHE_ENTRIES = 256
"""Snippet versions whose rendered email body a renderer keeps (least recently used go first)."""
BODY_CACHE_CHARS = 16_000_000
"""Characters of cached bodies a renderer keeps at most (a bound on memory for large snippets)."""

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
            deadline=deadline, name="highlighting", warm_up=_warm_up_highlighting
        )

    async def __call__(self, code: str, language: str) -> Markup:
        if len(code) > self._max_chars:
            return plain_code(code)
        try:
            html = await self._sandbox.run(_highlight_html, code, language)
        except SandboxError:
            return _Fallback(plain_code(code))
        return Markup(html)  # noqa: S704 - Pygments escapes every token it emits

    async def close(self) -> None:
        await self._sandbox.close()


class _Fallback(Markup):
    """Plain code shown because highlighting overran or failed: right for this email, but not
    kept as the version's body (the next email of the same version tries again)."""

    __slots__ = ()


_VersionKey = tuple[str, str, object, str, str]
"""A snippet version as its email shows it: title, language, ref, code, file name. Two emails
with the same key have the same body, whatever the snippet's id (and an edit or rename that
changes what the email shows changes the key, so a stale body can never be reused)."""


@dataclass(frozen=True, slots=True)
class _Body:
    """A snippet email's parts as encoded once: everything but the envelope headers.

    `flattened` keeps the parts as the generator writes them below the message's headers (the
    same in every email of the version), once per policy they were flattened with (SMTP's CRLF
    and `.eml` files' LF, in practice)."""

    highlighted: Markup
    text: str
    html: str
    attachment: str
    flattened: dict[str, bytes] = field(default_factory=dict, compare=False)

    @property
    def chars(self) -> int:
        # The parts, and about as much again for their flattened copy.
        encoded = len(self.text) + len(self.html) + len(self.attachment)
        return len(self.highlighted) + 2 * encoded


class _BodyCache:
    """A bounded LRU of rendered bodies, shared by the worker's lanes and its render threads."""

    def __init__(self, entries: int, chars: int) -> None:
        self._entries, self._chars = entries, chars
        self._bodies: OrderedDict[_VersionKey, _Body] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def peek(self, key: _VersionKey) -> _Body | None:
        """The body kept for `key`, neither counted nor made recent: `get` does that, once
        per email, when the email is rendered."""
        with self._lock:
            return self._bodies.get(key)

    def get(self, key: _VersionKey) -> _Body | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is None:
                self.misses += 1
                return None
            self.hits += 1
            self._bodies.move_to_end(key)
            return body

    def put(self, key: _VersionKey, body: _Body) -> None:
        size = body.chars
        if self._entries <= 0 or size > self._chars:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self._used -= old.chars
            self._bodies[key] = body
            self._used += size
            while len(self._bodies) > self._entries or self._used > self._chars:
                _, evicted = self._bodies.popitem(last=False)
                self._used -= evicted.chars


def _version_key(context: dict[str, Any]) -> _VersionKey:
    return (
        str(context["title"]),
        str(context["language"]),
        context["ref"],
        str(context["code"]),
        str(context["filename"]),
    )


def check_header(name: str, value: str) -> str:
    """Refuses values that would end the header early and start another one."""
    if "\0" in value or value.splitlines() != [value]:
        raise ValueError(f"{name} header must be one non-empty line without control characters")
    return value


class EmailRenderer:
    """Renders outbox rows; one instance serves all emails and threads (templates are cached).

    Snippets are highlighted by `highlighter` when one is given (`highlight`), else shown plain.
    A snippet fetched again renders the same `Your Requested Snippet` body: it is rendered once
    per version (highlighting in the child process included) and kept, up to `cache_entries`
    versions and `cache_chars` characters; a body shown plain because highlighting overran is
    not kept.
    """

    def __init__(
        self,
        highlighter: CodeHighlighter | None = None,
        *,
        cache_entries: int = BODY_CACHE_ENTRIES,
        cache_chars: int = BODY_CACHE_CHARS,
    ) -> None:
        self._highlighter = highlighter
        self._bodies = _BodyCache(cache_entries, cache_chars)
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
        cached = self._cached_body(email)
        if cached is not None:
            return cached.highlighted
        if self._highlighter is None:
            return plain_code(code)
        return await self._highlighter(code, language)

    async def close(self) -> None:
        if self._highlighter is not None:
            await self._highlighter.close()

    @property
    def cache_counts(self) -> tuple[int, int]:
        """(hits, misses) of the body cache so far: one for each snippet email rendered."""
        return self._bodies.hits, self._bodies.misses

    def _cached_body(self, email: OutgoingEmail) -> _Body | None:
        try:
            key = _version_key(email.context)
        except KeyError:
            return None  # `render` says what is missing
        return self._bodies.peek(key)

    def render(
        self, email: OutgoingEmail, sender: str, *, highlighted: Markup | None = None
    ) -> EmailMessage:
        """Raises `ValueError` for a header value with a line break, and Jinja's errors for a
        context that misses a key: both mean the row can never be sent as it is.

        A snippet's code is shown as `highlighted` (from `highlight`), else plain."""
        subject = SUBJECTS[email.kind]
        envelope = [
            ("From", check_header("From", sender)),
            ("To", check_header("To", email.to)),
            ("Subject", check_header("Subject", subject)),
            ("Date", format_datetime(email.created_at)),
            ("Message-ID", _bracketed(check_header("Message-ID", email.message_id))),
            ("MIME-Version", "1.0"),
        ]
        if email.kind is not EmailKind.SNIPPET_RETRIEVED:
            message = _with_headers(EmailMessage(policy=_POLICY), envelope)
            context: dict[str, Any] = {**email.context, "subject": subject}
            _set_multipart(message, "alternative", self._alternative(email.kind, context))
            return message
        body = self._snippet_body(email, subject, highlighted)
        message = _with_headers(_SnippetMessage(body, policy=_POLICY), envelope)
        alternative = MIMEPart(policy=_POLICY)
        _set_multipart(
            alternative, "alternative", [_qp_part("plain", body.text), _qp_part("html", body.html)]
        )
        # Bytes in base64, so the file arrives exactly as stored (line endings included).
        filename = check_header("Attachment filename", str(email.context["filename"]))
        attachment = MIMEPart(policy=_POLICY)
        attachment.set_raw("Content-Type", 'text/plain; charset="utf-8"')
        attachment.set_raw("Content-Transfer-Encoding", "base64")
        attachment.set_raw("Content-Disposition", f"attachment; {_filename_param(filename)}")
        attachment.set_payload(body.attachment)
        _set_multipart(message, "mixed", [alternative, attachment])
        return message

    def _snippet_body(
        self, email: OutgoingEmail, subject: str, highlighted: Markup | None
    ) -> _Body:
        """The encoded parts of a snippet email: kept from an earlier email of the same version
        when that one showed the same highlighting, else rendered (and kept)."""
        key = _version_key(email.context)
        cached = self._bodies.get(key)
        if cached is not None and (highlighted is None or highlighted == cached.highlighted):
            return cached
        context: dict[str, Any] = {**email.context, "subject": subject}
        shown = highlighted or plain_code(context["code"])
        context["highlighted_code"] = shown
        body = _Body(
            highlighted=shown,
            text=_qp(self._render(email.kind, "txt", context)),
            html=_qp(self._render(email.kind, "html", context)),
            attachment=base64.encodebytes(context["code"].encode("utf-8")).decode("ascii"),
        )
        # Kept unless it shows plain code where highlighting was meant to run (it overran, or
        # `highlight` was not asked): the next email of this version tries again.
        if not isinstance(shown, _Fallback) and (
            highlighted is not None or self._highlighter is None
        ):
            self._bodies.put(key, body)
        return body

    def _alternative(self, kind: EmailKind, context: dict[str, Any]) -> list[Message]:
        # Quoted-printable keeps long lines and non-ASCII text safe on servers without 8BITMIME.
        return [
            _qp_part("plain", _qp(self._render(kind, "txt", context))),
            _qp_part("html", _qp(self._render(kind, "html", context))),
        ]

    def _render(self, kind: EmailKind, suffix: str, context: dict[str, Any]) -> str:
        return self._templates.get_template(f"{kind.value}.{suffix}").render(context)


class _SnippetMessage(EmailMessage):
    """A `Your Requested Snippet` email whose parts below the headers are flattened once per
    snippet version (and policy), not once per email: `as_bytes` writes this email's headers
    and the version's flattened parts, byte for byte what the generator writes for the whole
    message. Everything else (the parts, `walk`, a generator) sees an ordinary `EmailMessage`.
    Its parts are the version's: change one and `as_bytes` would not show it (nothing does).
    """

    def __init__(self, body: _Body, policy: Policy[Any]) -> None:
        super().__init__(policy=policy)
        self._body = body

    def as_bytes(self, unixfrom: bool = False, policy: Policy[Any] | None = None) -> bytes:
        policy = self.policy if policy is None else policy
        if unixfrom:
            return super().as_bytes(unixfrom, policy)
        key = repr(policy)
        below = self._body.flattened.get(key)
        if below is None:
            whole = super().as_bytes(policy=policy)
            end = policy.linesep * 2  # the blank line after the headers (none is empty before)
            below = whole[whole.index(end.encode("ascii")) + len(end) :]
            self._body.flattened[key] = below
            return whole
        # As the generator writes headers (BytesGenerator._write_headers), then the blank line.
        head = [policy.fold_binary(name, value) for name, value in self.raw_items()]
        head.append(policy.linesep.encode("ascii"))
        return b"".join(head) + below


class _HeaderCache(HeaderRegistry):
    """The registry, remembering the headers it parsed: the generator reads each part's
    Content-Type several times, and these values are the same in every email."""

    @lru_cache(maxsize=256)  # noqa: B019 - one module-level instance, kept for the process
    def __call__(self, name: str, value: str) -> BaseHeader:
        return super().__call__(name, value)


_POLICY = email.policy.default.clone(header_factory=_HeaderCache())


def _with_headers(message: EmailMessage, headers: list[tuple[str, str]]) -> EmailMessage:
    for name, value in headers:
        if name in ("From", "To"):
            _set_address(message, name, value)
        else:
            message.set_raw(name, value)
    return message


def _set_address(message: EmailMessage, name: str, value: str) -> None:
    if value.isascii() and len(value) < 70:
        message.set_raw(name, value)
    else:  # RFC 2047 for a display name, SMTPUTF8 for an address: the policy knows how
        message[name] = value


def _qp(text: str) -> str:
    # Line endings made uniform, as `set_content` does; the generator writes CRLF for SMTP.
    data = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    return binascii.b2a_qp(data, istext=True).decode("ascii")


def _qp_part(subtype: str, encoded: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    part.set_payload(encoded)
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
