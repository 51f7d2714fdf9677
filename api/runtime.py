"""What a process runs beside its HTTP server, started and stopped in the ASGI lifespan.

`snippetvault run`: the bot (long polling, or webhook mode with updates arriving as requests
to this same server) and the email worker; `snippetvault api`: the services and the worker
alone. The HTTP server accepts requests only once this has started, and stops it after the
last request was answered.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from telegram import Bot
from telegram.error import TelegramError

from bootstrap import bootstrap
from bot.app import ALLOWED_UPDATES, bot_api_requests, build_application
from bot.context import BotApplication
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    with_bot: bool
    with_worker: bool
    startup_error: BaseException | None = None
    """Why start-up failed, for the command line to word in one line."""

    @property
    def webhook_mode(self) -> bool:
        return self.with_bot and self.settings.bot_webhook_url is not None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        started = False
        try:
            running = self._with_bot(app) if self.with_bot else self._without_bot(app)
            async with running:
                started = True
                yield
        except BaseException as error:
            if not started:
                self.startup_error = error
            raise

    @contextlib.asynccontextmanager
    async def _with_bot(self, app: FastAPI) -> AsyncIterator[None]:
        """PTB's own `run_polling`, taken apart so the HTTP server owns the event loop
        (its custom-webhook pattern: no updater in webhook mode, updates come as requests)."""
        settings = self.settings
        requests = bot_api_requests()
        application = build_application(
            settings,
            run_worker=self.with_worker,
            single_poller=not self.webhook_mode,
            webhook=self.webhook_mode,
            request=requests[0],
            get_updates_request=requests[1],
        )
        try:
            await application.initialize()
            assert application.post_init is not None
            await application.post_init(application)
            await application.start()
            try:
                await self._receive_updates(application)
                app.state.services = application.bot_data["services"]
                app.state.bot = application
                yield
                log.info("stopping: finishing the updates already received")
            finally:
                if application.updater is not None and application.updater.running:
                    await application.updater.stop()
                if application.running:
                    await application.stop()
        finally:
            await application.shutdown()
            if application.post_shutdown is not None:
                await application.post_shutdown(application)
            for request in requests:  # still open when `initialize` failed
                await request.shutdown()

    async def _receive_updates(self, application: BotApplication) -> None:
        settings = self.settings
        if not self.webhook_mode:
            assert application.updater is not None
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            log.info("starting with long polling (bot @%s)", application.bot.username)
            return
        assert settings.bot_webhook_url is not None
        assert settings.bot_webhook_secret is not None
        await application.bot.set_webhook(
            settings.bot_webhook_url,
            secret_token=settings.bot_webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
        log.info("starting in webhook mode (bot @%s)", application.bot.username)

    @contextlib.asynccontextmanager
    async def _without_bot(self, app: FastAPI) -> AsyncIterator[None]:
        services = await bootstrap(self.settings)
        try:
            username = await bot_username(self.settings)
            if username is not None:
                services.set_bot_username(username)
            if self.with_worker:
                services.start_worker()
            services.start_purge()
            app.state.services = services
            yield
        finally:
            await services.close()


async def bot_username(settings: Settings) -> str | None:
    """The bot's name for t.me links in emails: one `getMe`, when a token is set. The API
    serves without Telegram, so a failure only leaves the links out."""
    if settings.telegram_bot_token is None:
        return None
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_file_base_url,
    )
    try:
        async with bot:
            return bot.username
    except TelegramError as error:
        log.warning("could not ask Telegram for the bot's name (%s); emails link no chat", error)
        return None
