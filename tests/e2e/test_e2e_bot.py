"""Issue 3, end to end: two people use the real `snippetvault run` process, through the Bot API
over HTTP, with PostgreSQL, Redis and SMTP, from signing up to deleting a snippet."""

from __future__ import annotations

import collections
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
from sqlalchemy.engine import make_url

from tests.e2e.bot_process import (
    HOST,
    START_SECONDS,
    WAIT_SECONDS,
    BotProcess,
    Received,
    SmtpInbox,
    free_port,
)
from tests.fakebotapi import BotMessage, FakeBotApiServer, FakeTelegram

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ADA, BOB, FORWARDER = 5101, 5202, 5303
ADA_PASSWORD = "correct-horse-battery-A1"
BOB_PASSWORD = "tr0ub4dor-and-three-B2"
TITLE = "Greeting <html> & friends"
CODE = (
    "def greet(name: str) -> str:\n"
    '    """Says hello; café ☕ stays UTF-8."""\n'
    '    return f"<b>Hello & welcome, {name}!</b>"'
)
FILE_NAME = "fib.py"
FILE_BYTES = (
    b"def fib(n):\r\n"
    b"    a, b = 0, 1\r\n"
    b"    for _ in range(n):\r\n"
    b"        a, b = b, a + b\r\n"
    b"    return a  # r\xc3\xa9sultat\r\n"
)
MISSING_REF = 999

SUBJECT_VERIFY = "Verify your email"
SUBJECT_LOGIN = "Login Alert"
SUBJECT_CREATED = "New Snippet Created"
SUBJECT_RETRIEVED = "Your Requested Snippet"
SUBJECT_DELETED = "Snippet Deleted"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_FETCH = re.compile(r"Fetch it with /get (\d+)")


@pytest.fixture
def jwt_secret() -> str:
    return secrets.token_urlsafe(36)  # 48 characters


@pytest.fixture
async def bot(
    bot_api: FakeBotApiServer,
    smtp_inbox: SmtpInbox,
    empty_postgres_url: str,
    redis_url: str,
    jwt_secret: str,
    tmp_path: Path,
) -> AsyncIterator[BotProcess]:
    """`snippetvault run`, started in an empty directory (so no `.env` is read) on a database
    of its own that it migrates itself, polling the fake Bot API."""
    workdir = tmp_path / "bot"
    workdir.mkdir()
    env: dict[str, str] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        **bot_api.env(),
        "DATABASE_URL": empty_postgres_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(smtp_inbox.port),
        "SMTP_SECURITY": "none",
        "JWT_SECRET": jwt_secret,
        "DATA_DIR": str(workdir / "data"),
        "PTB_TIMEDELTA": "1",
        "HTTP_PORT": str(free_port()),
    }
    process = BotProcess(env, workdir)
    try:
        await process.start()
        yield process
    finally:
        await process.kill()


class Chat:
    """One person's private chat with the bot: sends a message, returns the bot's answer."""

    def __init__(self, tg: FakeTelegram, bot: BotProcess, user_id: int) -> None:
        self.tg = tg
        self.bot = bot
        self.id = user_id
        self.last_sent = 0
        """The id of the message this chat's user sent last."""

    async def say(self, text: str, expect: str | None = None) -> BotMessage:
        since = self.tg.mark()
        update = self.tg.private_message(self.id, self.id, text)
        self.last_sent = int(update["message"]["message_id"])
        return await self.answer(since, expect, f"the reply to {text.splitlines()[0]!r}")

    async def forward_file(self, file_name: str, data: bytes, expect: str) -> BotMessage:
        since = self.tg.mark()
        self.tg.document(
            self.id,
            self.id,
            file_name,
            data,
            "text/x-python",
            forward_origin=self.tg.user_origin(FORWARDER),
        )
        return await self.answer(since, expect, f"the reply to the forwarded {file_name}")

    async def answer(self, since: int, expect: str | None, what: str) -> BotMessage:
        return await self.bot.until(
            self.tg.wait_for_message(self.id, expect, since=since, timeout=WAIT_SECONDS), what
        )


async def mail(
    bot: BotProcess, inbox: SmtpInbox, to: str, subject: str, count: int = 1
) -> Received:
    """The `count`-th email with `subject` to `to`, once it arrived."""
    found = await bot.until(inbox.wait_for(to, subject, count), f"{subject!r} to {to}")
    return found[count - 1]


def utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[2 * offset : 2 * (offset + length)].decode("utf-16-le")


def code_block(message: BotMessage) -> tuple[str, str | None]:
    """The one `pre` block of a message the bot sent: its visible text and language."""
    (pre,) = [entity for entity in message.entities if entity["type"] == "pre"]
    return utf16_slice(message.text, pre["offset"], pre["length"]), pre.get("language")


def saved_ref(message: BotMessage) -> int:
    match = _FETCH.search(message.text)
    assert match is not None, message.text
    return int(match.group(1))


async def sign_up_and_log_in(
    chat: Chat, inbox: SmtpInbox, address: str, password: str, *, by_link: bool
) -> None:
    """Signs up, verifies (by the t.me link's payload, or by /verify <code>), logs in."""
    tg, bot = chat.tg, chat.bot

    signed_up = await chat.say(f"/signup {address} {password}", "verification email")
    assert chat.last_sent in tg.deleted(chat.id), "the /signup message holds a password"
    assert tg.message(chat.id, chat.last_sent) is None
    assert "deleted your message" in signed_up.text

    verification = await mail(bot, inbox, address, SUBJECT_VERIFY)
    text = verification.text()
    link = re.search(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]+)", text)
    code = re.search(r"/verify ([A-Za-z0-9]+)", text)
    assert link is not None, text
    assert code is not None, text
    assert link.group(1) == tg.username
    assert link.group(0) in verification.html()
    if by_link:
        verified = await chat.say(f"/start {link.group(2)}", "is verified")
    else:
        verified = await chat.say(f"/verify {code.group(1)}", "is verified")
    assert address in verified.text

    logged_in = await chat.say(f"/login {address} {password}", "Logged in as")
    assert chat.last_sent in tg.deleted(chat.id), "the /login message holds a password"
    assert tg.message(chat.id, chat.last_sent) is None
    assert "A login alert was emailed to you." in logged_in.text


def only(items: list[Received], containing: str) -> Received:
    (found,) = [item for item in items if containing in item.text()]
    return found


def attached(item: Received) -> bytes:
    (attachment,) = item.message.iter_attachments()
    filename = attachment.get_filename()
    assert filename, "the attachment needs a file name"
    assert filename.endswith(".py"), filename
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


async def test_two_people_use_the_running_bot(
    tg: FakeTelegram,
    bot: BotProcess,
    smtp_inbox: SmtpInbox,
    empty_postgres_url: str,
    redis_url: str,
    jwt_secret: str,
) -> None:
    inbox = smtp_inbox
    ada_email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    bob_email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    ada, bob = Chat(tg, bot, ADA), Chat(tg, bot, BOB)

    await bot.until(
        tg.wait_for(lambda: tg.calls("getUpdates"), START_SECONDS, what="the first getUpdates"),
        "the bot to start polling",
    )
    assert {command["command"] for command in tg.commands()} >= {"signup", "login", "save", "get"}

    # Ada: an account, verified through the link in the email, and a session. (Emails other
    # than the verification one are checked at the end: the worker sends them meanwhile.)
    await sign_up_and_log_in(ada, inbox, ada_email, ADA_PASSWORD, by_link=True)

    # /save with a fenced block: the reply says exactly what to send to fetch it.
    saved = await ada.say(f"/save {TITLE}\n```python\n{CODE}\n```", "Fetch it with /get")
    code_ref = saved_ref(saved)
    assert TITLE in saved.text
    assert "python" in saved.text.lower()

    # /get: the code as an HTML code block in the chat (and by email, checked below).
    shown = await ada.say(f"/get {code_ref}", "on its way to your inbox")
    assert shown.method == "sendMessage"
    assert shown.parse_mode == "HTML"
    assert code_block(shown) == (CODE, "python")
    assert shown.text.lower().startswith(f"{TITLE} · #{code_ref} · python".lower())
    async with redis.asyncio.Redis.from_url(redis_url) as cache:
        assert await cache.keys("user:*"), "REDIS_URL is set: the bot should use that Redis"

    # A code file forwarded from someone else: saved under its file name.
    forwarded = await ada.forward_file(FILE_NAME, FILE_BYTES, "Fetch it with /get")
    file_ref = saved_ref(forwarded)
    assert file_ref != code_ref
    assert FILE_NAME in forwarded.text
    assert "python" in forwarded.text.lower()
    fetched_file = await ada.say(f"/get {file_ref}", "on its way to your inbox")
    assert fetched_file.parse_mode == "HTML"

    listed = await ada.say("/list", "Your snippets")
    assert f"#{file_ref} {FILE_NAME}" in listed.text
    assert f"#{code_ref} {TITLE}" in listed.text
    assert listed.text.index(f"#{file_ref} ") < listed.text.index(f"#{code_ref} "), "newest first"

    # /delete: gone from the list, and from then on answered like a missing one.
    deleted = await ada.say(f"/delete {file_ref}", "Deleted")
    assert FILE_NAME in deleted.text
    gone = await ada.say(f"/get {file_ref}", f"There is no snippet {file_ref}")
    listed = await ada.say("/list", "Your snippets")
    assert f"#{file_ref} " not in listed.text
    assert f"#{code_ref} {TITLE}" in listed.text

    # Bob, verified with /verify <code>, sees nothing of Ada's: her refs are as missing as any.
    await sign_up_and_log_in(bob, inbox, bob_email, BOB_PASSWORD, by_link=False)
    empty = await bob.say("/list")
    assert "You have no snippets yet" in empty.text

    def as_missing(message: BotMessage, ref: int) -> str:
        return message.text.replace(str(ref), "<ref>")

    attempts = {
        "get": "/get {ref}",
        "edit": "/edit {ref}\n```python\nprint('pwned')\n```",
        "delete": "/delete {ref}",
    }
    missing: dict[str, str] = {}
    for name, template in attempts.items():
        on_adas = await bob.say(template.format(ref=code_ref))
        missing[name] = as_missing(await bob.say(template.format(ref=MISSING_REF)), MISSING_REF)
        assert as_missing(on_adas, code_ref) == missing[name], name
        assert TITLE not in on_adas.text
        assert "greet" not in on_adas.text
    assert as_missing(gone, file_ref) == missing["get"]

    # Ada's snippet came through Bob's attempts untouched.
    again = await ada.say(f"/get {code_ref}", "on its way to your inbox")
    assert code_block(again) == (CODE, "python")
    async with redis.asyncio.Redis.from_url(redis_url) as cache:
        assert await cache.keys("snippet:*"), "a snippet read twice should be in the cache"

    # The emails: each one Ada and Bob should have had, with what it must hold.
    for address in (ada_email, bob_email):
        alert = await mail(bot, inbox, address, SUBJECT_LOGIN)
        assert "If this wasn't you, reset your password" in alert.text()
        assert re.search(r"\d{1,2}:\d{2} [A-Z]{3}", alert.text()), "the time, with its zone"
    created = await bot.until(inbox.wait_for(ada_email, SUBJECT_CREATED, 2), "2 created")
    only(created, TITLE)
    only(created, FILE_NAME)
    retrieved = await bot.until(inbox.wait_for(ada_email, SUBJECT_RETRIEVED, 3), "3 retrieved")
    code_emails = [item for item in retrieved if TITLE in item.text()]
    assert len(code_emails) == 2
    for item in code_emails:
        assert attached(item) == CODE.encode(), "the attachment is the saved code, byte for byte"
        assert "Greeting &lt;html&gt; &amp; friends" in item.html()
    assert attached(only(retrieved, FILE_NAME)) == FILE_BYTES, "the file, byte for byte"
    goodbye = await mail(bot, inbox, ada_email, SUBJECT_DELETED)
    assert FILE_NAME in goodbye.text()

    # No reply ever echoed a password (their messages were deleted, checked above).
    for chat, password in ((ada, ADA_PASSWORD), (bob, BOB_PASSWORD)):
        assert not [m for m in tg.sent_messages(chat.id) if password in m.text]

    # SIGTERM: a clean, quick stop.
    await bot.until(
        tg.wait_for(lambda: tg.pending_updates == [], WAIT_SECONDS, what="no pending update"),
        "every update to be confirmed",
    )
    code, seconds = await bot.terminate(timeout=15)
    log = bot.log()
    assert code == 0, log
    assert seconds < 10, f"took {seconds:.1f}s to stop"

    # Each email exactly once: the expected count per recipient and subject, unique Message-IDs.
    expected = {
        (ada_email, SUBJECT_VERIFY): 1,
        (ada_email, SUBJECT_LOGIN): 1,
        (ada_email, SUBJECT_CREATED): 2,
        (ada_email, SUBJECT_RETRIEVED): 3,
        (ada_email, SUBJECT_DELETED): 1,
        (bob_email, SUBJECT_VERIFY): 1,
        (bob_email, SUBJECT_LOGIN): 1,
    }
    counted = collections.Counter(
        (to, item.subject) for item in inbox.received for to in item.rcpt_tos
    )
    assert dict(counted) == expected
    message_ids = [item.message_id for item in inbox.received]
    assert len(set(message_ids)) == len(message_ids), message_ids
    assert all(len(item.rcpt_tos) == 1 for item in inbox.received)
    dsn = make_url(empty_postgres_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        statuses = await connection.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY 1")
    finally:
        await connection.close()
    assert {row["status"]: row["n"] for row in statuses} == {"sent": len(inbox.received)}

    # Secrets stay out of the log: the token (it is in every Bot API URL), JWTs, passwords.
    assert "starting with long polling" in log
    secret_part = tg.token.split(":", 1)[1]
    assert tg.token not in log
    assert secret_part not in log
    assert not _JWT.search(log)
    assert jwt_secret not in log
    assert ADA_PASSWORD not in log
    assert BOB_PASSWORD not in log
    assert "Traceback" not in log, log
    assert " ERROR " not in log, log

    # The work shows: where things are, a line per update and per email, no address in them.
    assert "database: external postgresql+asyncpg://" in log, log
    assert f"email: external SMTP {HOST}:" in log, log
    assert re.search(r"update /start chat [0-9a-f]{8}: ok in \d+ ms", log), log
    assert re.search(r"update /login chat [0-9a-f]{8}: ok in \d+ ms", log), log
    emailed = re.findall(r"email (\w+) <[^>]+> \(outbox [0-9a-f-]+\) sent via SMTP", log)
    assert len(emailed) == len(inbox.received), log
    assert ada_email not in log
    assert bob_email not in log
