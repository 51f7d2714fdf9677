"""SmtpTransport against a real SMTP server: delivery, TLS, auth, and telling failures apart."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import uuid4

import pytest
from mail_smtp_servers import (
    HOST,
    Inbox,
    MakeTransport,
    RefuseData,
    RefuseRecipients,
    StartServer,
    free_port,
)

from core.entities import EmailKind, OutgoingEmail
from core.settings import SmtpSecurity
from mail.render import EmailRenderer
from mail.transport import PermanentMailError, TemporaryMailError

SENDER = "SnippetVault <no-reply@snippetvault.test>"
CODE = "# ünïcode 🚀\r\nprint('<hello>')\r\n"


def snippet_email(to: str = "ada@example.com") -> OutgoingEmail:
    email_id = uuid4()
    return OutgoingEmail(
        id=email_id,
        to=to,
        kind=EmailKind.SNIPPET_RETRIEVED,
        context={
            "title": "Hello <world>",
            "language": "python",
            "ref": 7,
            "code": CODE,
            "filename": "hello 🚀.py",
        },
        message_id=f"<{email_id}@snippetvault.test>",
        created_at=datetime(2026, 11, 29, 13, 45, tzinfo=UTC),
    )


def rendered(to: str = "ada@example.com") -> EmailMessage:
    return EmailRenderer().render(snippet_email(to), SENDER)


async def test_delivers_the_whole_message(smtp: MakeTransport, start_server: StartServer) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    message = rendered()

    await smtp(server.port).send(message)

    (envelope,) = inbox.envelopes
    assert inbox.sessions == [(False, None)]
    assert envelope.mail_from == "no-reply@snippetvault.test"
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert isinstance(envelope.original_content, bytes)
    received = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Message-ID"] == message["Message-ID"]
    assert received["Subject"] == "Your Requested Snippet"
    (attachment,) = received.iter_attachments()
    assert attachment.get_filename() == "hello 🚀.py"
    assert attachment.get_payload(decode=True) == CODE.encode()
    html = received.get_body(("html",))
    assert html is not None
    assert "Hello &lt;world&gt;" in html.get_content()


async def test_a_4xx_answer_is_temporary(smtp: MakeTransport, start_server: StartServer) -> None:
    server = start_server(RefuseData("451 4.3.0 Mailbox temporarily unavailable"))

    with pytest.raises(TemporaryMailError) as caught:
        await smtp(server.port).send(rendered())

    assert caught.value.reason == "451 4.3.0 Mailbox temporarily unavailable"


async def test_a_4xx_recipient_refusal_is_temporary(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    server = start_server(RefuseRecipients("450 4.2.1 Try again later"))

    with pytest.raises(TemporaryMailError) as caught:
        await smtp(server.port).send(rendered("slow@example.com"))

    assert caught.value.reason == "slow@example.com: 450 4.2.1 Try again later"


async def test_a_refused_recipient_is_permanent_with_the_servers_reason(
    smtp: MakeTransport,
    start_server: StartServer,
) -> None:
    inbox = RefuseRecipients("550 5.1.1 No such user here")
    server = start_server(inbox)

    with pytest.raises(PermanentMailError) as caught:
        await smtp(server.port).send(rendered("nobody@example.com"))

    assert caught.value.reason == "nobody@example.com: 550 5.1.1 No such user here"
    assert inbox.envelopes == []


async def test_a_5xx_answer_to_the_data_is_permanent(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    server = start_server(RefuseData("554 5.6.0 Message content rejected"))

    with pytest.raises(PermanentMailError) as caught:
        await smtp(server.port).send(rendered())

    assert caught.value.reason == "554 5.6.0 Message content rejected"


async def test_a_refused_connection_is_temporary(smtp: MakeTransport) -> None:
    with pytest.raises(TemporaryMailError):
        await smtp(free_port()).send(rendered())


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(hold, HOST, 0)
    yield server.sockets[0].getsockname()[1]
    for writer in connections:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_a_server_that_does_not_answer_is_a_temporary_timeout(
    smtp: MakeTransport, silent_server: int
) -> None:
    transport = smtp(silent_server, timeout=0.3)

    with pytest.raises(TemporaryMailError, match="Timeout"):
        await transport.send(rendered())


@pytest.fixture
async def hang_up_server() -> AsyncIterator[int]:
    """Greets, then drops the connection."""

    async def greet_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hello\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(greet_and_hang_up, HOST, 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_dropped_connection_is_temporary(smtp: MakeTransport, hang_up_server: int) -> None:
    with pytest.raises(TemporaryMailError):
        await smtp(hang_up_server).send(rendered())


async def test_starttls_and_login(
    smtp: MakeTransport,
    start_server: StartServer,
    starttls_with_auth: dict[str, Any],
    client_tls: ssl.SSLContext,
    smtp_credentials: tuple[str, str],
) -> None:
    inbox = Inbox()
    server = start_server(inbox, **starttls_with_auth)
    username, password = smtp_credentials
    transport = smtp(
        server.port,
        username=username,
        password=password,
        security=SmtpSecurity.STARTTLS,
        tls_context=client_tls,
    )

    await transport.send(rendered())

    assert len(inbox.envelopes) == 1
    assert inbox.sessions == [(True, username)]


async def test_wrong_credentials_are_temporary_so_the_email_waits_for_a_fix(
    smtp: MakeTransport,
    start_server: StartServer,
    starttls_with_auth: dict[str, Any],
    client_tls: ssl.SSLContext,
) -> None:
    server = start_server(Inbox(), **starttls_with_auth)
    transport = smtp(
        server.port,
        username="vault",
        password="wrong",
        security=SmtpSecurity.STARTTLS,
        tls_context=client_tls,
    )

    with pytest.raises(TemporaryMailError, match="535"):
        await transport.send(rendered())


async def test_an_untrusted_certificate_is_temporary(
    smtp: MakeTransport, start_server: StartServer, starttls_with_auth: dict[str, Any]
) -> None:
    server = start_server(Inbox(), **starttls_with_auth)
    transport = smtp(server.port, security=SmtpSecurity.STARTTLS)

    with pytest.raises(TemporaryMailError):
        await transport.send(rendered())


async def test_starttls_required_but_not_offered_is_temporary(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    server = start_server(Inbox())
    transport = smtp(server.port, security=SmtpSecurity.STARTTLS)

    with pytest.raises(TemporaryMailError, match="STARTTLS"):
        await transport.send(rendered())


async def test_implicit_tls(
    smtp: MakeTransport,
    start_server: StartServer,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    inbox = Inbox()
    server = start_server(inbox, ssl_context=server_tls)
    transport = smtp(server.port, security=SmtpSecurity.TLS, tls_context=client_tls)

    await transport.send(rendered())

    assert len(inbox.envelopes) == 1
    assert inbox.sessions[0][0] is True
