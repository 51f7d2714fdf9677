"""SMTP handlers for aiosmtpd: an inbox that keeps what it gets, and servers that refuse."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"

StartServer = Callable[..., Controller]
"""`start_server(handler, **smtp_options)`: a running server, stopped after the test."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Inbox:
    """Accepts everything and keeps the envelopes, and for each: (over TLS?, who logged in)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.sessions: list[tuple[bool, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        encrypted = server.transport is not None and bool(
            server.transport.get_extra_info("ssl_object")
        )
        self.sessions.append((encrypted, session.auth_data))
        return "250 2.0.0 Message accepted"


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
