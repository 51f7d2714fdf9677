"""The worker's outbox queue: claims under a lease, outcomes, counts; concurrent claimers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from storage_builders import T0, FakeClock, new_email

from core.entities import EmailKind, OutboxStatus, OutgoingEmail
from storage.database import Database
from storage.models import outbox


@pytest.fixture
async def db(database_url: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    database = Database(database_url, clock=clock)
    yield database
    await database.dispose()


async def _enqueue(database: Database, *emails: OutgoingEmail) -> None:
    async with database.uow_factory()() as uow:
        for email in emails:
            await uow.outbox.add(email)
        await uow.commit()


async def test_claim_takes_due_emails_oldest_first_as_sending(db: Database) -> None:
    first = new_email(T0 - timedelta(minutes=2), kind=EmailKind.VERIFY_EMAIL)
    second = new_email(T0 - timedelta(minutes=1), context={"nested": {"list": [1, "two"]}})
    not_yet_due = new_email(T0 + timedelta(minutes=1))
    await _enqueue(db, second, not_yet_due, first)

    claimed = await db.outbox_queue().claim(limit=10, lease_seconds=60)

    assert [item.email for item in claimed] == [first, second]
    assert {item.status for item in claimed} == {OutboxStatus.SENDING}
    assert {item.attempts for item in claimed} == {1}
    assert await db.outbox_queue().counts() == {
        "pending": 1,
        "sending": 2,
        "sent": 0,
        "failed": 0,
    }


async def test_claim_respects_the_limit_and_never_hands_out_a_leased_email_twice(
    db: Database,
) -> None:
    await _enqueue(db, *(new_email(T0 - timedelta(seconds=n)) for n in range(5)))
    queue = db.outbox_queue()

    first = await queue.claim(limit=3, lease_seconds=60)
    second = await queue.claim(limit=3, lease_seconds=60)
    third = await queue.claim(limit=3, lease_seconds=60)

    assert (len(first), len(second), third) == (3, 2, [])
    assert not {i.email.id for i in first} & {i.email.id for i in second}


async def test_an_expired_lease_is_claimed_again_with_one_more_attempt(
    db: Database, clock: FakeClock
) -> None:
    email = new_email(T0)
    await _enqueue(db, email)
    queue = db.outbox_queue()
    await queue.claim(limit=1, lease_seconds=30)

    clock.now = T0 + timedelta(seconds=29)
    assert await queue.claim(limit=1, lease_seconds=30) == []
    clock.now = T0 + timedelta(seconds=31)
    [again] = await queue.claim(limit=1, lease_seconds=30)

    assert again.email == email
    assert again.attempts == 2


async def test_mark_all_sent_retry_later_and_mark_failed(db: Database, clock: FakeClock) -> None:
    sent, retried, failed = new_email(T0), new_email(T0), new_email(T0)
    await _enqueue(db, sent, retried, failed)
    queue = db.outbox_queue()
    await queue.claim(limit=3, lease_seconds=60)

    await queue.mark_all_sent([sent.id], T0 + timedelta(seconds=1))
    await queue.retry_later(retried.id, "421 try again later", T0 + timedelta(minutes=5))
    await queue.mark_failed(failed.id, "550 no such mailbox")

    assert await queue.counts() == {"pending": 1, "sending": 0, "sent": 1, "failed": 1}
    clock.now = T0 + timedelta(minutes=4)
    assert await queue.claim(limit=10, lease_seconds=60) == []
    clock.now = T0 + timedelta(minutes=5)
    [due] = await queue.claim(limit=10, lease_seconds=60)
    assert due.email == retried
    assert due.attempts == 2
    assert due.last_error == "421 try again later"

    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.id, outbox.c.sent_at, outbox.c.last_error).where(
                outbox.c.id.in_([sent.id, failed.id])
            )
        )
        by_id = {row.id: row for row in rows}
    assert by_id[sent.id].sent_at == T0 + timedelta(seconds=1)
    assert by_id[failed.id].last_error == "550 no such mailbox"


async def test_failed_emails_newest_first_for_check(db: Database) -> None:
    older, newer = new_email(T0), new_email(T0 + timedelta(seconds=1))
    await _enqueue(db, older, newer, new_email(T0))
    queue = db.outbox_queue()
    await queue.claim(limit=3, lease_seconds=60)
    await queue.mark_failed(older.id, "550 no such mailbox")
    await queue.mark_failed(newer.id, "554 rejected")

    assert await db.failed_emails(limit=5) == [
        (newer.to, "554 rejected"),
        (older.to, "550 no such mailbox"),
    ]
    assert await db.failed_emails(limit=1) == [(newer.to, "554 rejected")]


async def test_counts_of_an_empty_outbox(db: Database) -> None:
    assert await db.outbox_queue().counts() == {"pending": 0, "sending": 0, "sent": 0, "failed": 0}


@pytest.mark.postgres
async def test_concurrent_claimers_never_get_the_same_email(fresh_postgres_url: str) -> None:
    database = Database(fresh_postgres_url)
    try:
        emails = [new_email(T0 - timedelta(seconds=n)) for n in range(500)]
        await _enqueue(database, *emails)

        async def drain(queue_id: int) -> list[str]:
            queue = database.outbox_queue()
            taken: list[str] = []
            while batch := await queue.claim(limit=7, lease_seconds=300):
                taken.extend(str(item.email.id) for item in batch)
                await asyncio.sleep(0)
            return taken

        first, second = await asyncio.gather(drain(1), drain(2))
    finally:
        await database.dispose()

    assert not set(first) & set(second)
    assert len(first) + len(second) == 500
    assert set(first) | set(second) == {str(email.id) for email in emails}
    assert first, "both claimers took part"
    assert second, "both claimers took part"
