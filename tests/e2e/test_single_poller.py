"""Long polling stays single-process: a second poller for the same bot refuses to start."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.bot_process import free_port
from tests.fakebotapi import FakeBotApiServer, FakeTelegram

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def bot_env(server: FakeBotApiServer, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **server.env(),
        "TELEGRAM_BOT_TOKEN": FakeTelegram().token,
        "DATA_DIR": str(data_dir),
        "PTB_TIMEDELTA": "1",
        "HTTP_PORT": str(free_port()),
    }


async def start_bot(env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


async def test_a_second_polling_process_stops_with_a_clear_message(tmp_path: Path) -> None:
    tg = FakeTelegram()
    async with FakeBotApiServer(tg) as server:
        env = bot_env(server, tmp_path / "var")
        env["PYTHONPATH"] = str(ROOT)
        first = await start_bot(env, tmp_path, tmp_path / "first.log")
        try:
            await tg.wait_for(lambda: bool(tg.calls("getUpdates")), timeout=30)
            # Its own HTTP port: what stops it must be the poller, not the port.
            second_env = {**env, "HTTP_PORT": str(free_port())}
            second = await start_bot(second_env, tmp_path, tmp_path / "second.log")
            code = await asyncio.wait_for(second.wait(), timeout=30)
            message = (tmp_path / "second.log").read_text()
            assert code == 1
            assert "another process is already long-polling for @SnippetVaultTestBot" in message
            assert "Traceback" not in message

            since = tg.mark()
            tg.private_message(77, 77, "/help")
            reply = await tg.wait_for_message(77, "/signup", since=since, timeout=20)
            assert reply.parse_mode == "HTML"
        finally:
            if first.returncode is None:
                first.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(first.wait(), timeout=20)
        assert code == 0, (tmp_path / "first.log").read_text()
