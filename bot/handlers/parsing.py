"""Splitting a command message into its argument line and the lines below it."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity

from core.text import unwrap_fence


@dataclass(frozen=True, slots=True)
class CommandText:
    args: str
    """The rest of the command's line: `/save Quick sort` → `Quick sort`."""
    body: str
    """Everything on the following lines, fences unwrapped."""
    language_hint: str | None


def command_text(message: Message) -> CommandText:
    text = message.text or message.caption or ""
    first, _, rest = text.partition("\n")
    parts = first.split(maxsplit=1)
    if parts and parts[0].startswith("/"):
        # A bare `/signup` has no arguments; the command itself is not one.
        args = parts[1].strip() if len(parts) > 1 else ""
    else:
        args = first.strip()
    fenced = unwrap_fence(rest)
    return CommandText(args, fenced.code, fenced.language_hint or pre_language(message))


def pre_language(message: Message) -> str | None:
    """A code block pasted with Telegram's own formatting names its language in the entity."""
    for entity in message.entities or message.caption_entities or ():
        if entity.type == MessageEntity.PRE and entity.language:
            return entity.language
    return None
