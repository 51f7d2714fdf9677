"""The PTB `Application`: handlers, the error handler, and the services' life cycle."""

from __future__ import annotations

import gc
import logging
from typing import Any

from telegram import BotCommand, MenuButtonWebApp, Update, WebAppInfo
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bootstrap import Services, bootstrap
from bot.activity import LoggedApplication, note_outcome
from bot.context import BotApplication, BotContext, reply, stop_button_spinner
from bot.handlers import accounts, flows, inline, organise, snippets
from bot.logs import redact_library_logs
from bot.ratelimit import SharedRateLimiter
from bot.render import COMMANDS, miniapp_url
from bot.request import AiohttpRequest
from core.settings import Settings
from storage.locks import PollingLock

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "inline_query"]
APOLOGY = "😕 Sorry, something went wrong on my side. Please try again in a moment."


def build_application(
    settings: Settings,
    *,
    services: Services | None = None,
    run_worker: bool = True,
    single_poller: bool = False,
    webhook: bool = False,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limit: bool = True,
) -> BotApplication:
    """The bot, wired to `services` (opened in `post_init` from settings when not given).
    In webhook mode it has no updater: updates arrive as requests to the HTTP server.
    `request` carries the Bot API calls (`bot.request.AiohttpRequest` when not given), and
    `get_updates_request` the polling (`request` again when only that is given)."""
    assert settings.telegram_bot_token is not None
    redact_library_logs((settings.telegram_bot_token.get_secret_value(),))
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .application_class(LoggedApplication)
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(64)
        .post_init(_opener(settings, services, run_worker, single_poller))
        .post_shutdown(_close)
    )
    if webhook:
        builder = builder.updater(None)
    if request is None:
        request, get_updates_request = bot_api_requests()
    builder = builder.request(request).get_updates_request(get_updates_request or request)
    if rate_limit:
        builder = builder.rate_limiter(
            SharedRateLimiter.for_bot(
                settings.telegram_bot_token.get_secret_value(),
                settings.telegram_rate_limit,
                settings.redis_url,
            )
        )
    application: BotApplication = builder.build()
    add_handlers(application)
    return application


def bot_api_requests() -> tuple[BaseRequest, BaseRequest]:
    """The Bot API transport as deployed: one pool for the calls, one connection to poll on.
    PTB shuts them down with the application, but not when its `initialize` fails: whoever
    builds them closes them then (`BaseRequest.shutdown` may be called twice)."""
    return AiohttpRequest(), AiohttpRequest(connection_pool_size=1)


def add_handlers(application: BotApplication) -> None:
    private = filters.ChatType.PRIVATE
    commands: dict[str, Any] = {
        "start": accounts.start,
        "help": accounts.help_command,
        "signup": accounts.signup,
        "verify": accounts.verify,
        "login": accounts.login,
        "logout": accounts.logout,
        "reset": accounts.reset,
        "cancel": accounts.cancel,
        "save": snippets.save,
        "get": snippets.get,
        "list": snippets.list_snippets,
        "search": snippets.search,
        "edit": snippets.edit,
        "rename": snippets.rename,
        "delete": snippets.delete,
        "tag": organise.tag,
        "untag": organise.untag,
        "tags": organise.tags,
        "history": organise.history,
        "share": organise.share,
        "shares": organise.shares,
        "unshare": organise.unshare,
        "export": organise.export,
    }
    # A share link (`/start share_<token>`) opens the snippet; any other /start falls through.
    application.add_handler(
        CommandHandler(
            "start",
            organise.open_share,
            filters=filters.UpdateType.MESSAGE & filters.Regex(r"^/start(@\w+)? share_"),
        )
    )
    application.add_handler(
        CommandHandler(
            "start",
            organise.inline_login,
            filters=filters.UpdateType.MESSAGE & filters.Regex(r"^/start(@\w+)? inline$"),
        )
    )
    application.add_handler(InlineQueryHandler(inline.inline_query))
    for name, callback in commands.items():
        # New messages only: an edited message is never run as a command (editing an old
        # message into `/delete 3` must not delete anything).
        application.add_handler(CommandHandler(name, callback, filters=filters.UpdateType.MESSAGE))
    application.add_handler(
        CallbackQueryHandler(organise.button, pattern=organise.CALLBACK_PATTERN)
    )
    application.add_handler(CallbackQueryHandler(accounts.resend_verification, pattern=r"^resend:"))
    application.add_handler(CallbackQueryHandler(snippets.button))
    # Private chats only: in a group every member's file would get a refusal (a spam vector).
    application.add_handler(
        MessageHandler(
            filters.Document.ALL & filters.UpdateType.MESSAGE & private, snippets.save_document
        )
    )
    application.add_handler(
        MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE & private, flows.text_message)
    )
    application.add_handler(
        MessageHandler(filters.UpdateType.EDITED_MESSAGE, snippets.edited_message)
    )
    application.add_handler(
        MessageHandler(
            filters.UpdateType.MESSAGE & private & ~filters.TEXT & ~filters.Document.ALL,
            snippets.unsupported,
        )
    )
    application.add_error_handler(on_error)


async def on_error(update: object, context: BotContext) -> None:
    """The last line: log the failure, and never leave the person without an answer."""
    log.error("unhandled error for update %s", _update_id(update), exc_info=context.error)
    note_outcome("crashed")
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await stop_button_spinner(update)
            await reply(update, APOLOGY)
        except TelegramError:
            log.warning("could not send the apology for update %s", _update_id(update))


def _update_id(update: object) -> object:
    return update.update_id if isinstance(update, Update) else None


class AnotherPoller(Exception):
    """Another process already long-polls for this bot."""


def _opener(
    settings: Settings, services: Services | None, run_worker: bool, single_poller: bool
) -> Any:
    async def post_init(application: BotApplication) -> None:
        opened = services or await bootstrap(settings)
        application.bot_data["services"] = opened
        if single_poller:
            lock = PollingLock(opened.database.engine, application.bot.id)
            if not await lock.acquire():
                await opened.close()
                raise AnotherPoller(
                    f"another process is already long-polling for @{application.bot.username}. "
                    "Stop it first, or run several processes in webhook mode (BOT_WEBHOOK_URL)."
                )
            application.bot_data["polling_lock"] = lock
        opened.set_bot_username(application.bot.username)
        await application.bot.set_my_commands(
            [BotCommand(name, what[:256]) for name, what, _ in COMMANDS]
        )
        app_url = miniapp_url(settings)
        if app_url is not None:
            # The default for every private chat: the button beside the message field.
            await application.bot.set_chat_menu_button(
                menu_button=MenuButtonWebApp("Open app", WebAppInfo(app_url))
            )
        if run_worker:
            opened.start_worker()
        opened.start_purge()
        _freeze_start_up_objects()

    return post_init


_frozen = False


def _freeze_start_up_objects() -> None:
    """Once a process: what start-up built (modules, SQLAlchemy, PTB, Pygments…) lives as long
    as the process, yet every collection of the oldest generation walked it all, holding the
    event loop 100-400 ms on this project's bench machine. Frozen, it is never walked again."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


async def _close(application: BotApplication) -> None:
    services: Services | None = application.bot_data.get("services")
    lock: PollingLock | None = application.bot_data.get("polling_lock")
    if lock is not None:
        await lock.release()
    if services is not None:
        await services.close()
