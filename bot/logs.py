"""Logging set-up that keeps secrets out of logs.

The bot token is part of every Bot API URL, and httpx logs each request's URL at INFO: those
loggers are turned down, and a filter scrubs anything shaped like a token or a JWT from every
record that still gets through.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_TOKEN = re.compile(r"\d{5,12}:[A-Za-z0-9_-]{30,}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_NOISY = ("httpx", "httpcore", "aiohttp", "telegram.request", "aiosqlite", "asyncio")
_LEAKY = ("telegram.Bot", "telegram.ext.ExtBot", "httpx", "httpcore", "aiohttp", "aiosqlite")
"""Loggers whose records carry secrets: PTB logs its Bot API URLs (token included) at DEBUG,
httpx each request's URL, aiosqlite each statement's parameters (session tokens)."""


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrub(text)
        return True

    def remember(self, secrets: tuple[str, ...]) -> None:
        self._secrets = tuple(dict.fromkeys((*self._secrets, *(s for s in secrets if s))))

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _JWT.sub("[jwt]", _TOKEN.sub("[bot-token]", text))


def configure_logging(
    level: int | str = logging.INFO, secrets: tuple[str, ...] = (), *, json_lines: bool = False
) -> None:
    """Logs to stderr at `level` (LOG_LEVEL), as text or one JSON object a line (LOG_FORMAT)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("telegram.ext").addFilter(StartupFailureWithoutTraceback())


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors: time, level, logger, message (and the
    traceback, already scrubbed by `RedactSecrets`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StartupFailureWithoutTraceback(logging.Filter):
    """PTB logs a failed start-up (Telegram unreachable, a refused token) with the whole
    traceback; the CLI says the same in one line that names the setting, so keep PTB's line
    and drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Network Retry Loop (Bootstrap"):
            record.exc_info, record.exc_text = None, None
        return True


class DropStatementEcho(logging.Filter):
    """aiosqlite's DEBUG records echo every statement with its parameters, and those hold
    one-time codes (outbox rows), session tokens and addresses no pattern recognises."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def redact_library_logs(secrets: tuple[str, ...] = ()) -> None:
    """Scrubs the leaky libraries' records where they are made, so no handler (the host
    process's, a test's, a level turned up to DEBUG) ever sees the secrets in them."""
    statements = logging.getLogger("aiosqlite")
    if not any(isinstance(f, DropStatementEcho) for f in statements.filters):
        statements.addFilter(DropStatementEcho())
    for name in _LEAKY:
        logger = logging.getLogger(name)
        existing = [f for f in logger.filters if isinstance(f, RedactSecrets)]
        if existing:
            existing[0].remember(secrets)
        else:
            logger.addFilter(RedactSecrets(secrets))
