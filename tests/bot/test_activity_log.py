"""The console shows the bot at work: a line per update and per email, without content,
addresses or tokens; LOG_FORMAT=json gives one JSON object a line."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from bot.logs import configure_logging
from tests.bot.conftest import PASSWORD, BotHarness

UPDATE_LINE = re.compile(r"^update (\S+) chat ([0-9a-f]{8}): (\w+) in \d+ ms$")


def update_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    found = []
    for record in caplog.records:
        match = UPDATE_LINE.match(record.getMessage())
        if record.name == "snippetvault.updates" and match:
            found.append((match[1], match[2], match[3]))
    return found


async def test_each_update_is_one_line_with_command_chat_hash_and_outcome(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    address = await harness.user(7)
    await harness.say(7, "/get 99")
    await harness.say(7, "/whoami secret-words")
    await harness.say(7, "just some text with a secret")
    await harness.say(8, "/start")

    lines = update_lines(caplog)
    commands = [command for command, _, _ in lines]
    assert commands == ["/signup", "/verify", "/login", "/get", "/unknown", "text", "/start"]
    chats = {chat for _, chat, _ in lines}
    assert len(chats) == 2, lines  # one hash per chat, the same for every update of it
    assert "7" not in chats
    outcomes = {command: outcome for command, _, outcome in lines}
    assert outcomes["/login"] == "ok"
    assert outcomes["/get"] == "NotFound"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (address, PASSWORD, "secret-words", "secret", harness.tg.token):
        assert secret not in logged


async def test_each_email_written_is_one_line_with_kind_id_and_file(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mail.worker")
    address = await harness.user(3)

    lines = [r.getMessage() for r in caplog.records if r.name == "mail.worker"]
    kinds = [line.split()[1] for line in lines]
    assert kinds == ["verify_email", "login_alert"], lines
    [first] = harness.inbox.to(address, "Verify your email")
    assert f"email verify_email {first['Message-ID']} (outbox " in lines[0]
    written = lines[0].split(" written to ", 1)[1]
    assert written.endswith(".eml")
    assert Path(written).parent == harness.inbox.directory
    assert all(address not in line for line in lines)


def test_json_lines_carry_the_message_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    token = "123456789:" + "B" * 35
    try:
        configure_logging("INFO", (token,), json_lines=True)
        logging.getLogger("snippetvault.test").info("calling %s/getMe", token)
        logging.getLogger("snippetvault.test").debug("not at INFO")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "snippetvault.test"
    assert entry["message"] == "calling [redacted]/getMe"
    assert token not in line
