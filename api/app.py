"""The ASGI application of a process: the REST API, the Mini App, `/healthz`, and in webhook
mode the bot's webhook. Nothing is built at import time: `create_app` is called per process
(or per test, with the services it opened)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import health, share_page
from api.body_limit import BodyLimit
from api.errors import install_error_handlers
from api.miniapp import mount_miniapp
from api.routes import auth, organise, snippets
from api.runtime import Runtime
from api.webhook import MAX_UPDATE_BYTES, webhook_path, webhook_router
from bootstrap import Services
from bot.logs import redact_library_logs
from core.archive import MAX_ARCHIVE_BYTES
from core.settings import Settings

BODY_SLACK_BYTES = 64 * 1024
JSON_ESCAPE_FACTOR = 6
"""JSON may spell each byte of code as `\\u00XX`: six characters for one."""


def body_limit(settings: Settings) -> int:
    """The cap of an API request body: a snippet of `MAX_SNIPPET_BYTES` however its JSON is
    escaped, and the rest of its fields. Bigger code within it is refused by core (413 too)."""
    return JSON_ESCAPE_FACTOR * settings.max_snippet_bytes + BODY_SLACK_BYTES


def create_app(
    settings: Settings, *, services: Services | None = None, runtime: Runtime | None = None
) -> FastAPI:
    """`services` for a test that opened its own; `runtime` for a process, which opens them
    (and the bot) in the lifespan."""
    app = FastAPI(
        title="SnippetVault",
        summary="Your code snippets, from Telegram and over HTTP.",
        version="1.0.0",
        lifespan=runtime.lifespan if runtime is not None else None,
    )
    secrets = (settings.telegram_bot_token, settings.jwt_secret)
    redact_library_logs(tuple(secret.get_secret_value() for secret in secrets if secret))
    app.state.settings = settings
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(snippets.router)
    app.include_router(organise.router)
    app.include_router(share_page.router)
    caps: dict[str, int] = {"/import": MAX_ARCHIVE_BYTES}
    if runtime is not None and runtime.webhook_mode:
        app.include_router(webhook_router(settings))
        caps[webhook_path(settings)] = MAX_UPDATE_BYTES
    mount_miniapp(app)
    default_cap = body_limit(settings)
    app.add_middleware(BodyLimit, limit_for=lambda path: caps.get(path, default_cap))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    return app
