"""One rendering per snippet version: a snippet fetched again reuses its email body."""

from __future__ import annotations

import email.policy
import io
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.policy import Policy
from typing import Any

import pytest
from mail_fakes import SENDER, make_email
from markupsafe import Markup

from core.entities import EmailKind
from core.sandbox import DeadlineExceeded
from mail.render import CodeHighlighter, EmailRenderer, highlight_code


class CountingHighlighter:
    """Highlights in process, counting the calls (what the child process would be asked)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, code: str, language: str) -> Markup:
        self.calls += 1
        return highlight_code(code, language)

    async def close(self) -> None:
        pass


class OverrunningSandbox:
    """Every highlighting overruns its deadline."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, function: Any, *args: Any) -> Any:
        self.calls += 1
        raise DeadlineExceeded("email highlighting: over the deadline")

    async def close(self) -> None:
        pass


def retrieved(**context: Any) -> Any:
    return make_email(EmailKind.SNIPPET_RETRIEVED, **context)


async def send(renderer: EmailRenderer, email: Any) -> EmailMessage:
    """What the worker does with one email."""
    highlighted = await renderer.highlight(email)
    return renderer.render(email, SENDER, highlighted=highlighted)


def parts(message: EmailMessage) -> list[str]:
    return [str(part.get_payload()) for part in message.walk() if not part.is_multipart()]


async def test_a_version_fetched_again_is_highlighted_and_rendered_once() -> None:
    highlighter = CountingHighlighter()
    renderer = EmailRenderer(highlighter)  # type: ignore[arg-type]
    first = await send(renderer, retrieved(to="ada@example.com"))
    second = await send(renderer, retrieved(to="bob@example.com"))
    assert highlighter.calls == 1
    assert renderer.cache_counts[0] >= 1
    # Same body, own envelope.
    assert parts(first) == parts(second)
    assert "color" in parts(second)[1]  # the highlighted HTML part, kept
    assert second["To"] == "bob@example.com" and first["To"] == "ada@example.com"
    assert first["Message-ID"] != second["Message-ID"]
    assert first.as_bytes().split(b"\n\n", 1)[1] != b""


async def test_an_edit_or_rename_renders_again() -> None:
    highlighter = CountingHighlighter()
    renderer = EmailRenderer(highlighter)  # type: ignore[arg-type]
    await send(renderer, retrieved())
    edited = await send(renderer, retrieved(code="print('edited')\n"))
    renamed = await send(renderer, retrieved(code="print('edited')\n", title="Renamed"))
    assert highlighter.calls == 3
    assert "edited" in parts(edited)[0] and "Renamed" in parts(renamed)[0]
    assert "Quick sort" not in parts(renamed)[0]


async def test_plain_code_after_an_overrun_is_not_kept() -> None:
    highlighter = CodeHighlighter()
    sandbox = OverrunningSandbox()
    highlighter._sandbox = sandbox  # type: ignore[assignment]
    renderer = EmailRenderer(highlighter)
    shown = await send(renderer, retrieved())
    assert "def quick_sort" in parts(shown)[1]
    await send(renderer, retrieved())
    assert sandbox.calls == 2  # tried again: the plain body was not kept


async def test_the_cache_is_bounded_by_entries_and_size() -> None:
    highlighter = CountingHighlighter()
    renderer = EmailRenderer(highlighter, cache_entries=2)  # type: ignore[arg-type]
    for n in (1, 2, 3, 1):
        await send(renderer, retrieved(code=f"x = {n}\n"))
    assert highlighter.calls == 4  # version 1 was evicted by version 3

    highlighter = CountingHighlighter()
    renderer = EmailRenderer(highlighter, cache_chars=2_000)  # type: ignore[arg-type]
    big = "y = 1\n" * 400
    await send(renderer, retrieved(code=big))
    await send(renderer, retrieved(code=big))
    assert highlighter.calls == 2  # too large to keep


async def test_other_kinds_and_a_renderer_without_highlighting_still_render() -> None:
    renderer = EmailRenderer()
    plain = await send(renderer, retrieved())
    again = await send(renderer, retrieved())
    assert parts(plain) == parts(again)
    alert = await send(renderer, make_email(EmailKind.LOGIN_ALERT))
    assert "Login Alert" in parts(alert)[0]


def generated(message: EmailMessage, policy: Policy[Any] | None) -> bytes:
    """The message as the standard generator writes it, part by part (what `as_bytes` gave
    before the flattened parts were kept)."""
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=policy or message.policy).flatten(message)
    return out.getvalue()


POLICIES = {
    "eml file (LF)": None,
    "SMTP (CRLF)": email.policy.default.clone(linesep="\r\n", utf8=False),
    "SMTPUTF8 (CRLF)": email.policy.default.clone(linesep="\r\n", utf8=True),
}


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
@pytest.mark.parametrize(
    ("to", "title", "filename"),
    [
        ("ada@example.com", "Quick sort", "quick_sort.py"),
        ("Zoë Ådams <zoe@example.com>", "Grüße 🚀 <b>", "grüße 🚀.js"),
        ("zoë@exämple.com", "ünïcode", "a very long file name for a snippet, " * 3 + ".py"),
        ("ada.lovelace.with.a.rather.long.address@analytical-engine.example.com", "x", "x.py"),
    ],
)
async def test_a_kept_body_is_sent_byte_for_byte_as_the_generator_writes_it(
    policy: Policy[Any] | None, to: str, title: str, filename: str
) -> None:
    renderer = EmailRenderer()
    first = await send(renderer, retrieved(to=to, title=title, filename=filename))
    second = await send(renderer, retrieved(to="bob@example.com", title=title, filename=filename))
    third = await send(renderer, retrieved(to=to, title=title, filename=filename))

    for message in (first, second, third, first):
        assert message.as_bytes(policy=policy) == generated(message, policy)
    assert bytes(third) == generated(third, None)
    assert third.as_bytes(unixfrom=True).startswith(b"From ")
    received = email.message_from_bytes(third.as_bytes(policy=policy), policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["To"] == third["To"]
    assert received["Message-ID"] == third["Message-ID"] != first["Message-ID"]
    (attachment,) = received.iter_attachments()
    assert attachment.get_filename() == filename


async def test_the_parts_of_a_kept_body_are_flattened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    flattened_parts = 0
    handle_text = BytesGenerator._handle_text

    def counting(generator: BytesGenerator, message: Message) -> None:
        nonlocal flattened_parts
        flattened_parts += 1
        handle_text(generator, message)

    monkeypatch.setattr(BytesGenerator, "_handle_text", counting)
    renderer = EmailRenderer()
    smtp = email.policy.default.clone(linesep="\r\n")

    (await send(renderer, retrieved(to="ada@example.com"))).as_bytes(policy=smtp)
    assert flattened_parts == 3  # plain text, HTML, attachment
    for n in range(5):
        (await send(renderer, retrieved(to=f"reader{n}@example.com"))).as_bytes(policy=smtp)
    assert flattened_parts == 3

    (await send(renderer, retrieved(code="print('edited')\n"))).as_bytes(policy=smtp)
    assert flattened_parts == 6  # another version


async def test_each_email_counts_once_in_the_cache_stats() -> None:
    renderer = EmailRenderer(CountingHighlighter())  # type: ignore[arg-type]

    for n in range(4):
        await send(renderer, retrieved(to=f"reader{n}@example.com"))
    await send(renderer, retrieved(code="print('edited')\n"))

    assert renderer.cache_counts == (3, 2)  # (hits, misses)
