"""`<PUBLIC_URL>/s/<token>`: the share link's read-only web page."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from core.settings import Settings, load_settings
from tests.bot.conftest import PASSWORD, BotHarness, Clock, running_bot
from tests.fakebotapi import FakeTelegram
from tests.secrets_guard import SecretsGuard

PUBLIC_URL = "https://vault.example.org"


@pytest.fixture
def bot_settings(tmp_path: Path, _sqlite_template: Path) -> Settings:
    shutil.copyfile(_sqlite_template, tmp_path / "snippetvault.db")
    return load_settings(
        telegram_bot_token=FakeTelegram().token,
        data_dir=tmp_path,
        public_url=PUBLIC_URL,
        _env_file=None,
    )


@pytest.fixture
async def harness(bot_settings: Settings, secrets_guard: SecretsGuard) -> AsyncIterator[BotHarness]:
    secrets_guard.remember(PASSWORD)
    async with running_bot(bot_settings, FakeTelegram(), Clock()) as bot:
        yield bot


@pytest.fixture
async def web(harness: BotHarness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(harness.services.settings, services=harness.services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


async def web_link(harness: BotHarness, command: str) -> str:
    reply = await harness.say(1, command)
    match = re.search(re.escape(PUBLIC_URL) + r"(/s/[A-Za-z0-9_-]{22})", reply)
    assert match, reply
    return match.group(1)


async def test_the_page_shows_title_language_code_and_a_download(
    harness: BotHarness, web: httpx.AsyncClient
) -> None:
    address = await harness.user(1)
    await harness.save(1, "Quick <sort>", "def qs(xs):\n    return sorted(xs)  # <b>")
    path = await web_link(harness, "/share 1")

    page = await web.get(path)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<h1>Quick &lt;sort&gt;</h1>" in page.text
    assert "Python" in page.text and "sorted" in page.text
    assert "&lt;b&gt;" in page.text and "<b>" not in page.text  # the code, escaped
    assert 'download="Quick_sort.py"' in page.text
    assert "<script" not in page.text
    assert address not in page.text and "user1" not in page.text


async def test_a_dead_link_is_one_and_the_same_404(
    harness: BotHarness, web: httpx.AsyncClient
) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    revoked = await web_link(harness, "/share 1")
    await harness.say(1, "/unshare 1")

    pages = [await web.get(path) for path in (revoked, "/s/" + "A" * 22, "/s/short")]

    assert {page.status_code for page in pages} == {404}
    assert len({page.text for page in pages}) == 1
    assert "This link has expired or was revoked." in pages[0].text


async def test_a_single_use_page_asks_first_and_works_once(
    harness: BotHarness, web: httpx.AsyncClient
) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    path = await web_link(harness, "/share 1 once")

    preview = await web.get(path)  # a link preview fetching it uses nothing up
    again = await web.get(path)
    shown = await web.post(path)
    gone = await web.post(path)

    assert preview.status_code == again.status_code == 200
    assert "works for one view" in preview.text and "sorted" not in preview.text
    assert shown.status_code == 200 and "sorted" in shown.text
    assert gone.status_code == 404
    assert (await web.get(path)).status_code == 404


async def test_a_delete_ends_the_page(harness: BotHarness, web: httpx.AsyncClient) -> None:
    await harness.user(1)
    await harness.save(1, "Sort", "def qs(xs):\n    return sorted(xs)")
    path = await web_link(harness, "/share 1")
    assert (await web.get(path)).status_code == 200

    await harness.say(1, "/delete 1")

    assert (await web.get(path)).status_code == 404


async def test_hostile_code_on_the_page_is_shown_plain_within_the_highlighting_deadline(
    harness: BotHarness, web: httpx.AsyncClient
) -> None:
    # The systemd lexer took 38.9 s on these 2,002 characters: a page that highlighted them
    # in a thread held the interpreter lock that long on every view of a reusable link. The
    # highlighter's child process is stopped at its deadline and the page shows the code plain.
    await harness.user(1)
    hostile = "x" + " " * 2000 + "!"
    await harness.say(1, f"/save stall\n```systemd\n{hostile}\n```")
    path = await web_link(harness, "/share 1")

    page = await web.get(path)

    assert page.status_code == 200
    assert "x" + " " * 2000 + "!" in page.text
    assert 'class="highlight"' not in page.text  # plain: the deadline stopped Pygments
