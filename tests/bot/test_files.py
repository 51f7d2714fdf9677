"""Files that cannot become snippets: too large, too big to download, binary, undecodable,
empty, and media. Each gets a clear reply and nothing is saved."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.settings import Settings, load_settings
from tests.bot.conftest import BotHarness
from tests.fakebotapi import FakeTelegram

LIMIT = 2048


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return load_settings(
        telegram_bot_token=FakeTelegram().token,
        data_dir=tmp_path,
        max_snippet_bytes=LIMIT,
        _env_file=None,
    )


async def send_file(harness: BotHarness, name: str, data: bytes, **options: object) -> str:
    replies = await harness.exchange(
        1,
        harness.tg.document(1, 1, name, data, enqueue=False, **options),  # type: ignore[arg-type]
    )
    assert len(replies) == 1, [reply.text for reply in replies]
    return replies[0].text


async def assert_nothing_saved(harness: BotHarness) -> None:
    assert "You have no snippets yet" in await harness.say(1, "/list")


async def test_a_file_over_the_snippet_limit(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await send_file(harness, "big.py", b"x = 1\n" * 500)

    assert reply == "That file is too large to keep as a snippet (3 KB; the limit is 2 KB)."
    assert harness.tg.calls("getFile") == []
    await assert_nothing_saved(harness)


async def test_a_file_just_over_the_limit_does_not_read_as_equal_to_it(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    reply = await send_file(harness, "big.py", b"#" * (LIMIT + 1))

    assert "the limit is 2 KB" in reply
    assert "(2 KB;" not in reply


async def test_a_file_whose_real_size_exceeds_its_claim_is_refused_after_download(
    harness: BotHarness,
) -> None:
    await harness.user(1)

    reply = await send_file(harness, "big.py", b"x = 1\n" * 500, file_size=100)

    assert reply.startswith("The file is too large")
    await assert_nothing_saved(harness)


async def test_a_file_claiming_25_mb(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await send_file(harness, "huge.py", b"x = 1\n", file_size=25 * 1024 * 1024)

    assert reply.startswith("That file is too big: bots can only download files up to 20 MB")
    assert harness.tg.calls("getFile") == []
    await assert_nothing_saved(harness)


async def test_a_long_text_over_the_limit(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await harness.say(1, "/save Big\n" + "x = 1\n" * 500)

    assert reply == "The snippet is too large (3 KB; the limit is 2 KB)."
    await assert_nothing_saved(harness)


async def test_a_binary_file(harness: BotHarness) -> None:
    await harness.user(1)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"

    reply = await send_file(harness, "logo.png", png, mime_type="image/png")

    assert reply == "That looks like a binary file, not source code."
    await assert_nothing_saved(harness)


async def test_bytes_no_charset_decodes(harness: BotHarness) -> None:
    await harness.user(1)
    noise = bytes(b for b in random.Random(1).randbytes(1500) if b)

    reply = await send_file(harness, "noise.txt", noise)

    assert reply == "The file is not text in any encoding I know; is it a binary file?"
    await assert_nothing_saved(harness)


async def test_an_empty_file(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await send_file(harness, "empty.py", b"")

    assert reply == "The file is empty."
    await assert_nothing_saved(harness)


async def test_a_file_of_blank_lines(harness: BotHarness) -> None:
    await harness.user(1)

    reply = await send_file(harness, "blank.py", b"\n  \n\t\n")

    assert reply == "There is no code to save."
    await assert_nothing_saved(harness)


async def test_a_file_needs_a_session(harness: BotHarness) -> None:
    reply = await send_file(harness, "hello.py", b"print('hi')\n")

    assert "log in first" in reply
    assert harness.tg.calls("getFile") == []


async def test_a_photo_or_a_sticker_is_not_saved(harness: BotHarness) -> None:
    await harness.user(1)

    for update in (
        harness.tg.photo(1, 1, enqueue=False),
        harness.tg.sticker(1, 1, enqueue=False),
    ):
        [reply] = await harness.exchange(1, update)
        assert "Photos, stickers and other media cannot be saved" in reply.text
    await assert_nothing_saved(harness)


async def test_an_edited_message_is_not_followed(harness: BotHarness) -> None:
    await harness.user(1)
    original = harness.tg.private_message(1, 1, "/save T\ndef f():\n    pass", enqueue=False)
    await harness.send(original)

    [reply] = await harness.exchange(
        1,
        harness.tg.edited_message(
            1, original["message"]["message_id"], "/save T\ndef g():\n    pass", enqueue=False
        ),
    )

    assert "I don't follow edits" in reply.text
    assert "def f():" in await harness.say(1, "/get 1")
