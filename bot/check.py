"""`snippetvault check`: what is configured, what is embedded or external, what answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
import httpx
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from bot import backends
from bot.logs import redact_library_logs
from core.settings import Settings
from storage.database import Database
from storage.migrate import current_revision, head_revision

TIMEOUT = 5.0


@dataclass(frozen=True)
class Probe:
    name: str
    backend: str
    required: bool
    check: Callable[[], Awaitable[str]] | None
    setting: str = ""
    """What to set when the backend is not configured."""


async def run_check(settings: Settings) -> int:
    print("Configuration (environment and .env; secrets masked):")
    rows = _settings_rows(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}} {value}")
    print("\nBackends:")
    failures = 0
    for probe in _probes(settings):
        status = "not configured" + (f" (set {probe.setting})" if probe.setting else "")
        ok = not probe.required
        if probe.check is not None:
            try:
                status = await asyncio.wait_for(probe.check(), TIMEOUT)
                ok = True
            except Exception as error:
                status = f"UNREACHABLE — {type(error).__name__}: {error}".strip(" :")
                ok = not probe.required
        print(f"  {probe.name:<10} {probe.backend:<48} {status}")
        failures += 0 if ok else 1
    if failures:
        print(f"\n{failures} required backend(s) missing or unreachable.")
        return 1
    print("\nEverything required is configured and reachable.")
    return 0


def _settings_rows(settings: Settings) -> list[tuple[str, str]]:
    """Each setting as in effect; an unset one says which embedded default stands in."""
    in_use = {
        "jwt_secret": f"not set: the generated key in {settings.jwt_secret_file.resolve()}"
        + ("" if settings.jwt_secret_file.exists() else " (created at the first start)"),
        "database_url": f"not set: embedded SQLite {_sqlite_path(settings)}",
        "redis_url": "not set: the in-process cache (one process only)",
        "smtp_host": f"not set: .eml files in {settings.mail_dir.resolve()}",
    }
    rows = []
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            shown = "set (hidden)" if value.get_secret_value() else "not set"
        elif value is None or value == ():
            shown = in_use.get(name, "not set")
        elif isinstance(value, tuple):
            shown = ", ".join(str(item) for item in value)
        elif name == "data_dir":
            shown = f"{value} ({settings.data_dir.resolve()})"
        elif name.endswith("_url") and isinstance(value, str) and "@" in value:
            shown = make_url(value).render_as_string(hide_password=True)
        else:
            shown = str(value)
        rows.append((name.upper(), shown))
    return rows


def _sqlite_path(settings: Settings) -> str:
    return settings.effective_database_url.split(":///", 1)[-1]


def _probes(settings: Settings) -> list[Probe]:
    """A backend the settings name is required: unreachable, it fails the check."""
    telegram = f"Bot API {settings.telegram_api_base_url}"
    return [
        Probe(
            "telegram",
            telegram,
            True,
            _telegram(settings) if settings.telegram_bot_token else None,
            "TELEGRAM_BOT_TOKEN",
        ),
        Probe("database", backends.database(settings), True, lambda: _database(settings)),
        Probe(
            "cache",
            backends.cache(settings),
            True,
            (lambda: _redis(settings)) if settings.redis_url else _in_process_cache,
        ),
        Probe(
            "email",
            backends.mail(settings),
            True,
            (lambda: _smtp(settings)) if settings.smtp_host else lambda: _mail_folder(settings),
        ),
    ]


async def _in_process_cache() -> str:
    return "in use (one process only: set REDIS_URL to run several)"


async def _mail_folder(settings: Settings) -> str:
    folder = settings.mail_dir.resolve()
    if not folder.exists():
        return "in use (the folder is created with the first email)"
    written = sum(1 for _ in folder.glob("*.eml"))
    return f"in use, {written} email(s) written there"


def _telegram(settings: Settings) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        assert settings.telegram_bot_token is not None
        # httpx logs each request's URL, and this one holds the token.
        redact_library_logs((settings.telegram_bot_token.get_secret_value(),))
        url = f"{settings.telegram_api_base_url}{settings.telegram_bot_token.get_secret_value()}"
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(f"{url}/getMe")
        body = response.json()
        if not body.get("ok"):
            raise RuntimeError(body.get("description", "the token was refused"))
        return f"reachable — bot @{body['result']['username']}"

    return check


async def _database(settings: Settings) -> str:
    database = Database.from_settings(settings)
    try:
        await database.ping()
        revision = await current_revision(settings.effective_database_url)
        if revision != head_revision():
            return "reachable — schema not up to date: run `snippetvault migrate` (or `run`)"
        counts = await database.outbox_queue().counts()
        failed = await database.failed_emails(limit=5)
    finally:
        await database.dispose()
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    lines = [f"reachable — outbox: {summary or 'empty'}"]
    lines += [f"\n{'':12}failed email to {item.to}: {item.error}" for item in failed]
    return "".join(lines)


async def _redis(settings: Settings) -> str:
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "reachable — PING answered"


async def _smtp(settings: Settings) -> str:
    assert settings.smtp_host is not None
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_security == "tls",
        start_tls=settings.smtp_security == "starttls",
        timeout=TIMEOUT,
    )
    await client.connect()
    try:
        if settings.smtp_username and settings.smtp_password:
            await client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
    finally:
        await client.quit()
    return "reachable — connected" + (" and authenticated" if settings.smtp_username else "")
