"""Where rendered emails go: an SMTP server, or `.eml` files when no server is configured.

A transport either delivers the message or raises one of two errors, so the worker knows what
to do next: `TemporaryMailError` (try again later) or `PermanentMailError` (this message will
never be accepted as it is). Both carry a `reason` that is safe to log and to store.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC
from email.message import Message
from email.policy import EmailPolicy
from pathlib import Path
from typing import Protocol

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender

from core.ports import Clock, utc_now
from core.private_files import make_private_directory
from core.settings import Settings, SmtpSecurity


class MailError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryMailError(MailError):
    """The server is down, slow or busy (connection errors, timeouts, 4xx answers)."""


class PermanentMailError(MailError):
    """The server refused this message for good (5xx answers, e.g. 550 unknown recipient)."""


class MailConnection(Protocol):
    async def send(self, message: Message) -> str | None:
        """Delivers `message`; raises `TemporaryMailError` or `PermanentMailError`. Returns
        where it went, for the log (`sent via SMTP host:port`, `written to <file>`)."""


class MailTransport(MailConnection, Protocol):
    def connection(self) -> AbstractAsyncContextManager[MailConnection]:
        """A connection for sending many messages one after another (a worker's batch): set
        up at the first send, closed on exit. One failed message does not spoil the next."""


class SmtpTransport:
    """SMTP through aiosmtplib. `send` uses a connection of its own; `connection()` keeps one
    open for a batch, so each message costs MAIL, RCPT and DATA rather than also a TCP
    handshake, the greeting, EHLO (and STARTTLS, AUTH) and QUIT. A connection that fails is
    dropped and the next message opens a new one; nothing is kept between batches, so there is
    no idle connection to go stale or to close at shutdown."""

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str | None = None,
        password: str | None = None,
        security: SmtpSecurity = SmtpSecurity.STARTTLS,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._security = security
        self._timeout = timeout
        self._tls_context = tls_context

    async def send(self, message: Message) -> str | None:
        async with self.connection() as connection:
            return await connection.send(message)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailConnection]:
        connection = _SmtpConnection(self)
        try:
            yield connection
        finally:
            await connection.close()

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._security is SmtpSecurity.TLS,
            start_tls=self._security is SmtpSecurity.STARTTLS,
            timeout=self._timeout,
            tls_context=self._tls_context,
        )


class _SmtpConnection:
    def __init__(self, transport: SmtpTransport) -> None:
        self._transport = transport
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, message: Message) -> str | None:
        try:
            client = await self._connected()
            await _send_message(client, message)
            return f"sent via SMTP {self._transport._host}:{self._transport._port}"
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _classify_refusals(error.recipients) from error
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials are the operator's to fix, not the message's fault: keep it.
            await self._drop()
            raise TemporaryMailError(_reply(error.code, error.message)) from error
        except aiosmtplib.SMTPResponseException as error:
            # aiosmtplib has reset the envelope; a 421 (closing) leaves no connection to reuse.
            if error.code == 421 or not self._usable():
                await self._drop()
            raise _classify(error.code, _reply(error.code, error.message)) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # Refused or dropped connections, timeouts, TLS failures, missing extensions.
            await self._drop()
            raise TemporaryMailError(f"{type(error).__name__}: {error}") from error

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and not self._usable():
            await self._drop()
        if self._client is None:
            client = self._transport._client()
            await client.connect()
            self._client = client
        return self._client

    def _usable(self) -> bool:
        return self._client is not None and self._client.is_connected

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


async def _send_message(client: aiosmtplib.SMTP, message: Message) -> None:
    """`client.send_message`, except that the message is flattened with its own policy (made
    fit for SMTP: CRLF, UTF-8 headers where an address needs them) rather than swapped for
    `email.policy.SMTP`: the renderer's policy remembers the headers it parsed, and flattening
    reads each part's Content-Type several times (three quarters of the flattening's cost)."""
    policy = message.policy
    if not isinstance(policy, EmailPolicy):
        await client.send_message(message)
        return
    sender = extract_sender(message)
    recipients = extract_recipients(message)
    if sender is None or not recipients:
        raise PermanentMailError("the message has no sender or no recipient")
    options = []
    utf8 = not (sender.isascii() and all(recipient.isascii() for recipient in recipients))
    if utf8:
        if client.last_ehlo_response is None:
            await client.ehlo()
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("an address needs SMTPUTF8, which the server lacks")
        options.append("SMTPUTF8")
    data = message.as_bytes(policy=policy.clone(linesep="\r\n", utf8=utf8))
    await client.sendmail(sender, recipients, data, mail_options=options)


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def _classify(code: int, reason: str) -> MailError:
    return PermanentMailError(reason) if code >= 500 else TemporaryMailError(reason)


def _classify_refusals(refusals: list[aiosmtplib.SMTPRecipientRefused]) -> MailError:
    reason = "; ".join(
        f"{refusal.recipient}: {_reply(refusal.code, refusal.message)}" for refusal in refusals
    )
    permanent = any(refusal.code >= 500 for refusal in refusals)
    return PermanentMailError(reason) if permanent else TemporaryMailError(reason)


class FileTransport:
    """Writes each message as `<timestamp>-<message-id>.eml`; a reader never sees half a file.

    The file appears under its final name only once complete (written as a hidden temporary
    file, flushed, then renamed).
    """

    def __init__(self, directory: Path, clock: Clock | None = None) -> None:
        self.directory = directory
        self._clock = clock or utc_now

    async def send(self, message: Message) -> str | None:
        try:
            return f"written to {await asyncio.to_thread(self._write, message)}"
        except OSError as error:
            raise TemporaryMailError(f"{type(error).__name__}: {error}") from error

    def _write(self, message: Message) -> Path:
        make_private_directory(self.directory)  # mkstemp makes the files 0600
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.directory / f"{stamp}-{_safe_name(message.get('Message-ID', ''))}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(message.as_bytes())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailConnection]:
        yield self


def _safe_name(message_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._@-]+", "_", message_id.strip().strip("<>"))
    return name.strip("._")[:120] or "message"


def create_transport(settings: Settings) -> MailTransport:
    """SMTP when `SMTP_HOST` is set, otherwise `.eml` files under `<DATA_DIR>/mail/`."""
    if not settings.smtp_host:
        return FileTransport(settings.mail_dir)
    return SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        security=settings.smtp_security,
        timeout=settings.smtp_timeout_seconds,
    )
