"""``FakeTelegram``: the state behind the fake Bot API, its methods and the helpers tests use.

Tests feed updates with the builders (``private_message``, ``document``, ``callback_query``…),
the bot reaches the methods through ``FakeRequest`` (in-process) or ``FakeBotApiServer`` (HTTP),
and tests assert on what it did with ``sent_messages``, ``last_text``, ``calls``… or await it
with ``wait_for_message``. Results and errors are shaped as the real Bot API shapes them.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from telegram import Bot

from tests.fakebotapi.markup import detect_entities, render
from tests.fakebotapi.records import (
    ApiCall,
    BotApiError,
    BotMessage,
    JSONDict,
    SentDocument,
    StoredFile,
    UploadedFile,
    bad_request,
)

_T = TypeVar("_T")
Params = Mapping[str, Any]
Files = Mapping[str, UploadedFile]
_Handler = Callable[["FakeTelegram", Params, Files], Any]
_H = TypeVar("_H", bound=_Handler)

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_CALLBACK_DATA_BYTES = 64
DEFAULT_TOKEN = "123456789:AAFakeBotApiTokenForSnippetVault"

# Updates getUpdates leaves out unless asked for them by allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")


def _check_web_app(button: JSONDict) -> None:
    """Telegram opens Mini Apps only from https:// URLs, and a button needs its text."""
    web_app = button.get("web_app")
    if not button.get("text") or not isinstance(web_app, dict):
        raise bad_request("can't parse web app button")
    if not str(web_app.get("url", "")).startswith("https://"):
        raise bad_request("BUTTON_URL_INVALID")


_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

_HANDLERS: dict[str, tuple[str, _Handler]] = {}
# Every Bot API method, from PTB's camelCase aliases (Bot.sendMessage = Bot.send_message…).
_BOT_API_METHODS = frozenset(
    name.lower() for name in dir(Bot) if re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", name)
)


def _api(name: str) -> Callable[[_H], _H]:
    """Registers a Bot API method; Telegram matches method names case-insensitively."""

    def register(handler: _H) -> _H:
        _HANDLERS[name.lower()] = (name, handler)
        return handler

    return register


def _int_param(params: Params, name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {name} specified") from exc


def _json_param(value: Any) -> Any:
    """A JSON-serialised parameter (a form field) as its value; other values as they are."""
    return json.loads(value) if isinstance(value, str) else value


class FakeTelegram:
    """The Bot API's state for one bot: identity, updates, chats, messages, files, calls."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        username: str = "SnippetVaultTestBot",
        first_name: str = "SnippetVault",
        first_update_id: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.first_name = first_name
        self.offline = False
        """While true, both transports fail as if Telegram were unreachable."""
        self.fake_errors: list[BaseException] = []
        """Bugs of the fake itself (answered as 500); a test harness should assert it is empty."""
        self.downloads: list[str] = []
        self._clock = clock
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._update_ids = itertools.count(first_update_id)
        self._updates: list[JSONDict] = []
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._calls: list[ApiCall] = []
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._blocked: set[int] = set()
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._bot_messages: dict[tuple[int, int], BotMessage] = {}
        self._deleted: list[tuple[int, int]] = []
        self._files: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)
        self._callback_queries: dict[str, JSONDict] = {}
        self._inline_queries: dict[str, JSONDict] = {}
        self._query_ids = itertools.count(4_242_000_000_000_000_001)
        self._failures: dict[str, deque[BotApiError]] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._menu_buttons: dict[int | None, JSONDict] = {}
        self._webhook: JSONDict | None = None

    # --- identity -------------------------------------------------------------------------------

    @property
    def bot_user(self) -> JSONDict:
        """The getMe result."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # --- transports call these ------------------------------------------------------------------

    async def call(
        self, token: str, method: str, params: Params, files: Files | None = None
    ) -> tuple[int, JSONDict]:
        """Answers one Bot API request: the HTTP status and the JSON body Telegram would send."""
        name, handler = _HANDLERS.get(method.lower(), (method, None))
        record = ApiCall(self._next_seq(), name, dict(params), dict(files or {}))
        self._calls.append(record)
        try:
            status, record.response = await self._answer(token, name, handler, record)
            return status, record.response
        finally:
            # also reached when a long poll is cancelled; the call then stays unanswered
            self._notify()

    async def _answer(
        self, token: str, name: str, handler: _Handler | None, record: ApiCall
    ) -> tuple[int, JSONDict]:
        try:
            if token != self.token:
                raise BotApiError(401, "Unauthorized")
            if handler is None and name.lower() in _BOT_API_METHODS:
                raise NotImplementedError(f"{name} is a Bot API method the fake lacks; add it")
            if handler is None:
                raise BotApiError(404, "Not Found: method not found")
            self._raise_injected_failure(name)
            result = handler(self, record.params, record.files)
            if inspect.isawaitable(result):
                result = await result
        except BotApiError as error:
            return error.error_code, error.to_json()
        except Exception as exc:  # a bug in the fake: make it loud, not a hung test
            self.fake_errors.append(exc)
            description = f"Fake Bot API bug: {exc!r}"
            return 500, {"ok": False, "error_code": 500, "description": description}
        return 200, {"ok": True, "result": copy.deepcopy(result)}

    def download(self, token: str, file_path: str) -> tuple[int, bytes]:
        """Serves ``<base_file_url><token>/<file_path>``."""
        stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if token != self.token or stored is None:
            return 404, json.dumps(BotApiError(404, "Not Found").to_json()).encode()
        self.downloads.append(file_path)
        return 200, stored.data

    # --- test control ---------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        description: str = "Bad Request: chat not found",
        *,
        error_code: int = 400,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` fail; ``retry_after`` makes them 429s."""
        if retry_after is not None:
            error = BotApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        else:
            error = BotApiError(error_code, description)
        queue = self._failures.setdefault(method.lower(), deque())
        queue.extend(error for _ in range(times))

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sending to the chat fails with 403 from now on."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JSONDict:
        """Defines (or redefines) a user; builders otherwise make up ``User<id>``/``user<id>``."""
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
            "username": username or f"user{user_id}",
            "language_code": language_code,
        }
        if last_name:
            user["last_name"] = last_name
        self._users[user_id] = user
        if user_id in self._chats:
            self._chats[user_id] = self._private_chat(user)
        return copy.deepcopy(user)

    def group(
        self, chat_id: int, *, title: str = "SnippetVault testers", chat_type: str = "supergroup"
    ) -> JSONDict:
        """Defines a group chat the bot is in, so any builder can use ``chat_id``."""
        if chat_id >= 0 or chat_type not in ("group", "supergroup"):
            raise ValueError("a group has a negative id and type 'group' or 'supergroup'")
        self._chats[chat_id] = {"id": chat_id, "type": chat_type, "title": title}
        return copy.deepcopy(self._chats[chat_id])

    def add_file(
        self,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_size: int | None = None,
        folder: str = "documents",
    ) -> StoredFile:
        """Stores a file on the "server". ``file_size`` may claim more than ``len(data)``, to
        test size limits without allocating them (getFile refuses files over 20 MB)."""
        number = next(self._file_numbers)
        extension = file_name.rpartition(".")[2] if file_name and "." in file_name else "bin"
        if folder == "photos":
            extension = "jpg"
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAIB{number:06d}FakeFileId",
            file_unique_id=f"AgAD{number:06d}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            file_path=f"{folder}/file_{number}.{extension}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return stored

    # --- update builders: each returns the update and (unless enqueue=False) queues it ---------

    def private_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        forward_origin: JSONDict | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A text message in a private chat; commands get their ``bot_command`` entity."""
        self._chat_of_type(chat_id, user_id, {"private"})
        message = self._user_message(
            chat_id, user_id, self._text(text), reply_to=reply_to, forward_origin=forward_origin
        )
        return self._push("message", message, enqueue)

    def group_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        title: str = "SnippetVault testers",
        chat_type: str = "supergroup",
        reply_to: int | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A text message in a group (``chat_id`` negative, e.g. -1001234567890)."""
        if chat_id not in self._chats:
            self.group(chat_id, title=title, chat_type=chat_type)
        self._chat_of_type(chat_id, user_id, {"group", "supergroup"})
        message = self._user_message(chat_id, user_id, self._text(text), reply_to=reply_to)
        return self._push("message", message, enqueue)

    def document(
        self,
        chat_id: int,
        user_id: int,
        file_name: str,
        data: bytes,
        mime_type: str = "text/plain",
        *,
        caption: str | None = None,
        forward_origin: JSONDict | None = None,
        reply_to: int | None = None,
        file_size: int | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A document sent (or, with ``forward_origin``, forwarded) to the bot; its bytes are
        registered so getFile and the download work."""
        stored = self.add_file(data, file_name=file_name, mime_type=mime_type, file_size=file_size)
        content: JSONDict = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": stored.file_size,
            },
            **self._caption(caption),
        }
        message = self._user_message(
            chat_id, user_id, content, reply_to=reply_to, forward_origin=forward_origin
        )
        return self._push("message", message, enqueue)

    def photo(
        self,
        chat_id: int,
        user_id: int,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        *,
        caption: str | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """A photo, as Telegram sends it: the same picture in two sizes."""
        sizes = []
        for width, height in ((90, 68), (800, 600)):
            stored = self.add_file(data, mime_type="image/jpeg", folder="photos")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": width,
                    "height": height,
                }
            )
        message = self._user_message(chat_id, user_id, {"photo": sizes, **self._caption(caption)})
        return self._push("message", message, enqueue)

    def sticker(
        self, chat_id: int, user_id: int, *, emoji: str = "👍", enqueue: bool = True
    ) -> JSONDict:
        webp = b"RIFF\x00\x00\x00\x00WEBP"
        stored = self.add_file(webp, mime_type="image/webp", folder="stickers")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        message = self._user_message(chat_id, user_id, {"sticker": sticker})
        return self._push("message", message, enqueue)

    def edited_message(
        self, chat_id: int, message_id: int, text: str, *, enqueue: bool = True
    ) -> JSONDict:
        """The user edits a text message they sent earlier."""
        message = self._messages.get((chat_id, message_id))
        if message is None or message.get("from", {}).get("id") == self.bot_id:
            raise ValueError(f"no user message {message_id} in chat {chat_id}")
        message.pop("entities", None)
        message.update(self._text(text), edit_date=self._now())
        return self._push("edited_message", copy.deepcopy(message), enqueue)

    def channel_post(
        self, chat_id: int, text: str, *, title: str = "SnippetVault news", enqueue: bool = True
    ) -> JSONDict:
        """A post in a channel the bot is in: no ``from``, the channel as ``sender_chat``."""
        chat = self._chats.setdefault(chat_id, {"id": chat_id, "type": "channel", "title": title})
        message = {
            "message_id": self._new_message_id(chat_id),
            "sender_chat": copy.deepcopy(chat),
            "chat": copy.deepcopy(chat),
            "date": self._now(),
            **self._text(text),
        }
        self._messages[(chat_id, message["message_id"])] = message
        return self._push("channel_post", copy.deepcopy(message), enqueue)

    def callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        enqueue: bool = True,
    ) -> JSONDict:
        """The user presses an inline button with ``data`` under message ``message_id``."""
        chat = self._chats.get(chat_id)
        if user_id is None:
            if chat is not None and chat["type"] != "private":
                raise ValueError(f"chat {chat_id} is a group: say which user_id pressed")
            user_id = chat_id
        user = self._user(user_id)
        chat = chat or self._private_chat(user)
        message = self._messages.get((chat_id, message_id))
        query_id = str(next(self._query_ids))
        query: JSONDict = {
            "id": query_id,
            "from": user,
            # a deleted or unknown message arrives as an InaccessibleMessage (date 0)
            "message": copy.deepcopy(message)
            if message
            else {"chat": chat, "message_id": message_id, "date": 0},
            "chat_instance": str(-abs(chat_id) * 7919),
            "data": data,
        }
        self._callback_queries[query_id] = query
        return self._push("callback_query", query, enqueue)

    def inline_query(
        self, user_id: int, query: str, *, chat_type: str = "sender", enqueue: bool = True
    ) -> JSONDict:
        """The user types ``@bot <query>`` in a chat of ``chat_type`` (``sender`` is their
        own private chat with the bot; ``private``, ``group``, ``supergroup``, ``channel``)."""
        query_id = str(next(self._query_ids))
        inline = {
            "id": query_id,
            "from": self._user(user_id),
            "query": query,
            "offset": "",
            "chat_type": chat_type,
        }
        self._inline_queries[query_id] = inline
        return self._push("inline_query", inline, enqueue)

    def press_button(
        self, chat_id: int, message_id: int, text: str, *, user_id: int | None = None
    ) -> JSONDict:
        """Presses the inline button labelled ``text`` under a message the bot sent."""
        sent = self._bot_messages.get((chat_id, message_id))
        if sent is None or sent.deleted:
            raise ValueError(f"the bot has no message {message_id} in chat {chat_id}")
        for label, data in (button for row in sent.buttons for button in row):
            if label == text and data is not None:
                return self.callback_query(chat_id, message_id, data, user_id=user_id)
        raise ValueError(f"no callback button {text!r}; the buttons are {sent.button_texts}")

    def user_origin(self, user_id: int, *, date: int | None = None) -> JSONDict:
        """``forward_origin`` of a message forwarded from a user."""
        return {"type": "user", "sender_user": self._user(user_id), "date": date or self._now()}

    def hidden_user_origin(self, name: str, *, date: int | None = None) -> JSONDict:
        return {"type": "hidden_user", "sender_user_name": name, "date": date or self._now()}

    def channel_origin(
        self, chat_id: int, message_id: int, *, title: str = "Some channel", date: int | None = None
    ) -> JSONDict:
        return {
            "type": "channel",
            "chat": {"id": chat_id, "type": "channel", "title": title},
            "message_id": message_id,
            "date": date or self._now(),
        }

    # --- what tests assert on -------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Every request the bot made (optionally of one method, any case), oldest first."""
        if method is None:
            return list(self._calls)
        return [c for c in self._calls if c.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int) -> list[BotMessage]:
        """Messages the bot sent to the chat, oldest first, edits applied, deleted ones flagged."""
        return [m for m in self._bot_messages.values() if m.chat_id == chat_id]

    def last_message(self, chat_id: int) -> BotMessage | None:
        sent = self.sent_messages(chat_id)
        return sent[-1] if sent else None

    def last_text(self, chat_id: int) -> str | None:
        """The text (or caption) of the bot's latest message to the chat, as the user sees it."""
        last = self.last_message(chat_id)
        return last.text if last else None

    def deleted(self, chat_id: int) -> list[int]:
        """Ids of the messages (the user's or the bot's) the bot deleted in the chat."""
        return [message_id for chat, message_id in self._deleted if chat == chat_id]

    def documents(self, chat_id: int) -> list[SentDocument]:
        return [m.document for m in self.sent_messages(chat_id) if m.document is not None]

    def inline_answers(self) -> list[Params]:
        """The parameters of every successful answerInlineQuery (JSON fields decoded)."""
        return [
            {
                **c.params,
                "results": _json_param(c.params.get("results")),
                "button": _json_param(c.params.get("button")),
            }
            for c in self.calls("answerInlineQuery")
            if c.ok
        ]

    def callback_answers(self) -> list[Params]:
        """The parameters of every successful answerCallbackQuery."""
        return [c.params for c in self.calls("answerCallbackQuery") if c.ok]

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """The current JSON of a message still in the chat (either side), or None."""
        message = self._messages.get((chat_id, message_id))
        return copy.deepcopy(message) if message else None

    def file(self, file_id: str) -> StoredFile:
        return self._files[file_id]

    def menu_button(self, chat_id: int | None = None) -> JSONDict:
        """The menu button a private chat shows (``None``: the bot's default for all)."""
        found = self._menu_buttons.get(chat_id) or self._menu_buttons.get(None)
        return copy.deepcopy(found or {"type": "default"})

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def webhook(self) -> JSONDict | None:
        return copy.deepcopy(self._webhook)

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by a getUpdates offset."""
        return copy.deepcopy(self._updates)

    def mark(self) -> int:
        """A point in the call history; ``wait_for_message(..., since=mark)`` looks after it."""
        return self._last_seq

    # --- awaiting the bot -----------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], _T | None],
        timeout: float = 10.0,  # noqa: ASYNC109 - expiry is a test failure with a diagnosis
        *,
        what: str = "",
    ) -> _T:
        """Waits until ``predicate()`` is truthy (re-checked after every call) and returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"waited {timeout}s for {what or predicate!r}; {self.describe()}"
                )
            await self._wait_change(remaining)

    async def wait_for_message(
        self,
        chat_id: int,
        contains: str | None = None,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - see wait_for
        since: int = 0,
    ) -> BotMessage:
        """The first message the bot sent to the chat after ``since`` (see ``mark``) whose
        visible text contains ``contains``."""

        def match() -> BotMessage | None:
            for message in self._bot_messages.values():
                if (
                    message.chat_id == chat_id
                    and message.seq > since
                    and (contains is None or contains in message.text)
                ):
                    return message
            return None

        return await self.wait_for(
            match, timeout, what=f"a message to chat {chat_id} containing {contains!r}"
        )

    async def wait_until_delivered(
        self,
        update: JSONDict,
        timeout: float = 10.0,  # noqa: ASYNC109 - see wait_for
    ) -> None:
        """Waits until the bot confirmed ``update`` (its getUpdates offset moved past it)."""
        update_id = update["update_id"]

        def delivered() -> bool:
            return all(u["update_id"] != update_id for u in self._updates)

        await self.wait_for(delivered, timeout, what=f"the bot to fetch update {update_id}")

    def describe(self) -> str:
        """A summary for failure messages: recent calls, pending updates, fake bugs."""
        lines = [f"{len(self._updates)} update(s) pending; recent calls:"]
        recent = [c for c in self._calls if c.method != "getUpdates"][-15:]
        for c in recent:
            params = {k: v for k, v in c.params.items() if k not in ("reply_markup", "entities")}
            outcome = "ok" if c.ok else c.error or "unanswered"
            lines.append(f"  #{c.seq} {c.method} {params} -> {outcome}")
        if not recent:
            lines.append("  (none besides getUpdates)")
        if self.fake_errors:
            lines.append(f"fake Bot API bugs: {self.fake_errors!r}")
        return "\n".join(lines)

    # --- Bot API methods ------------------------------------------------------------------------

    @_api("getMe")
    def _get_me(self, params: Params, files: Files) -> JSONDict:
        return self.bot_user

    @_api("logOut")
    def _log_out(self, params: Params, files: Files) -> bool:
        return True

    @_api("close")
    def _close(self, params: Params, files: Files) -> bool:
        return True

    @_api("getUpdates")
    async def _get_updates(self, params: Params, files: Files) -> list[JSONDict]:
        if self._webhook is not None:
            raise BotApiError(409, _CONFLICT_WEBHOOK)
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed_updates = frozenset(allowed) if allowed else None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # a new getUpdates ends any earlier one still waiting, as on Telegram
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._updates = [u for u in self._updates if self._is_allowed(u)]
            if self._updates or loop.time() >= deadline:
                return self._updates[:limit]
            await self._wait_change(deadline - loop.time())
            if self._poll_generation != generation:
                raise BotApiError(409, _CONFLICT_POLLING)

    @_api("setWebhook")
    def _set_webhook(self, params: Params, files: Files) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._delete_webhook(params, files)
        if not str(url).startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        return True

    @_api("deleteWebhook")
    def _delete_webhook(self, params: Params, files: Files) -> bool:
        self._webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    @_api("getWebhookInfo")
    def _get_webhook_info(self, params: Params, files: Files) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
        return info

    @_api("setMyCommands")
    def _set_my_commands(self, params: Params, files: Files) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.match(str(command.get("command"))):
                raise bad_request("BOT_COMMAND_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        self._commands[key] = [
            {"command": c["command"], "description": c.get("description", "")} for c in commands
        ]
        return True

    @_api("getMyCommands")
    def _get_my_commands(self, params: Params, files: Files) -> list[JSONDict]:
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        return self._commands.get(key, [])

    @_api("deleteMyCommands")
    def _delete_my_commands(self, params: Params, files: Files) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code") or "")
        self._commands.pop(key, None)
        return True

    @_api("setChatMenuButton")
    def _set_chat_menu_button(self, params: Params, files: Files) -> bool:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in {
            "commands",
            "web_app",
            "default",
        }:
            raise bad_request("can't parse menu button JSON object")
        if button["type"] == "web_app":
            _check_web_app(button)
        chat_id = params.get("chat_id")
        if chat_id is not None:
            self._target_chat({"chat_id": chat_id}, sending=False)
        self._menu_buttons[None if chat_id is None else int(chat_id)] = dict(button)
        return True

    @_api("getChatMenuButton")
    def _get_chat_menu_button(self, params: Params, files: Files) -> JSONDict:
        chat_id = params.get("chat_id")
        return self.menu_button(None if chat_id is None else int(chat_id))

    @_api("sendMessage")
    def _send_message(self, params: Params, files: Files) -> JSONDict:
        chat = self._target_chat(params)
        raw = params.get("text")
        if not raw:
            raise bad_request("message text is empty")
        text, entities = render(str(raw), params.get("parse_mode"), params.get("entities"))
        self._check_text(text, MAX_TEXT_LENGTH, "message is too long")
        markup = self._reply_markup(params)
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        message = self._bot_message(chat, content, params, markup)
        self._record(message, "sendMessage", text, params.get("text"), entities, markup, params)
        return message

    @_api("sendDocument")
    def _send_document(self, params: Params, files: Files) -> JSONDict:
        chat = self._target_chat(params)
        stored, upload = self._input_file(params, files, "document")
        caption, caption_entities = render(
            str(params.get("caption") or ""),
            params.get("parse_mode"),
            params.get("caption_entities"),
        )
        if len(caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        markup = self._reply_markup(params)
        file_name = upload.filename if upload else stored.file_name
        mime_type = upload.mime_type if upload else stored.mime_type
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            **({"file_name": file_name} if file_name else {}),
            **({"mime_type": mime_type} if mime_type else {}),
        }
        content: JSONDict = {"document": document}
        if caption:
            content["caption"] = caption
        if caption_entities:
            content["caption_entities"] = caption_entities
        message = self._bot_message(chat, content, params, markup)
        sent = self._record(
            message,
            "sendDocument",
            caption,
            params.get("caption"),
            caption_entities,
            markup,
            params,
        )
        sent.document = SentDocument(
            chat_id=chat["id"],
            message_id=message["message_id"],
            filename=file_name,
            data=stored.data,
            mime_type=mime_type,
            caption=caption or None,
            file_id=stored.file_id,
        )
        return message

    @_api("editMessageText")
    def _edit_message_text(self, params: Params, files: Files) -> JSONDict:
        chat, message = self._editable_message(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        raw = params.get("text")
        if not raw:
            raise bad_request("message text is empty")
        text, entities = render(str(raw), params.get("parse_mode"), params.get("entities"))
        self._check_text(text, MAX_TEXT_LENGTH, "message is too long")
        markup = self._reply_markup(params)
        new_state = {"text": text, "entities": entities, "reply_markup": self._echoed(markup)}
        old_state = {
            "text": message["text"],
            "entities": message.get("entities", []),
            "reply_markup": message.get("reply_markup"),
        }
        if new_state == old_state:
            raise bad_request(_NOT_MODIFIED)
        for key, value in new_state.items():
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        message["edit_date"] = self._now()
        sent = self._bot_messages[(chat["id"], message["message_id"])]
        sent.history.append(sent.text)
        sent.text, sent.raw_text, sent.entities = text, str(raw), entities
        sent.parse_mode, sent.reply_markup, sent.edited = params.get("parse_mode"), markup, True
        return message

    @_api("editMessageReplyMarkup")
    def _edit_message_reply_markup(self, params: Params, files: Files) -> JSONDict:
        chat, message = self._editable_message(params)
        markup = self._reply_markup(params)
        if self._echoed(markup) == message.get("reply_markup"):
            raise bad_request(_NOT_MODIFIED)
        if self._echoed(markup):
            message["reply_markup"] = self._echoed(markup)
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = self._now()
        sent = self._bot_messages[(chat["id"], message["message_id"])]
        sent.reply_markup, sent.edited = markup, True
        return message

    @_api("deleteMessage")
    def _delete_message(self, params: Params, files: Files) -> bool:
        chat = self._target_chat(params, sending=False)
        message_id = _int_param(params, "message_id")
        if not self._delete(chat["id"], message_id):
            raise bad_request("message to delete not found")
        return True

    @_api("deleteMessages")
    def _delete_messages(self, params: Params, files: Files) -> bool:
        chat = self._target_chat(params, sending=False)
        message_ids = params.get("message_ids")
        if not isinstance(message_ids, list) or not 1 <= len(message_ids) <= 100:
            raise bad_request("message_ids is empty")
        if not all(isinstance(message_id, int) for message_id in message_ids):
            raise bad_request("can't parse message_ids JSON array")
        deleted = [self._delete(chat["id"], message_id) for message_id in message_ids]
        if not any(deleted):
            raise bad_request("message to delete not found")
        return True

    @_api("answerCallbackQuery")
    def _answer_callback_query(self, params: Params, files: Files) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_queries:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        return True

    @_api("answerInlineQuery")
    def _answer_inline_query(self, params: Params, files: Files) -> bool:
        query_id = str(params.get("inline_query_id") or "")
        if query_id not in self._inline_queries:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        results = _json_param(params.get("results"))
        if not isinstance(results, list) or len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH" if isinstance(results, list) else "results empty")
        ids = [str(result.get("id", "")) for result in results]
        if any(not 0 < len(i.encode()) <= 64 for i in ids) or len(set(ids)) != len(ids):
            raise bad_request("RESULT_ID_INVALID")
        for result in results:
            if result.get("type") not in ("article", "document"):
                raise bad_request("RESULT_TYPE_INVALID")
            content = result.get("input_message_content") or {}
            if result["type"] == "article" and not content.get("message_text"):
                raise bad_request("MESSAGE_EMPTY")
            if len(str(content.get("message_text") or "")) > MAX_TEXT_LENGTH:
                raise bad_request("MESSAGE_TOO_LONG")
            if result["type"] == "document" and result.get("document_file_id") not in self._files:
                raise bad_request("wrong file identifier/HTTP URL specified")
        return True

    @_api("getFile")
    def _get_file(self, params: Params, files: Files) -> JSONDict:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return stored.to_json()

    @_api("sendChatAction")
    def _send_chat_action(self, params: Params, files: Files) -> bool:
        self._target_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    # --- internals ------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._last_seq = next(self._seq)
        return self._last_seq

    def _now(self) -> int:
        return int(self._clock())

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_change(self, at_most: float) -> None:
        """Returns after the next call or update, or after ``at_most`` seconds."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(at_most):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def _raise_injected_failure(self, method: str) -> None:
        queue = self._failures.get(method.lower())
        if queue:
            raise queue.popleft()

    def _push(self, kind: str, payload: JSONDict, enqueue: bool) -> JSONDict:
        update = {"update_id": next(self._update_ids), kind: copy.deepcopy(payload)}
        if enqueue:
            self._updates.append(update)
            self._notify()
        return copy.deepcopy(update)

    def _is_allowed(self, update: JSONDict) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self._allowed_updates is None:
            return kind not in _OPT_IN_UPDATES
        return kind in self._allowed_updates

    def _user(self, user_id: int) -> JSONDict:
        if user_id not in self._users:
            self.user(user_id)
        return copy.deepcopy(self._users[user_id])

    @staticmethod
    def _private_chat(user: JSONDict) -> JSONDict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return chat

    def _chat_of_type(self, chat_id: int, user_id: int, types: set[str]) -> JSONDict:
        if chat_id not in self._chats:
            if chat_id != user_id:
                raise ValueError(f"a private chat's id is its user's id ({user_id}), not {chat_id}")
            self._chats[chat_id] = self._private_chat(self._user(user_id))
        chat = self._chats[chat_id]
        if chat["type"] not in types:
            raise ValueError(f"chat {chat_id} is a {chat['type']} chat, not {sorted(types)}")
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    @staticmethod
    def _text(text: str) -> JSONDict:
        entities = detect_entities(text)
        return {"text": text, "entities": entities} if entities else {"text": text}

    @staticmethod
    def _caption(caption: str | None) -> JSONDict:
        if caption is None:
            return {}
        entities = detect_entities(caption)
        return (
            {"caption": caption, "caption_entities": entities} if entities else {"caption": caption}
        )

    def _reply_copy(self, chat_id: int, message_id: int) -> JSONDict | None:
        replied = self._messages.get((chat_id, message_id))
        if replied is None:
            return None
        replied = copy.deepcopy(replied)
        replied.pop("reply_to_message", None)  # Telegram nests one level only
        return replied

    def _user_message(
        self,
        chat_id: int,
        user_id: int,
        content: JSONDict,
        *,
        reply_to: int | None = None,
        forward_origin: JSONDict | None = None,
    ) -> JSONDict:
        user = self._user(user_id)
        if chat_id not in self._chats:
            self._chat_of_type(chat_id, user_id, {"private"})
        message: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "from": user,
            "chat": copy.deepcopy(self._chats[chat_id]),
            "date": self._now(),
        }
        if forward_origin is not None:
            message["forward_origin"] = copy.deepcopy(forward_origin)
        if reply_to is not None:
            replied = self._reply_copy(chat_id, reply_to)
            if replied is None:
                raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = replied
        message.update(copy.deepcopy(content))
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _target_chat(self, params: Params, *, sending: bool = True) -> JSONDict:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat: JSONDict | None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self._chats.values() if c.get("username") == raw[1:]), None)
        else:
            try:
                chat = self._chats.get(int(raw))
            except (TypeError, ValueError):
                chat = None
        if chat is None:
            raise bad_request("chat not found")
        if sending and chat["id"] in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _check_text(text: str, limit: int, too_long: str) -> None:
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > limit:
            raise bad_request(too_long)

    @staticmethod
    def _reply_markup(params: Params) -> JSONDict | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if not button.get("text") or not _BUTTON_ACTIONS & button.keys():
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                if "web_app" in button:
                    _check_web_app(button)
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
        return dict(markup)

    @staticmethod
    def _echoed(markup: JSONDict | None) -> JSONDict | None:
        """Only inline keyboards come back inside the sent Message."""
        return markup if markup and "inline_keyboard" in markup else None

    def _bot_message(
        self, chat: JSONDict, content: JSONDict, params: Params, markup: JSONDict | None
    ) -> JSONDict:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        replied = None
        if isinstance(reply, dict):
            reply_chat = chat
            if reply.get("chat_id") is not None:
                reply_chat = self._target_chat({"chat_id": reply["chat_id"]}, sending=False)
            replied = self._reply_copy(reply_chat["id"], _int_param(reply, "message_id"))
            if replied is None and not reply.get("allow_sending_without_reply"):
                raise bad_request("message to be replied not found")
        message: JSONDict = {
            "message_id": self._new_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": copy.deepcopy(chat),
            "date": self._now(),
        }
        if replied is not None:
            message["reply_to_message"] = replied
        message.update(content)
        if self._echoed(markup):
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _record(
        self,
        message: JSONDict,
        method: str,
        text: str,
        raw_text: Any,
        entities: list[JSONDict],
        markup: JSONDict | None,
        params: Params,
    ) -> BotMessage:
        replied = message.get("reply_to_message")
        sent = BotMessage(
            seq=self._last_seq,
            chat_id=message["chat"]["id"],
            message_id=message["message_id"],
            method=method,
            text=text,
            raw_text=None if raw_text is None else str(raw_text),
            parse_mode=params.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            reply_to_message_id=replied["message_id"] if replied else None,
        )
        self._bot_messages[(sent.chat_id, sent.message_id)] = sent
        return sent

    def _editable_message(self, params: Params) -> tuple[JSONDict, JSONDict]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target_chat(params)
        message_id = _int_param(params, "message_id")
        message = self._messages.get((chat["id"], message_id))
        if message is None:
            raise bad_request("message to edit not found")
        if (chat["id"], message_id) not in self._bot_messages:
            raise bad_request("message can't be edited")
        return chat, message

    def _delete(self, chat_id: int, message_id: int) -> bool:
        if self._messages.pop((chat_id, message_id), None) is None:
            return False
        self._deleted.append((chat_id, message_id))
        sent = self._bot_messages.get((chat_id, message_id))
        if sent is not None:
            sent.deleted = True
        return True

    def _input_file(
        self, params: Params, files: Files, field: str
    ) -> tuple[StoredFile, UploadedFile | None]:
        """The file a send method refers to: uploaded now, ``attach://``, or a known file_id."""
        value = params.get(field)
        upload = files.get(field)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            stored = self.add_file(
                upload.data, file_name=upload.filename, mime_type=upload.mime_type
            )
            return stored, upload
        if not value:
            raise bad_request(f"there is no {field} in the request")
        stored_file = self._files.get(str(value))
        if stored_file is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored_file, None

    @staticmethod
    def _commands_key(scope: Any, language_code: str) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
