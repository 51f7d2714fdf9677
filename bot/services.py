"""The composition root: builds the real adapters from settings and wires the use cases.

Nothing here runs at import time; `Services.open` is awaited in PTB's `post_init` (or by the
CLI's worker and check commands) and `close` in `post_shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.accounts import AccountService
from core.flows import FlowService
from core.private_files import make_private_directory
from core.security import PasswordHasher, SessionTokens
from core.settings import Settings
from core.snippets import SnippetService
from core.text import LanguageGuesser
from mail.render import CodeHighlighter, EmailRenderer
from mail.transport import create_transport
from mail.worker import OutboxWorker
from storage.cache import ManagedSnippetCache, create_snippet_cache
from storage.database import Database

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    settings: Settings
    database: Database
    cache: ManagedSnippetCache
    accounts: AccountService
    snippets: SnippetService
    flows: FlowService
    worker: OutboxWorker
    language_guesser: LanguageGuesser
    _worker_stop: asyncio.Event = field(default_factory=asyncio.Event)
    _worker_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, *, hasher: PasswordHasher | None = None) -> Services:
        database = Database.from_settings(settings)
        cache = create_snippet_cache(settings)
        tokens = SessionTokens(jwt_secret(settings), timedelta(seconds=settings.jwt_ttl_seconds))
        uow = database.uow_factory()
        accounts = AccountService(uow, hasher or PasswordHasher(), tokens, utc_now, "")
        # Pygments' guess and highlighting run in child processes with deadlines, started on
        # first use: one user's content must not stall the others (issue 9).
        language_guesser = LanguageGuesser()
        snippets = SnippetService(
            uow, cache, utc_now, settings.max_snippet_bytes, guess_language=language_guesser
        )
        worker = OutboxWorker(
            database.outbox_queue(),
            create_transport(settings),
            EmailRenderer(CodeHighlighter()),
            settings.smtp_from,
            utc_now,
        )
        flows = FlowService(uow, utc_now)
        return cls(settings, database, cache, accounts, snippets, flows, worker, language_guesser)

    def set_bot_username(self, username: str) -> None:
        """Verification links point at the bot: `https://t.me/<username>?start=<payload>`."""
        self.accounts.verify_link_base = f"https://t.me/{username}"

    def start_worker(self) -> None:
        self._worker_stop.clear()
        self._worker_task = asyncio.create_task(self.worker.run(self._worker_stop))

    async def stop_worker(self) -> None:
        if self._worker_task is None:
            return
        self._worker_stop.set()
        await self._worker_task
        self._worker_task = None

    async def close(self) -> None:
        await self.stop_worker()
        await self.worker.close()
        await self.language_guesser.close()
        await self.cache.close()
        await self.database.dispose()
