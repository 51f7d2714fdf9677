"""A setting a person got wrong stops `snippetvault run` with one line that names it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.e2e.bot_process import free_port
from tests.fakebotapi import FakeBotApiServer, FakeTelegram

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GOOD_TOKEN = FakeTelegram().token


async def run_bot(tmp_path: Path, **settings: str) -> tuple[int, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_", "BOT_", "JWT_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATA_DIR=str(tmp_path / "var"),
        **{"HTTP_PORT": str(free_port()), **settings},
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


def closing_line(output: str) -> str:
    return output.strip().splitlines()[-1]


async def test_no_token(tmp_path: Path) -> None:
    code, output = await run_bot(tmp_path)
    assert code == 1
    assert closing_line(output).startswith("snippetvault: configuration error: TELEGRAM_BOT_TOKEN")
    assert "Traceback" not in output


async def test_a_token_telegram_refuses(tmp_path: Path) -> None:
    tg = FakeTelegram()
    async with FakeBotApiServer(tg) as server:
        settings = {**server.env(), "TELEGRAM_BOT_TOKEN": "42:" + "x" * 32}
        code, output = await run_bot(tmp_path, **settings)
    assert code == 1
    assert "TELEGRAM_BOT_TOKEN: Telegram refused this token" in closing_line(output)
    assert "Traceback" not in output
    assert "x" * 32 not in output


async def test_an_unreachable_bot_api(tmp_path: Path) -> None:
    code, output = await run_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN=GOOD_TOKEN,
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",
    )
    assert code == 1
    assert "cannot reach the Telegram Bot API at http://127.0.0.1:9/bot" in closing_line(output)
    assert "Traceback" not in output
    assert GOOD_TOKEN.split(":")[1] not in output


async def test_an_unreachable_database(tmp_path: Path) -> None:
    code, output = await run_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN=GOOD_TOKEN,
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:9/snippetvault",
        JWT_SECRET="j" * 40,
    )
    assert code == 1
    assert closing_line(output).startswith("snippetvault: the database is unreachable")
    assert "check DATABASE_URL" in closing_line(output)
    assert "Traceback" not in output


async def test_a_taken_http_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await run_bot(tmp_path, TELEGRAM_BOT_TOKEN=GOOD_TOKEN, HTTP_PORT=str(port))
    assert code == 1
    assert closing_line(output) == (
        f"snippetvault: configuration error: HTTP_PORT: 127.0.0.1:{port} is already in use "
        "(another snippetvault, or another server); set HTTP_HOST/HTTP_PORT to a free address"
    )
    assert "Traceback" not in output
