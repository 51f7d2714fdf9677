"""Which email each event queues, and the context its template receives."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.entities import EmailKind, Snippet, User
from core.events import (
    Event,
    PasswordResetRequested,
    SnippetCreated,
    SnippetDeleted,
    SnippetRetrieved,
    UserLoggedIn,
    UserSignedUp,
)
from core.notifications import VerificationLinks, email_for, wants_email

from .fakes import LINK_BASE, WEB_BASE, verify_links

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=24)
USER = User(uuid.uuid4(), "ada@example.com", "!", True, NOW)
SNIPPET = Snippet(
    uuid.uuid4(), USER.id, 7, "Quick sort", "def qs(xs):\n    return xs\n", "Python", NOW, NOW
)

EVENTS: dict[EmailKind, tuple[Callable[[], Event], dict[str, Any]]] = {
    EmailKind.VERIFY_EMAIL: (
        lambda: UserSignedUp(USER, "ABCD2345", "payload_x-1", LATER),
        {
            "link": f"{LINK_BASE}?start=payload_x-1",
            "web_link": f"{WEB_BASE}/app/#verify=payload_x-1",
            "code": "ABCD2345",
            "expires_at": LATER.isoformat(),
        },
    ),
    EmailKind.LOGIN_ALERT: (
        lambda: UserLoggedIn(USER, NOW),
        {"at": "2030-01-01T09:00:00+00:00"},
    ),
    EmailKind.PASSWORD_RESET: (
        lambda: PasswordResetRequested(USER, "WXYZ6789", LATER),
        {"code": "WXYZ6789", "expires_at": LATER.isoformat()},
    ),
    EmailKind.SNIPPET_CREATED: (
        lambda: SnippetCreated(USER, SNIPPET),
        {"title": "Quick sort", "language": "Python", "ref": 7, "created_at": NOW.isoformat()},
    ),
    EmailKind.SNIPPET_DELETED: (
        lambda: SnippetDeleted(USER, SNIPPET),
        {"title": "Quick sort", "ref": 7},
    ),
    EmailKind.SNIPPET_RETRIEVED: (
        lambda: SnippetRetrieved(USER, SNIPPET),
        {
            "title": "Quick sort",
            "language": "Python",
            "ref": 7,
            "code": SNIPPET.code,
            "filename": "Quick_sort.py",
        },
    ),
}


def test_every_kind_of_email_is_covered() -> None:
    assert set(EVENTS) == set(EmailKind)


@pytest.mark.parametrize("kind", list(EmailKind))
def test_email_for_each_event(kind: EmailKind) -> None:
    make, context = EVENTS[kind]

    email = email_for(make(), NOW, verify_links=verify_links)

    assert (email.kind, email.to, email.created_at) == (kind, USER.email, NOW)
    assert email.context == context
    assert json.loads(json.dumps(email.context)) == context  # the outbox stores JSON
    assert email.message_id == f"<{email.id.hex}@snippetvault>"


def test_each_email_has_its_own_id() -> None:
    make, _ = EVENTS[EmailKind.LOGIN_ALERT]
    first = email_for(make(), NOW, verify_links=verify_links)
    second = email_for(make(), NOW, verify_links=verify_links)
    assert first.id != second.id
    assert first.message_id != second.message_id


def test_login_alert_time_keeps_its_zone() -> None:
    at = datetime(2030, 6, 1, 12, 30, tzinfo=UTC)
    email = email_for(UserLoggedIn(USER, at), NOW, verify_links=verify_links)
    parsed = datetime.fromisoformat(email.context["at"])
    assert parsed == at
    assert parsed.utcoffset() == timedelta(0)


def test_without_a_web_address_the_verification_email_has_only_the_chat_link() -> None:
    email = email_for(
        UserSignedUp(USER, "ABCD2345", "p", LATER),
        NOW,
        verify_links=lambda payload: VerificationLinks(f"{LINK_BASE}?start={payload}"),
    )
    assert email.context["link"] == f"{LINK_BASE}?start=p"
    assert "web_link" not in email.context


def test_without_a_bot_name_the_verification_email_has_no_chat_link() -> None:
    email = email_for(
        UserSignedUp(USER, "ABCD2345", "p", LATER),
        NOW,
        verify_links=lambda payload: VerificationLinks(None, f"{WEB_BASE}/app/#verify={payload}"),
    )
    assert "link" not in email.context
    assert email.context["web_link"] == f"{WEB_BASE}/app/#verify=p"


@pytest.mark.parametrize("kind", list(EmailKind))
def test_unverified_addresses_only_get_the_verification_email(kind: EmailKind) -> None:
    unverified = User(uuid.uuid4(), "new@example.com", "!", False, NOW)
    assert wants_email(USER, kind)
    assert wants_email(unverified, kind) is (kind is EmailKind.VERIFY_EMAIL)
