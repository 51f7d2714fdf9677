"""FileTransport on a real file system: one complete, parseable .eml per message."""

from __future__ import annotations

import email
import email.policy
import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from uuid import uuid4

import pytest

from core.entities import EmailKind, OutgoingEmail
from mail.render import EmailRenderer
from mail.transport import FileTransport, TemporaryMailError

NOW = datetime(2026, 11, 29, 13, 45, 7, 123456, tzinfo=UTC)
CODE = "# grüße 🚀\r\nconsole.log('<hi>')\n"


def rendered(message_id: str | None = None) -> EmailMessage:
    email_id = uuid4()
    outgoing = OutgoingEmail(
        id=email_id,
        to="ada@example.com",
        kind=EmailKind.SNIPPET_RETRIEVED,
        context={
            "title": "Hi",
            "language": "javascript",
            "ref": 1,
            "code": CODE,
            "filename": "hi.js",
        },
        message_id=message_id or f"<{email_id}@snippetvault.test>",
        created_at=NOW,
    )
    return EmailRenderer().render(outgoing, "SnippetVault <no-reply@snippetvault.test>")


def transport(directory: Path) -> FileTransport:
    return FileTransport(directory, clock=lambda: NOW)


def entries(directory: Path, pattern: str = "*") -> list[Path]:
    return sorted(directory.glob(pattern))


async def test_writes_a_parseable_eml_named_by_time_and_message_id(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "mail"
    message = rendered("<abc-123@snippetvault.test>")

    await transport(directory).send(message)

    (written,) = entries(directory)
    assert written.name == "20261129T134507123456Z-abc-123@snippetvault.test.eml"
    parsed = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == "<abc-123@snippetvault.test>"
    assert parsed["Subject"] == "Your Requested Snippet"
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_payload(decode=True) == CODE.encode()


async def test_each_message_gets_its_own_file(tmp_path: Path) -> None:
    files = transport(tmp_path)

    for _ in range(3):
        await files.send(rendered())

    assert len(entries(tmp_path, "*.eml")) == 3
    assert entries(tmp_path, ".*") == []


async def test_a_hostile_message_id_cannot_leave_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "mail"

    await transport(directory).send(rendered("<../../etc/passwd>"))

    (written,) = entries(directory)
    assert written.parent == directory
    assert "/" not in written.name.removesuffix(".eml")
    assert entries(tmp_path) == [directory]


async def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)

    with pytest.raises(TemporaryMailError, match="No space left"):
        await transport(tmp_path).send(rendered())

    assert entries(tmp_path, "*") == entries(tmp_path, ".*") == []


async def test_an_unusable_directory_is_a_temporary_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "mail"
    not_a_directory.write_text("in the way")

    with pytest.raises(TemporaryMailError):
        await transport(not_a_directory).send(rendered())
