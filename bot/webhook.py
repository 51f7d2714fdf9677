"""Webhook mode: Telegram (or a load balancer in front of several bot processes) POSTs each
update to `/telegram`; `/healthz` tells the balancer whether this process can serve.

PTB's own `run_webhook` serves only the update path, so the same few lines are written here
with a health check beside them. Requests without the right secret header are refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

import tornado.httpserver
import tornado.web
from telegram import Update

from bootstrap import Services
from bot.context import BotApplication
from core.errors import StorageUnavailable
from core.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


class UpdateEndpoint(tornado.web.RequestHandler):
    def initialize(self, bot_application: BotApplication, secret: str) -> None:
        self._application = bot_application
        self._secret = secret

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("refused a webhook request without the secret header")
            self.send_error(403)
            return
        try:
            update = Update.de_json(json.loads(self.request.body), self._application.bot)
        except (ValueError, TypeError, KeyError):
            self.send_error(400)
            return
        await self._application.update_queue.put(update)
        self.set_status(200)

    def log_exception(self, *args: Any) -> None:
        log.exception("webhook request failed")


class HealthEndpoint(tornado.web.RequestHandler):
    def initialize(self, bot_application: BotApplication) -> None:
        self._application = bot_application

    async def get(self) -> None:
        services: Services | None = self._application.bot_data.get("services")
        if services is None or not self._application.running:
            self.set_status(503)
            self.finish({"status": "starting"})
            return
        try:
            await services.database.ping()
        except StorageUnavailable:
            self.set_status(503)
            self.finish({"status": "database unavailable"})
            return
        self.finish({"status": "ok"})


def webhook_path(settings: Settings) -> str:
    """The path of `BOT_WEBHOOK_URL` (`/telegram` when it names none)."""
    assert settings.bot_webhook_url is not None
    path = urlsplit(settings.bot_webhook_url).path.rstrip("/")
    return path or "/telegram"


async def serve_webhook(application: BotApplication, settings: Settings) -> None:
    """Runs until SIGINT/SIGTERM; updates already received are handled before it returns."""
    assert settings.bot_webhook_url is not None
    assert settings.bot_webhook_secret is not None
    secret = settings.bot_webhook_secret.get_secret_value()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    routes = tornado.web.Application(
        [
            (
                webhook_path(settings),
                UpdateEndpoint,
                {"bot_application": application, "secret": secret},
            ),
            ("/healthz", HealthEndpoint, {"bot_application": application}),
        ]
    )
    server = tornado.httpserver.HTTPServer(routes, xheaders=True)
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    try:
        await application.start()
        server.listen(settings.bot_webhook_port, address=settings.bot_webhook_listen)
        await application.bot.set_webhook(
            settings.bot_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        log.info(
            "webhook mode: listening on %s:%s%s",
            settings.bot_webhook_listen,
            settings.bot_webhook_port,
            webhook_path(settings),
        )
        await stop.wait()
        log.info("stopping: finishing the updates already received")
    finally:
        server.stop()
        await server.close_all_connections()
        if application.running:
            await application.stop()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
