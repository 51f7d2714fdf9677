"""Checks of the URL- and path-typed settings, so a bad value stops start-up with one line that
says what to write instead, rather than a library's traceback from deep inside the first
connection.

Each check takes the value as given and returns it (normalised) or raises `ValueError` whose
text is the advice; the settings object adds the variable's name in front.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

DATABASE_EXAMPLE = (
    "postgresql+asyncpg://user:password@host:5432/snippetvault, "
    "or sqlite+aiosqlite:////absolute/path/snippetvault.db (or unset it for the embedded SQLite)"
)
REDIS_EXAMPLE = "redis://host:6379/0, rediss://… for TLS, or unix:///path/redis.sock"
_HOST = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split(value: str, example: str) -> SplitResult:
    if any(character.isspace() for character in value):
        raise ValueError(f"contains a space or a line break; write it as {example}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"is not a valid URL (look at the port); write it as {example}") from None
    return parts


def _needs_host(parts: SplitResult, example: str) -> None:
    if not parts.hostname:
        raise ValueError(f"has no host; write it as {example}")
    if not _HOST.match(parts.hostname) and ":" not in parts.hostname:  # IPv6 passes
        raise ValueError(f"has an invalid host {parts.hostname!r}; write it as {example}")


def database_url(value: str) -> str:
    """The URL with its async driver: `postgresql://` and `postgres://` (as hosting services
    hand them out) mean asyncpg, `sqlite://` aiosqlite; any other driver is refused."""
    parts = _split(value, DATABASE_EXAMPLE)
    scheme = parts.scheme.lower()
    if scheme in {"postgres", "postgresql"}:
        value, scheme = "postgresql+asyncpg" + value[len(scheme) :], "postgresql+asyncpg"
    elif scheme == "sqlite":
        value, scheme = "sqlite+aiosqlite" + value[len(scheme) :], "sqlite+aiosqlite"
    if scheme == "sqlite+aiosqlite":
        path = value.split(":///", 1)[1] if ":///" in value else ""
        if not path or path.startswith("?"):
            raise ValueError(f"names no database file; write it as {DATABASE_EXAMPLE}")
        return value
    if scheme == "postgresql+asyncpg":
        _needs_host(parts, DATABASE_EXAMPLE)
        if not parts.path.strip("/"):
            raise ValueError(f"names no database after the host; write it as {DATABASE_EXAMPLE}")
        return value
    if scheme.startswith(("postgresql+", "sqlite+")):
        wanted = "postgresql+asyncpg" if scheme.startswith("postgresql") else "sqlite+aiosqlite"
        raise ValueError(
            f"the {parts.scheme.split('+', 1)[1]} driver is not supported: "
            f"write {wanted}:// instead of {parts.scheme}://"
        )
    shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
    raise ValueError(
        f"must be a PostgreSQL or SQLite URL (got {shown}); write it as {DATABASE_EXAMPLE}"
    )


def redis_url(value: str) -> str:
    parts = _split(value, REDIS_EXAMPLE)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        if not parts.path:
            raise ValueError(f"names no socket path; write it as {REDIS_EXAMPLE}")
        return value
    if scheme not in {"redis", "rediss"}:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(
            f"must start with redis://, rediss:// or unix:// (got {shown}); "
            f"write it as {REDIS_EXAMPLE}"
        )
    _needs_host(parts, REDIS_EXAMPLE)
    index = parts.path.strip("/")
    if index and not index.isdigit():
        raise ValueError(
            f"ends in {parts.path!r}, not a database number; write it as {REDIS_EXAMPLE}"
        )
    return value


def http_url(value: str, example: str, *, https_only: bool = False) -> str:
    parts = _split(value, example)
    allowed = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in allowed:
        wanted = "https://" if https_only else "http:// or https://"
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(f"must start with {wanted} (got {shown}); write it as {example}")
    _needs_host(parts, example)
    return value


def host_name(value: str, example: str) -> str:
    """A bare host name or address, as SMTP_HOST takes it: no scheme, no port, no path."""
    value = value.strip()
    if "://" in value or "/" in value:
        raise ValueError(f"must be a host name only, without scheme or path: e.g. {example}")
    if value.count(":") == 1:
        raise ValueError(f"must be a host name only, the port in its own setting: e.g. {example}")
    if not _HOST.match(value) and ":" not in value:
        raise ValueError(f"{value!r} is not a host name: e.g. {example}")
    return value


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a TCP port between 1 and 65535 (got {value})")
    return value


def log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)} (got {value!r})")
    return level


def data_dir(value: Path, *, writable: bool) -> Path:
    """A directory that exists or can be created (and written, when the embedded defaults keep
    files in it)."""
    if not str(value).strip():
        raise ValueError("is empty: name a directory, or unset it to use ./var")
    if value.exists() and not value.is_dir():
        raise ValueError(f"{value} is a file, not a directory: name a directory (e.g. ./var)")
    existing = value
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{existing} is a file, so {value} cannot be created: name a directory")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"{existing} is not writable by this user: name a writable directory or fix its "
            "permissions (the embedded database, key and .eml mail live there)"
        )
    return value
