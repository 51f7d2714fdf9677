"""The composition root: the one place that turns settings into adapters and use cases.

Every edge (the bot, the HTTP API), the CLI's worker and check, the bench and the tests open
their services here: `await bootstrap(settings)`, with the fakes a test passes in (a clock, a
fast hasher, a mail transport). Nothing is built at import time; `Services.close` ends it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from core.accounts import AccountService
from core.archive import ArchiveService
from core.flows import FlowService
from core.notifications import VerificationLinks, VerifyLinks
from core.organise import OrganiseService
from core.ports import Clock, utc_now
from core.private_files import make_private_directory
from core.security import PasswordHasher, SessionTokens
from core.settings import Settings
from core.snippets import SnippetService
from core.text import LanguageGuesser
from mail.render import CodeHighlighter, EmailRenderer
from mail.transport import MailTransport, create_transport
from mail.worker import OutboxWorker
from storage.cache import ManagedSnippetCache, create_snippet_cache
from storage.database import Database

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 60.0
"""How often deleted snippets past their undo window are removed for good, and attempts no
rule reads any more are forgotten."""


class VerificationLinkBuilder:
    """The links of a verification email: `https://t.me/<bot>?start=<payload>` once the bot's
    name is known (from Telegram; an API without a bot token never learns it, and its emails
    hold no chat link then), and `<public_url>/app/#verify=<payload>` when the HTTP server has
    a public address."""

    def __init__(self, bot_username: str = "", public_url: str | None = None) -> None:
        self.bot_username = bot_username
        self.public_url = public_url.rstrip("/") if public_url else None

    def __call__(self, payload: str) -> VerificationLinks:
        web = f"{self.public_url}/app/#verify={payload}" if self.public_url else None
        chat = f"https://t.me/{self.bot_username}?start={payload}" if self.bot_username else None
        return VerificationLinks(chat=chat, web=web)


def jwt_secret(settings: Settings) -> str:
    """The configured secret, or on the embedded default one generated once under DATA_DIR
    (settings refuse an external database without JWT_SECRET)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = settings.jwt_secret_file
    if not path.exists():
        make_private_directory(path.parent)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass
class Services:
    """What every edge shares in one process; build it with `bootstrap`."""

    settings: Settings
    database: Database
    cache: ManagedSnippetCache
    accounts: AccountService
    snippets: SnippetService
    flows: FlowService
    worker: OutboxWorker
    verify_links: VerifyLinks
    organise: OrganiseService
    archive: ArchiveService
    language_guesser: LanguageGuesser
    highlighter: CodeHighlighter
    """Pygments in a child process with a deadline: the emails' and the share page's."""
    clock: Clock = utc_now
    _worker_stop: asyncio.Event = field(default_factory=asyncio.Event)
    _worker_task: asyncio.Task[None] | None = None
    _purge_task: asyncio.Task[None] | None = None
    _purge_stop: asyncio.Event = field(default_factory=asyncio.Event)

    def set_bot_username(self, username: str) -> None:
        """Verification links open the bot: `https://t.me/<username>?start=<payload>`."""
        if isinstance(self.verify_links, VerificationLinkBuilder):
            self.verify_links.bot_username = username

    def start_worker(self) -> None:
        self._worker_stop.clear()
        self._worker_task = asyncio.create_task(self.worker.run(self._worker_stop))

    async def stop_worker(self) -> None:
        if self._worker_task is None:
            return
        self._worker_stop.set()
        await self._worker_task
        self._worker_task = None

    def start_purge(self, interval_seconds: float = PURGE_INTERVAL_SECONDS) -> None:
        """The background maintenance of every long-running command (`run`, `api`, `worker`):
        every so often, removes for good what was deleted longer ago than the undo window and
        forgets the login, signup and reset attempts that no limit reads any more. Each step is
        one idempotent statement, so processes purging at once do no harm."""
        if self._purge_task is None:
            self._purge_stop.clear()
            self._purge_task = asyncio.create_task(self._purge_forever(interval_seconds))

    async def purge_once(self) -> None:
        """One round of the maintenance; a failed step is logged and tried again next round."""
        try:
            purged = await self.organise.purge_deleted()
            if purged:
                log.info("purged %d deleted snippets past their undo window", purged)
        except Exception:  # the database may be away for a while: try again later
            log.warning("purging deleted snippets failed", exc_info=True)
        try:
            forgotten = await self.accounts.purge_attempts()
            if forgotten:
                log.info("forgot %d attempts past every limit's window", forgotten)
        except Exception:
            log.warning("purging old attempts failed", exc_info=True)

    async def _purge_forever(self, interval_seconds: float) -> None:
        while not self._purge_stop.is_set():
            await self.purge_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._purge_stop.wait(), interval_seconds)

    async def stop_purge(self) -> None:
        if self._purge_task is None:
            return
        # Stopped between two purges, never inside one (its connection must close first).
        self._purge_stop.set()
        await self._purge_task
        self._purge_task = None

    async def close(self) -> None:
        await self.stop_purge()
        await self.stop_worker()
        await self.worker.close()
        await self.language_guesser.close()
        await self.cache.close()
        await self.database.dispose()


async def bootstrap(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    hasher: PasswordHasher | None = None,
    mail_transport: MailTransport | None = None,
    verify_links: VerifyLinks | None = None,
    cache: ManagedSnippetCache | None = None,
) -> Services:
    """Opens the adapters `settings` name (or the ones passed in) and wires the use cases.

    `clock` is the one clock of everything built here (sessions, codes, flows, the outbox);
    `verify_links` defaults to a `VerificationLinkBuilder` with the web link of `PUBLIC_URL`
    (when set); the bot sets its name on start (`Services.set_bot_username`).
    """
    database = Database.from_settings(settings, clock=clock)
    cache = cache or create_snippet_cache(settings)
    links = verify_links or VerificationLinkBuilder(public_url=settings.public_url)
    tokens = SessionTokens(jwt_secret(settings), timedelta(seconds=settings.jwt_ttl_seconds))
    uow = database.uow_factory()
    accounts = AccountService(
        uow, hasher or PasswordHasher(), tokens, clock, links, quick=database.quick_statements
    )
    # Pygments' guess and highlighting run in child processes with deadlines, started on
    # first use: one user's content must not stall the others.
    language_guesser = LanguageGuesser()
    highlighter = CodeHighlighter()  # closed by the worker, whose renderer uses it too
    snippets = SnippetService(
        uow,
        cache,
        clock,
        settings.max_snippet_bytes,
        guess_language=language_guesser,
        quick=database.quick_statements,
    )
    worker = OutboxWorker(
        database.outbox_queue(),
        mail_transport or create_transport(settings),
        EmailRenderer(highlighter),
        settings.smtp_from,
        clock,
    )
    flows = FlowService(uow, clock)
    return Services(
        settings,
        database,
        cache,
        accounts,
        snippets,
        flows,
        worker,
        links,
        OrganiseService(uow, cache, clock),
        ArchiveService(uow, cache, clock, settings.max_snippet_bytes),
        language_guesser,
        highlighter,
        clock=clock,
    )
