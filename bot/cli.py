"""`snippetvault run | api | worker | migrate | check`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata

from core.errors import StorageUnavailable
from core.settings import Settings, SettingsError, load_settings

log = logging.getLogger("snippetvault")

# PTB 22 exposes retry delays as timedelta only when asked, and warns on each one otherwise.
os.environ.setdefault("PTB_TIMEDELTA", "1")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    # Settings load before the heavy imports, so a bad value is reported at once.
    try:
        settings = load_settings()
    except SettingsError as error:
        return _fail(f"configuration error: {error}", 1)
    from telegram.error import InvalidToken, NetworkError

    try:
        return int(options.command(settings, options) or 0)
    except SettingsError as error:
        return _fail(f"configuration error: {error}", 1)
    except InvalidToken:
        return _fail(
            "configuration error: TELEGRAM_BOT_TOKEN: Telegram refused this token; "
            "copy it again from @BotFather",
            1,
        )
    except NetworkError as error:
        return _fail(
            f"cannot reach the Telegram Bot API at {settings.telegram_api_base_url} "
            f"({error.message}); check the network, or TELEGRAM_API_BASE_URL",
            1,
        )
    except StorageUnavailable as error:
        return _fail(f"the database is unreachable ({error}); check DATABASE_URL", 1)
    except KeyboardInterrupt:
        return 130


def version() -> str:
    try:
        return metadata.version("snippetvault")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _fail(message: str, status: int) -> int:
    """Start-up problems a person can fix: one line, no traceback."""
    print(f"snippetvault: {message}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snippetvault",
        description="SnippetVault: a Telegram bot that keeps your code snippets. Settings come "
        "from environment variables or a .env file (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"snippetvault {version()}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="apply migrations and run the bot (long polling, or webhook mode when "
        "BOT_WEBHOOK_URL is set), the HTTP API and the email worker in one process",
        description="Apply pending migrations, then run the bot and serve HTTP (the REST API "
        "with its docs at /docs, /healthz, the webhook) on HTTP_HOST:HTTP_PORT until "
        "SIGINT/SIGTERM.",
    )
    run.set_defaults(command=_run)
    api = commands.add_parser(
        "api",
        help="serve only HTTP (the REST API, the Mini App, /healthz) without the bot, with the "
        "email worker in the same process",
        description="Apply pending migrations, then serve HTTP on HTTP_HOST:HTTP_PORT until "
        "SIGINT/SIGTERM; the bot's chat is not served (run `snippetvault run` for that).",
    )
    api.set_defaults(command=_api)
    for serving in (run, api):
        serving.add_argument(
            "--no-worker",
            action="store_true",
            help="do not send emails from this process (run `snippetvault worker` separately)",
        )
    worker = commands.add_parser(
        "worker",
        help="run only the email outbox worker (start several to scale out)",
        description="Send queued emails until SIGINT/SIGTERM.",
    )
    worker.set_defaults(command=_worker)
    migrate = commands.add_parser(
        "migrate", help="apply database migrations and exit", description="Apply migrations."
    )
    migrate.set_defaults(command=_migrate)
    check = commands.add_parser(
        "check",
        help="print the effective configuration and whether each backend is reachable",
        description="Print the configuration (secrets masked), the backends in use and "
        "whether each is reachable; exit 1 when something required is missing.",
    )
    check.set_defaults(command=_check)
    return parser


def _start_logging(settings: Settings) -> None:
    """LOG_LEVEL and LOG_FORMAT, secrets scrubbed, and where this process keeps things."""
    from bot.backends import startup_lines
    from bot.logs import configure_logging

    values = (settings.telegram_bot_token, settings.jwt_secret, settings.smtp_password)
    configure_logging(
        settings.log_level,
        tuple(value.get_secret_value() for value in values if value is not None),
        json_lines=settings.log_format == "json",
    )
    log.info("snippetvault %s", version())
    for line in startup_lines(settings):
        log.info("%s", line)


def _run(settings: Settings, options: argparse.Namespace) -> int:
    _start_logging(settings)
    if settings.telegram_bot_token is None:
        raise SettingsError(
            "TELEGRAM_BOT_TOKEN: not set. Create a bot with @BotFather in Telegram and put its "
            "token in .env as TELEGRAM_BOT_TOKEN=..."
        )
    return _serve(settings, with_bot=True, with_worker=not options.no_worker)


def _api(settings: Settings, options: argparse.Namespace) -> int:
    _start_logging(settings)
    return _serve(settings, with_bot=False, with_worker=not options.no_worker)


def _serve(settings: Settings, *, with_bot: bool, with_worker: bool) -> int:
    from api.server import serve
    from bot.app import AnotherPoller
    from storage.migrate import upgrade

    asyncio.run(upgrade(settings.effective_database_url))
    try:
        asyncio.run(serve(settings, with_bot=with_bot, with_worker=with_worker))
    except AnotherPoller as error:
        return _fail(str(error), 1)
    return 0


def _worker(settings: Settings, options: argparse.Namespace) -> int:
    _start_logging(settings)
    asyncio.run(_work(settings))
    return 0


async def _work(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The outbox worker, and the background maintenance every long-running command does
    (deployments may run no `snippetvault run` without `--no-worker`). Until SIGINT/SIGTERM,
    or until `stop` (tests) is set."""
    from bootstrap import bootstrap

    services = await bootstrap(settings)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    log.info("email worker started")
    services.start_purge()
    try:
        await services.worker.run(stop)
    finally:
        await services.close()
    log.info("email worker stopped")


def _migrate(settings: Settings, options: argparse.Namespace) -> int:
    from storage.migrate import upgrade

    asyncio.run(upgrade(settings.effective_database_url))
    print("database is up to date")
    return 0


def _check(settings: Settings, options: argparse.Namespace) -> int:
    from bot.check import run_check

    return asyncio.run(run_check(settings))


if __name__ == "__main__":
    raise SystemExit(main())
