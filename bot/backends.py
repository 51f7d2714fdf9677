"""Which backend each setting selects and where it keeps things, in words: `check` prints these
and start-up logs them. Passwords in URLs are masked."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from core.settings import Settings


def database(settings: Settings) -> str:
    if settings.uses_embedded_database:
        return f"embedded SQLite ({settings.effective_database_url.split(':///', 1)[-1]})"
    return "external " + make_url(settings.effective_database_url).render_as_string()


def cache(settings: Settings) -> str:
    if settings.redis_url:
        return "external Redis " + make_url(settings.redis_url).render_as_string()
    return "embedded in-process cache"


def mail(settings: Settings) -> str:
    if settings.smtp_host:
        return f"external SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security})"
    return f"embedded: .eml files in {settings.mail_dir.resolve()}"


def startup_lines(settings: Settings) -> list[str]:
    """Where this process keeps its data and sends its mail, for the log at start-up."""
    return [
        f"data directory {settings.data_dir.resolve()}",
        f"database: {database(settings)}",
        f"cache: {cache(settings)}",
        f"email: {mail(settings)}",
    ]
