"""Accounts and sessions: `/auth/*` and `/me`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from api import telegram_init_data
from api.dependencies import CallerDep, ClientDep, ServicesDep, SettingsDep, TokenDep
from api.errors import documented
from api.schemas import (
    MAX_EMAIL_CHARS,
    MAX_PASSWORD_CHARS,
    Credentials,
    Notice,
    ResetConfirmation,
    ResetRequest,
    TelegramSignIn,
    Text,
    TokenOut,
    UserOut,
    VerifyRequest,
)
from core.accounts import LoginResult
from core.errors import AuthenticationError

router = APIRouter(tags=["accounts"])

SIGNED_UP = (
    "If this address can sign up, a verification email is on its way: "
    "POST its code to /auth/verify."
)
RESET_REQUESTED = (
    "If this address has a verified account, a reset code is on its way: "
    "POST it with a new password to /auth/reset/confirm."
)


class PasswordForm(BaseModel):
    """The OAuth2 password grant's form (`username` is the email), as the docs' Authorize
    button sends it."""

    model_config = ConfigDict(extra="ignore")
    username: Text = Field(max_length=MAX_EMAIL_CHARS)
    password: Text = Field(max_length=MAX_PASSWORD_CHARS)
    grant_type: str | None = Field(default=None, pattern="^password$")


_FORM = "application/x-www-form-urlencoded"
LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": Credentials.model_json_schema(),
                "example": {"email": "ada@example.com", "password": "correct horse battery"},
            },
            _FORM: {"schema": PasswordForm.model_json_schema()},
        },
    }
}


@router.post(
    "/auth/signup",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Create an account",
    description="Queues a verification email (a code, a t.me link and, with `PUBLIC_URL`, a "
    "web link). The answer is the same whether or not the address already has an account.",
    responses=documented(400, 413, 422, 429, 503),
)
async def signup(body: Credentials, services: ServicesDep, client: ClientDep) -> Notice:
    await services.accounts.signup(body.email, body.password, client)
    return Notice(message=SIGNED_UP)


@router.post(
    "/auth/verify",
    summary="Verify the email address",
    description="With the code from the verification email. 400 for a wrong, used or expired code.",
    responses=documented(400, 413, 422, 429, 503),
)
async def verify(body: VerifyRequest, services: ServicesDep, client: ClientDep) -> UserOut:
    return UserOut.of(await services.accounts.verify(body.code, client))


@router.post(
    "/auth/login",
    summary="Log in: get a bearer token",
    description="JSON `{email, password}`, or the OAuth2 password form (`username` = the "
    "email) that the docs' Authorize button sends. Queues a `Login Alert` email. 401 for any "
    "bad credentials; 403 until the address is verified.",
    openapi_extra=LOGIN_BODY,
    responses=documented(400, 401, 403, 413, 415, 422, 429, 503),
)
async def login(request: Request, services: ServicesDep, client: ClientDep) -> TokenOut:
    email, password = await _credentials(request)
    result = await services.accounts.login(email, password, client)
    return _token(result, services.clock)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this token's session",
    description="The token is refused at once, by every process.",
    responses=documented(401, 503),
)
async def logout(token: TokenDep, services: ServicesDep, client: ClientDep) -> Response:
    await services.accounts.logout(client, token=token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/reset",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for a password reset code",
    description="Emails a code to a verified address; the answer is the same for any address.",
    responses=documented(400, 413, 422, 429, 503),
)
async def request_reset(body: ResetRequest, services: ServicesDep, client: ClientDep) -> Notice:
    await services.accounts.request_reset(body.email, client)
    return Notice(message=RESET_REQUESTED)


@router.post(
    "/auth/reset/confirm",
    summary="Set a new password with the reset code",
    description="Ends every session of the account, in chat and over HTTP.",
    responses=documented(400, 413, 422, 429, 503),
)
async def confirm_reset(
    body: ResetConfirmation, services: ServicesDep, client: ClientDep
) -> Notice:
    await services.accounts.confirm_reset(body.email, body.code, body.new_password, client)
    return Notice(message="Your password is changed. Log in with the new one.")


@router.post(
    "/auth/telegram",
    summary="Sign in from the Telegram Mini App",
    description="Trades the Mini App's signed `initData` for a token of the account logged in "
    "to that Telegram user's private chat with the bot (the session ends with the chat's). "
    "401 for a bad or stale signature; 403 when that chat has no session.",
    responses=documented(400, 401, 403, 413, 422, 503),
)
async def telegram(body: TelegramSignIn, services: ServicesDep, settings: SettingsDep) -> TokenOut:
    if settings.telegram_bot_token is None:
        raise AuthenticationError("Telegram sign-in is not set up on this server.")
    try:
        user = telegram_init_data.validate(
            body.init_data,
            settings.telegram_bot_token.get_secret_value(),
            max_age_seconds=settings.telegram_init_data_max_age_seconds,
            now=services.clock().timestamp(),
        )
    except telegram_init_data.InvalidInitData as error:
        raise AuthenticationError(f"Telegram's signature does not hold: {error}.") from None
    # A private chat's id is its Telegram user's id.
    return _token(await services.accounts.open_linked_session(user.id), services.clock)


@router.get(
    "/me",
    summary="Who the token belongs to",
    responses=documented(401, 503),
)
async def me(caller: CallerDep) -> UserOut:
    return UserOut.of(caller.user)


def _token(result: LoginResult, clock: Any) -> TokenOut:
    seconds = (result.expires_at - clock()).total_seconds()
    return TokenOut(access_token=result.token, expires_in=max(0, int(seconds)))


async def _credentials(request: Request) -> tuple[str, str]:
    """The login's email and password, from JSON or from the OAuth2 password form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == _FORM:
            form = await request.form(max_files=0, max_fields=20, max_part_size=8192)
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
            parsed = PasswordForm.model_validate(fields)
            return parsed.username, parsed.password
        if kind == "application/json" or kind.endswith("+json"):
            try:
                data = await request.json()
            except ValueError:
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}]
                ) from None
            credentials = Credentials.model_validate(data)
            return credentials.email, credentials.password
    except PydanticValidationError as error:
        raise RequestValidationError(
            [
                {**item, "loc": ("body", *item["loc"])}
                for item in error.errors(include_url=False, include_input=False)
            ]
        ) from None
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        f"Send JSON (application/json) or the OAuth2 password form ({_FORM}).",
    )
