"""Running a real PTB ``Application`` against the fake, for tests that drive a whole bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from telegram.ext import Application, ApplicationBuilder

from tests.fakebotapi.request import FakeRequest
from tests.fakebotapi.state import FakeTelegram

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def application_builder(telegram: FakeTelegram) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """``Application.builder()`` with the fake's token and in-process requests; add handlers,
    persistence, context types… and ``build()`` as usual."""
    return (
        Application.builder()
        .token(telegram.token)
        .request(FakeRequest(telegram))
        .get_updates_request(FakeRequest(telegram))
    )


@asynccontextmanager
async def polling(
    application: AnyApplication, *, poll_timeout: int = 10
) -> AsyncIterator[AnyApplication]:
    """Initializes, starts and polls, then stops and shuts everything down, as ``run_polling``
    does, but inside the test's event loop and without touching signal handlers."""
    updater = application.updater
    if updater is None:
        raise ValueError("the application was built without an updater")
    async with application:  # initialize() … shutdown()
        await application.start()
        try:
            await updater.start_polling(poll_interval=0, timeout=poll_timeout)
            try:
                yield application
            finally:
                await updater.stop()
        finally:
            await application.stop()
