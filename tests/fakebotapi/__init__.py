"""A fake Telegram Bot API for driving the real ``telegram.ext.Application`` in tests.

``FakeTelegram`` holds the state and answers Bot API methods; ``FakeRequest`` routes a PTB bot's
requests to it in-process; ``FakeBotApiServer`` serves it over HTTP for a bot in a subprocess.
"""

from tests.fakebotapi.harness import application_builder, polling
from tests.fakebotapi.records import (
    ApiCall,
    BotApiError,
    BotMessage,
    SentDocument,
    StoredFile,
    UploadedFile,
)
from tests.fakebotapi.request import FakeRequest
from tests.fakebotapi.server import FakeBotApiServer
from tests.fakebotapi.state import FakeTelegram

__all__ = [
    "ApiCall",
    "BotApiError",
    "BotMessage",
    "FakeBotApiServer",
    "FakeRequest",
    "FakeTelegram",
    "SentDocument",
    "StoredFile",
    "UploadedFile",
    "application_builder",
    "polling",
]
