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
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from core.ports import Clock
from core.settings import Settings, SmtpSecurity


class MailError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryMailError(MailError):
    """The server is down, slow or busy (connection errors, timeouts, 4xx answers)."""


class PermanentMailError(MailError):
    """The server refused this message for good (5xx answers, e.g. 550 unknown recipient)."""


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Delivers `message`; raises `TemporaryMailError` or `PermanentMailError`."""


class SmtpTransport:
    """One SMTP connection per message: simple, and nothing stale to recover after an outage."""

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

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._security is SmtpSecurity.TLS,
                start_tls=self._security is SmtpSecurity.STARTTLS,
                timeout=self._timeout,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _classify_refusals(error.recipients) from error
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials are the operator's to fix, not the message's fault: keep it.
            raise TemporaryMailError(_reply(error.code, error.message)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise _classify(error.code, _reply(error.code, error.message)) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # Refused or dropped connections, timeouts, TLS failures, missing extensions.
            raise TemporaryMailError(f"{type(error).__name__}: {error}") from error


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
        self._clock = clock or (lambda: datetime.now(UTC))

    async def send(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as error:
            raise TemporaryMailError(f"{type(error).__name__}: {error}") from error

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
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
