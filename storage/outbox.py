"""The worker's side of the email outbox: claim due emails under a lease, record the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from core.entities import EmailKind, OutboxItem, OutboxStatus, OutgoingEmail
from core.ports import Clock
from storage.errors import unavailable_as_domain_error
from storage.models import outbox

REDACTED_CONTEXT: dict[str, Any] = {}
"""What a row keeps of its email once sent or failed for good: nothing. The context held the
one-time codes, links and snippet code; the recipient, kind and outcome stay until purged."""


class FailedEmail(NamedTuple):
    to: str
    error: str


class SqlOutboxQueue:
    """Each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def claim(self, limit: int, lease_seconds: float) -> list[OutboxItem]:
        now = self._clock()
        due = sa.or_(
            sa.and_(outbox.c.status == OutboxStatus.PENDING.value, outbox.c.next_attempt_at <= now),
            sa.and_(outbox.c.status == OutboxStatus.SENDING.value, outbox.c.locked_until <= now),
        )
        # One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING: concurrent
        # workers on Postgres skip each other's rows; SQLite (no FOR UPDATE) serialises the
        # statement under its write lock, so each row is claimed once there too.
        chosen = (
            sa.select(outbox.c.id)
            .where(due)
            .order_by(outbox.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            sa.update(outbox)
            .where(outbox.c.id.in_(chosen))
            .values(
                status=OutboxStatus.SENDING.value,
                attempts=outbox.c.attempts + 1,
                locked_until=now + timedelta(seconds=lease_seconds),
            )
            .returning(*outbox.c)
        )
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                rows = (await connection.execute(statement)).all()
        items = [_item(row) for row in rows]
        return sorted(items, key=lambda item: (item.next_attempt_at, item.email.created_at))

    async def mark_all_sent(self, email_ids: Sequence[UUID], at: datetime) -> None:
        if not email_ids:
            return
        statement = (
            sa.update(outbox)
            .where(outbox.c.id.in_(email_ids))
            .values(
                status=OutboxStatus.SENT.value,
                sent_at=at,
                locked_until=None,
                context=REDACTED_CONTEXT,
            )
        )
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                await connection.execute(statement)

    async def retry_later(self, email_id: UUID, error: str, at: datetime) -> None:
        await self._set(
            email_id,
            status=OutboxStatus.PENDING.value,
            next_attempt_at=at,
            last_error=error,
            locked_until=None,
        )

    async def mark_failed(self, email_id: UUID, error: str) -> None:
        await self._set(
            email_id,
            status=OutboxStatus.FAILED.value,
            last_error=error,
            locked_until=None,
            context=REDACTED_CONTEXT,
        )

    async def purge_finished(self, before: datetime) -> int:
        """Deletes sent and failed emails created before `before`; returns how many."""
        statement = sa.delete(outbox).where(
            outbox.c.status.in_((OutboxStatus.SENT.value, OutboxStatus.FAILED.value)),
            outbox.c.created_at < before,
        )
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                result = await connection.execute(statement)
        return int(result.rowcount or 0)

    async def counts(self) -> dict[str, int]:
        statement = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                rows = (await connection.execute(statement)).all()
        counts = dict.fromkeys((status.value for status in OutboxStatus), 0)
        counts.update({status: int(count) for status, count in rows})
        return counts

    async def failed_emails(self, limit: int) -> list[FailedEmail]:
        """The most recently created emails parked as failed, for `snippetvault check`."""
        statement = (
            sa.select(outbox.c.recipient, outbox.c.last_error)
            .where(outbox.c.status == OutboxStatus.FAILED.value)
            .order_by(outbox.c.created_at.desc())
            .limit(limit)
        )
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                rows = (await connection.execute(statement)).all()
        return [FailedEmail(to=row.recipient, error=row.last_error or "") for row in rows]

    async def _set(self, email_id: UUID, **values: Any) -> None:
        statement = sa.update(outbox).where(outbox.c.id == email_id).values(**values)
        with unavailable_as_domain_error():
            async with self._engine.begin() as connection:
                await connection.execute(statement)


def _item(row: Row[Any]) -> OutboxItem:
    return OutboxItem(
        email=OutgoingEmail(
            id=row.id,
            to=row.recipient,
            kind=EmailKind(row.kind),
            context=dict(row.context),
            message_id=row.message_id,
            created_at=row.created_at,
        ),
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )
