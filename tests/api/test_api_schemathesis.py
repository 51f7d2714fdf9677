"""Schemathesis over the app's own OpenAPI schema, in-process against the ASGI app, with a real
token: every operation, valid and invalid data; no answer is a server error, and every answer
(status, content type, headers, body) is one the schema documents.

Schemathesis runs the app in an event loop of its own, so the app opens its services (SQLite,
the in-process cache, .eml mail) in its lifespan there, and seeds a verified account with
tokens to act as. Examples per operation are bounded to keep the run short.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from bootstrap import bootstrap
from core.entities import Client
from core.security import PasswordHasher
from storage.migrate import upgrade
from tests.api.conftest import JWT_SECRET, PASSWORD
from tests.fakebotapi import FakeTelegram

EMAIL = "schemathesis@example.com"
SPARE_TOKENS = 60
"""One per `POST /auth/logout` case (each ends the session it is called with)."""
EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def build_app(data_dir: Path) -> FastAPI:
    from core.settings import load_settings

    settings = load_settings(
        data_dir=data_dir,
        jwt_secret=JWT_SECRET,
        telegram_bot_token=FakeTelegram().token,
        _env_file=None,
    )
    app = create_app(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade(settings.effective_database_url)
        services = await bootstrap(settings, hasher=PasswordHasher(rounds=4))
        seed = Client.api("seed")
        # Schemathesis may start the lifespan again for later operations: the account is
        # made once (a signup an hour per address and client is limited, like anyone's).
        async with services.database.uow_factory()() as uow:
            seeded = await uow.users.get_by_email(EMAIL) is not None
        if not seeded:
            await services.accounts.signup(EMAIL, PASSWORD, seed)
            async with services.database.uow_factory()() as uow:
                user = await uow.users.get_by_email(EMAIL)
                assert user is not None
                await uow.users.set_verified(user.id)
                await uow.commit()
        tokens = [
            (await services.accounts.login(EMAIL, PASSWORD, seed)).token
            for _ in range(SPARE_TOKENS + 1)
        ]
        owner = await services.accounts.authenticate(tokens[0], seed)
        for n in range(3):
            await services.snippets.create(owner, f"Seed {n}", f"print({n})\n")
        app.state.services = services
        app.state.tokens = tokens
        try:
            yield
        finally:
            await services.close()

    app.router.lifespan_context = lifespan
    return app


_DATA_DIR = Path(tempfile.mkdtemp(prefix="snippetvault-schemathesis-"))
APP = build_app(_DATA_DIR)


# The schema as the app serves it at /openapi.json (built without starting the app); calls go
# to the app in-process, which starts its lifespan on the first one.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def started() -> None:
    """Starts the app's lifespan (schemathesis keeps it for the rest of the run)."""
    with asgi.get_client(APP) as client:
        assert client.get("/healthz").status_code == 200


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms(case: Any) -> None:
    case.call_and_validate(headers=auth_for(case), checks=CHECKS)


def auth_for(case: Any) -> dict[str, str]:
    """The seeded account's token; a logout gets a spare one (or none, once they ran out)."""
    tokens: list[str] = APP.state.tokens
    if case.path != "/auth/logout":
        return {"Authorization": f"Bearer {tokens[0]}"}
    return {"Authorization": f"Bearer {tokens.pop()}"} if len(tokens) > 1 else {}


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Stateful runs through the OpenAPI links: create, then get, patch and delete it."""

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"headers": auth_for(case)}

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        case.validate_response(response, checks=CHECKS)


TestWorkflow = Workflow.TestCase
TestWorkflow.settings = settings(
    max_examples=8,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
