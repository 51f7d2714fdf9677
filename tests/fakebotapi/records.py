"""What the fake Bot API remembers: the calls the bot made, what it sent, the files it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]


class BotApiError(Exception):
    """A Bot API failure, answered as ``{"ok": false, "error_code": …, "description": …}``."""

    def __init__(
        self, error_code: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def to_json(self) -> JSONDict:
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request, exactly as the bot uploaded it."""

    field: str
    filename: str
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class StoredFile:
    """A file the fake "server" holds, reachable through getFile and the file download URL."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None

    def to_json(self) -> JSONDict:
        """The getFile result."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }


@dataclass
class ApiCall:
    """One request the bot made; ``response`` is filled in once it has been answered."""

    seq: int
    method: str
    params: Mapping[str, Any]
    files: Mapping[str, UploadedFile]
    response: JSONDict | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The error description, or None for a successful (or unanswered) call."""
        if self.response is None or self.response.get("ok"):
            return None
        return str(self.response.get("description"))


@dataclass(frozen=True)
class SentDocument:
    """A document the bot sent, with the bytes it uploaded (or re-sent by file_id)."""

    chat_id: int
    message_id: int
    filename: str | None
    data: bytes
    mime_type: str | None
    caption: str | None
    file_id: str


@dataclass
class BotMessage:
    """A message the bot sent; edits change it in place, deleting it sets ``deleted``.

    ``text`` is what the user sees (markup parsed away; the caption for a document), ``raw_text``
    is exactly what the bot sent, with ``parse_mode`` as given.
    """

    seq: int
    chat_id: int
    message_id: int
    method: str
    text: str
    raw_text: str | None
    parse_mode: str | None
    entities: list[JSONDict]
    reply_markup: JSONDict | None
    reply_to_message_id: int | None
    document: SentDocument | None = None
    edited: bool = False
    deleted: bool = False
    history: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """The inline keyboard as rows of ``(text, callback_data)``."""
        keyboard = (self.reply_markup or {}).get("inline_keyboard") or []
        return [[(b["text"], b.get("callback_data")) for b in row] for row in keyboard]

    @property
    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]
