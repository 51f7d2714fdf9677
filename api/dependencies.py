"""What routes are handed: the process's services, the calling client, the bearer's user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.client_address import client_address
from bootstrap import Services
from core.entities import Client, User
from core.errors import NotLoggedIn, StorageUnavailable
from core.settings import Settings

MAX_TOKEN_CHARS = 4096

# The docs' Authorize button logs in through the OAuth2 password form of POST /auth/login.
bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="/auth/login",
    scheme_name="bearer",
    description="A token from `POST /auth/login` (or `POST /auth/telegram`).",
    auto_error=False,
)


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise StorageUnavailable("The service is starting; try again in a moment.")
    return services


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_client(request: Request) -> Client:
    """The API as the caller, known by its network address (for throttling guesses)."""
    return Client.api(client_address(request.scope, get_settings(request).trusted_proxies))


def bearer_token(token: Annotated[str | None, Depends(bearer_scheme)]) -> str:
    if not token:
        raise NotLoggedIn("Send `Authorization: Bearer <token>`; POST /auth/login gives one.")
    if len(token) > MAX_TOKEN_CHARS:
        raise NotLoggedIn("Your session is not valid.")
    return token


async def current_user(
    token: Annotated[str, Depends(bearer_token)],
    client: Annotated[Client, Depends(get_client)],
    services: Annotated[Services, Depends(get_services)],
) -> User:
    return await services.accounts.authenticate(token, client)


ServicesDep = Annotated[Services, Depends(get_services)]
ClientDep = Annotated[Client, Depends(get_client)]
UserDep = Annotated[User, Depends(current_user)]
TokenDep = Annotated[str, Depends(bearer_token)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
