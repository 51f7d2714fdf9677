"""A bare python-telegram-bot echo bot: the floor of the end-to-end rows, and the process the
rate-limit tests run three of.

`python -m bench.echo_bot TOKEN BASE_URL [--rate-limit N --redis-url URL]` long-polls
`BASE_URL` and answers every text message with its text. Without `--rate-limit` it has no
limiter at all; with it, it uses the bot's own `SharedRateLimiter`. On SIGUSR1 it prints
its limiter's counters as one JSON line; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from dataclasses import asdict
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.ratelimit import SharedRateLimiter


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_bot")
    parser.add_argument("token")
    parser.add_argument("base_url")
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        Application.builder().token(args.token).base_url(args.base_url).concurrent_updates(64)
    )
    limiter: SharedRateLimiter | None = None
    if args.rate_limit is not None:
        limiter = SharedRateLimiter.for_bot(args.token, args.rate_limit, args.redis_url)
        builder = builder.rate_limiter(limiter)

    async def report_on_signal(application: Any) -> None:
        def report() -> None:
            counters = asdict(limiter.counters) if limiter is not None else {}
            sys.stdout.write(json.dumps({"pid": os.getpid(), **counters}) + "\n")
            sys.stdout.flush()

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    application = builder.post_init(report_on_signal).build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling(
        poll_interval=0, timeout=10, stop_signals=(signal.SIGTERM, signal.SIGINT)
    )


if __name__ == "__main__":
    main()
