"""What routes are handed: the process's services, the calling client, the bearer's user.

Every dependency here is a coroutine: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request. A route acting for a user takes one
dependency, the `Caller` (the bearer's user and the services), resolved in one step rather
than a chain of sub-dependencies to solve on every request; being the OAuth2 scheme itself,
it keeps the docs' Authorize button and each route's `security` in the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

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


def services_of(connection: HTTPConnection) -> Services:
    services: Services | None = getattr(connection.app.state, "services", None)
    if services is None:
        raise StorageUnavailable("The service is starting; try again in a moment.")
    return services


def settings_of(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def client_of(connection: HTTPConnection) -> Client:
    """The API as the caller, known by its network address (for throttling guesses)."""
    return Client.api(client_address(connection.scope, settings_of(connection).trusted_proxies))


def token_of(connection: HTTPConnection) -> str:
    """The bearer token of `Authorization: Bearer <token>` (the scheme in any case)."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotLoggedIn("Send `Authorization: Bearer <token>`; POST /auth/login gives one.")
    if len(token) > MAX_TOKEN_CHARS:
        raise NotLoggedIn("Your session is not valid.")
    return token


async def get_services(request: Request) -> Services:
    return services_of(request)


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_client(request: Request) -> Client:
    return client_of(request)


class _Bearer(SecurityBase):
    """A dependency that is the bearer scheme (for the OpenAPI schema) and answers with what
    the route needs of the token."""

    def __init__(self, scheme: OAuth2PasswordBearer) -> None:
        self.model = scheme.model
        self.scheme_name = scheme.scheme_name


class BearerToken(_Bearer):
    async def __call__(self, request: Request) -> str:
        return token_of(request)


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a bearer token acts for, and the services to act with."""

    user: User
    services: Services


class BearerCaller(_Bearer):
    async def __call__(self, request: Request) -> Caller:
        """The token is checked before the services are asked for: a request without one is
        a 401 whether or not the service has started."""
        token = token_of(request)
        services = services_of(request)
        user = await services.accounts.authenticate(token, client_of(request))
        return Caller(user, services)


ServicesDep = Annotated[Services, Depends(get_services)]
ClientDep = Annotated[Client, Depends(get_client)]
CallerDep = Annotated[Caller, Depends(BearerCaller(bearer_scheme))]
TokenDep = Annotated[str, Depends(BearerToken(bearer_scheme))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
