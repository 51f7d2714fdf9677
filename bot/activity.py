"""One INFO line per handled update, so an operator sees the bot work:

    update /save chat 3f9a1c07: ok in 41 ms

It names the command (or `text`, `document`, `button`, `edited`), a short keyed hash of the chat
(stable within one deployment, so one conversation can be followed, but not the chat id), how
it ended and how long it took. Never the message's content, an address or a token: a command
word that is not one of the bot's commands is logged as `/unknown`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from contextvars import ContextVar
from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler

log = logging.getLogger("snippetvault.updates")

_outcome: ContextVar[list[str] | None] = ContextVar("update_outcome", default=None)


def note_outcome(outcome: str) -> None:
    """How the update being handled ended, when not `ok` (a refusal's error, a crash)."""
    holder = _outcome.get()
    if holder is not None:
        holder[0] = outcome


class LoggedApplication(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's `Application`, logging each update it handles (polling and webhook alike)."""

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            await super().process_update(update)
            return
        holder = ["ok"]
        reset = _outcome.set(holder)
        started = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            _outcome.reset(reset)
            log.info(
                "update %s chat %s: %s in %d ms",
                self._what(update),
                self._chat_hash(update),
                holder[0],
                (time.perf_counter() - started) * 1000,
            )

    def _what(self, update: Update) -> str:
        if update.callback_query is not None:
            return "button"
        if update.edited_message is not None:
            return "edited"
        message = update.message
        if message is None:
            return "other"
        if message.document is not None:
            return "document"
        text = message.text or ""
        if not text.startswith("/"):
            return "text" if text else "other"
        command = text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if text[1:] else ""
        return f"/{command}" if command in self._commands() else "/unknown"

    def _commands(self) -> frozenset[str]:
        known: frozenset[str] | None = getattr(self, "_known_commands", None)
        if known is None:
            known = frozenset(
                command
                for handlers in self.handlers.values()
                for handler in handlers
                if isinstance(handler, CommandHandler)
                for command in handler.commands
            )
            self._known_commands = known
        return known

    def _chat_hash(self, update: Update) -> str:
        chat = update.effective_chat
        if chat is None:
            return "-"
        return _keyed_hash(self.bot.token, chat.id)


@functools.lru_cache(maxsize=4096)
def _keyed_hash(token: str, chat_id: int) -> str:
    """Kept for the chats seen lately: a chat sends many updates, and its hash never changes."""
    return hmac.new(token.encode(), str(chat_id).encode(), hashlib.sha256).hexdigest()[:8]
