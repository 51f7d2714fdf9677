"""The bot as a weapon against inboxes: nobody can make it mail a stranger's address more than
the verification (at most 3 an hour), inject headers, or smuggle markup into an email."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest

from tests.bot.conftest import BotHarness, Clock
from tests.resilience.conftest import HostileBots, query_rows
from tests.secrets_guard import SecretsGuard

VICTIM = "victim@example.com"
OWNER = "owner@example.com"
PASSWORD = "mail-Pass-4"
VERIFY = "Verify your email"
EVIL_TITLE = "Evil\rBcc: eve@example.com\rX-Evil: 1 <script>alert('t')</script>"
EVIL_CODE = "<script>alert('x')</script>\n</pre><img src=x onerror=alert(1)>\n& &amp; \"q\"\n"


@pytest.fixture
async def mail_bot(
    hostile_bots: HostileBots,
    sqlite_url: str,
    services_clock: Clock,
    secrets_guard: SecretsGuard,
) -> BotHarness:
    secrets_guard.remember(PASSWORD)
    return await hostile_bots.start(database_url=sqlite_url, migrate=False)


def _subjects(bot: BotHarness, address: str) -> list[str]:
    return [str(message["Subject"]) for message in bot.inbox.to(address)]


def _all_headers_single_line(message: EmailMessage) -> None:
    for part in message.walk():
        for name, value in part.items():
            assert "\r" not in value, (name, value)
            assert "\n" not in value, (name, value)
            assert name.lower() not in {"bcc", "cc", "x-evil"}, (name, value)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert len(message.get_all(name) or []) == 1, (name, message.items())


async def test_unverified_address_gets_only_the_verification_email(mail_bot: BotHarness) -> None:
    bot = mail_bot
    # Someone signs up with the victim's address and tries every command that emails.
    await bot.sign_up(1, VICTIM, PASSWORD)
    assert "verify your email first" in await bot.log_in(1, VICTIM, PASSWORD)
    for command in ("/save Spam\nprint('buy now')", "/get 1", "/delete 1"):
        assert "log in first" in await bot.say(1, command)
    await bot.say(2, f"/reset {VICTIM}")
    await bot.say(2, "/cancel")
    await bot.deliver_emails()

    assert _subjects(bot, VICTIM) == [VERIFY]


async def test_at_most_three_verification_emails_an_hour(
    mail_bot: BotHarness, services_clock: Clock
) -> None:
    bot = mail_bot
    for chat in range(10, 20):  # ten signups of the same address, from ten chats
        reply = await bot.say(chat, f"/signup {VICTIM} {PASSWORD}-{chat}")
        assert "verification email is on its way" in reply  # the same words every time
    # Step by step, too.
    await bot.say(30, "/signup")
    await bot.say(30, VICTIM)
    await bot.say(30, PASSWORD)
    await bot.deliver_emails()
    assert _subjects(bot, VICTIM) == [VERIFY] * 3

    assert await _queued(bot, VICTIM) == 3

    # An hour later, three more (queued for then: counted in the outbox, which the test's
    # worker, on real time, would only send an hour from now).
    services_clock.offset += timedelta(hours=1, seconds=5)
    for chat in range(40, 45):
        await bot.say(chat, f"/signup {VICTIM} {PASSWORD}")
    assert await _queued(bot, VICTIM) == 6


async def _queued(bot: BotHarness, address: str) -> int:
    [(count,)] = await query_rows(
        bot,
        "SELECT count(*) FROM outbox WHERE recipient = :address AND kind = 'verify_email'",
        address=address,
    )
    return int(count)


async def test_at_most_three_reset_emails_an_hour(mail_bot: BotHarness) -> None:
    bot = mail_bot
    await bot.sign_up(1, OWNER, PASSWORD)
    assert "is verified" in await bot.say(1, f"/verify {bot.verification_code(OWNER)}")
    for chat in range(50, 58):
        await bot.say(chat, f"/reset {OWNER}")
    await bot.deliver_emails()
    assert _subjects(bot, OWNER) == [VERIFY] + ["Reset your password"] * 3


@pytest.mark.parametrize(
    "address",
    [
        f"{VICTIM}\r\nBcc: eve@example.com",
        f"{VICTIM}\rBcc:eve@example.com",
        f"{VICTIM}\nBcc:eve@example.com",
        f"eve@example.com,{VICTIM}",
        f"Eve <eve@example.com>, {VICTIM}",
        f"{VICTIM}\x00eve@example.com",
        f"{VICTIM};eve@example.com",
    ],
)
async def test_no_header_injection_through_the_address(mail_bot: BotHarness, address: str) -> None:
    bot = mail_bot
    # Step by step, where the whole message is the address.
    await bot.say(60, "/signup")
    reply = await bot.say(60, address)
    assert "does not look like an email address" in reply, reply
    await bot.say(60, "/cancel")
    await bot.say(61, f"/reset {address}")
    await bot.deliver_emails()
    assert bot.inbox.messages() == []
    rows = await _count(bot, "SELECT count(*) FROM users")
    assert rows == 0


async def test_no_header_injection_through_titles_and_escaped_code_in_html(
    mail_bot: BotHarness,
) -> None:
    bot = mail_bot
    await bot.sign_up(1, OWNER, PASSWORD)
    assert "is verified" in await bot.say(1, f"/verify {bot.verification_code(OWNER)}")
    assert "Logged in" in await bot.log_in(1, OWNER, PASSWORD)
    ref = await bot.save(1, EVIL_TITLE, EVIL_CODE)
    await bot.say(1, f"/rename {ref} Evil\rBcc: eve@example.com <b>x</b>")
    await bot.say(1, f"/get {ref}")
    await bot.send(
        bot.tg.document(
            1,
            1,
            "x\r\nBcc: eve@example.com.py",
            EVIL_CODE.encode(),
            caption=EVIL_TITLE,
            enqueue=False,
        )
    )
    await bot.say(1, "/get 2")
    await bot.say(1, "/delete 2")
    await bot.deliver_emails()

    emails = bot.inbox.messages()
    assert {str(m["Subject"]) for m in emails} >= {
        "New Snippet Created",
        "Your Requested Snippet",
        "Snippet Deleted",
    }
    assert {str(m["To"]) for m in emails} == {OWNER}
    for message in emails:
        _all_headers_single_line(message)

    retrieved = bot.inbox.to(OWNER, "Your Requested Snippet")
    assert len(retrieved) == 2
    for message in retrieved:
        html_part = message.get_body(("html",))
        assert html_part is not None
        body = str(html_part.get_content())
        assert "<script>" not in body
        assert "<img" not in body
        assert "&lt;script&gt;" in body
        assert "&lt;b&gt;" in body or "&lt;script&gt;alert(&#39;t&#39;)" in body
        # What the reader sees is the code exactly (tags stripped, entities decoded).
        visible = html.unescape(re.sub(r"<[^>]+>", "", body))
        for line in EVIL_CODE.splitlines():
            assert line in visible, line
        [attachment] = list(message.iter_attachments())
        assert attachment.get_payload(decode=True) == EVIL_CODE.encode()
        filename = attachment.get_filename()
        assert filename is not None
        assert "\r" not in filename
        assert "\n" not in filename


async def _count(bot: BotHarness, sql: str) -> int:
    [(count,)] = await query_rows(bot, sql)
    return int(count)
