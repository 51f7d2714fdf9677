"""FakeTelegram on its own: Bot API semantics, update builders, error shapes."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from telegram import Bot, Update

from tests.fakebotapi import FakeTelegram, state
from tests.fakebotapi.records import JSONDict

ALICE = 1001
BOB = 1002
GROUP = -1001234567890
WAIT = 30.0
"""Seconds to wait for something that happens at once: a guard against hanging, which only a
failure waits out."""
LONG_POLL = 60
"""A long poll's timeout: longer than WAIT, so that only an early answer arrives within it."""


async def call(tg: FakeTelegram, method: str, **params: Any) -> JSONDict:
    _, body = await tg.call(tg.token, method, params)
    return body


async def ok(tg: FakeTelegram, method: str, **params: Any) -> Any:
    body = await call(tg, method, **params)
    assert body["ok"], body
    return body["result"]


async def error(tg: FakeTelegram, method: str, **params: Any) -> tuple[int, str]:
    status, body = await tg.call(tg.token, method, params)
    assert not body["ok"], body
    assert body["error_code"] == status, body
    return status, body["description"]


# --- updates ------------------------------------------------------------------------------------


async def test_get_updates_confirms_by_offset(tg: FakeTelegram) -> None:
    first = tg.private_message(ALICE, ALICE, "one")
    second = tg.private_message(ALICE, ALICE, "two")

    assert [u["update_id"] for u in await ok(tg, "getUpdates")] == [
        first["update_id"],
        second["update_id"],
    ]
    assert await ok(tg, "getUpdates", offset=second["update_id"], limit=1) == [second]
    assert await ok(tg, "getUpdates", offset=second["update_id"] + 1) == []
    assert tg.pending_updates == []


async def test_negative_offset_keeps_only_the_latest(tg: FakeTelegram) -> None:
    for text in ("a", "b", "c"):
        tg.private_message(ALICE, ALICE, text)
    [update] = await ok(tg, "getUpdates", offset=-1)
    assert update["message"]["text"] == "c"


async def test_long_poll_returns_when_an_update_arrives(tg: FakeTelegram) -> None:
    poll = asyncio.create_task(ok(tg, "getUpdates", timeout=LONG_POLL))
    await asyncio.sleep(0.05)
    assert not poll.done()
    update = tg.private_message(ALICE, ALICE, "/start")
    assert await asyncio.wait_for(poll, WAIT) == [update]


async def test_long_poll_times_out_empty(tg: FakeTelegram) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await ok(tg, "getUpdates", timeout=0.1) == []
    assert loop.time() - started >= 0.1


async def test_second_poller_terminates_the_first(tg: FakeTelegram) -> None:
    first = asyncio.create_task(call(tg, "getUpdates", timeout=LONG_POLL))
    await asyncio.sleep(0.01)
    assert await ok(tg, "getUpdates") == []
    body = await asyncio.wait_for(first, WAIT)
    assert body["error_code"] == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")


async def test_get_updates_refused_while_a_webhook_is_set(tg: FakeTelegram) -> None:
    assert await ok(tg, "setWebhook", url="https://bot.example.com/hook", secret_token="s")
    assert (await ok(tg, "getWebhookInfo"))["url"] == "https://bot.example.com/hook"
    status, description = await error(tg, "getUpdates")
    assert status == 409
    assert "webhook is active" in description
    assert await ok(tg, "deleteWebhook", drop_pending_updates=True)
    assert await ok(tg, "getUpdates") == []


async def test_allowed_updates_filter_and_persist(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "text")
    query = tg.callback_query(ALICE, 1, "data")
    assert await ok(tg, "getUpdates", allowed_updates=["callback_query"]) == [query]
    tg.private_message(ALICE, ALICE, "dropped, as Telegram never stores it")
    assert await ok(tg, "getUpdates") == [query]


# --- update builders ----------------------------------------------------------------------------


def test_commands_get_bot_command_entities(tg: FakeTelegram) -> None:
    update = tg.private_message(ALICE, ALICE, "/signup@SnippetVaultTestBot a@b.io pw")
    assert update["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 27},
        {"type": "email", "offset": 28, "length": 6},
    ]
    plain = tg.private_message(ALICE, ALICE, "no command here")
    assert "entities" not in plain["message"]


def test_message_ids_count_per_chat_across_both_sides(tg: FakeTelegram) -> None:
    first = tg.private_message(ALICE, ALICE, "hi")
    other = tg.private_message(BOB, BOB, "hi")
    second = tg.private_message(ALICE, ALICE, "again", reply_to=1)
    assert [first["message"]["message_id"], second["message"]["message_id"]] == [1, 2]
    assert other["message"]["message_id"] == 1
    assert second["message"]["reply_to_message"]["text"] == "hi"
    with pytest.raises(ValueError, match="no message 99"):
        tg.private_message(ALICE, ALICE, "?", reply_to=99)


def test_private_chat_id_must_be_the_users(tg: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="private chat's id"):
        tg.private_message(ALICE, BOB, "hi")


BUILDERS: dict[str, Callable[[FakeTelegram], JSONDict]] = {
    "private": lambda t: t.private_message(ALICE, ALICE, "/start payload"),
    "group": lambda t: t.group_message(GROUP, ALICE, "/signup@SnippetVaultTestBot"),
    "document": lambda t: t.document(ALICE, ALICE, "a.py", b"print(1)", caption="/save x"),
    "forwarded document": lambda t: t.document(
        ALICE, ALICE, "a.py", b"1", forward_origin=t.user_origin(BOB)
    ),
    "hidden forward": lambda t: t.document(
        ALICE, ALICE, "a.py", b"1", forward_origin=t.hidden_user_origin("Anon")
    ),
    "channel forward": lambda t: t.document(
        ALICE, ALICE, "a.py", b"1", forward_origin=t.channel_origin(-1009, 5)
    ),
    "photo": lambda t: t.photo(ALICE, ALICE, caption="look"),
    "sticker": lambda t: t.sticker(ALICE, ALICE),
    "edited": lambda t: (
        t.private_message(ALICE, ALICE, "typo"),
        t.edited_message(ALICE, 1, "/save fixed"),
    )[1],
    "channel post": lambda t: t.channel_post(-1009, "news"),
    "callback": lambda t: t.callback_query(ALICE, 7, "page:2"),
}


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS.keys())
def test_builders_make_updates_ptb_accepts(
    tg: FakeTelegram, build: Callable[[FakeTelegram], JSONDict]
) -> None:
    raw = build(tg)
    update = Update.de_json(raw, Bot(tg.token))
    assert update.update_id == raw["update_id"]
    assert update.effective_chat is not None
    assert not update.api_kwargs
    message = update.effective_message
    assert message is None or not message.api_kwargs


def test_callback_query_for_a_deleted_message_is_inaccessible(tg: FakeTelegram) -> None:
    raw = tg.callback_query(ALICE, 42, "x")
    update = Update.de_json(raw, Bot(tg.token))
    assert update.callback_query is not None
    assert update.callback_query.message is not None
    assert not update.callback_query.message.is_accessible


def test_update_ids_increase(tg: FakeTelegram) -> None:
    ids = [tg.private_message(ALICE, ALICE, str(n))["update_id"] for n in range(3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_press_button_needs_a_real_button(tg: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="no message 3"):
        tg.press_button(ALICE, 3, "Next")


# --- methods ------------------------------------------------------------------------------------


async def test_send_message_returns_a_message_and_records_it(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "/list")
    keyboard = {"inline_keyboard": [[{"text": "Next ▶", "callback_data": "page:2"}]]}
    message = await ok(
        tg,
        "sendMessage",
        chat_id=ALICE,
        text="<b>Snippets</b> &amp; 🐍 <code>x</code>",
        parse_mode="HTML",
        reply_markup=keyboard,
        reply_parameters={"message_id": 1},
    )
    assert message["message_id"] == 2
    assert message["from"]["is_bot"] is True
    assert message["text"] == "Snippets & 🐍 x"
    assert message["entities"] == [
        {"type": "bold", "offset": 0, "length": 8},
        {"type": "code", "offset": 14, "length": 1},  # 🐍 is two UTF-16 units
    ]
    assert message["reply_to_message"]["text"] == "/list"
    assert message["reply_markup"] == keyboard

    [sent] = tg.sent_messages(ALICE)
    assert sent.raw_text == "<b>Snippets</b> &amp; 🐍 <code>x</code>"
    assert sent.parse_mode == "HTML"
    assert sent.buttons == [[("Next ▶", "page:2")]]
    assert sent.reply_to_message_id == 1

    tg.press_button(ALICE, 2, "Next ▶")
    [query] = [u["callback_query"] for u in tg.pending_updates if "callback_query" in u]
    assert query["data"] == "page:2"
    assert query["message"]["message_id"] == 2


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"chat_id": 555, "text": "hi"}, "Bad Request: chat not found"),
        ({"text": "hi"}, "Bad Request: chat_id is empty"),
        ({"chat_id": ALICE, "text": ""}, "Bad Request: message text is empty"),
        ({"chat_id": ALICE, "text": "x" * 4097}, "Bad Request: message is too long"),
        (
            {"chat_id": ALICE, "text": "a < b", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        ),
        (
            {"chat_id": ALICE, "text": "Saved.", "parse_mode": "MarkdownV2"},
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped "
            "with the preceding '\\'",
        ),
        (
            {"chat_id": ALICE, "text": "hi", "parse_mode": "bbcode"},
            "Bad Request: unsupported parse_mode",
        ),
        (
            {
                "chat_id": ALICE,
                "text": "hi",
                "reply_markup": {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 65}]]},
            },
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            {"chat_id": ALICE, "text": "hi", "reply_parameters": {"message_id": 77}},
            "Bad Request: message to be replied not found",
        ),
    ],
)
async def test_send_message_errors_match_telegram(
    tg: FakeTelegram, params: dict[str, Any], description: str
) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    assert await error(tg, "sendMessage", **params) == (400, description)
    assert tg.sent_messages(ALICE) == []


async def test_a_missing_reply_is_allowed_when_asked(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    reply = {"message_id": 77, "allow_sending_without_reply": True}
    message = await ok(tg, "sendMessage", chat_id=ALICE, text="ok", reply_parameters=reply)
    assert "reply_to_message" not in message


async def test_edits_change_the_message_or_say_not_modified(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "/list")
    keyboard = {"inline_keyboard": [[{"text": "Next", "callback_data": "page:2"}]]}
    sent = await ok(tg, "sendMessage", chat_id=ALICE, text="page 1", reply_markup=keyboard)
    message_id = sent["message_id"]

    edited = await ok(
        tg,
        "editMessageText",
        chat_id=ALICE,
        message_id=message_id,
        text="page 2",
        reply_markup=keyboard,
    )
    assert edited["text"] == "page 2"
    assert "edit_date" in edited
    _status, description = await error(
        tg,
        "editMessageText",
        chat_id=ALICE,
        message_id=message_id,
        text="page 2",
        reply_markup=keyboard,
    )
    assert description.startswith("Bad Request: message is not modified")
    assert await ok(tg, "editMessageReplyMarkup", chat_id=ALICE, message_id=message_id)
    [record] = tg.sent_messages(ALICE)
    assert (record.text, record.history, record.buttons, record.edited) == (
        "page 2",
        ["page 1"],
        [],
        True,
    )
    assert await error(tg, "editMessageText", chat_id=ALICE, message_id=1, text="x") == (
        400,
        "Bad Request: message can't be edited",
    )
    assert await error(tg, "editMessageText", chat_id=ALICE, message_id=99, text="x") == (
        400,
        "Bad Request: message to edit not found",
    )


async def test_delete_message_once(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "/login a@b.io secret")
    assert await ok(tg, "deleteMessage", chat_id=ALICE, message_id=1) is True
    assert await error(tg, "deleteMessage", chat_id=ALICE, message_id=1) == (
        400,
        "Bad Request: message to delete not found",
    )
    assert tg.deleted(ALICE) == [1]
    assert tg.message(ALICE, 1) is None


async def test_callback_answers_need_a_real_query(tg: FakeTelegram) -> None:
    query = tg.callback_query(ALICE, 1, "x")["callback_query"]
    assert await ok(tg, "answerCallbackQuery", callback_query_id=query["id"], text="hey")
    assert tg.callback_answers() == [{"callback_query_id": query["id"], "text": "hey"}]
    _status, description = await error(tg, "answerCallbackQuery", callback_query_id="1")
    assert "query ID is invalid" in description


async def test_get_file_and_download(tg: FakeTelegram) -> None:
    update = tg.document(ALICE, ALICE, "notes.md", b"# hi", "text/markdown")
    file_id = update["message"]["document"]["file_id"]
    info = await ok(tg, "getFile", file_id=file_id)
    assert info == {
        "file_id": file_id,
        "file_unique_id": tg.file(file_id).file_unique_id,
        "file_size": 4,
        "file_path": "documents/file_1.md",
    }
    assert tg.download(tg.token, info["file_path"]) == (200, b"# hi")
    assert tg.download("1:wrong", info["file_path"])[0] == 404
    assert tg.download(tg.token, "documents/nope.md")[0] == 404
    assert await error(tg, "getFile", file_id="nope") == (400, "Bad Request: invalid file_id")


async def test_get_file_refuses_files_over_20_mb(tg: FakeTelegram) -> None:
    update = tg.document(ALICE, ALICE, "big.txt", b"x", file_size=20 * 1024 * 1024 + 1)
    assert update["message"]["document"]["file_size"] == 20 * 1024 * 1024 + 1
    file_id = update["message"]["document"]["file_id"]
    assert await error(tg, "getFile", file_id=file_id) == (
        400,
        "Bad Request: file is too big",
    )


async def test_send_document_by_file_id_reuses_the_file(tg: FakeTelegram) -> None:
    update = tg.document(ALICE, ALICE, "a.py", b"print(1)", "text/x-python")
    file_id = update["message"]["document"]["file_id"]
    message = await ok(tg, "sendDocument", chat_id=ALICE, document=file_id)
    assert message["document"]["file_id"] == file_id
    assert tg.documents(ALICE)[0].data == b"print(1)"
    assert await error(tg, "sendDocument", chat_id=ALICE, document="bogus") == (
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )


async def test_commands_round_trip(tg: FakeTelegram) -> None:
    commands = [{"command": "start", "description": "Welcome"}]
    assert await ok(tg, "setMyCommands", commands=commands)
    assert await ok(tg, "getMyCommands") == commands
    assert tg.commands() == commands
    assert await ok(tg, "getMyCommands", language_code="de") == []
    bad = [{"command": "Start!", "description": "x"}]
    assert await error(tg, "setMyCommands", commands=bad) == (
        400,
        "Bad Request: BOT_COMMAND_INVALID",
    )


async def test_plain_methods(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    me = await ok(tg, "getme")  # method names are case-insensitive
    assert me["username"] == "SnippetVaultTestBot"
    assert me["id"] == 123456789
    assert await ok(tg, "sendChatAction", chat_id=ALICE, action="typing")
    assert await error(tg, "sendChatAction", chat_id=ALICE, action="dancing") == (
        400,
        "Bad Request: wrong parameter action in request",
    )
    assert await ok(tg, "logOut") is True
    assert await ok(tg, "close") is True
    assert [c.method for c in tg.calls()][:1] == ["getMe"]


async def test_unknown_method_and_wrong_token(tg: FakeTelegram) -> None:
    assert await error(tg, "sendTelepathy") == (404, "Not Found: method not found")
    status, body = await tg.call("1:wrong", "getMe", {})
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})


async def test_injected_failures_are_consumed_in_order(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    tg.fail_next("sendMessage", "Internal Server Error", error_code=500, times=2)
    tg.fail_next("sendMessage", retry_after=7)
    for _ in range(2):
        assert await error(tg, "sendMessage", chat_id=ALICE, text="x") == (
            500,
            "Internal Server Error",
        )
    assert await call(tg, "sendMessage", chat_id=ALICE, text="x") == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    assert await ok(tg, "sendMessage", chat_id=ALICE, text="x")
    assert [c.ok for c in tg.calls("sendMessage")] == [False, False, False, True]


async def test_blocked_users_cannot_be_messaged(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    tg.block(ALICE)
    assert await error(tg, "sendMessage", chat_id=ALICE, text="x") == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    tg.unblock(ALICE)
    assert await ok(tg, "sendMessage", chat_id=ALICE, text="x")


async def test_a_bug_in_the_fake_is_a_loud_500(
    tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(tg: FakeTelegram, params: Any, files: Any) -> None:
        raise KeyError("oops")

    monkeypatch.setitem(state._HANDLERS, "getme", ("getMe", broken))
    status, body = await tg.call(tg.token, "getMe", {})
    assert status == 500
    assert body["description"] == "Fake Bot API bug: KeyError('oops')"
    assert len(tg.fake_errors) == 1
    tg.fake_errors.clear()  # the fixture fails any test that leaves one


async def test_real_methods_the_fake_lacks_are_loud(tg: FakeTelegram) -> None:
    status, body = await tg.call(tg.token, "sendInvoice", {})
    assert status == 500
    assert "sendInvoice is a Bot API method the fake lacks" in body["description"]
    assert isinstance(tg.fake_errors.pop(), NotImplementedError)


async def test_bad_message_ids_are_a_bad_request(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    assert await error(tg, "deleteMessages", chat_id=ALICE, message_ids=["x"]) == (
        400,
        "Bad Request: can't parse message_ids JSON array",
    )
    assert await ok(tg, "deleteMessages", chat_id=ALICE, message_ids=[1, 5])
    assert tg.deleted(ALICE) == [1]


# --- waiting ------------------------------------------------------------------------------------


async def test_wait_for_message_sees_only_messages_after_the_mark(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    await ok(tg, "sendMessage", chat_id=ALICE, text="hello")
    mark = tg.mark()

    async def reply_later() -> None:
        await asyncio.sleep(0.05)
        await ok(tg, "sendMessage", chat_id=ALICE, text="hello again")

    task = asyncio.create_task(reply_later())
    message = await tg.wait_for_message(ALICE, "hello", since=mark, timeout=WAIT)
    await task
    assert message.text == "hello again"


async def test_wait_for_times_out_with_a_diagnosis(tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "hi")
    await call(tg, "sendMessage", chat_id=ALICE, text="")
    with pytest.raises(TimeoutError) as timeout:
        await tg.wait_for_message(ALICE, "never", timeout=0.05)
    assert "sendMessage {'chat_id': 1001, 'text': ''} -> Bad Request: message text is empty" in str(
        timeout.value
    )
    assert "1 update(s) pending" in str(timeout.value)


async def test_wait_until_delivered(tg: FakeTelegram) -> None:
    update = tg.private_message(ALICE, ALICE, "hi")
    waiting = asyncio.create_task(tg.wait_until_delivered(update, timeout=WAIT))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await ok(tg, "getUpdates", offset=update["update_id"] + 1)
    await asyncio.wait_for(waiting, WAIT)
