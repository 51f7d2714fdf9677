"""The one settings object: environment variables or a `.env` file, checked at start-up."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "changethis", "replace-me"})
MIN_JWT_SECRET_BYTES = 32


class SmtpSecurity(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


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
    bot_webhook_listen: str = "0.0.0.0"  # noqa: S104 - a webhook must be reachable from outside
    bot_webhook_port: int = 8443

    @field_validator(
        "database_url", "redis_url", "smtp_host", "smtp_username", "bot_webhook_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "jwt_secret", "smtp_password", "bot_webhook_secret", "telegram_bot_token", mode="before"
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is not None:
            if secret.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "JWT_SECRET is a placeholder: set it to a random value, "
                    "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long")
        elif not self.uses_embedded_database:
            raise ValueError(
                "JWT_SECRET is required with an external database: set it to a random value "
                f"of at least {MIN_JWT_SECRET_BYTES} bytes"
            )
        if self.bot_webhook_url and not self.bot_webhook_secret:
            raise ValueError(
                "BOT_WEBHOOK_SECRET is required when BOT_WEBHOOK_URL is set "
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
    """Reads the environment (and `.env`); raises `SettingsError` with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        if name:
            raise SettingsError(f"{name}: {message}") from None
        raise SettingsError(message) from None
