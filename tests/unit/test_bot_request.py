"""The bot's Bot API transport (`bot.request.AiohttpRequest`) against a real local HTTP server,
driven through python-telegram-bot's own `Bot`: what Telegram receives and what the bot sees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.logs import redact_library_logs
from bot.request import AiohttpRequest, _proxy_for

TOKEN = "123456789:test-token-of-no-bot"
"""Not shaped like a real token (BotFather's secrets are 35 characters), so no secret scanner
takes it for one; the tests look for this exact string in errors and logs."""
CHAT = {"id": 42, "type": "private", "first_name": "Ada"}


def _message(text: str = "", **extra: Any) -> dict[str, Any]:
    return {"message_id": 7, "date": 0, "chat": CHAT, "text": text, **extra}


@dataclass
class BotApiServer:
    """A local Bot API: records every request and answers like Telegram."""

    base_url: str = ""
    file_base_url: str = ""
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    stall: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        fields: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                content = await part.read()  # type: ignore[union-attr]
                if part.filename:  # type: ignore[union-attr]
                    fields[part.name or ""] = (part.filename, bytes(content))  # type: ignore[union-attr]
                else:
                    fields[part.name or ""] = content.decode()
        else:
            fields = dict(await request.post())
        self.calls.append((method, fields, dict(request.headers)))
        if method == "stall":
            await self.stall.wait()
        if method == "getMe":
            user = {"id": 123456789, "is_bot": True, "first_name": "B", "username": "b_bot"}
            return web.json_response({"ok": True, "result": user})
        if method == "getFile":
            file = {"file_id": "f1", "file_unique_id": "u1", "file_path": "docs/a.py"}
            return web.json_response({"ok": True, "result": file})
        if method == "sendMessage":
            return web.json_response({"ok": True, "result": _message(str(fields["text"]))})
        if method == "sendDocument":
            document = {"file_id": "f1", "file_unique_id": "u1", "file_name": "a.py"}
            return web.json_response({"ok": True, "result": _message(document=document)})
        if method == "fail":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status=400,
            )
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"})

    async def download(self, request: web.Request) -> web.Response:
        return web.Response(body=b"print('hi')\n")


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    api = BotApiServer()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api.handle)
    app.router.add_get("/file/bot{token}/{path:.*}", api.download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    api.base_url = f"http://127.0.0.1:{port}/bot"
    api.file_base_url = f"http://127.0.0.1:{port}/file/bot"
    yield api
    api.stall.set()
    await runner.cleanup()


@pytest.fixture
async def bot(server: BotApiServer) -> AsyncIterator[Bot]:
    redact_library_logs((TOKEN,))  # as the bot does: PTB logs its URLs at DEBUG
    async with Bot(
        TOKEN,
        base_url=server.base_url,
        base_file_url=server.file_base_url,
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    ) as started:
        yield started


async def test_a_reply_reaches_the_bot_api_with_its_fields(bot: Bot, server: BotApiServer) -> None:
    sent = await bot.send_message(42, "<b>hi</b> & bye", parse_mode="HTML")

    assert sent.text == "<b>hi</b> & bye"
    method, fields, headers = server.calls[-1]
    assert method == "sendMessage"
    assert fields == {"chat_id": "42", "text": "<b>hi</b> & bye", "parse_mode": "HTML"}
    assert headers["User-Agent"].startswith("python-telegram-bot")


async def test_a_file_is_uploaded_as_multipart_with_its_name(
    bot: Bot, server: BotApiServer
) -> None:
    code = "def f():\n    return 'ü'\n".encode()
    await bot.send_document(42, document=code, filename="snippet.py", caption="Snippet")

    method, fields, _ = server.calls[-1]
    assert method == "sendDocument"
    assert fields["chat_id"] == "42"
    assert fields["caption"] == "Snippet"
    assert fields["document"] == ("snippet.py", code)


async def test_a_file_is_downloaded(bot: Bot) -> None:
    file = await bot.get_file("f1")

    assert bytes(await file.download_as_bytearray()) == b"print('hi')\n"


async def test_a_refusal_is_the_bot_apis_error(bot: Bot) -> None:
    with pytest.raises(Exception, match="Chat not found"):
        await bot.do_api_request("fail")


async def test_a_bot_api_that_never_answers_times_out(bot: Bot) -> None:
    with pytest.raises(TimedOut):
        await asyncio.wait_for(bot.do_api_request("stall", read_timeout=0.2), 30)


async def test_an_unreachable_bot_api_is_a_network_error_without_the_token() -> None:
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            # Port 9 (discard) is closed on this host: the connection is refused.
            await request.do_request(f"http://127.0.0.1:9/bot{TOKEN}/getMe", "POST")
    finally:
        await request.shutdown()
    assert TOKEN not in str(raised.value)
    assert not isinstance(raised.value, TimedOut)


async def test_it_refuses_requests_before_it_is_initialized_and_after_shutdown() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/x", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/x", "POST")


async def test_initialize_after_shutdown_opens_it_again(server: BotApiServer) -> None:
    request = AiohttpRequest()
    await request.initialize()
    await request.shutdown()
    await request.initialize()
    try:
        status, body = await request.do_request(f"{server.base_url}{TOKEN}/getMe", "POST")
    finally:
        await request.shutdown()
    assert status == 200
    assert json.loads(body)["result"]["username"] == "b_bot"


async def test_requests_go_through_the_proxy_named_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request_lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_lines.append(head.split(b"\r\n", 1)[0])
        body = b'{"ok": true, "result": true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "bypassed.example")
    _proxy_for.cache_clear()
    request = AiohttpRequest()
    await request.initialize()
    try:
        status, _ = await request.do_request("http://api.example/botT/close", "POST")
        with pytest.raises(NetworkError):  # not proxied: the name does not resolve
            await request.do_request("http://bypassed.example/botT/close", "POST")
    finally:
        await request.shutdown()
        server.close()
        _proxy_for.cache_clear()
    assert status == 200
    assert request_lines == [b"POST http://api.example/botT/close HTTP/1.1"]
