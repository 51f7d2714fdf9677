"""A real SMTP server (aiosmtpd) in a thread of the test process, on a free loopback port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from mail_smtp_servers import (
    CREDENTIALS,
    HOST,
    MakeTransport,
    StartServer,
    authenticate,
    free_port,
)

from core.settings import SmtpSecurity
from mail.transport import SmtpTransport


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    controllers: list[Controller] = []

    def start(handler: object, **smtp_options: Any) -> Controller:
        controller = Controller(handler, hostname=HOST, port=free_port(), **smtp_options)
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
async def smtp(start_server: StartServer) -> AsyncIterator[MakeTransport]:
    """Closed before the servers stop (it uses `start_server`): a server stopped with a
    connection still open leaves that connection's socket unclosed."""
    made: list[SmtpTransport] = []
    tls = False

    def make(port: int, **options: Any) -> SmtpTransport:
        nonlocal tls
        options = {"security": SmtpSecurity.NONE, "timeout": 5, **options}
        tls = tls or options["security"] is not SmtpSecurity.NONE
        transport = SmtpTransport(HOST, port, **options)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()
    if tls:
        await asyncio.sleep(0.2)  # TLS connections finish closing a few loop turns later


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert(HOST).configure_cert(context)
    return context


@pytest.fixture
async def client_tls(certificate_authority: trustme.CA) -> AsyncIterator[ssl.SSLContext]:
    """Trusts the test CA. A TLS connection finishes closing (close_notify) a few loop turns
    after `send` returns: wait for that before the test's event loop goes away, or the socket
    is reported as leaked."""
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    yield context
    await asyncio.sleep(0.2)


@pytest.fixture
def smtp_credentials() -> tuple[str, str]:
    return CREDENTIALS


@pytest.fixture
def starttls_with_auth(server_tls: ssl.SSLContext) -> dict[str, Any]:
    """Server options: STARTTLS required, then AUTH (PLAIN/LOGIN) against `CREDENTIALS`."""
    return {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": authenticate,
        "auth_require_tls": True,
    }
