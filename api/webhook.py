"""Webhook mode: Telegram (or the proxy in front of several processes) POSTs each update here.

The secret header is checked before a byte of the body is read, so a forged request costs
nothing; the body itself is capped by `api.body_limit` like every other.
"""

from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from telegram import Update

from bot.context import BotApplication
from core.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_BYTES = 1024 * 1024
"""Updates are small JSON documents (a file's content is never inside one)."""


def webhook_path(settings: Settings) -> str:
    """The path of `BOT_WEBHOOK_URL` (`/telegram` when it names none)."""
    assert settings.bot_webhook_url is not None
    path = urlsplit(settings.bot_webhook_url).path.rstrip("/")
    return path or "/telegram"


def webhook_router(settings: Settings) -> APIRouter:
    assert settings.bot_webhook_secret is not None
    secret = settings.bot_webhook_secret.get_secret_value().encode()
    router = APIRouter()

    @router.post(webhook_path(settings), include_in_schema=False)
    async def telegram_update(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            log.warning("refused a webhook request without the secret header")
            return Response(status_code=403)
        application: BotApplication | None = getattr(request.app.state, "bot", None)
        if application is None or not application.running:
            return Response(status_code=503, headers={"Retry-After": "5"})
        try:
            update = Update.de_json(json.loads(await request.body()), application.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Response(status_code=400)
        await application.update_queue.put(update)
        return Response(status_code=200)

    return router
