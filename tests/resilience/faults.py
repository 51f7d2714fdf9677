"""Fault helpers: a TCP proxy the test cuts and restores, SMTP servers that stop, start or
refuse, and the real bot `Application` wired to real backends.

Redis faults use `tests.conftest.ThrowawayRedis` (a `redis-server` of the test alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from telegram import Update

from bootstrap import Services, bootstrap
from bot.app import build_application
from bot.context import BotApplication
from core.entities import User
from core.ports import Clock
from core.security import PasswordHasher
from core.settings import Settings, load_settings
from mail.render import EmailRenderer
from mail.transport import create_transport
from mail.worker import OutboxWorker
from storage.cache import RedisSnippetCache, connect_redis
from storage.models import outbox
from storage.outbox import SqlOutboxQueue
from tests.fakebotapi import FakeRequest, FakeTelegram

HOST = "127.0.0.1"
PASSWORD = "correct-horse-battery"
UNAVAILABLE = "temporarily unavailable"
"""What every command answers while the database cannot be reached."""


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# A cuttable TCP proxy -----------------------------------------------------------------------


class TcpProxy:
    """Forwards a loopback port to a real server; the test can take the server away.

    - `cut()`: stop listening and drop every connection (a server that is down: refused);
    - `hang()`: accept, but forward nothing either way (a network partition: silence);
    - `restore()`: forward again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def hang(self) -> None:
        self._flowing.clear()
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def restore(self) -> None:
        # Connections frozen by `hang()` are stale by now (their clients gave up): drop them.
        if not self._flowing.is_set():
            await self._drop_connections()
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client)
        try:
            await self._flowing.wait()
            upstream_reader, upstream = await asyncio.open_connection(*self._target)
            self._writers.add(upstream)
            pumps = [
                asyncio.create_task(self._pump(client_reader, upstream)),
                asyncio.create_task(self._pump(upstream_reader, client)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                upstream.close()
                self._writers.discard(upstream)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            client.close()
            self._writers.discard(client)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()


# SMTP ---------------------------------------------------------------------------------------


class SmtpInbox:
    """An aiosmtpd handler: keeps every accepted message, or answers `refusal` to DATA; takes
    `delay` seconds over each DATA (a slow server, so that sends are caught in flight)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refusal: str | None = None
        self.refused = 0
        self.delay = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refusal is not None:
            self.refused += 1
            return self.refusal
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 2.0.0 Message accepted"

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]

    def to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        return [
            message
            for message in self.messages
            if message["To"] == address and (subject is None or message["Subject"] == subject)
        ]


class SmtpServer:
    """A real SMTP server (aiosmtpd, in a thread) on a fixed port that can stop and start."""

    def __init__(self, inbox: SmtpInbox | None = None) -> None:
        self.inbox = inbox or SmtpInbox()
        self.port = free_port()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is None:
            controller = Controller(self.inbox, hostname=HOST, port=self.port)
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# The bot ------------------------------------------------------------------------------------


def bot_settings(
    tg: FakeTelegram,
    data_dir: Path,
    *,
    database_url: str,
    redis_url: str | None = None,
    smtp_port: int | None = None,
    **overrides: Any,
) -> Settings:
    """Settings of a bot on external backends (no `.env` file is read)."""
    values: dict[str, Any] = {
        "telegram_bot_token": tg.token,
        "data_dir": data_dir,
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": secrets.token_urlsafe(48),
        "smtp_timeout_seconds": 2.0,
    }
    if smtp_port is not None:
        values |= {"smtp_host": HOST, "smtp_port": smtp_port, "smtp_security": "none"}
    values |= overrides
    return load_settings(**values, _env_file=None)


@dataclass
class FaultBot:
    """The real `Application` (handlers, error handler, services) fed updates in-process."""

    tg: FakeTelegram
    app: BotApplication
    services: Services

    async def say(self, chat_id: int, text: str) -> str:
        """Handles one private message to the end; returns the bot's last reply to it."""
        since = self.tg.mark()
        update = self.tg.private_message(chat_id, chat_id, text, enqueue=False)
        await self.app.process_update(Update.de_json(update, self.app.bot))
        replies = [m for m in self.tg.sent_messages(chat_id) if m.seq > since]
        return replies[-1].text if replies else ""

    async def timed_say(self, chat_id: int, text: str) -> tuple[str, float]:
        started = time.monotonic()
        answer = await self.say(chat_id, text)
        return answer, time.monotonic() - started

    async def log_in_new_user(self, chat_id: int, *, verified: bool = False) -> User:
        """Signs up a fresh address in the chat and logs in. Unverified, the account is as
        one that logged in before logins needed a verified address: it is sent nothing but
        the verification email."""
        address = f"fault-{secrets.token_hex(6)}@example.com"
        answer = await self.say(chat_id, f"/signup {address} {PASSWORD}")
        assert "verification email" in answer, answer
        await self.verify(address)
        answer = await self.say(chat_id, f"/login {address} {PASSWORD}")
        assert "Logged in" in answer, answer
        if not verified:  # verified only while it logged in, and its login alert unsent
            await self.verify(address, verified=False)
            async with self.services.database.engine.begin() as connection:
                await connection.execute(
                    sa.text("DELETE FROM outbox WHERE recipient = :email AND kind = :kind"),
                    {"email": address, "kind": "login_alert"},
                )
        return await self.user(address)

    async def verify(self, address: str, *, verified: bool = True) -> None:
        async with self.services.database.engine.begin() as connection:
            await connection.execute(
                sa.text("UPDATE users SET is_verified = :verified WHERE email = :email"),
                {"verified": verified, "email": address},
            )

    async def user(self, address: str) -> User:
        async with self.services.database.uow_factory()() as uow:
            user = await uow.users.get_by_email(address)
        assert user is not None
        return user


@asynccontextmanager
async def outbox_worker(
    services: Services, *, clock: Clock | None = None, **options: Any
) -> AsyncIterator[OutboxWorker]:
    """The worker `bootstrap` builds, with other timing options (tests do not wait
    minutes for a backoff) and, given a `clock`, that clock for the worker and its queue alike:
    a test moves it past a backoff instead of sleeping. Closed on exit (its SMTP connections
    with it)."""
    settings = services.settings
    queue = (
        SqlOutboxQueue(services.database.engine, clock)
        if clock is not None
        else services.database.outbox_queue()
    )
    worker = OutboxWorker(
        queue,
        create_transport(settings),
        EmailRenderer(),
        settings.smtp_from,
        clock or services.clock,
        **options,
    )
    try:
        yield worker
    finally:
        await worker.close()


async def outbox_rows(services: Services) -> list[OutboxRowView]:
    statement = sa.select(
        outbox.c.message_id,
        outbox.c.recipient,
        outbox.c.kind,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.last_error,
        outbox.c.next_attempt_at,
    ).order_by(outbox.c.created_at)
    async with services.database.engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [OutboxRowView(*row) for row in rows]


@dataclass(frozen=True)
class OutboxRowView:
    message_id: str
    to: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime


@asynccontextmanager
async def running_bot(
    settings: Settings, tg: FakeTelegram, *, cache_clock: Callable[[], float] | None = None
) -> AsyncIterator[FaultBot]:
    """The bot as `snippetvault run` builds it, minus polling and the background worker
    (tests drain the outbox themselves with `bot.services.worker.drain_once()`). A
    `cache_clock` times the Redis cache's pause after a failure."""
    cache = None
    if cache_clock is not None:
        assert settings.redis_url is not None
        cache = RedisSnippetCache(
            connect_redis(settings.redis_url), settings.snippet_cache_ttl_seconds, clock=cache_clock
        )
    services = await bootstrap(settings, hasher=PasswordHasher(rounds=4), cache=cache)
    app = build_application(
        settings, services=services, run_worker=False, request=FakeRequest(tg), rate_limit=False
    )
    try:
        async with app:
            await app.post_init(app)  # type: ignore[misc]
            yield FaultBot(tg, app, services)
    finally:
        await services.close()
    assert not tg.fake_errors, tg.describe()
