from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from mail_fakes import SENDER, FakeClock, FakeOutboxQueue, FakeTransport, make_email

from core.entities import EmailKind, OutboxStatus, OutgoingEmail
from mail.render import EmailRenderer
from mail.transport import PermanentMailError, TemporaryMailError
from mail.worker import OutboxWorker, backoff_delay

LEASE = 60.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> FakeOutboxQueue:
    return FakeOutboxQueue(clock)


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


@pytest.fixture
def make_worker(
    queue: FakeOutboxQueue, transport: FakeTransport, renderer: EmailRenderer, clock: FakeClock
) -> Any:
    def make(**options: Any) -> OutboxWorker:
        settings: dict[str, Any] = {"lease_seconds": LEASE, "draw": lambda: 0.0, **options}
        return OutboxWorker(queue, transport, renderer, SENDER, clock, **settings)

    return make


def queued(queue: FakeOutboxQueue, *emails: OutgoingEmail) -> list[UUID]:
    for outgoing in emails:
        queue.add(outgoing)
    return [outgoing.id for outgoing in emails]


async def test_due_emails_are_sent_and_marked_sent(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    ids = queued(queue, *(make_email(kind) for kind in EmailKind))

    handled = await make_worker().drain_once()

    assert handled == len(ids)
    assert {item.status for item in queue.items.values()} == {OutboxStatus.SENT}
    assert all(queue.item(email_id).sent_at == clock() for email_id in ids)
    assert sorted(str(message["Message-ID"]) for message in transport.sent) == sorted(
        queue.item(email_id).email.message_id for email_id in ids
    )
    assert await make_worker().drain_once() == 0
    assert len(transport.sent) == len(ids)


async def test_drain_once_takes_at_most_one_batch(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    queued(queue, *(make_email() for _ in range(5)))
    worker = make_worker(batch_size=2)

    assert [await worker.drain_once() for _ in range(4)] == [2, 2, 1, 0]
    assert len(transport.sent) == 5


async def test_sends_run_concurrently_within_the_bound(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    queued(queue, *(make_email() for _ in range(10)))
    transport.gate = asyncio.Event()

    draining = asyncio.create_task(make_worker(batch_size=10, concurrency=3).drain_once())
    async with asyncio.timeout(5):
        await transport.until_in_flight(3)
        await asyncio.sleep(0.05)  # time for a fourth send to start, were it allowed to
        assert transport.in_flight == 3
        transport.gate.set()
        assert await draining == 10

    assert transport.most_in_flight == 3
    assert len(transport.sent) == 10


async def test_a_temporary_failure_is_retried_with_growing_backoff(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    (email_id,) = queued(queue, make_email(to="busy@example.com"))
    transport.failures["busy@example.com"] = [
        TemporaryMailError("451 4.3.0 Mailbox busy") for _ in range(3)
    ]
    worker = make_worker()
    delays = []

    for _ in range(3):
        started = clock()
        assert await worker.drain_once() == 1
        item = queue.item(email_id)
        assert item.status is OutboxStatus.PENDING
        assert item.last_error == "451 4.3.0 Mailbox busy"
        delays.append((item.next_attempt_at - started).total_seconds())
        assert await worker.drain_once() == 0  # not due yet
        clock.now = item.next_attempt_at

    assert delays == [5.0, 10.0, 20.0]
    assert await worker.drain_once() == 1
    assert queue.item(email_id).status is OutboxStatus.SENT
    assert queue.item(email_id).attempts == 4
    assert len(transport.sent) == 1


def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens() -> None:
    delays = [backoff_delay(n, base=5, cap=600, jitter=0.2, draw=0.0) for n in range(1, 11)]

    assert delays == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    assert backoff_delay(3, base=5, cap=600, jitter=0.2, draw=1.0) == pytest.approx(16.0)
    assert backoff_delay(30, base=5, cap=600, jitter=0.2, draw=0.5) == pytest.approx(540.0)


async def test_jitter_spreads_retries(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    ids = queued(queue, make_email(to="a@example.com"), make_email(to="b@example.com"))
    for to in ("a@example.com", "b@example.com"):
        transport.failures[to] = [TemporaryMailError("421 try later")]
    draws = iter([0.0, 1.0])

    await make_worker(draw=lambda: next(draws)).drain_once()

    due = sorted(
        (queue.item(email_id).next_attempt_at - clock()).total_seconds() for email_id in ids
    )
    assert due == [pytest.approx(4.0), pytest.approx(5.0)]


async def test_a_permanent_failure_is_parked_with_the_servers_reason(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    (email_id,) = queued(queue, make_email(to="nobody@example.com"))
    transport.failures["nobody@example.com"] = [
        PermanentMailError("nobody@example.com: 550 5.1.1 No such user")
    ]
    worker = make_worker()

    await worker.drain_once()

    item = queue.item(email_id)
    assert item.status is OutboxStatus.FAILED
    assert item.last_error == "nobody@example.com: 550 5.1.1 No such user"
    assert await worker.drain_once() == 0
    assert transport.sent == []


async def test_one_failure_does_not_hold_back_the_others(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    ok_1, busy, gone, broken, ok_2 = queued(
        queue,
        make_email(to="ok1@example.com"),
        make_email(to="busy@example.com"),
        make_email(to="gone@example.com"),
        make_email(to="broken@example.com"),
        make_email(to="ok2@example.com"),
    )
    transport.failures["busy@example.com"] = [TemporaryMailError("451 busy")]
    transport.failures["gone@example.com"] = [PermanentMailError("550 gone")]
    transport.failures["broken@example.com"] = [RuntimeError("transport bug")]

    assert await make_worker(concurrency=2).drain_once() == 5

    statuses = {email_id: item.status for email_id, item in queue.items.items()}
    assert statuses == {
        ok_1: OutboxStatus.SENT,
        busy: OutboxStatus.PENDING,
        gone: OutboxStatus.FAILED,
        broken: OutboxStatus.PENDING,
        ok_2: OutboxStatus.SENT,
    }
    assert queue.item(broken).last_error == "unexpected: RuntimeError: transport bug"


async def test_an_email_that_cannot_be_rendered_is_parked_and_the_rest_sent(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    injected, missing_key, fine = queued(
        queue,
        make_email(to="ada@example.com\r\nBcc: eve@example.com"),
        make_email(EmailKind.SNIPPET_RETRIEVED),
        make_email(),
    )
    queue.item(missing_key).email.context.pop("filename")

    await make_worker().drain_once()

    assert queue.item(injected).status is OutboxStatus.FAILED
    assert "To header" in str(queue.item(injected).last_error)
    assert queue.item(missing_key).status is OutboxStatus.FAILED
    assert str(queue.item(missing_key).last_error).startswith("cannot render:")
    assert queue.item(fine).status is OutboxStatus.SENT
    assert [message["To"] for message in transport.sent] == ["ada@example.com"]


async def test_gives_up_after_max_attempts(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    (email_id,) = queued(queue, make_email(to="down@example.com"))
    transport.failures["down@example.com"] = [TemporaryMailError("timed out") for _ in range(5)]
    worker = make_worker(max_attempts=3)

    for _ in range(3):
        await worker.drain_once()
        clock.advance(3600)

    item = queue.item(email_id)
    assert item.status is OutboxStatus.FAILED
    assert item.last_error == "gave up after 3 attempts: timed out"
    assert item.attempts == 3


async def test_a_row_is_resent_only_after_its_lease_expires_with_the_same_message_id(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    (email_id,) = queued(queue, make_email())
    # A worker claimed the row, then died before recording the outcome.
    await queue.claim(10, LEASE)
    worker = make_worker()

    clock.advance(LEASE - 1)
    assert await worker.drain_once() == 0
    clock.advance(1)
    assert await worker.drain_once() == 1

    assert queue.item(email_id).status is OutboxStatus.SENT
    assert queue.item(email_id).attempts == 2
    assert [message["Message-ID"] for message in transport.sent] == [
        queue.item(email_id).email.message_id
    ]


async def test_a_row_that_keeps_crashing_workers_is_parked_without_sending(
    queue: FakeOutboxQueue, transport: FakeTransport, clock: FakeClock, make_worker: Any
) -> None:
    (email_id,) = queued(queue, make_email())
    for _ in range(3):
        await queue.claim(10, LEASE)
        clock.advance(LEASE)

    await make_worker(max_attempts=3).drain_once()

    assert queue.item(email_id).status is OutboxStatus.FAILED
    assert queue.item(email_id).last_error == "gave up after 3 attempts"
    assert transport.sent == []


class FlakyQueue(FakeOutboxQueue):
    def __init__(self, clock: FakeClock, failing: set[UUID]) -> None:
        super().__init__(clock)
        self.failing = failing
        self.claim_errors = 0
        self.marked_sent = asyncio.Event()
        self.batches_marked: list[int] = []

    async def mark_all_sent(self, email_ids: Sequence[UUID], at: Any) -> None:
        if self.failing & set(email_ids):
            raise ConnectionError("database went away")  # one statement: all or nothing
        await super().mark_all_sent(email_ids, at)
        self.batches_marked.append(len(email_ids))
        self.marked_sent.set()

    async def claim(self, limit: int, lease_seconds: float) -> list[Any]:
        if self.claim_errors:
            self.claim_errors -= 1
            raise ConnectionError("database went away")
        return await super().claim(limit, lease_seconds)


async def test_a_failure_to_record_the_sent_emails_leaves_them_leased_and_the_rest_recorded(
    clock: FakeClock, transport: FakeTransport, renderer: EmailRenderer
) -> None:
    first, second, busy = make_email(), make_email(), make_email(to="busy@example.com")
    transport.failures["busy@example.com"] = [TemporaryMailError("451 busy")]
    queue = FlakyQueue(clock, failing={first.id})
    queued(queue, first, second, busy)
    worker = OutboxWorker(queue, transport, renderer, SENDER, clock, lease_seconds=LEASE)

    assert await worker.drain_once() == 3

    # The leases will hand both out again: sent twice (same Message-ID), never lost.
    assert queue.item(first.id).status is OutboxStatus.SENDING
    assert queue.item(second.id).status is OutboxStatus.SENDING
    assert queue.item(busy.id).status is OutboxStatus.PENDING


async def test_a_batch_reuses_one_connection_per_lane_and_records_the_sent_in_one_call(
    clock: FakeClock, transport: FakeTransport, renderer: EmailRenderer
) -> None:
    queue = FlakyQueue(clock, failing=set())
    ids = queued(queue, *(make_email() for _ in range(12)))
    worker = OutboxWorker(
        queue, transport, renderer, SENDER, clock, lease_seconds=LEASE, concurrency=3
    )

    assert await worker.drain_once() == 12

    assert transport.connections == 3
    assert len(transport.sent) == 12
    assert queue.batches_marked == [12]
    assert {queue.item(email_id).status for email_id in ids} == {OutboxStatus.SENT}


@pytest.mark.parametrize(("emails", "lanes"), [(1, 1), (3, 3), (8, 8), (50, 8)])
async def test_each_email_of_a_small_batch_has_a_lane_of_its_own(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any, emails: int, lanes: int
) -> None:
    queued(queue, *(make_email() for _ in range(emails)))

    assert await make_worker(batch_size=50, concurrency=8).drain_once() == emails

    assert transport.connections == lanes
    assert len(transport.sent) == emails


async def test_run_closes_idle_connections_as_it_goes_and_all_when_it_stops(
    clock: FakeClock, transport: FakeTransport, renderer: EmailRenderer
) -> None:
    queue = FlakyQueue(clock, failing=set())
    queued(queue, make_email())
    worker = OutboxWorker(queue, transport, renderer, SENDER, clock, lease_seconds=LEASE)
    stop = asyncio.Event()

    running = asyncio.create_task(worker.run(stop, idle_sleep=0.01))
    async with asyncio.timeout(5):
        await queue.marked_sent.wait()
        transport.idle_closed.clear()
        await transport.idle_closed.wait()  # in a round without emails too
        assert transport.closes == 0
        stop.set()
        await running

    assert transport.closes == 1


class PurgeCountingQueue(FakeOutboxQueue):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.purges = 0

    async def purge_finished(self, before: Any) -> int:
        self.purges += 1
        return await super().purge_finished(before)


async def test_run_purges_at_start_then_every_purge_interval_of_its_clock(
    clock: FakeClock, transport: FakeTransport, renderer: EmailRenderer
) -> None:
    queue = PurgeCountingQueue(clock)
    monotonic = [0.0]
    worker = OutboxWorker(
        queue, transport, renderer, SENDER, clock, purge_every=600, monotonic=lambda: monotonic[0]
    )
    stop = asyncio.Event()

    async def rounds(count: int) -> None:
        for _ in range(count):  # the first may have begun before the clock moved
            transport.idle_closed.clear()
            await transport.idle_closed.wait()

    running = asyncio.create_task(worker.run(stop, idle_sleep=0.001))
    async with asyncio.timeout(5):
        await rounds(2)
        assert queue.purges == 1
        monotonic[0] = 599.0
        await rounds(2)
        assert queue.purges == 1
        monotonic[0] = 600.0
        await rounds(2)
        assert queue.purges == 2
        stop.set()
        await running


async def test_closing_the_worker_closes_the_transport(
    transport: FakeTransport, make_worker: Any
) -> None:
    await make_worker().close()

    assert transport.closes == 1


async def test_run_survives_claim_errors_and_stops_when_asked(
    clock: FakeClock, transport: FakeTransport, renderer: EmailRenderer
) -> None:
    queue = FlakyQueue(clock, failing=set())
    queue.claim_errors = 2
    (email_id,) = queued(queue, make_email())
    worker = OutboxWorker(queue, transport, renderer, SENDER, clock, lease_seconds=LEASE)
    stop = asyncio.Event()

    running = asyncio.create_task(worker.run(stop, idle_sleep=0.01))
    async with asyncio.timeout(5):
        await queue.marked_sent.wait()
        stop.set()
        await running

    assert queue.claim_errors == 0
    assert queue.item(email_id).status is OutboxStatus.SENT


async def test_run_finishes_the_sends_in_flight_before_returning(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    ids = queued(queue, make_email(), make_email())
    transport.gate = asyncio.Event()
    stop = asyncio.Event()

    running = asyncio.create_task(make_worker().run(stop, idle_sleep=30))
    async with asyncio.timeout(5):
        await transport.until_in_flight(2)
        stop.set()
        await asyncio.sleep(0.01)
        assert not running.done()
        transport.gate.set()
        await running

    assert {queue.item(email_id).status for email_id in ids} == {OutboxStatus.SENT}


async def test_run_returns_promptly_when_idle(make_worker: Any) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(make_worker().run(stop, idle_sleep=30))
    await asyncio.sleep(0.01)

    stop.set()
    async with asyncio.timeout(1):
        await running


async def test_failures_are_logged_by_id_without_bodies_or_codes(
    queue: FakeOutboxQueue,
    transport: FakeTransport,
    make_worker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outgoing = make_email(EmailKind.VERIFY_EMAIL, to="busy@example.com")
    queued(queue, outgoing)
    transport.failures["busy@example.com"] = [TemporaryMailError("451 busy")]

    with caplog.at_level(logging.DEBUG, logger="mail"):
        await make_worker().drain_once()

    failures = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(failures) == 1
    assert str(outgoing.id) in failures[0].getMessage()
    assert "451 busy" in failures[0].getMessage()
    assert outgoing.context["code"] not in caplog.text
    assert outgoing.context["link"] not in caplog.text


async def test_counts_reflect_the_outcomes(
    queue: FakeOutboxQueue, transport: FakeTransport, make_worker: Any
) -> None:
    queued(queue, make_email(), make_email(to="gone@example.com"), make_email(to="busy@x.test"))
    transport.failures["gone@example.com"] = [PermanentMailError("550 gone")]
    transport.failures["busy@x.test"] = [TemporaryMailError("451 busy")]

    await make_worker().drain_once()

    assert await queue.counts() == {"pending": 1, "sending": 0, "sent": 1, "failed": 1}
