"""/export and importing a zip sent to the bot (our export, or a GitHub Gist archive), and a
hostile table of crafted archives: each is refused with a clear reply and nothing imported."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import threading
import zipfile
from collections.abc import Callable

import pytest

import core.archive as archive_module
from core.entities import Client
from tests.bot.conftest import BotHarness

NOTHING = "You have no snippets yet. Save one with /save."


def make_zip(*entries: tuple[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_with_info(info: zipfile.ZipInfo, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


async def send_zip(harness: BotHarness, chat_id: int, data: bytes, name: str = "a.zip") -> str:
    replies = await harness.exchange(
        chat_id,
        harness.tg.document(chat_id, chat_id, name, data, "application/zip", enqueue=False),
    )
    assert len(replies) == 1, [reply.text for reply in replies]
    return replies[0].text


# -- the happy paths ----------------------------------------------------------------------


async def test_export_holds_a_file_per_snippet_and_a_manifest(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(1, "Quick sort #algo", "def qs(xs):\n    return sorted(xs)")
    await harness.say(1, "/edit 1\ndef qs(xs):\n    return sorted(xs, reverse=True)")
    await harness.save(1, "Hello", "console.log('hi');\nconst x = () => 1;")
    await harness.save(1, "Gone", "def gone():\n    pass")
    await harness.say(1, "/delete 3")
    await harness.save(2, "Theirs", "def theirs():\n    pass")

    replies = await harness.exchange(1, harness.tg.private_message(1, 1, "/export", enqueue=False))

    [document] = [reply.document for reply in replies if reply.document is not None]
    assert document.filename == "snippetvault-export.zip"
    archive = zipfile.ZipFile(io.BytesIO(document.data))
    assert sorted(archive.namelist()) == ["Hello.js", "Quick_sort.py", "snippets.json"]
    manifest = json.loads(archive.read("snippets.json"))
    [sort, hello] = manifest["snippets"]
    assert sort["tags"] == ["algo"] and sort["ref"] == 1 and sort["language"] == "Python"
    assert [r["code"] for r in sort["revisions"]] == ["def qs(xs):\n    return sorted(xs)"]
    assert hello["title"] == "Hello" and hello["revisions"] == []
    assert archive.read("Quick_sort.py").decode() == sort["code"]


async def test_an_export_sent_back_imports_once_then_skips(harness: BotHarness) -> None:
    await harness.user(1)
    await harness.user(2)
    await harness.save(2, "Already here", "x = 1")
    await harness.save(1, "Quick sort #algo", "def qs(xs):\n    return xs")
    await harness.say(1, "/edit 1\ndef qs(xs):\n    return sorted(xs)")
    await harness.save(1, "Already here", "x = 1")
    exported = await harness.services.archive.export(
        await harness.services.accounts.current_user(Client.chat(1))
    )
    assert await harness.say(2, "/list")  # the list is cached now

    first = await send_zip(harness, 2, exported, "snippetvault-export.zip")
    again = await send_zip(harness, 2, exported, "snippetvault-export.zip")

    assert first == "📥 Imported 1 snippet; skipped 1 already there. /list shows them."
    assert again == "📥 Imported 0 snippets; skipped 2 already there. /list shows them."
    listing = await harness.say(2, "/list")
    assert "#2 Quick sort · Python · #algo" in listing  # a new ref of its new owner
    assert "return sorted(xs)" in await harness.say(2, "/get 2")
    assert "v1" in await harness.say(2, "/history 2")


async def test_a_gist_archive_makes_one_snippet_per_file(harness: BotHarness) -> None:
    await harness.user(1)
    gist = make_zip(
        ("abc123-main/sort.py", b"def qs(xs):\n    return sorted(xs)\n"),
        ("abc123-main/hello.js", b"console.log('hi');\n"),
        ("abc123-main/", b""),
    )

    reply = await send_zip(harness, 1, gist, "abc123-main.zip")

    assert reply == "📥 Imported 2 snippets; skipped 0 already there. /list shows them."
    listing = await harness.say(1, "/list")
    assert "sort.py · Python" in listing and "hello.js · JavaScript" in listing


async def test_one_bad_file_imports_nothing(harness: BotHarness) -> None:
    await harness.user(1)
    archive = make_zip(
        ("good.py", b"def ok():\n    pass\n"), ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    )

    reply = await send_zip(harness, 1, archive)

    assert reply.startswith("image.png: ") and reply.endswith("Nothing was imported.")
    assert await harness.say(1, "/list") == NOTHING


async def test_an_archive_needs_a_session(harness: BotHarness) -> None:
    reply = await send_zip(harness, 5, make_zip(("a.py", b"x = 1")))
    assert "log in first" in reply


# -- the hostile table ----------------------------------------------------------------------


def _bomb() -> bytes:
    """30 MB of newlines in 30 KB; as the manifest, only the ratio cap stops it early."""
    return make_zip(("snippets.json", b"\n" * (30 * 1024 * 1024)))


def _symlink() -> bytes:
    info = zipfile.ZipInfo("link.py")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_with_info(info, b"/etc/passwd")


def _fifo() -> bytes:
    info = zipfile.ZipInfo("pipe.py")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return zip_with_info(info, b"x = 1")


def _encrypted() -> bytes:
    """The "encrypted" flag set in both headers (zipfile itself cannot write encryption)."""
    data = bytearray(make_zip(("secret.py", b"x = 1")))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        header = data.index(signature)
        data[header + offset] |= 0x1
    return bytes(data)


def _lying_header() -> bytes:
    """The central directory claims 10 bytes for an entry that inflates to 8 MB."""
    data = bytearray(make_zip(("liar.py", b"a" * (8 * 1024 * 1024))))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    local = data.index(b"PK\x03\x04")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    return bytes(data)


def _corrupted() -> bytes:
    data = bytearray(make_zip(("code.py", b"def f():\n    return 1\n" * 50)))
    data[40] ^= 0xFF  # inside the compressed bytes: the CRC no longer matches
    return bytes(data)


def _deep_json() -> bytes:
    return make_zip(("snippets.json", b"[" * 200_000 + b"]" * 200_000))


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "zip bomb (ratio)": (_bomb, "suspiciously large"),
    "too many files": (
        lambda: make_zip(*((f"f{n}.py", b"x = 1") for n in range(501))),
        "too many files",
    ),
    "path traversal": (lambda: make_zip(("../evil.py", b"x = 1")), "unsafe path"),
    "absolute path": (lambda: make_zip(("/etc/evil.py", b"x = 1")), "unsafe path"),
    "windows drive": (lambda: make_zip(("C:/evil.py", b"x = 1")), "unsafe path"),
    "backslash traversal": (lambda: make_zip(("..\\evil.py", b"x = 1")), "unsafe path"),
    "hidden traversal": (lambda: make_zip(("a/./../../evil.py", b"x = 1")), "unsafe path"),
    "symlink": (_symlink, "link or special file"),
    "fifo": (_fifo, "link or special file"),
    "too deep": (lambda: make_zip(("a/b/c/d/e.py", b"x = 1")), "too deep"),
    "archive in archive": (
        lambda: make_zip(("inner.zip", make_zip(("a.py", b"x = 1")))),
        "another archive",
    ),
    "encrypted entry": (_encrypted, "encrypted"),
    "not a zip": (lambda: b"this is not a zip file at all", "not a zip archive"),
    "truncated": (lambda: make_zip(("a.py", b"x = 1\n" * 100))[:60], "not a zip archive"),
    "corrupted data": (_corrupted, "damaged"),
    "header lies about size": (_lying_header, ""),
    "duplicate names": (
        lambda: make_zip(("a.py", b"x = 1"), ("A.py", b"y = 2")),
        "twice",
    ),
    "file over the snippet limit": (
        lambda: make_zip(
            ("big.py", "".join(f"x{n} = {n * 7919}\n" for n in range(60_000)).encode())
        ),
        "more than allowed",
    ),
    "manifest not json": (lambda: make_zip(("snippets.json", b"{nope")), "not valid JSON"),
    "manifest nested deep": (_deep_json, "snippets.json"),
    "manifest of another app": (
        lambda: make_zip(("snippets.json", b'{"snippets": []}')),
        "not a SnippetVault export",
    ),
    "manifest with a bad field": (
        lambda: make_zip(
            ("snippets.json", b'{"format": "snippetvault", "snippets": [{"title": 3}]}')
        ),
        "Snippet 1 in snippets.json",
    ),
    "empty archive": (lambda: make_zip(), "no files"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_archive_is_refused_and_nothing_imported(
    harness: BotHarness, case: str
) -> None:
    build, expected = HOSTILE[case]
    await harness.user(1)

    reply = await send_zip(harness, 1, build())

    assert expected in reply
    assert "Imported" not in reply and "Sorry" not in reply
    assert await harness.say(1, "/list") == NOTHING


async def test_the_total_unpacked_size_is_capped(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.archive.MAX_UNPACKED_BYTES", 50_000)
    await harness.user(1)
    files = [(f"f{n}.py", (f"x{n} = '" + "ab" * 5_000 + "'\n").encode()) for n in range(6)]

    reply = await send_zip(harness, 1, make_zip(*files))

    assert "more than allowed" in reply
    assert await harness.say(1, "/list") == NOTHING


async def test_an_archive_over_the_upload_cap_is_not_downloaded(harness: BotHarness) -> None:
    await harness.user(1)
    replies = await harness.exchange(
        1,
        harness.tg.document(
            1, 1, "huge.zip", b"PK", "application/zip", file_size=11 * 1024 * 1024, enqueue=False
        ),
    )
    assert replies[-1].text == "That archive is too large to import (at most 10 MB)."
    assert harness.tg.calls("getFile") == []


async def test_an_import_does_not_hold_up_other_users(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unpacking runs in a thread: another user's command is answered meanwhile."""
    await harness.user(1)
    await harness.user(2)
    started, release = threading.Event(), threading.Event()
    real = archive_module.read_import

    def held(data: bytes, max_bytes: int) -> list[archive_module.ImportItem]:
        started.set()
        release.wait(60)
        return real(data, max_bytes)

    monkeypatch.setattr(archive_module, "read_import", held)
    update = harness.tg.document(
        1, 1, "a.zip", make_zip(("a.py", b"x = 1")), "application/zip", enqueue=False
    )
    importing = asyncio.create_task(harness.send(update))
    try:
        assert await asyncio.to_thread(started.wait, 60)
        assert await harness.say(2, "/list") == NOTHING
    finally:
        release.set()
        await importing
    assert "a.py" in await harness.say(1, "/list")
