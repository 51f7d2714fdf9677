"""`snippetvault check` tells the truth: what stands in for each unset setting, and a failure
(exit 1) when a configured backend does not answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.check import run_check
from core.settings import Settings, load_settings
from tests.fakebotapi import FakeBotApiServer, FakeTelegram

ALL_GOOD = "Everything required is configured and reachable."


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApiServer]:
    tg = FakeTelegram()
    async with FakeBotApiServer(tg) as server:
        yield server


def embedded(server: FakeBotApiServer, data_dir: Path, **overrides: object) -> Settings:
    return load_settings(
        telegram_bot_token=FakeTelegram().token,
        telegram_api_base_url=server.base_url,
        telegram_file_base_url=server.base_file_url,
        data_dir=data_dir,
        _env_file=None,
        **overrides,
    )


async def test_on_the_embedded_defaults_it_names_what_is_in_use_and_where(
    bot_api: FakeBotApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = embedded(bot_api, tmp_path / "var")

    assert await run_check(settings) == 0
    shown = capsys.readouterr().out
    rows = {line.split()[0]: line for line in shown.splitlines() if line.startswith("  ")}
    key = tmp_path / "var" / "jwt_secret"
    assert f"the generated key in {key.resolve()}" in rows["JWT_SECRET"]
    assert "in-process cache" in rows["REDIS_URL"]
    assert f".eml files in {(tmp_path / 'var' / 'mail').resolve()}" in rows["SMTP_HOST"]
    assert "in use" in rows["cache"] and "not configured" not in rows["cache"]
    assert "in use" in rows["email"] and "not configured" not in rows["email"]
    assert ALL_GOOD in shown


@pytest.mark.parametrize("host", ["127.0.0.1:9", "127.0.0.1:1"])
async def test_an_unreachable_redis_fails_the_check(
    bot_api: FakeBotApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    settings = embedded(bot_api, tmp_path / "var", redis_url=f"redis://{host}/0")

    assert await run_check(settings) == 1
    shown = capsys.readouterr().out
    assert "UNREACHABLE" in next(line for line in shown.splitlines() if "cache" in line)
    assert ALL_GOOD not in shown
    assert "1 required backend(s) missing or unreachable." in shown
