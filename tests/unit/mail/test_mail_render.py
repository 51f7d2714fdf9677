from __future__ import annotations

import dataclasses
import email
import email.policy
from email.message import EmailMessage
from importlib.resources import files

import pytest
from jinja2 import UndefinedError
from mail_fakes import CONTEXTS, SENDER, make_email

from core.entities import EmailKind
from mail.render import SUBJECTS, EmailRenderer, format_when, highlight_code


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def reparsed(message: EmailMessage) -> EmailMessage:
    """What the receiving side sees: the message serialised and parsed back."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


EXPECTED_SUBJECTS = {
    EmailKind.VERIFY_EMAIL: "Verify your email",
    EmailKind.LOGIN_ALERT: "Login Alert",
    EmailKind.SNIPPET_CREATED: "New Snippet Created",
    EmailKind.SNIPPET_DELETED: "Snippet Deleted",
    EmailKind.SNIPPET_RETRIEVED: "Your Requested Snippet",
    EmailKind.PASSWORD_RESET: "Reset your password",
}


def test_every_kind_has_a_subject_and_both_templates_in_the_package() -> None:
    templates = files("mail") / "templates"
    assert set(SUBJECTS) == set(EmailKind)
    for kind in EmailKind:
        assert (templates / f"{kind.value}.txt").is_file()
        assert (templates / f"{kind.value}.html").is_file()


@pytest.mark.parametrize("kind", list(EmailKind))
def test_headers_and_alternative_parts(renderer: EmailRenderer, kind: EmailKind) -> None:
    outgoing = make_email(kind, to="ada@example.com")

    message = reparsed(renderer.render(outgoing, SENDER))

    assert message["Subject"] == EXPECTED_SUBJECTS[kind]
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == outgoing.message_id
    assert message["Date"].datetime == outgoing.created_at
    alternative = message if kind is not EmailKind.SNIPPET_RETRIEVED else message.get_payload(0)
    assert isinstance(alternative, EmailMessage)
    assert alternative.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert EXPECTED_SUBJECTS[kind] in text_of(message)
    assert EXPECTED_SUBJECTS[kind] in html_of(message)


def test_message_id_is_stable_across_renders(renderer: EmailRenderer) -> None:
    outgoing = make_email(EmailKind.SNIPPET_CREATED)

    first = renderer.render(outgoing, SENDER)
    second = renderer.render(outgoing, SENDER)

    assert first["Message-ID"] == second["Message-ID"] == outgoing.message_id
    assert first["Date"] == second["Date"]


def test_message_id_without_brackets_gets_them(renderer: EmailRenderer) -> None:
    outgoing = dataclasses.replace(make_email(), message_id="abc@snippetvault.test")

    assert renderer.render(outgoing, SENDER)["Message-ID"] == "<abc@snippetvault.test>"


def test_verify_email_holds_the_link_and_the_verify_command(renderer: EmailRenderer) -> None:
    message = reparsed(renderer.render(make_email(EmailKind.VERIFY_EMAIL), SENDER))
    link = CONTEXTS[EmailKind.VERIFY_EMAIL]["link"]

    for body in (text_of(message), html_of(message)):
        assert link in body
        assert "/verify 428913" in body
        assert "30 Nov 2026, 13:45 UTC" in body
    assert f'href="{link}"' in html_of(message)


@pytest.mark.parametrize(
    ("links", "shown"),
    [
        ({"web_link": "https://vault.example.com/app/#verify=p"}, "https://vault.example.com/"),
        ({}, None),
        ({"link": ""}, None),  # a row queued by an older version without a bot name
    ],
)
def test_verify_email_without_a_bot_name_has_no_chat_link(
    renderer: EmailRenderer, links: dict[str, str], shown: str | None
) -> None:
    """`snippetvault api` without a bot token knows no bot name: no `https://t.me/?start=`."""
    context = {"code": "428913", "expires_at": "2026-11-30T13:45:00+00:00", **links}
    email = dataclasses.replace(make_email(EmailKind.VERIFY_EMAIL), context=context)
    message = reparsed(renderer.render(email, SENDER))

    for body in (text_of(message), html_of(message)):
        assert "t.me" not in body
        assert "Telegram:" not in body
        assert "/verify 428913" in body
        assert "30 Nov 2026, 13:45 UTC" in body
        if shown is None:
            assert "The code works until" in body
            assert "start=" not in body
            assert "#verify=" not in body
        else:
            assert shown in body
            assert "The link and the code work until" in body


def test_login_alert_shows_the_time_with_its_zone_and_the_reset_hint(
    renderer: EmailRenderer,
) -> None:
    message = reparsed(renderer.render(make_email(EmailKind.LOGIN_ALERT), SENDER))

    for body in (text_of(message), html_of(message)):
        assert "29 Nov 2026, 13:45 UTC" in body
        assert "If this wasn't you, reset your password" in body
        assert "/reset" in body


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-29T13:45:00+00:00", "29 Nov 2026, 13:45 UTC"),
        ("2026-11-29T13:45:00Z", "29 Nov 2026, 13:45 UTC"),
        ("2026-01-05T08:05:00+01:00", "5 Jan 2026, 08:05 UTC+01:00"),
        ("2026-07-01T23:59:00-05:30", "1 Jul 2026, 23:59 UTC-05:30"),
    ],
)
def test_times_keep_their_zone(value: str, shown: str) -> None:
    assert format_when(value) == shown


def test_snippet_created_and_deleted_hold_title_language_and_time(
    renderer: EmailRenderer,
) -> None:
    created = reparsed(renderer.render(make_email(EmailKind.SNIPPET_CREATED), SENDER))
    deleted = reparsed(renderer.render(make_email(EmailKind.SNIPPET_DELETED), SENDER))

    for body in (text_of(created), html_of(created)):
        assert "Quick sort" in body
        assert "python" in body
        assert "29 Nov 2026, 13:45 UTC" in body
        assert "/get 3" in body
    for body in (text_of(deleted), html_of(deleted)):
        assert "Quick sort" in body
        assert "#3" in body  # as the chat writes a snippet's number
    assert 'The snippet "Quick sort" (#3) was deleted' in text_of(deleted)


def test_password_reset_holds_the_code(renderer: EmailRenderer) -> None:
    message = reparsed(renderer.render(make_email(EmailKind.PASSWORD_RESET), SENDER))

    for body in (text_of(message), html_of(message)):
        assert "771204" in body
        assert "/reset" in body


@pytest.mark.parametrize(
    "kind", [EmailKind.SNIPPET_CREATED, EmailKind.SNIPPET_DELETED, EmailKind.SNIPPET_RETRIEVED]
)
def test_user_text_is_escaped_in_html(renderer: EmailRenderer, kind: EmailKind) -> None:
    title = '<script>alert("x")</script> & <b>'
    message = reparsed(renderer.render(make_email(kind, title=title), SENDER))

    html = html_of(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in html
    assert title in text_of(message)


def test_retrieved_code_is_highlighted_inline_and_escaped(renderer: EmailRenderer) -> None:
    code = 'def f():\n    return "</pre><script>steal()</script>"\n'
    highlighted = highlight_code(code, "Python")
    message = reparsed(
        renderer.render(
            make_email(EmailKind.SNIPPET_RETRIEVED, code=code), SENDER, highlighted=highlighted
        )
    )

    html = html_of(message)
    assert "<script>" not in html
    assert "&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;" in html
    assert '<span style="' in html  # inline styles: mail clients drop stylesheets
    assert 'class="k"' not in html
    assert code.rstrip() in text_of(message)


def test_code_without_highlighting_is_shown_plain_and_escaped(renderer: EmailRenderer) -> None:
    code = 'x = "</pre><script>steal()</script>" & 1\n'
    message = reparsed(renderer.render(make_email(EmailKind.SNIPPET_RETRIEVED, code=code), SENDER))

    html = html_of(message)
    assert "<script>" not in html
    assert "x = &#34;&lt;/pre&gt;&lt;script&gt;steal()&lt;/script&gt;&#34; &amp; 1" in html


def test_unknown_language_falls_back_to_plain_text(renderer: EmailRenderer) -> None:
    code = "SELECT * FROM <t> WHERE a < b"
    message = reparsed(
        renderer.render(
            make_email(EmailKind.SNIPPET_RETRIEVED, language="no-such-lang", code=code), SENDER
        )
    )

    assert "SELECT * FROM &lt;t&gt; WHERE a &lt; b" in html_of(message)


def test_full_code_of_a_large_snippet_is_in_every_part(renderer: EmailRenderer) -> None:
    code = "".join(f"line_{number} = {number}  # {'x' * 150}\n" for number in range(2000))
    message = reparsed(renderer.render(make_email(EmailKind.SNIPPET_RETRIEVED, code=code), SENDER))

    assert code.rstrip() in text_of(message)
    assert "line_1999" in html_of(message)
    attachment = next(message.iter_attachments())
    assert attachment.get_content().encode() == code.encode()


@pytest.mark.parametrize(
    ("code", "filename"),
    [
        ("print('hi')\n", "quick_sort.py"),
        ("// grüße, 你好, 🚀\r\nconst x = 'é';\r\n", "grüße 🚀.js"),
        ("no trailing newline\ttab", "notes.txt"),
    ],
)
def test_attachment_is_byte_exact(renderer: EmailRenderer, code: str, filename: str) -> None:
    message = reparsed(
        renderer.render(
            make_email(EmailKind.SNIPPET_RETRIEVED, code=code, filename=filename), SENDER
        )
    )

    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    (attachment,) = attachments
    assert attachment.get_filename() == filename
    assert attachment.get_content_type() == "text/plain"
    assert attachment.get_content_charset() == "utf-8"
    assert attachment.get_payload(decode=True) == code.encode("utf-8")


def test_only_the_retrieved_snippet_has_an_attachment(renderer: EmailRenderer) -> None:
    for kind in EmailKind:
        message = renderer.render(make_email(kind), SENDER)
        expected = 1 if kind is EmailKind.SNIPPET_RETRIEVED else 0
        assert len(list(message.iter_attachments())) == expected


BREAKS = ["\r", "\n", "\r\n", "\u2028", "\x85", "\0"]


@pytest.mark.parametrize("brk", BREAKS)
def test_a_recipient_with_a_line_break_is_refused(renderer: EmailRenderer, brk: str) -> None:
    outgoing = make_email(to=f"ada@example.com{brk}Bcc: eve@example.com")

    with pytest.raises(ValueError, match="To header"):
        renderer.render(outgoing, SENDER)


@pytest.mark.parametrize("brk", BREAKS)
def test_a_sender_with_a_line_break_is_refused(renderer: EmailRenderer, brk: str) -> None:
    with pytest.raises(ValueError, match="From header"):
        renderer.render(make_email(), f"Vault <a@b.test>{brk}Bcc: eve@example.com")


def test_a_message_id_with_a_line_break_is_refused(renderer: EmailRenderer) -> None:
    outgoing = dataclasses.replace(make_email(), message_id="<a@b>\r\nBcc: eve@example.com")

    with pytest.raises(ValueError, match="Message-ID header"):
        renderer.render(outgoing, SENDER)


@pytest.mark.parametrize("brk", BREAKS)
def test_an_attachment_name_with_a_line_break_is_refused(renderer: EmailRenderer, brk: str) -> None:
    outgoing = make_email(EmailKind.SNIPPET_RETRIEVED, filename=f"x.py{brk}Bcc: eve@example.com")

    with pytest.raises(ValueError, match="filename"):
        renderer.render(outgoing, SENDER)


def test_an_empty_recipient_is_refused(renderer: EmailRenderer) -> None:
    with pytest.raises(ValueError, match="To header"):
        renderer.render(make_email(to=""), SENDER)


def test_a_title_with_line_breaks_stays_in_the_body(renderer: EmailRenderer) -> None:
    title = "two\r\nBcc: eve@example.com"
    message = reparsed(renderer.render(make_email(EmailKind.SNIPPET_CREATED, title=title), SENDER))

    assert message["Bcc"] is None
    assert set(message.keys()) >= {"From", "To", "Subject", "Date", "Message-ID"}
    assert "Bcc: eve@example.com" in text_of(message)


def test_a_context_missing_a_key_is_an_error(renderer: EmailRenderer) -> None:
    outgoing = make_email(EmailKind.LOGIN_ALERT)
    outgoing.context.pop("at")

    with pytest.raises(UndefinedError):
        renderer.render(outgoing, SENDER)
