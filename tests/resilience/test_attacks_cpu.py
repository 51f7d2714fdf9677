"""One user's content must not stall everyone else (issue 9, items 1 and 2).

Detecting a language and highlighting an email used to run on the event loop with quadratic
(or worse) work: a file of 8,190 newlines delayed another user's /list by 40 s, a ```systemd
block of 1,500 spaces another user's /help by 18 s. Now the patterns are linear and Pygments runs
in a child process with a deadline. A stall is measured as the CPU time of the thread that
runs the event loop (`time.thread_time`), not wall-clock time: other processes on a busy
machine cannot add to it, while work that blocks the loop adds all of its seconds. The bound
(2 CPU seconds) is generous: the fix costs milliseconds, the attacks 8-40 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from charset_normalizer import CharsetMatches, from_bytes

import core.text
from core.text import GUESS_SAMPLE_CHARS, PLAIN_TEXT, detect_language_quickly, guess_sample
from tests.bot.conftest import BotHarness
from tests.resilience.conftest import apologies, query_rows

ATTACKER = 4101
VICTIM = 4102
STALL_BOUND_SECONDS = 2.0
"""Most CPU time the event loop's thread may spend while one of another user's replies is in
flight during the attack (the fixed code spends milliseconds; the attacks took 8–40 s)."""

# Shapes that made the old patterns (`^\s*` under MULTILINE, `[^;]+`) or Pygments' guessers
# quadratic, at the size of the sample they read.
HOSTILE_CODE = {
    "newlines": "\n" * 8190 + "x",
    "spaces and newlines": " \n" * 4095 + "x",
    "blank lines of tabs": "\t\n" * 4095 + "x",
    "css-like lines without a semicolon": "a: b\n" * 1638,
    "a css property of spaces": "a:" + " " * 8190,
    "def with brackets": "def f(" + ") -> " * 1638,
    "dollars": "$" * 8191,
    "braces": "{" * 8191,
}


@pytest.mark.parametrize("code", HOSTILE_CODE.values(), ids=HOSTILE_CODE.keys())
def test_detection_takes_time_linear_in_a_capped_sample(code: str) -> None:
    started = time.thread_time()
    for _ in range(20):
        detect_language_quickly(code + code)  # twice the sample: only the sample is read
    assert time.thread_time() - started < STALL_BOUND_SECONDS
    assert len(guess_sample(code * 100)) <= GUESS_SAMPLE_CHARS


async def _stalls_while(
    bot: BotHarness, attack: Awaitable[object], command: str = "/list", answer: str = "no snippets"
) -> list[float]:
    """Runs `attack` and, until it is done, the victim's `command` again and again: how much
    CPU time the event loop's thread spent while each of the victim's replies was in flight
    (all of a blocking attack's, none of a busy machine's). One of them is always in flight
    when the attack's slow part starts."""
    task = asyncio.ensure_future(attack)
    waits: list[float] = []
    while not task.done() or not waits:
        started = time.thread_time()
        await asyncio.sleep(0.01)  # the fake Bot API answers without yielding: let others run
        reply = await bot.say(VICTIM, command)
        waits.append(time.thread_time() - started)
        assert answer in reply, reply
    await task
    return waits


def _recording_guesses(bot: BotHarness) -> list[int]:
    """Wraps the bot's Pygments guess: the sizes of the samples it is handed."""
    sizes: list[int] = []
    guess: Callable[[str, str | None], Awaitable[str]] = bot.services.snippets._guess_language

    async def recorded(sample: str, filename: str | None) -> str:
        sizes.append(len(sample))
        return await guess(sample, filename)

    bot.services.snippets._guess_language = recorded
    return sizes


async def test_a_file_of_newlines_does_not_stall_other_users(hostile_bot: BotHarness) -> None:
    bot = hostile_bot
    await bot.user(ATTACKER)
    await bot.user(VICTIM)
    sizes = _recording_guesses(bot)
    document = bot.tg.document(ATTACKER, ATTACKER, "notes.zzz", b"\n" * 8190 + b"x", enqueue=False)

    waits = await _stalls_while(bot, bot.send(document))

    assert max(waits) < STALL_BOUND_SECONDS, waits
    assert sizes and max(sizes) <= GUESS_SAMPLE_CHARS
    assert "/get 1" in bot.tg.sent_messages(ATTACKER)[-1].text
    rows = await query_rows(bot, "SELECT language FROM snippets")
    assert rows == [(PLAIN_TEXT,)]
    assert apologies(bot) == []


async def test_a_large_file_in_a_legacy_encoding_is_decoded_off_the_event_loop(
    hostile_bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detecting the charset of 256 KB that is not UTF-8 costs 50-100 ms of CPU: on the event
    loop, every such file held all other users' replies that long (not timed here: where the
    detector runs is what matters, and a busy machine cannot change it)."""
    bot = hostile_bot
    await bot.user(ATTACKER)
    loop_thread = threading.get_ident()
    detected_in: list[int] = []

    def recording_from_bytes(data: bytes) -> CharsetMatches:
        detected_in.append(threading.get_ident())
        return from_bytes(data)

    monkeypatch.setattr(core.text, "from_bytes", recording_from_bytes)
    russian = (
        "# Функция считает среднюю оценку учеников\n"
        "def average(marks):\n"
        "    return sum(marks) / len(marks)  # результат\n"
    )
    legacy = (russian * 2400).encode("cp1251")  # 258 KB, 361 KB as UTF-8
    document = bot.tg.document(ATTACKER, ATTACKER, "marks.py", legacy, enqueue=False)

    await bot.send(document)

    assert detected_in and loop_thread not in detected_in
    assert "/get 1" in bot.tg.sent_messages(ATTACKER)[-1].text
    [(code,)] = await query_rows(bot, "SELECT code FROM snippets")
    assert code == russian * 2400
    assert apologies(bot) == []


async def test_a_save_of_newlines_does_not_stall_other_users(hostile_bot: BotHarness) -> None:
    bot = hostile_bot
    await bot.user(ATTACKER)
    await bot.user(VICTIM)
    sizes = _recording_guesses(bot)
    message = bot.tg.private_message(
        ATTACKER, ATTACKER, "/save t\n" + "\n" * 4080 + "x", enqueue=False
    )

    waits = await _stalls_while(bot, bot.send(message))

    assert max(waits) < STALL_BOUND_SECONDS, waits
    assert sizes and max(sizes) <= GUESS_SAMPLE_CHARS
    assert "/get 1" in bot.tg.sent_messages(ATTACKER)[-1].text
    assert apologies(bot) == []


SYSTEMD_STALL = "x" + " " * 1500 + "!"
"""Pygments' systemd lexer took 18 s on this (39 s on 2,000 characters)."""


async def test_a_slow_lexer_stalls_neither_other_users_nor_their_emails(
    hostile_bot: BotHarness,
) -> None:
    bot = hostile_bot
    await bot.user(ATTACKER)
    await bot.user(VICTIM)
    number = await bot.save(ATTACKER, "stall", f"```systemd\n{SYSTEMD_STALL}\n```")
    await bot.say(ATTACKER, f"/get {number}")
    await bot.say(VICTIM + 1, "/signup late@example.com pass-word-9")  # an email of its own

    waits = await _stalls_while(bot, bot.deliver_emails(), "/help", "/signup")

    # Answers kept coming while the attacker's email was being rendered.
    assert len(waits) > 1, waits
    assert max(waits) < STALL_BOUND_SECONDS, waits
    # The verification email did not wait for the slow one either, and both went out.
    subjects = [subject for _, subject in bot.inbox.subjects()]
    assert subjects[-2:] == ["Verify your email", "Your Requested Snippet"], subjects
    sent = bot.inbox.to(f"user{ATTACKER}@example.com", "Your Requested Snippet")[-1]
    html = sent.get_body(("html",))
    assert html is not None
    content = str(html.get_content())
    assert SYSTEMD_STALL in content  # shown plain, in full
    assert '<span style="' not in content
    assert apologies(bot) == []
