"""A tiny real PTB Application against the fake, through FakeRequest and through HTTP."""

from datetime import timedelta
from typing import Any

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakebotapi import FakeTelegram, polling

ALICE = 1001
CODE = b"def f():\r\n    return '\xc3\xa9'\n\x00\xff--boundary-lookalike\r\n"

Builder = ApplicationBuilder[Any, Any, Any, Any, Any, Any]
App = Application[Any, Any, Any, Any, Any, Any]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message
    await update.effective_message.reply_text("hello")


async def measure_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message
    assert message.document
    file = await message.document.get_file()
    data = bytes(await file.download_as_bytearray())
    context.bot_data.setdefault("downloads", []).append(data)
    await message.reply_text(f"{len(data)} bytes")


async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message
    keyboard = [
        [
            InlineKeyboardButton("Python", callback_data="lang:python"),
            InlineKeyboardButton("Rust", callback_data="lang:rust"),
        ]
    ]
    await update.effective_message.reply_text(
        "Pick one", reply_markup=InlineKeyboardMarkup(keyboard)
    )


async def picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query
    assert query.data
    await query.answer("noted")
    await query.edit_message_text(f"You picked <b>{query.data[5:]}</b>", parse_mode=ParseMode.HTML)


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message
    await message.delete()
    await context.bot.send_message(message.chat_id, "Forgotten.")


def build(builder: Builder) -> App:
    application = builder.build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("menu", menu))
    application.add_handler(CommandHandler("forget", forget))
    application.add_handler(MessageHandler(filters.Document.ALL, measure_document))
    application.add_handler(CallbackQueryHandler(picked))
    return application


async def test_polling_bot_answers_start(builder: Builder, tg: FakeTelegram) -> None:
    async with polling(build(builder)):
        since = tg.mark()
        tg.private_message(ALICE, ALICE, "/start")
        reply = await tg.wait_for_message(ALICE, "hello", since=since)

    assert reply.text == "hello"
    assert tg.last_text(ALICE) == "hello"
    assert tg.calls("getMe")
    assert tg.calls("deleteWebhook")
    assert tg.pending_updates == []  # the shutdown's getUpdates confirmed it


async def test_commands_addressed_to_another_bot_are_ignored(
    builder: Builder, tg: FakeTelegram
) -> None:
    async with polling(build(builder)):
        tg.private_message(ALICE, ALICE, "/start@SomeOtherBot")
        tg.private_message(ALICE, ALICE, "/start@SnippetVaultTestBot deep-link-payload")
        await tg.wait_for_message(ALICE, "hello")
        tg.private_message(ALICE, ALICE, "/menu")  # updates are handled in order
        await tg.wait_for_message(ALICE, "Pick one")

    assert [m.text for m in tg.sent_messages(ALICE)] == ["hello", "Pick one"]


async def test_bot_downloads_a_document_byte_for_byte(builder: Builder, tg: FakeTelegram) -> None:
    application = build(builder)
    async with polling(application):
        tg.document(ALICE, ALICE, "snippet.py", CODE, "text/x-python", caption="mine")
        await tg.wait_for_message(ALICE, "bytes")

    assert tg.last_text(ALICE) == f"{len(CODE)} bytes"
    assert application.bot_data["downloads"] == [CODE]
    assert tg.downloads == ["documents/file_1.py"]


async def test_buttons_answers_edits_and_deletes(builder: Builder, tg: FakeTelegram) -> None:
    async with polling(build(builder)):
        tg.private_message(ALICE, ALICE, "/menu")
        menu_message = await tg.wait_for_message(ALICE, "Pick one")
        assert menu_message.button_texts == ["Python", "Rust"]

        tg.press_button(ALICE, menu_message.message_id, "Rust")
        await tg.wait_for(lambda: menu_message.edited, what="the menu to be edited")

        forget_update = tg.private_message(ALICE, ALICE, "/forget my password")
        await tg.wait_for_message(ALICE, "Forgotten.")

    assert [answer["text"] for answer in tg.callback_answers()] == ["noted"]
    assert menu_message.text == "You picked rust"
    assert menu_message.raw_text == "You picked <b>rust</b>"
    assert menu_message.entities == [{"type": "bold", "offset": 11, "length": 4}]
    assert menu_message.buttons == []  # editing without reply_markup drops the keyboard
    assert tg.deleted(ALICE) == [forget_update["message"]["message_id"]]


async def test_process_update_without_polling(builder: Builder, tg: FakeTelegram) -> None:
    application = build(builder)
    async with application:
        raw = tg.private_message(ALICE, ALICE, "/start", enqueue=False)
        await application.process_update(Update.de_json(raw, application.bot))

    assert tg.last_text(ALICE) == "hello"
    assert tg.pending_updates == []


async def test_bot_api_errors_reach_ptb_as_its_exceptions(
    builder: Builder, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB 22.2+ warns on RetryAfter unless opted in to timedelta periods
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    tg.private_message(ALICE, ALICE, "hi", enqueue=False)
    async with builder.build() as application:
        bot = application.bot

        tg.fail_next("sendMessage", retry_after=3)
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(ALICE, "too fast")
        assert flood.value.retry_after == timedelta(seconds=3)

        with pytest.raises(BadRequest, match="find end tag corresponding to start tag"):
            await bot.send_message(ALICE, "<b>unclosed", parse_mode=ParseMode.HTML)

        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(999, "who?")

        tg.block(ALICE)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(ALICE, "still there?")

    assert tg.sent_messages(ALICE) == []


async def test_files_too_big_for_get_file(builder: Builder, tg: FakeTelegram) -> None:
    update = tg.document(ALICE, ALICE, "huge.log", b"x", file_size=21 * 1024 * 1024)
    async with builder.build() as application:
        with pytest.raises(BadRequest, match="File is too big"):
            await application.bot.get_file(update["message"]["document"]["file_id"])


async def test_uploaded_documents_are_recorded(builder: Builder, tg: FakeTelegram) -> None:
    tg.private_message(ALICE, ALICE, "/get 3", enqueue=False)
    async with builder.build() as application:
        message = await application.bot.send_document(
            ALICE, CODE, filename='snip "ü" \\ 1.py', caption="<i>snip</i>", parse_mode="HTML"
        )

    assert message.document
    assert message.document.file_size == len(CODE)
    assert message.caption == "snip"
    [document] = tg.documents(ALICE)
    assert document.data == CODE
    assert document.filename == 'snip "ü" \\ 1.py'
    assert document.caption == "snip"
    assert tg.calls("sendDocument")[0].files["document"].data == CODE
