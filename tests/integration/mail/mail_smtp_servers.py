"""SMTP handlers for aiosmtpd: an inbox that keeps what it gets, and servers that refuse."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mail.transport import SmtpTransport

HOST = "127.0.0.1"

StartServer = Callable[..., Controller]
"""`start_server(handler, **smtp_options)`: a running server, stopped after the test."""
MakeTransport = Callable[..., SmtpTransport]
"""`smtp(port, **options)`: an `SmtpTransport` to `HOST:port` (no TLS, a 5 s timeout unless
`options` say otherwise) whose kept connections are closed after the test."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Inbox:
    """Accepts everything and keeps the envelopes, and for each: (over TLS?, who logged in).

    Counts the client's greetings (EHLO, with the name it gave and the connection it came on)
    and its QUITs; `hang_up()` closes every connection from the server's side, as a server
    does with clients idle for too long."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.sessions: list[tuple[bool, Any]] = []
        self.greetings: list[tuple[str, object]] = []
        self.quits = 0
        self._servers: list[SMTP] = []

    @property
    def connections(self) -> int:
        """Connections that greeted (STARTTLS greets twice on one connection)."""
        return len({peer for _, peer in self.greetings})

    def message_ids(self) -> list[str]:
        return [_message_id(envelope) for envelope in self.envelopes]

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.greetings.append((hostname, session.peer))
        self._servers.append(server)
        return responses

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"

    async def hang_up(self) -> None:
        servers = [server for server in self._servers if server.transport is not None]
        if not servers:
            return

        async def close_all() -> None:
            for server in servers:
                if server.transport is not None:
                    server.transport.close()

        # The server runs in a thread of its own, with its own event loop.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close_all(), servers[0].loop))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        encrypted = server.transport is not None and bool(
            server.transport.get_extra_info("ssl_object")
        )
        self.sessions.append((encrypted, session.auth_data))
        return "250 2.0.0 Message accepted"


class HangUpAtMail(Inbox):
    """With `armed` set, closes the connection on the next MAIL command, without a reply:
    what the client of a connection the server dropped while it was idle sees."""

    armed = False

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.armed:
            self.armed = False
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 Closing"  # never arrives: the connection is closed
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


class HangUpAfterData(Inbox):
    """With `armed` set, keeps the next message and closes the connection before replying:
    the client cannot know whether the message was taken."""

    armed = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.armed:
            return await super().handle_DATA(server, session, envelope)
        self.armed = False
        self.envelopes.append(envelope)
        assert server.transport is not None
        server.transport.close()
        return "250 2.0.0 Message accepted"  # never arrives: the connection is closed


class RefuseRecipients(Inbox):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.reply


class RefuseData(Inbox):
    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.reply


def _message_id(envelope: Envelope) -> str:
    content = envelope.original_content or b""
    message = email.message_from_bytes(content, policy=email.policy.default)
    return str(message["Message-ID"])


CREDENTIALS = ("vault", "s3cret-password")


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    if (
        isinstance(data, LoginPassword)
        and (data.login.decode(), data.password.decode()) == CREDENTIALS
    ):
        return AuthResult(success=True, auth_data=data.login.decode())
    return AuthResult(success=False, handled=False)
