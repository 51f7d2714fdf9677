"""FakeBotApiServer over real sockets: keep-alive, long polls, disconnects, a subprocess bot."""

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.fakebotapi import FakeBotApiServer, FakeTelegram

ALICE = 1001
WAIT = 30.0
"""Seconds to wait for something that happens at once: a guard against hanging, which only a
failure waits out."""
LONG_POLL = 60
"""A long poll's timeout: longer than WAIT, so that only an early answer arrives within it."""


async def raw_exchange(server: FakeBotApiServer, request: bytes) -> bytes:
    """Sends raw bytes, returns everything the server sends until it closes the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_long_poll_does_not_block_other_requests(
    server: FakeBotApiServer, tg: FakeTelegram
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url + tg.token) as client:
        poll = asyncio.create_task(client.post("/getUpdates", data={"timeout": str(LONG_POLL)}))
        await asyncio.sleep(0.05)
        me = await asyncio.wait_for(client.post("/getMe"), WAIT)
        assert me.json()["result"]["username"] == "SnippetVaultTestBot"
        assert not poll.done()

        update = tg.private_message(ALICE, ALICE, "/start")
        response = await asyncio.wait_for(poll, WAIT)
        assert response.json() == {"ok": True, "result": [update]}


async def test_keep_alive_serves_several_requests_on_one_connection(
    server: FakeBotApiServer, tg: FakeTelegram
) -> None:
    path = f"/bot{tg.token}/getMe"
    keep_alive = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    closing = f"GET {path}?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    answer = await raw_exchange(server, keep_alive + closing)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert b"Connection: keep-alive" in answer
    assert b"Connection: close" in answer


async def test_chunked_bodies_and_bad_requests(server: FakeBotApiServer, tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    body = b"chat_id=1001&text=chunked+hello"
    chunked = (
        f"POST /bot{tg.token}/sendMessage HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert b"HTTP/1.1 200 OK" in await raw_exchange(server, chunked)
    assert tg.last_text(ALICE) == "chunked hello"

    answer = await raw_exchange(server, b"NONSENSE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")


async def test_not_found(server: FakeBotApiServer, tg: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        unknown_path = await client.get("/favicon.ico")
        unknown_method = await client.post(f"/bot{tg.token}/sendTelepathy")
        missing_file = await client.get(f"/file/bot{tg.token}/documents/none.py")
    assert unknown_path.status_code == 404
    assert unknown_method.json() == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found: method not found",
    }
    assert missing_file.status_code == 404


async def test_a_long_poll_whose_client_left_is_cancelled(
    server: FakeBotApiServer, tg: FakeTelegram
) -> None:
    _reader, writer = await asyncio.open_connection(server.host, server.port)
    request = f"POST /bot{tg.token}/getUpdates?timeout={LONG_POLL} HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    await tg.wait_for(lambda: tg.calls("getUpdates"), WAIT)
    writer.close()
    await writer.wait_closed()

    await asyncio.sleep(0.2)
    update = tg.private_message(ALICE, ALICE, "/start")
    [abandoned] = tg.calls("getUpdates")
    assert abandoned.response is None  # cancelled, neither answered nor terminated by a 409
    assert tg.pending_updates == [update]


async def test_offline_telegram_drops_connections(
    server: FakeBotApiServer, tg: FakeTelegram
) -> None:
    tg.offline = True
    async with httpx.AsyncClient(base_url=server.base_url + tg.token) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/getMe")
        tg.offline = False
        assert (await client.post("/getMe")).status_code == 200


async def test_closing_the_server_ends_pending_long_polls(tg: FakeTelegram) -> None:
    server = FakeBotApiServer(tg)
    await server.start()
    async with httpx.AsyncClient(base_url=server.base_url + tg.token) as client:
        poll = asyncio.create_task(client.post("/getUpdates", data={"timeout": str(LONG_POLL)}))
        await tg.wait_for(lambda: tg.calls("getUpdates"), WAIT)
        await asyncio.wait_for(server.close(), WAIT)
        with pytest.raises(httpx.HTTPError):
            await poll


BOT_SCRIPT = """
    import os

    from telegram.ext import Application, CommandHandler, MessageHandler, filters


    async def start(update, context):
        await update.effective_message.reply_text("hello from a subprocess")


    async def document(update, context):
        file = await update.effective_message.document.get_file()
        data = await file.download_as_bytearray()
        await update.effective_message.reply_text(f"{len(data)} bytes")


    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .base_file_url(os.environ["TELEGRAM_FILE_BASE_URL"])
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.Document.ALL, document))
    application.run_polling()
"""


@pytest.mark.slow
async def test_a_bot_in_a_subprocess(
    server: FakeBotApiServer, tg: FakeTelegram, tmp_path: Path
) -> None:
    script = tmp_path / "bot.py"
    script.write_text(textwrap.dedent(BOT_SCRIPT))
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env={**os.environ, **server.env()},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        tg.private_message(ALICE, ALICE, "/start")
        await tg.wait_for_message(ALICE, "hello from a subprocess", timeout=20)
        tg.document(ALICE, ALICE, "big.py", b"x" * 300_000)
        await tg.wait_for_message(ALICE, "300000 bytes")
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGINT)  # run_polling stops gracefully
        _, stderr = await asyncio.wait_for(bot.communicate(), 20)
    assert bot.returncode == 0, stderr.decode()
    assert b"Error" not in stderr, stderr.decode()
    assert tg.pending_updates == []
