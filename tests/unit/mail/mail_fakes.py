"""In-memory stand-ins for the worker's ports; they follow the port docstrings, lease included."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

from core.entities import EmailKind, OutboxItem, OutboxStatus, OutgoingEmail

SENDER = "SnippetVault <no-reply@snippetvault.test>"

CONTEXTS: dict[EmailKind, dict[str, Any]] = {
    EmailKind.VERIFY_EMAIL: {
        "link": "https://t.me/snippetvault_bot?start=v-Zm9vYmFy",
        "code": "428913",
        "expires_at": "2026-11-30T13:45:00+00:00",
    },
    EmailKind.LOGIN_ALERT: {"at": "2026-11-29T13:45:00+00:00", "chat_id": 123456789},
    EmailKind.SNIPPET_CREATED: {
        "title": "Quick sort",
        "language": "python",
        "ref": 3,
        "created_at": "2026-11-29T13:45:00+00:00",
    },
    EmailKind.SNIPPET_DELETED: {"title": "Quick sort", "ref": 3},
    EmailKind.SNIPPET_RETRIEVED: {
        "title": "Quick sort",
        "language": "python",
        "ref": 3,
        "code": "def quick_sort(items):\n    return sorted(items)\n",
        "filename": "quick_sort.py",
    },
    EmailKind.PASSWORD_RESET: {"code": "771204", "expires_at": "2026-11-29T14:45:00+00:00"},
}


def make_email(
    kind: EmailKind = EmailKind.LOGIN_ALERT, to: str = "ada@example.com", **context: Any
) -> OutgoingEmail:
    email_id = uuid4()
    return OutgoingEmail(
        id=email_id,
        to=to,
        kind=kind,
        context={**CONTEXTS[kind], **context},
        message_id=f"<{email_id}@snippetvault.test>",
        created_at=datetime(2026, 11, 29, 13, 45, tzinfo=UTC),
    )


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 29, 13, 45, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeOutboxQueue:
    """`OutboxQueue` over a dict; a claimed row's `next_attempt_at` is the end of its lease."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.items: dict[UUID, OutboxItem] = {}
        self._lock = asyncio.Lock()

    def add(self, email: OutgoingEmail) -> None:
        self.items[email.id] = OutboxItem(
            email=email, status=OutboxStatus.PENDING, attempts=0, next_attempt_at=email.created_at
        )

    def item(self, email_id: UUID) -> OutboxItem:
        return self.items[email_id]

    async def claim(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        async with self._lock:
            now = self.clock()
            due = sorted(
                (
                    item
                    for item in self.items.values()
                    if item.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
                    and item.next_attempt_at <= now
                ),
                key=lambda item: (item.next_attempt_at, item.email.created_at),
            )[:limit]
            claimed = []
            for item in due:
                leased = dataclasses.replace(
                    item,
                    status=OutboxStatus.SENDING,
                    attempts=item.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=lease_seconds),
                )
                self.items[item.email.id] = leased
                claimed.append(leased)
            return claimed

    async def purge_finished(self, before: datetime) -> int:
        finished = [
            email_id
            for email_id, item in self.items.items()
            if item.status in (OutboxStatus.SENT, OutboxStatus.FAILED)
            and item.email.created_at < before
        ]
        for email_id in finished:
            del self.items[email_id]
        return len(finished)

    async def mark_all_sent(self, email_ids: Sequence[UUID], at: datetime) -> None:
        for email_id in email_ids:
            self._update(email_id, status=OutboxStatus.SENT, sent_at=at)

    async def retry_later(self, email_id: UUID, error: str, at: datetime) -> None:
        self._update(email_id, status=OutboxStatus.PENDING, next_attempt_at=at, last_error=error)

    async def mark_failed(self, email_id: UUID, error: str) -> None:
        self._update(email_id, status=OutboxStatus.FAILED, last_error=error)

    async def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in OutboxStatus}
        for item in self.items.values():
            counts[item.status.value] += 1
        return counts

    def _update(self, email_id: UUID, **changes: object) -> None:
        self.items[email_id] = dataclasses.replace(self.items[email_id], **changes)  # type: ignore[arg-type]


class FakeTransport:
    """Delivers into `sent`; `failures[recipient]` lists errors to raise, one per attempt.

    With a `gate`, every send waits for it to be set: that holds sends "in flight".
    `connections` counts the connections opened with `connection()`, `closes` the calls of
    `close()`; `idle_closed` is set at each call of `close_idle()`.
    """

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failures: dict[str, list[Exception]] = {}
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self._in_flight_changed = asyncio.Condition()
        self.connections = 0
        self.idle_closed = asyncio.Event()
        self.closes = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[FakeTransport]:
        self.connections += 1
        yield self

    async def close_idle(self) -> None:
        self.idle_closed.set()

    async def close(self) -> None:
        self.closes += 1

    async def send(self, message: EmailMessage) -> None:
        async with self._in_flight_changed:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._in_flight_changed.notify_all()
        try:
            if self.gate is not None:
                await self.gate.wait()
            pending = self.failures.get(str(message["To"]), [])
            if pending:
                raise pending.pop(0)
            self.sent.append(message)
        finally:
            self.in_flight -= 1

    async def until_in_flight(self, count: int) -> None:
        async with self._in_flight_changed:
            await self._in_flight_changed.wait_for(lambda: self.in_flight >= count)
