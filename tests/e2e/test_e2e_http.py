"""Issue 10, end to end: the real `snippetvault run` (and `snippetvault api`) processes on
PostgreSQL, Redis and an SMTP server, driven over HTTP, with the chat beside them through the
fake Bot API: the same accounts, snippets, sessions, cache and emails on both edges."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.bot_process import (
    HOST,
    START_SECONDS,
    WAIT_SECONDS,
    BotProcess,
    Received,
    SmtpInbox,
    free_port,
)
from tests.fakebotapi import BotMessage, FakeBotApiServer, FakeTelegram

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "correct-horse-battery-H1"
CHAT = 7101
CODE = "def greet(name):\n    return f'<b>Hello, {name}</b> & café'\n"
CHAT_CODE = "SELECT 1; -- saved in the chat"


class Deployment:
    """Processes sharing one database, Redis and SMTP server; each with its own HTTP port."""

    def __init__(self, base_env: dict[str, str], root: Path) -> None:
        self.base_env = base_env
        self.root = root
        self.processes: list[BotProcess] = []
        self.ports: list[int] = []

    async def start(self, *args: str) -> int:
        """Starts `snippetvault <args>`; returns its index once its /healthz answers 200."""
        index = len(self.processes)
        workdir = self.root / f"process{index}"
        workdir.mkdir()
        port = free_port()
        env = {**self.base_env, "HTTP_PORT": str(port), "DATA_DIR": str(workdir / "data")}
        process = BotProcess(env, workdir, *args)
        self.processes.append(process)
        self.ports.append(port)
        await process.start()
        await process.until(self._healthy(port), f"process {index} to answer /healthz")
        return index

    async def _healthy(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                try:
                    if (await client.get(f"http://{HOST}:{port}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if loop.time() > deadline:
                    raise TimeoutError(f"/healthz on port {port} never answered 200")
                await asyncio.sleep(0.1)

    def url(self, index: int) -> str:
        return f"http://{HOST}:{self.ports[index]}"

    async def stop(self) -> None:
        for process in self.processes:
            if process.process is not None and process.process.returncode is None:
                code, _ = await process.terminate(timeout=20)
                assert code == 0, process.log_tail()

    async def kill(self) -> None:
        for process in self.processes:
            await process.kill()

    def logs(self) -> str:
        return "\n".join(process.log() for process in self.processes)


@pytest.fixture
async def deployment(
    bot_api: FakeBotApiServer,
    smtp_inbox: SmtpInbox,
    empty_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> AsyncIterator[Deployment]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **bot_api.env(),
        "DATABASE_URL": empty_postgres_url,
        "REDIS_URL": redis_url,
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(smtp_inbox.port),
        "SMTP_SECURITY": "none",
        "JWT_SECRET": secrets.token_urlsafe(36),
        "PTB_TIMEDELTA": "1",
    }
    deployed = Deployment(env, tmp_path)
    try:
        yield deployed
    finally:
        await deployed.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mail(
    deployed: Deployment, inbox: SmtpInbox, to: str, subject: str, count: int = 1
) -> Received:
    found = await deployed.processes[0].until(
        inbox.wait_for(to, subject, count), f"{subject!r} to {to}"
    )
    return found[count - 1]


async def say(deployed: Deployment, tg: FakeTelegram, text: str, expect: str) -> BotMessage:
    since = tg.mark()
    tg.private_message(CHAT, CHAT, text)
    return await deployed.processes[0].until(
        tg.wait_for_message(CHAT, expect, since=since, timeout=WAIT_SECONDS), f"reply to {text!r}"
    )


async def sign_up_over_http(
    deployed: Deployment, inbox: SmtpInbox, http: httpx.AsyncClient, address: str
) -> None:
    signed_up = await http.post("/auth/signup", json={"email": address, "password": PASSWORD})
    assert signed_up.status_code == 202, signed_up.text
    verification = await mail(deployed, inbox, address, "Verify your email")
    code = re.search(r"/verify ([A-Za-z0-9]+)", verification.text())
    assert code is not None, verification.text()
    verified = await http.post("/auth/verify", json={"code": code.group(1)})
    assert verified.status_code == 200, verified.text


async def test_the_api_of_the_running_process_end_to_end(
    deployment: Deployment, tg: FakeTelegram, smtp_inbox: SmtpInbox
) -> None:
    await deployment.start("run")
    inbox, address = smtp_inbox, f"http-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=deployment.url(0), timeout=30) as http:
        assert (await http.get("/docs")).status_code == 200
        await sign_up_over_http(deployment, inbox, http, address)

        login = await http.post("/auth/login", json={"email": address, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        alert = await mail(deployment, inbox, address, "Login Alert")
        assert "reset your password" in alert.text()
        auth = bearer(token)

        created = await http.post(
            "/snippets",
            json={"title": "Greeting", "code": CODE, "language": "python"},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        snippet: dict[str, Any] = created.json()
        assert created.headers["location"] == f"/snippets/{snippet['id']}"
        await mail(deployment, inbox, address, "New Snippet Created")
        other = await http.post(
            "/snippets", json={"title": "Scratch", "code": "x = 1"}, headers=auth
        )
        assert other.status_code == 201

        listed = (await http.get("/snippets", headers=auth)).json()
        assert [item["title"] for item in listed["items"]] == ["Scratch", "Greeting"]
        found = (await http.get("/snippets", params={"q": "café"}, headers=auth)).json()
        assert [item["title"] for item in found["items"]] == ["Greeting"]

        fetched = await http.get(f"/snippets/{snippet['id']}", headers=auth)
        assert fetched.status_code == 200
        assert fetched.json()["code"] == CODE
        retrieved = await mail(deployment, inbox, address, "Your Requested Snippet")
        (attachment,) = retrieved.message.iter_attachments()
        assert attachment.get_payload(decode=True) == CODE.encode()

        patched = await http.patch(
            f"/snippets/{snippet['ref']}", json={"title": "Greeting, patched"}, headers=auth
        )
        assert patched.status_code == 200
        assert patched.json()["code"] == CODE
        deleted = await http.delete(f"/snippets/{other.json()['id']}", headers=auth)
        assert deleted.status_code == 204
        await mail(deployment, inbox, address, "Snippet Deleted")

        # The chat: the same account, the same snippets, both ways.
        await say(deployment, tg, f"/login {address} {PASSWORD}", "Logged in")
        shown = await say(deployment, tg, f"/get {snippet['ref']}", "Greeting, patched")
        assert "Hello, {name}" in shown.text
        saved = await say(deployment, tg, f"/save From the chat\n{CHAT_CODE}", "/get")
        ref = re.search(r"/get (\d+)", saved.text)
        assert ref is not None
        over_http = await http.get(f"/snippets/{ref.group(1)}", headers=auth)
        assert over_http.status_code == 200
        assert (over_http.json()["title"], over_http.json()["code"]) == ("From the chat", CHAT_CODE)

        assert (await http.post("/auth/logout", headers=auth)).status_code == 204
        refused = await http.get("/me", headers=auth)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"

    await deployment.stop()
    log = deployment.logs()
    assert "Traceback" not in log, log
    assert tg.token not in log
    assert token not in log
    assert PASSWORD not in log


async def test_two_processes_share_sessions_and_the_cache(
    deployment: Deployment, smtp_inbox: SmtpInbox
) -> None:
    """`snippetvault run` and `snippetvault api` behind the same database and Redis."""
    await deployment.start("run")
    await deployment.start("api", "--no-worker")
    address = f"two-{uuid.uuid4().hex[:8]}@example.com"
    async with (
        httpx.AsyncClient(base_url=deployment.url(0), timeout=30) as first,
        httpx.AsyncClient(base_url=deployment.url(1), timeout=30) as second,
    ):
        await sign_up_over_http(deployment, smtp_inbox, second, address)
        login = await first.post("/auth/login", json={"email": address, "password": PASSWORD})
        auth = bearer(login.json()["access_token"])

        # A token issued by one is honoured by the other.
        assert (await second.get("/me", headers=auth)).json()["email"] == address

        # An edit on one is never served stale by the other, whose cache held the old code.
        created = await first.post(
            "/snippets", json={"title": "T", "code": "old = 1"}, headers=auth
        )
        path = f"/snippets/{created.json()['id']}"
        for _ in range(2):
            assert (await second.get(path, headers=auth)).json()["code"] == "old = 1"
        patched = await first.patch(path, json={"code": "new = 2"}, headers=auth)
        assert patched.status_code == 200
        for client in (second, first, second):
            assert (await client.get(path, headers=auth)).json()["code"] == "new = 2"
            assert (await client.get("/snippets/1", headers=auth)).json()["code"] == "new = 2"

        # A logout on one is refused at once by the other.
        assert (await second.post("/auth/logout", headers=auth)).status_code == 204
        assert (await first.get("/me", headers=auth)).status_code == 401
        assert (await first.get(path, headers=auth)).status_code == 401

    await deployment.stop()
    assert "Traceback" not in deployment.logs()
