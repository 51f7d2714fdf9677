"""Hostile and odd input through the real bot: every case gets a clear answer, nothing crashes
(the error handler's apology is a failure here), and nothing is stored half.

One table: each row sets a chat up (nobody, a user, a user with a snippet…), sends what a
person (or a broken client) could send, and names the reply it expects. After every row the
same checks run: no apology and no ERROR log, the expected reply, and the database holds exactly
the snippets and users the row says it adds; everything that existed before is unchanged,
unless the row changes it on purpose and checks that itself.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest

from core.settings import Settings
from tests.bot.conftest import BotHarness
from tests.fakebotapi import BotMessage
from tests.resilience.conftest import apologies, query_rows
from tests.secrets_guard import SecretsGuard

CHAT = 7001
OTHER_CHAT = 7002
GROUP = -1007001
CHANNEL = -1007009
PASSWORD = "hostile-Pass-7"
"""Not the help text's example password (`s3cret-pass`), which every /start shows."""
EMAIL = "ada@example.com"
OTHER_EMAIL = "bob@example.com"
NEW_EMAIL = "new@example.com"
MAX_BYTES = Settings.model_fields["max_snippet_bytes"].default
KEPT_CODE = "kept = 1\n"
P72 = "p" * 72
P72_EMOJI = "🔑" * 18  # 4 bytes each
TWO_SPACES = "pass  word  12"
HTML_TITLE = "<b>bold</b> & </pre> &amp; <i>"
HTML_CODE = (
    "if a < b && c > d:\n    print('</pre><script>alert(1)</script>')\n"
    "    s = '&lt; &amp; &#60; <code>'\n"
)
MD_SPECIALS = r"_*[]()~`>#+-=|{}.!\ *bold* _it_ [x](http://e.x) ||spoiler||"
EMOJI_RTL_TITLE = "🐍 שלום مرحبا ✨"
EMOJI_RTL_CODE = "print('👋🏽 مرحبا بالعالم')\n# עברית 🇺🇦 ZWJ: 👩‍💻\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@dataclass
class Ctx:
    bot: BotHarness
    guard: SecretsGuard
    sent: list[tuple[int, int, str]] = field(default_factory=list)
    """(chat, message id, text) of every message the person sent during the act."""
    list_message: int = 0
    """The bot's /list message with buttons, in the `owner` setup."""

    @property
    def tg(self) -> Any:
        return self.bot.tg

    def secret(self, value: str) -> str:
        return self.guard.remember(value)

    async def say(self, text: str, chat: int = CHAT, **options: Any) -> None:
        update = self.tg.private_message(chat, chat, text, enqueue=False, **options)
        await self._send(chat, update, text)

    async def group(self, text: str) -> None:
        update = self.tg.group_message(GROUP, CHAT, text, enqueue=False)
        await self._send(GROUP, update, text)

    async def doc(self, name: str, data: bytes, **options: Any) -> None:
        update = self.tg.document(CHAT, CHAT, name, data, enqueue=False, **options)
        await self._send(CHAT, update, options.get("caption") or "")

    async def press(self, data: str, message_id: int | None = None) -> None:
        await self.bot.send(
            self.tg.callback_query(CHAT, message_id or self.list_message, data, enqueue=False)
        )

    async def _send(self, chat: int, update: dict[str, Any], text: str) -> None:
        self.sent.append((chat, update["message"]["message_id"], text))
        await self.bot.send(update)

    async def snippet(self, ref: int = 1, chat: int = CHAT) -> tuple[str, str] | None:
        rows = await query_rows(
            self.bot,
            "SELECT s.title, s.code FROM snippets s JOIN users u ON u.id = s.owner_id "
            # A deleted snippet waits for an undo, hidden: to its owner it is gone.
            "WHERE s.ref = :ref AND u.email = :email AND s.deleted_at IS NULL",
            ref=ref,
            email=EMAIL if chat == CHAT else OTHER_EMAIL,
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def emails(self, subject: str | None = None) -> list[EmailMessage]:
        await self.bot.deliver_emails()
        return self.bot.inbox.to(EMAIL, subject)


Act = Callable[[Ctx], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    act: Act
    reply: str | None
    """A regex the bot's answers (messages, callback alerts) must match; None: no answer."""
    setup: str = "user"
    """nobody · visitor (sent /start, no account) · user (logged in, verified) · owner (user
    with snippet #1 "Kept") ·
    stranger (logged in; another chat's user owns #1) · user72 (signed up with a 72-byte
    password, verified, logged out)."""
    saved: tuple[str, ...] = ()
    """Titles of the snippets the act adds."""
    new_users: int = 0
    changes: bool = False
    """The act changes existing rows on purpose; `check` says how."""
    check: Act | None = None


async def _account(bot: BotHarness, chat: int, email: str, password: str = PASSWORD) -> None:
    """Signs up, verifies and logs in, as a person would."""
    await bot.sign_up(chat, email, password)
    reply = await bot.say(chat, f"/verify {bot.verification_code(email)}")
    assert "is verified" in reply, reply
    reply = await bot.log_in(chat, email, password)
    assert "Logged in" in reply, reply


async def _setup(ctx: Ctx, setup: str) -> None:
    bot = ctx.bot
    if setup in {"user", "owner"}:
        await _account(bot, CHAT, EMAIL)
    if setup == "owner":
        await bot.save(CHAT, "Kept", KEPT_CODE)
        before = bot.tg.mark()
        await bot.say(CHAT, "/list")
        [listing] = [m for m in bot.tg.sent_messages(CHAT) if m.seq > before]
        ctx.list_message = listing.message_id
    if setup == "stranger":
        await _account(bot, OTHER_CHAT, OTHER_EMAIL)
        await bot.save(OTHER_CHAT, "Theirs", "secret_plan = 1\n")
        await _account(bot, CHAT, EMAIL)
    if setup == "visitor":
        await bot.say(CHAT, "/start")
    if setup == "user72":
        await bot.sign_up(CHAT, EMAIL, P72)
        reply = await bot.say(CHAT, f"/verify {bot.verification_code(EMAIL)}")
        assert "is verified" in reply, reply
    await bot.deliver_emails()


async def _snapshot(bot: BotHarness) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, Any]]:
    snippets = await query_rows(
        bot, "SELECT id, owner_id, ref, title, code, language, updated_at FROM snippets"
    )
    users = await query_rows(bot, "SELECT id, email, hashed_password, is_verified FROM users")
    return {row[0]: row for row in snippets}, {row[0]: row for row in users}


# -- what the checks of single rows look at ---------------------------------------------------


def _visible_get(ctx: Ctx) -> str:
    """The text of the bot's latest /get answer (code block or document caption)."""
    shown = [m for m in ctx.tg.sent_messages(CHAT) if "#" in m.text and m.buttons]
    assert shown, "no snippet was shown"
    return shown[-1].text


def _expect_snippet(title: str, code: str) -> Act:
    async def check(ctx: Ctx) -> None:
        stored = await ctx.snippet(await _newest_ref(ctx))
        assert stored == (title, code)
        await ctx.say(f"/get {await _newest_ref(ctx)}")
        shown = _visible_get(ctx)
        assert shown.startswith(f"{title} · #")
        assert f"\n{code}\n" in shown

    return check


async def _newest_ref(ctx: Ctx) -> int:
    rows = await query_rows(ctx.bot, "SELECT max(ref) FROM snippets")
    return int(rows[0][0])


def _expect_code(code: str) -> Act:
    async def check(ctx: Ctx) -> None:
        stored = await ctx.snippet(await _newest_ref(ctx))
        assert stored is not None
        assert stored[1] == code

    return check


def _single_headers(message: EmailMessage) -> None:
    for name in ("To", "From", "Subject", "Message-ID", "Date"):
        assert len(message.get_all(name) or []) == 1, (name, message.items())
    for name, value in message.items():
        assert "\r" not in value, (name, value)
        assert "\n" not in value, (name, value)
        assert name.lower() not in {"bcc", "cc", "x-evil"}, name
    for part in message.walk():
        for name, value in part.items():
            assert "\r" not in value and "\n" not in value, (name, value)
            assert name.lower() not in {"bcc", "cc", "x-evil"}, name


def _injection_free(subject: str) -> Act:
    async def check(ctx: Ctx) -> None:
        ref = await _newest_ref(ctx)
        stored = await ctx.snippet(ref)
        assert stored is not None
        assert "\r" not in stored[0] and "\n" not in stored[0], stored[0]
        await ctx.say(f"/get {ref}")
        emails = await ctx.emails(subject)
        assert emails, ctx.bot.inbox.subjects()
        for message in emails:
            _single_headers(message)
            assert message["To"] == EMAIL

    return check


async def _nobody_logged_in(ctx: Ctx) -> None:
    rows = await query_rows(
        ctx.bot,
        "SELECT count(*) FROM sessions WHERE client_key = :c AND revoked_at IS NULL",
        c=str(CHAT),
    )
    assert rows == [(0,)]


async def _logged_in(ctx: Ctx) -> None:
    rows = await query_rows(
        ctx.bot,
        "SELECT count(*) FROM sessions WHERE client_key = :c AND revoked_at IS NULL",
        c=str(CHAT),
    )
    assert rows == [(1,)]


async def _kept_intact(ctx: Ctx) -> None:
    assert await ctx.snippet(1) == ("Kept", KEPT_CODE)


async def _theirs_intact(ctx: Ctx) -> None:
    assert await ctx.snippet(1, OTHER_CHAT) == ("Theirs", "secret_plan = 1\n")


async def _no_download(ctx: Ctx) -> None:
    assert ctx.tg.calls("getFile") == []


async def _first_deleted(ctx: Ctx) -> None:
    assert await ctx.snippet(1) is None


def _signup(password: str, email: str = NEW_EMAIL) -> Act:
    async def act(ctx: Ctx) -> None:
        await ctx.say(f"/signup {email} {ctx.secret(password)}")

    return act


def _login(password: str) -> Act:
    async def act(ctx: Ctx) -> None:
        await ctx.say(f"/login {EMAIL} {ctx.secret(password)}")

    return act


def _say(*texts: str) -> Act:
    async def act(ctx: Ctx) -> None:
        for text in texts:
            await ctx.say(text)

    return act


def _group(text: str) -> Act:
    async def act(ctx: Ctx) -> None:
        await ctx.group(text)

    return act


def _doc(name: str, data: bytes, **options: Any) -> Act:
    async def act(ctx: Ctx) -> None:
        await ctx.doc(name, data, **options)

    return act


def _press(*data: str) -> Act:
    async def act(ctx: Ctx) -> None:
        for item in data:
            await ctx.press(item)

    return act


def _press_for(action: str, ref: int, times: int = 1) -> Act:
    """A button for the owner's snippet `ref`, as the bot makes them (naming its id), or for
    a made-up id when there is no such snippet."""

    async def act(ctx: Ctx) -> None:
        rows = await query_rows(ctx.bot, "SELECT id FROM snippets WHERE ref = :ref", ref=ref)
        snippet_id = uuid.UUID(str(rows[0][0])) if rows else uuid.uuid4()
        for _ in range(times):
            await ctx.press(f"{action}:{ref}:{snippet_id.hex}")

    return act


async def _edit_into_delete(ctx: Ctx) -> None:
    await ctx.say("/list")
    _, message_id, _ = ctx.sent[-1]
    await ctx.bot.send(ctx.tg.edited_message(CHAT, message_id, "/delete 1", enqueue=False))


async def _edit_in_group(ctx: Ctx) -> None:
    await ctx.group("hello")
    _, message_id, _ = ctx.sent[-1]
    await ctx.bot.send(ctx.tg.edited_message(GROUP, message_id, "/delete 1", enqueue=False))


async def _channel(ctx: Ctx) -> None:
    for text in ("/start", "/signup eve@example.com password123", "/delete 1", "hello"):
        await ctx.bot.send(ctx.tg.channel_post(CHANNEL, text, enqueue=False))


async def _sticker(ctx: Ctx) -> None:
    await ctx.bot.send(ctx.tg.sticker(CHAT, CHAT, enqueue=False))


async def _photo(ctx: Ctx) -> None:
    await ctx.bot.send(ctx.tg.photo(CHAT, CHAT, caption="/save holiday", enqueue=False))


async def _save_reply_to_sticker(ctx: Ctx) -> None:
    sticker = ctx.tg.sticker(CHAT, CHAT, enqueue=False)
    await ctx.bot.send(sticker)
    await ctx.say("/save From a sticker", reply_to=sticker["message"]["message_id"])


async def _press_unknown_message(ctx: Ctx) -> None:
    await ctx.press("open:1", message_id=999)


async def _login_step_by_step_emoji(ctx: Ctx) -> None:
    await ctx.say("/login")
    await ctx.say(EMAIL)
    await ctx.say(ctx.secret("😀" * 200))


async def _two_spaces(ctx: Ctx) -> None:
    """Set in one message, used step by step; then set step by step, used in one message."""
    await ctx.say(f"/signup {NEW_EMAIL} {ctx.secret(TWO_SPACES)}")
    await _verify(ctx, NEW_EMAIL)
    await ctx.say("/login")
    await ctx.say(NEW_EMAIL)
    await ctx.say(TWO_SPACES)
    await ctx.say("/signup")
    await ctx.say(OTHER_EMAIL)
    await ctx.say(TWO_SPACES)
    await _verify(ctx, OTHER_EMAIL)
    await ctx.say(f"/login {OTHER_EMAIL} {TWO_SPACES}")


async def _verify(ctx: Ctx, email: str) -> None:
    await ctx.bot.deliver_emails()
    await ctx.say(f"/verify {ctx.bot.verification_code(email)}")


async def _logged_in_twice(ctx: Ctx) -> None:
    logins = [m.text for m in ctx.tg.sent_messages(CHAT) if "Logged in as" in m.text]
    assert len(logins) == 2, logins
    assert NEW_EMAIL in logins[0]
    assert OTHER_EMAIL in logins[1]


async def _signup_step_by_step_bad_email(ctx: Ctx) -> None:
    await ctx.say("/signup")
    await ctx.say("ada@@example.com")


def _get_digits(digits: int) -> Act:
    async def act(ctx: Ctx) -> None:
        await ctx.say("/get " + "9" * digits)

    return act


async def _short_reply(ctx: Ctx) -> None:
    last = ctx.tg.last_message(CHAT)
    assert last is not None
    assert len(last.text) < 200, len(last.text)


CASES: tuple[Case, ...] = (
    # -- files ----------------------------------------------------------------------------
    Case("binary file", _doc("pixel.png", PNG, mime_type="image/png"), "binary"),
    Case("zero-byte file", _doc("empty.py", b""), "empty"),
    Case(
        "file over MAX_SNIPPET_BYTES",
        _doc("big.py", b"x = 1\n" * (MAX_BYTES // 6 + 1)),
        "too large",
        check=_no_download,
    ),
    Case(
        "file that lies about its size",
        _doc("liar.py", b"x = 1\n" * (MAX_BYTES // 6 + 1), file_size=100),
        "too large",
    ),
    Case(
        "file claiming 25 MB",
        _doc("huge.py", b"x = 1\n", file_size=25 * 1024 * 1024),
        "too big.*20 MB",
        check=_no_download,
    ),
    Case(
        "invalid UTF-8 garbage",
        _doc("garbage.bin.py", bytes(range(0x80, 0x100)) * 4),
        "not text|binary",
    ),
    Case(
        "UTF-16 with BOM",
        _doc("utf16.py", "\ufeffprint('héllo wörld ✓')\r\n".encode("utf-16-le")),
        "Saved",
        saved=("utf16.py",),
        check=_expect_code("print('héllo wörld ✓')\r\n"),
    ),
    Case(
        "UTF-16 big-endian with BOM",
        _doc("utf16be.py", "\ufeffx = 'ü'\n".encode("utf-16-be")),
        "Saved",
        saved=("utf16be.py",),
        check=_expect_code("x = 'ü'\n"),
    ),
    Case(
        "UTF-16 without BOM",
        _doc("nobom.py", "print('hello')\n".encode("utf-16-le")),
        "binary|not text",
    ),
    Case(
        "UTF-8 with BOM",
        _doc("bom.py", "\ufeffprint('ok')\n".encode()),
        "Saved",
        saved=("bom.py",),
        check=_expect_code("print('ok')\n"),
    ),
    Case(
        "UTF-32 with BOM",
        _doc("utf32.py", "\ufeffy = '€'\n".encode("utf-32-le")),
        "Saved",
        saved=("utf32.py",),
        check=_expect_code("y = '€'\n"),
    ),
    Case("NUL bytes in a file", _doc("nul.py", b"print(1)\x00\x00print(2)\n"), "binary"),
    Case(
        "Windows line endings in a file",
        _doc("crlf.py", b"a = 1\r\nb = 2\r\n"),
        "Saved",
        saved=("crlf.py",),
        check=_expect_code("a = 1\r\nb = 2\r\n"),
    ),
    Case(
        "path traversal in a file name",
        _doc("../../etc/passwd", b"root:x:0:0\n"),
        "Saved",
        saved=("../../etc/passwd",),
        check=_expect_snippet("../../etc/passwd", "root:x:0:0\n"),
    ),
    Case(
        "CR/LF in a file name and caption",
        _doc("a.py", b"print(1)\n", caption="/save Evil\r\nBcc: eve@example.com"),
        "Saved",
        saved=("Evil Bcc: eve@example.com",),
        check=_injection_free("Your Requested Snippet"),
    ),
    # -- text that is not text ------------------------------------------------------------
    Case("NUL bytes in a message", _say("/save Nul\nab\x00cd"), "NUL"),
    Case("a lone surrogate in a message", _say("/save Odd\nab\ud800cd"), "not valid Unicode"),
    # -- titles ---------------------------------------------------------------------------
    Case("10,000-character title", _say("/save " + "t" * 10_000 + "\nx = 1"), "too long"),
    Case(
        "10,000-character title by /rename",
        _say("/rename 1 " + "t" * 10_000),
        "too long",
        setup="owner",
    ),
    Case("title of zero-width spaces", _say("/save \u200b\u200b\u2060\nx = 1"), "needs a title"),
    Case(
        "HTML specials and </pre> in title and code",
        _say(f"/save {HTML_TITLE}\n{HTML_CODE}"),
        "Saved",
        saved=(HTML_TITLE,),
        check=_expect_snippet(HTML_TITLE, HTML_CODE),
    ),
    Case(
        "MarkdownV2 specials in title and code",
        _say(f"/save {MD_SPECIALS}\n{MD_SPECIALS}\n"),
        "Saved",
        saved=(MD_SPECIALS,),
        check=_expect_snippet(MD_SPECIALS, MD_SPECIALS + "\n"),
    ),
    Case(
        "CR/LF in a title (email header injection)",
        _say("/save Evil\rBcc: eve@example.com\rX-Evil: 1\nprint(1)"),
        "Saved",
        saved=("Evil Bcc: eve@example.com X-Evil: 1",),
        check=_injection_free("Your Requested Snippet"),
    ),
    Case(
        "CR/LF in a title by /rename",
        _say("/rename 1 Evil\rBcc: eve@example.com"),
        "Renamed",
        setup="owner",
        changes=True,
        check=_injection_free("Your Requested Snippet"),
    ),
    Case(
        "emoji and right-to-left text",
        _say(f"/save {EMOJI_RTL_TITLE}\n{EMOJI_RTL_CODE}"),
        "Saved",
        saved=(EMOJI_RTL_TITLE,),
        check=_expect_snippet(EMOJI_RTL_TITLE, EMOJI_RTL_CODE),
    ),
    Case(
        "right-to-left override in a title",
        _say("/save \u202egnp.exe\nx = 1"),
        "Saved",
        saved=("gnp.exe",),
    ),
    # -- passwords --------------------------------------------------------------------------
    Case("signup: 7-character password", _signup("abcdefg"), "at least 8", setup="nobody"),
    Case(
        "signup: 72-byte password",
        _signup(P72),
        "verification email",
        setup="nobody",
        new_users=1,
    ),
    Case(
        "signup: 72 bytes of emoji",
        _signup(P72_EMOJI),
        "verification email",
        setup="nobody",
        new_users=1,
    ),
    Case("signup: 73-byte password", _signup(P72 + "p"), "too long", setup="nobody"),
    Case("signup: 200 emoji", _signup("🔑" * 200), "too long", setup="nobody"),
    Case(
        "login: 7-character password",
        _login("abcdefg"),
        "Wrong email or password",
        setup="user72",
        check=_nobody_logged_in,
    ),
    Case(
        "login: 72-byte password",
        _login(P72),
        "Logged in",
        setup="user72",
        check=_logged_in,
    ),
    Case(
        "login: the 72-byte password plus one byte (bcrypt truncation)",
        _login(P72 + "x"),
        "Wrong email or password",
        setup="user72",
        check=_nobody_logged_in,
    ),
    Case(
        "login: 200 emoji",
        _login("😀" * 200),
        "Wrong email or password",
        setup="user72",
        check=_nobody_logged_in,
    ),
    Case(
        "login step by step: 200 emoji",
        _login_step_by_step_emoji,
        "Wrong email or password",
        setup="user72",
        check=_nobody_logged_in,
    ),
    Case(
        "a password with inner spaces, one message then step by step",
        _two_spaces,
        "Logged in",
        setup="nobody",
        new_users=2,
        check=_logged_in_twice,
    ),
    # -- emails -----------------------------------------------------------------------------
    *(
        Case(f"malformed email {raw!r}", _signup(PASSWORD, raw), "email address", setup="nobody")
        for raw in (
            "not-an-email",
            "ada@localhost",
            "ada@@example.com",
            "eve@example.com,ada@example.com",
            "<ada@example.com>",
            "ada\u200b@example.com",
            "ada@example..com",
            "a" * 300 + "@example.com",
        )
    ),
    Case(
        "malformed email, step by step",
        _signup_step_by_step_bad_email,
        "email address",
        setup="nobody",
    ),
    Case("malformed email at login", _say("/login nobody password1"), "email address"),
    Case("malformed email at reset", _say("/reset <script>"), "email address", setup="nobody"),
    # -- commands ---------------------------------------------------------------------------
    Case("unknown command", _say("/frobnicate now"), "don't know that command"),
    Case(
        "a command for another bot",
        _say("/delete@OtherBot 1"),
        "is for @OtherBot, not for me",
        setup="owner",
    ),
    Case(
        "a command for this bot by name",
        _say("/list@SnippetVaultTestBot"),
        "Your snippets",
        setup="owner",
    ),
    Case("a command for another bot in a group", _group("/delete@OtherBot 1"), None, "owner"),
    Case("/signup in a group", _group("/signup eve@example.com password1"), "private chat"),
    Case("an edited message turned into /delete", _edit_into_delete, "edits", setup="owner"),
    Case("an edited message in a group", _edit_in_group, None, setup="owner"),
    Case("channel posts", _channel, None, setup="owner"),
    Case("a sticker", _sticker, "cannot be saved"),
    Case("a photo captioned /save", _photo, "cannot be saved"),
    Case("/save as a reply to a sticker", _save_reply_to_sticker, "no text or file"),
    # -- buttons ----------------------------------------------------------------------------
    Case("forged callback data", _press("open:abc", "x" * 64, "del:"), "no longer valid"),
    Case(
        "callback with an 11-digit number",
        _press("del:99999999999"),
        "no longer valid",
        setup="owner",
    ),
    Case(
        "callback with a number past 2^31",
        _press("open:9999999999", "delok:4294967297"),
        "no snippet|no longer valid",
        setup="owner",
        check=_kept_intact,
    ),
    Case(
        "stale delete button, pressed twice",
        _press_for("delok", 1, times=2),
        "Deleted.*no snippet 1",
        setup="owner",
        changes=True,
        check=_first_deleted,
    ),
    Case("callback for a missing snippet", _press_for("del", 2), "no snippet 2", setup="owner"),
    Case(
        "callback without the snippet's id (from before buttons named it)",
        _press("delok:1"),
        "no longer valid",
        setup="owner",
    ),
    Case(
        "callback on an unknown message while logged out",
        _press_unknown_message,
        "Please log in first",
        setup="visitor",
    ),
    # -- refs -------------------------------------------------------------------------------
    *(
        Case(
            f"another user's ref: {command.split()[0]}",
            _say(command),
            "no snippet 1 among yours",
            setup="stranger",
            check=_theirs_intact,
        )
        for command in ("/get 1", "/delete 1", "/edit 1\nstolen = 1", "/rename 1 Mine now")
    ),
    *(
        Case(f"ref {raw[:24]}", _say(f"/get {raw}"), "not a snippet number", check=_short_reply)
        for raw in (
            str(2**63),
            str(2**64 + 1),
            "-1",
            "0",
            "1.5",
            "1e3",
            "²",
            "١",
            "#" + str(2**63),
        )
    ),
    Case("/get with 5,000 digits", _get_digits(5000), "not a snippet number", check=_short_reply),
    Case("/delete with 5,000 digits", _say("/delete " + "7" * 5000), "not a snippet number"),
    # -- search -----------------------------------------------------------------------------
    Case("search of 10,000 characters", _say("/search " + "q" * 10_000), "at most 200"),
    Case("search for LIKE wildcards", _say("/search %", "/search _"), "Nothing matches", "owner"),
    # -- edits that must not half-apply --------------------------------------------------
    Case(
        "/edit with NUL bytes",
        _say("/edit 1\nbroken\x00code"),
        "NUL",
        setup="owner",
        check=_kept_intact,
    ),
    # -- codes ------------------------------------------------------------------------------
    Case("/start with a forged payload", _say("/start " + "A" * 64), "wrong, used or expired"),
    Case("/verify with emoji", _say("/verify 💣💣💣"), "wrong, used or expired"),
)
assert len(CASES) >= 50, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input_gets_a_clear_reply_and_stores_nothing_half(
    case: Case,
    hostile_bot: BotHarness,
    secrets_guard: SecretsGuard,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = hostile_bot
    ctx = Ctx(bot, secrets_guard)
    secrets_guard.remember(PASSWORD)
    secrets_guard.remember(P72)
    await _setup(ctx, case.setup)
    snippets_before, users_before = await _snapshot(bot)
    mark = bot.tg.mark()
    caplog.clear()

    await case.act(ctx)

    assert apologies(bot) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]

    answers = _answers(bot, mark)
    if case.reply is None:
        assert answers == [], answers
    else:
        assert answers, "the bot did not answer"
        joined = "\n".join(answers)
        assert re.search(case.reply, joined, re.DOTALL | re.IGNORECASE), joined

    snippets_after, users_after = await _snapshot(bot)
    added = [row[3] for key, row in snippets_after.items() if key not in snippets_before]
    assert sorted(added) == sorted(case.saved)
    assert len(users_after) - len(users_before) == case.new_users
    if not case.changes:
        assert {k: snippets_after.get(k) for k in snippets_before} == snippets_before
        assert {k: users_after.get(k) for k in users_before} == users_before

    # Every private message that carried a password is gone from the chat.
    for chat, message_id, text in ctx.sent:
        if chat > 0 and any(s in text for s in (PASSWORD, P72, *_case_secrets(secrets_guard))):
            assert bot.tg.message(chat, message_id) is None, text[:40]

    if case.check is not None:
        await case.check(ctx)
    assert apologies(bot) == []


def _case_secrets(guard: SecretsGuard) -> list[str]:
    return [secret for secret in guard.secrets if len(secret) >= 8]


def _answers(bot: BotHarness, mark: int) -> list[str]:
    texts: list[str] = [
        message.text
        for chat in (CHAT, OTHER_CHAT, GROUP, CHANNEL)
        for message in _since(bot.tg.sent_messages(chat), mark)
    ]
    texts += [
        str(call.params.get("text") or "(answered)")
        for call in bot.tg.calls("answerCallbackQuery")
        if call.seq > mark and call.params.get("text")
    ]
    return texts


def _since(messages: list[BotMessage], mark: int) -> list[BotMessage]:
    return [message for message in messages if message.seq > mark]
