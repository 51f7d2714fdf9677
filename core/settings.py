"""The one settings object: environment variables or a `.env` file, checked at start-up."""

from __future__ import annotations

import enum
import ipaddress
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core import setting_checks as checks

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "changethis", "replace-me"})
MIN_JWT_SECRET_BYTES = 32


class SmtpSecurity(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"
    # Messages a second per bot, shared by every process; 0: no overall limit (groups keep theirs).
    telegram_rate_limit: Annotated[float, Field(ge=0)] = 30

    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "SnippetVault <no-reply@localhost>"
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_timeout_seconds: float = 10.0

    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: Annotated[int, Field(gt=0)] = 86400
    snippet_cache_ttl_seconds: Annotated[int, Field(gt=0)] = 300
    max_snippet_bytes: Annotated[int, Field(gt=0)] = 524288

    bot_webhook_url: str | None = None
    bot_webhook_secret: SecretStr | None = None

    # The one HTTP server of each process: REST API, Mini App, /healthz, webhook.
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    public_url: str | None = None
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    trusted_proxies: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode
    ] = ()
    """Peers whose `X-Forwarded-For` is believed; any other peer is the client itself."""
    telegram_init_data_max_age_seconds: Annotated[int, Field(gt=0)] = 3600

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    @field_validator(
        "database_url", "redis_url", "smtp_host", "smtp_username", "bot_webhook_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_url", mode="before")
    @classmethod
    def _https_base(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return None
        url = urlsplit(value.strip())
        if url.scheme != "https" or not url.hostname or url.query or url.fragment:
            raise ValueError("must be an https:// URL such as https://snippets.example.org")
        return value.strip().rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        origins = tuple(str(item).strip().rstrip("/") for item in items if str(item).strip())
        for origin in origins:
            url = urlsplit(origin)
            if origin != "*" and (
                url.scheme not in {"http", "https"} or not url.hostname or url.path
            ):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example.org")
        return origins

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        try:
            return tuple(
                ipaddress.ip_network(str(item).strip(), strict=False)
                for item in items
                if str(item).strip()
            )
        except ValueError as error:
            raise ValueError(f"{error}: list IP addresses or networks, e.g. 10.0.0.0/8") from None

    @field_validator(
        "jwt_secret", "smtp_password", "bot_webhook_secret", "telegram_bot_token", mode="before"
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    # Checked when settings load, so a bad URL or path stops start-up with one line.

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else checks.database_url(value.strip())

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else checks.redis_url(value.strip())

    @field_validator("telegram_api_base_url", "telegram_file_base_url")
    @classmethod
    def _telegram_url(cls, value: str) -> str:
        return checks.http_url(value.strip(), "https://api.telegram.org/bot (the default)")

    @field_validator("bot_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        example = "https://bot.example.com/telegram (Telegram calls HTTPS URLs only)"
        return None if value is None else checks.http_url(value, example, https_only=True)

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host(cls, value: str | None) -> str | None:
        return None if value is None else checks.host_name(value, "smtp.example.com")

    @field_validator("http_host")
    @classmethod
    def _listen_host(cls, value: str) -> str:
        return checks.host_name(value, "127.0.0.1, or 0.0.0.0 to listen on every interface")

    @field_validator("smtp_port", "http_port")
    @classmethod
    def _port(cls, value: int) -> int:
        return checks.port(value)

    @field_validator("smtp_timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a number of seconds greater than 0")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        return checks.log_level(value)

    @model_validator(mode="after")
    def _check_data_dir(self) -> Settings:
        # Only a directory the embedded defaults write to must be writable.
        writes = self.uses_embedded_database or not self.jwt_secret or not self.smtp_host
        try:
            checks.data_dir(self.data_dir, writable=writes)
        except ValueError as error:
            raise ValueError(f"DATA_DIR: {error}") from None
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is not None:
            if secret.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "JWT_SECRET: a placeholder: set it to a random value, "
                    "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(f"JWT_SECRET: must be at least {MIN_JWT_SECRET_BYTES} bytes long")
        elif not self.uses_embedded_database:
            raise ValueError(
                "JWT_SECRET: required with an external database: set it to a random value "
                f"of at least {MIN_JWT_SECRET_BYTES} bytes"
            )
        if self.bot_webhook_url and not self.bot_webhook_secret:
            raise ValueError(
                "BOT_WEBHOOK_SECRET: required when BOT_WEBHOOK_URL is set "
                "(Telegram sends it back so forged updates can be refused)"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'snippetvault.db').resolve()}"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None or self.database_url.startswith("sqlite")

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def jwt_secret_file(self) -> Path:
        return self.data_dir / "jwt_secret"


class SettingsError(Exception):
    """A missing or bad setting, worded as one line that names it and what to do."""


def load_settings(**overrides: object) -> Settings:
    """Reads the environment (and `.env`); raises `SettingsError` with one readable line that
    names the first bad setting and lists any others."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = [_problem(detail) for detail in error.errors()]
        first, others = problems[0], [name for name, _ in problems[1:] if name]
        line = f"{first[0]}: {first[1]}" if first[0] else first[1]
        if others:
            line += f" (also check {', '.join(dict.fromkeys(others))})"
        raise SettingsError(line) from None


_TYPE_ADVICE = {
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "greater_than": "must be greater than 0",
}


def _problem(detail: Any) -> tuple[str, str]:
    """(the variable's name, what is wrong with it) from one pydantic error."""
    name = "_".join(str(part) for part in detail["loc"]).upper()
    message = _TYPE_ADVICE.get(detail["type"]) or str(detail["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be", 1)
    if detail["type"] in _TYPE_ADVICE:
        message += f" (got {detail.get('input')!r})"
    return name, message
