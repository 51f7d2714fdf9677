"""Where rendered emails go: an SMTP server, or `.eml` files when no server is configured.

A transport either delivers the message or raises one of two errors, so the worker knows what
to do next: `TemporaryMailError` (try again later) or `PermanentMailError` (this message will
never be accepted as it is). Both carry a `reason` that is safe to log and to store.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC
from email.message import Message
from email.policy import EmailPolicy
from pathlib import Path
from typing import Any, Protocol

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
        """A connection for sending many messages one after another (a worker's lane): set
        up at the first send, given back on exit. One failed message does not spoil the next."""

    async def close_idle(self) -> None:
        """Closes the connections kept open that have not been used for a while."""

    async def close(self) -> None:
        """Closes every connection kept open (those lent out are closed when given back)."""


SMTP_CONNECTIONS = 8
"""The most SMTP connections a worker sends over at once, and keeps open between batches."""
SMTP_IDLE_SECONDS = 45.0
"""How long a kept SMTP connection may wait unused before it is closed: well under the five
minutes after which servers commonly drop an idle client (RFC 5321, section 4.5.3.2.7)."""


class SmtpTransport:
    """SMTP through aiosmtplib, over up to `pool_size` connections kept open between batches.

    `connection()` lends one (set up at its first send), so each message costs MAIL, RCPT and
    DATA rather than also a TCP handshake, the greeting, EHLO (and STARTTLS, AUTH) and QUIT.
    Given back, a connection is kept for the next batch; one unused for `idle_seconds` is closed
    with QUIT (by `close_idle`, which the worker calls every round, or when next wanted), and
    `close()` closes them all. A connection that fails is dropped and the next message opens a
    new one.

    A connection that has carried a message before may have been closed by the server since
    (idle too long, or too many messages). One seen closed is dropped before use; one that fails
    before the message's DATA command (disconnected, or a 421 "closing") is replaced, and the
    message sent once on a new connection: the server had seen nothing of it. A failure after
    DATA is a `TemporaryMailError` as on a new connection (the server may have taken the
    message; the retry later carries the same `Message-ID`).

    The EHLO name (`local_hostname`, this machine's FQDN by default) is looked up once, in a
    thread, rather than by aiosmtplib at every connect."""

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
        pool_size: int = SMTP_CONNECTIONS,
        idle_seconds: float = SMTP_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        local_hostname: Callable[[], str] = socket.getfqdn,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._security = security
        self._timeout = timeout
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._hostname: str | None = None
        self._hostname_lock = asyncio.Lock()
        self._pool = _Pool(self._connect, pool_size, idle_seconds, monotonic)

    @property
    def address(self) -> str:
        """`host:port`, for the log."""
        return f"{self._host}:{self._port}"

    async def send(self, message: Message) -> str | None:
        async with self.connection() as connection:
            return await connection.send(message)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailConnection]:
        connection = _SmtpConnection(self._pool, f"sent via SMTP {self.address}")
        try:
            yield connection
        finally:
            await connection.give_back()

    async def close_idle(self) -> None:
        await self._pool.close_idle()

    async def close(self) -> None:
        await self._pool.close()

    async def _connect(self) -> _Client:
        client = _Client(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._security is SmtpSecurity.TLS,
            start_tls=self._security is SmtpSecurity.STARTTLS,
            timeout=self._timeout,
            tls_context=self._tls_context,
            local_hostname=await self._ehlo_name(),
        )
        await client.connect()
        return client

    async def _ehlo_name(self) -> str:
        # Looked up once (it may ask DNS), off the event loop.
        async with self._hostname_lock:
            if self._hostname is None:
                self._hostname = await asyncio.to_thread(self._local_hostname)
        return self._hostname


class _Client(aiosmtplib.SMTP):
    """Remembers whether the message being sent got as far as the DATA command."""

    data_started = False

    async def data(self, message: str | bytes, /, **options: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, **options)


class _Pool:
    """The open connections not lent out, each with when it was given back; newest last."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[_Client]],
        size: int,
        idle_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.connect = connect
        self._size = size
        self._idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._idle: list[tuple[_Client, float]] = []
        self.generation = 0
        """Bumped by `close()`: a connection lent out before is not kept when given back."""

    async def take(self) -> tuple[_Client, bool]:
        """The newest kept connection still open and not idle too long, else a new one; and
        whether it was kept."""
        while self._idle:
            client, since = self._idle.pop()
            if since <= self._monotonic() - self._idle_seconds:
                # The older ones have waited longer still.
                stale = [client] + [older for older, _ in self._idle]
                self._idle.clear()
                await _quit_all(stale)
            elif client.is_connected:
                return client, True
            else:
                client.close()  # the server closed it
        return await self.connect(), False

    async def keep(self, client: _Client, generation: int) -> None:
        if generation == self.generation and client.is_connected and len(self._idle) < self._size:
            self._idle.append((client, self._monotonic()))
        else:
            await _quit_all([client])

    async def close_idle(self) -> None:
        cutoff = self._monotonic() - self._idle_seconds
        expired = [client for client, since in self._idle if since <= cutoff]
        if expired:
            self._idle = [(client, since) for client, since in self._idle if since > cutoff]
            await _quit_all(expired)

    async def close(self) -> None:
        self.generation += 1
        idle, self._idle = self._idle, []
        await _quit_all([client for client, _ in idle])


class _SmtpConnection:
    def __init__(self, pool: _Pool, where: str) -> None:
        self._pool = pool
        self._where = where
        self._client: _Client | None = None
        self._used = False
        """Whether `_client` was used before this message (and may since have been closed)."""
        self._generation = pool.generation

    async def send(self, message: Message) -> str | None:
        try:
            try:
                await self._send(message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if not self._died_before_data():
                    raise
                await self._send(message, new=True)
            except aiosmtplib.SMTPResponseException as error:
                if error.code != 421 or not self._died_before_data():
                    raise
                await self._send(message, new=True)
            return self._where
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _classify_refusals(error.recipients) from error
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials are the operator's to fix, not the message's fault: keep it.
            self._drop()
            raise TemporaryMailError(_reply(error.code, error.message)) from error
        except aiosmtplib.SMTPResponseException as error:
            # aiosmtplib has reset the envelope; a 421 (closing) leaves no connection to reuse.
            if error.code == 421 or not self._usable():
                self._drop()
            raise _classify(error.code, _reply(error.code, error.message)) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # Refused or dropped connections, timeouts, TLS failures, missing extensions.
            self._drop()
            raise TemporaryMailError(f"{type(error).__name__}: {error}") from error
        except MailError:
            raise
        except BaseException:
            self._drop()  # cancelled mid-conversation: the connection is in no state to reuse
            raise
        finally:
            self._used = self._client is not None  # one it carries on with, or none

    async def give_back(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._pool.keep(client, self._generation)

    async def _send(self, message: Message, *, new: bool = False) -> None:
        if new:
            self._client, self._used = await self._pool.connect(), False
        client = await self._connected()
        client.data_started = False
        await _send_message(client, message)

    def _died_before_data(self) -> bool:
        """Whether a connection that carried a message before failed ahead of this message's
        DATA: then it is dropped, and the message may be sent again, once, on a new one."""
        client = self._client
        if not self._used or client is None or client.data_started:
            return False
        self._drop()
        return True

    async def _connected(self) -> _Client:
        if self._client is not None and not self._usable():
            self._drop()
        if self._client is None:
            self._client, self._used = await self._pool.take()
        return self._client

    def _usable(self) -> bool:
        return self._client is not None and self._client.is_connected

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._used = False
        if client is not None:
            client.close()


async def _quit_all(clients: list[_Client]) -> None:
    """Says QUIT on each connection at once; one that does not answer is simply closed."""
    await asyncio.gather(*(_quit(client) for client in clients))


async def _quit(client: _Client) -> None:
    if not client.is_connected:
        client.close()
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
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

    async def close_idle(self) -> None:
        pass  # nothing is kept open

    async def close(self) -> None:
        pass


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
