"""A pytest plugin that fails any test whose log records reveal a secret.

Enabled for the whole suite (`-p tests.secrets_guard` in pyproject's addopts). Every record any
logger emits while a test runs (its fixtures included) is captured at DEBUG, with exception and
stack text, and the test fails when a line holds the fake Bot API's token, anything shaped like
a Telegram bot token or a JWT, or a secret the test registered:

    async def test_login(harness, secrets_guard):
        secrets_guard.remember("s3cret-pass")

The failure names the logger and the kind of secret, never the secret itself (the report would
leak it again). A test that logs a secret on purpose (to test a redacting filter, say) opts out
with `@pytest.mark.secrets_guard_off("why")`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

BOT_TOKEN = re.compile(r"\d{5,12}:[A-Za-z0-9_-]{30,}")
"""Telegram bot tokens: the bot's numeric id, a colon, 35 URL-safe characters."""
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
"""Header and payload are base64url JSON (`{"` → `eyJ`); an `alg: none` token has no signature."""
MIN_REMEMBERED_CHARS = 4
"""Shorter strings turn up in innocent text; no real password or code is this short."""


def fake_bot_token() -> str:
    # Imported late: the plugin loads before conftest.py sets up the environment for telegram.
    from tests.fakebotapi.state import DEFAULT_TOKEN

    return DEFAULT_TOKEN


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for the record: the message, exception and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string still must not hide its arguments
        message = f"{record.msg!r} % {record.args!r}"
    parts = [f"{record.name}: {message}"]
    # As `logging.Formatter` does: the exception's text once formatted (and maybe scrubbed by
    # a filter), else formatted now.
    if record.exc_text:
        parts.append(record.exc_text)
    elif record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record_text(record))


@dataclass
class SecretsGuard:
    """What the test registered, and the log lines captured while it ran."""

    _recorder: _Recorder
    _secrets: set[str] = field(default_factory=set)

    def remember(self, secret: str) -> str:
        """Registers a password, code or token no log line may contain; returns it."""
        if len(secret) >= MIN_REMEMBERED_CHARS:
            self._secrets.add(secret)
        return secret

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    @property
    def lines(self) -> list[str]:
        return list(self._recorder.texts)

    def leaks(self) -> list[str]:
        """One description per offending record: which logger, what kind of secret."""
        found = []
        token = fake_bot_token()
        for text in self._recorder.texts:
            kinds = []
            if token in text:
                kinds.append("the fake bot token")
            elif BOT_TOKEN.search(text):
                kinds.append("a bot token")
            if JWT.search(text):
                kinds.append("a JWT")
            kinds += [
                f"a remembered secret ({_masked(secret)})"
                for secret in sorted(self._secrets)
                if secret in text
            ]
            if kinds:
                logger = text.partition(":")[0]
                found.append(f"{logger}: {', '.join(kinds)} in {_masked_line(text, self)}")
        return found

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[secret]")
        text = text.replace(fake_bot_token(), "[bot-token]")
        return JWT.sub("[jwt]", BOT_TOKEN.sub("[bot-token]", text))


def _masked(secret: str) -> str:
    return f"{secret[:1]}…{len(secret)} chars"


def _masked_line(text: str, guard: SecretsGuard) -> str:
    line = guard.scrub(text).splitlines()[0]
    return repr(line[:160])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "secrets_guard_off(reason): the test logs secrets on purpose; the secrets guard "
        "does not check it",
    )


@pytest.fixture(autouse=True)
def secrets_guard(request: pytest.FixtureRequest) -> Iterator[SecretsGuard]:
    """Captures every log record of the test; fails it if one reveals a secret."""
    recorder = _Recorder()
    root = logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    guard = SecretsGuard(recorder)
    try:
        yield guard
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)
    if request.node.get_closest_marker("secrets_guard_off") is not None:
        return
    leaks = guard.leaks()
    if leaks:
        shown = "\n  ".join(leaks[:20])
        more = f"\n  … and {len(leaks) - 20} more" if len(leaks) > 20 else ""
        pytest.fail(
            f"{len(leaks)} log record(s) reveal a secret (shown scrubbed):\n  {shown}{more}",
            pytrace=False,
        )
