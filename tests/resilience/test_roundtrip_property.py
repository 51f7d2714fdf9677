"""Whatever text a person saves comes back byte for byte: in the chat (the HTML code block,
unescaped, or the document) and as the email's attachment.

Code up to a message's size is sent as a message (`/save <title>` and the code below it);
longer code as a file, as Telegram would make a person do.
"""

from __future__ import annotations

import html
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.entities import Client
from core.errors import AuthenticationError
from core.text import unwrap_fence
from tests.bot.conftest import BotHarness
from tests.secrets_guard import SecretsGuard

CHAT = 9901
EMAIL = "roundtrip@example.com"
PASSWORD = "roundtrip-Pass-5"
MESSAGE_CHARS = 4000
"""Telegram takes at most 4096 characters in a message; longer code goes as a file."""
_CODE_BLOCK = re.compile(r'<pre><code class="[^"]*">(.*?)</code></pre>', re.DOTALL)

_printable = st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S", "Zs"])
_specials = st.sampled_from(
    ["\r\n", "\n", "\t", "<", ">", "&", "&amp;", "</pre>", "<b>", '"', "'", "😀", "👩‍💻", "🇺🇦"]
)
_pieces = st.lists(st.one_of(st.text(_printable, min_size=1, max_size=12), _specials), max_size=40)
code_texts = (
    st.tuples(_pieces.map("".join), st.sampled_from([1, 1, 1, 1, 100]))
    .map(lambda text_and_copies: text_and_copies[0] * text_and_copies[1])
    .filter(lambda code: code.strip() != "")
    # A whole-message ``` fence is unwrapped on purpose (its language noted): not "text".
    .filter(lambda code: unwrap_fence(code).code == code)
)


async def _logged_in(bot: BotHarness) -> None:
    await bot.sign_up(CHAT, EMAIL, PASSWORD)
    assert "is verified" in await bot.say(CHAT, f"/verify {bot.verification_code(EMAIL)}")
    assert "Logged in" in await bot.log_in(CHAT, EMAIL, PASSWORD)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(code=code_texts)
async def test_saved_text_comes_back_byte_for_byte(
    code: str, hostile_bot: BotHarness, secrets_guard: SecretsGuard
) -> None:
    bot = hostile_bot
    secrets_guard.remember(PASSWORD)
    try:  # the harness lives for the whole test function: log in on the first example
        await bot.services.accounts.current_user(Client.chat(CHAT))
    except AuthenticationError:
        await _logged_in(bot)
    for old in bot.inbox.directory.glob("*.eml"):
        old.unlink()

    if len(code) <= MESSAGE_CHARS:
        reply = await bot.say(CHAT, f"/save Round trip\n{code}")
    else:
        update = bot.tg.document(CHAT, CHAT, "roundtrip.txt", code.encode(), enqueue=False)
        [answer] = await bot.exchange(CHAT, update)
        reply = answer.text
    match = re.search(r"/get (\d+)", reply)
    assert match, reply
    ref = match.group(1)

    [shown] = await bot.exchange(
        CHAT, bot.tg.private_message(CHAT, CHAT, f"/get {ref}", enqueue=False)
    )
    if shown.document is not None:
        assert shown.document.data == code.encode()
    else:
        assert shown.raw_text is not None
        block = _CODE_BLOCK.search(shown.raw_text)
        assert block, shown.raw_text[:200]
        assert html.unescape(block.group(1)) == code
        assert f"\n{code}\n" in shown.text  # and what the person sees, as Telegram parses it

    await bot.deliver_emails()
    [email] = bot.inbox.to(EMAIL, "Your Requested Snippet")
    [attachment] = list(email.iter_attachments())
    assert attachment.get_payload(decode=True) == code.encode()
