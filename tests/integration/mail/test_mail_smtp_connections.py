"""SMTP connections kept open between the worker's batches, against a real SMTP server: reused,
closed when idle or at shutdown, replaced when the server dropped them, never losing or
doubling a message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from mail_smtp_servers import HangUpAfterData, HangUpAtMail, Inbox, MakeTransport, StartServer

from core.entities import EmailKind, OutboxStatus
from mail.render import EmailRenderer
from mail.transport import (
    SMTP_IDLE_SECONDS,
    PermanentMailError,
    SmtpTransport,
    TemporaryMailError,
)
from mail.worker import OutboxWorker
from tests.unit.mail.mail_fakes import SENDER, FakeClock, FakeOutboxQueue, make_email


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Queue(FakeOutboxQueue):
    """Sets `all_sent` once every email in it is sent."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.all_sent = asyncio.Event()

    async def mark_all_sent(self, email_ids: Sequence[UUID], at: datetime) -> None:
        await super().mark_all_sent(email_ids, at)
        if all(item.status is OutboxStatus.SENT for item in self.items.values()):
            self.all_sent.set()


class Outbox:
    """A worker over `transport`, with an in-memory queue the test fills batch by batch; one
    lane (so one connection at a time) unless `concurrency` says otherwise."""

    def __init__(self, transport: SmtpTransport, **options: Any) -> None:
        options.setdefault("concurrency", 1)
        self.queue = Queue()
        self.worker = OutboxWorker(
            self.queue, transport, EmailRenderer(), SENDER, self.queue.clock, **options
        )

    async def send(self, count: int, kind: EmailKind = EmailKind.SNIPPET_RETRIEVED) -> list[str]:
        """Queues `count` emails and drains them; returns their Message-IDs."""
        emails = [make_email(kind, to=f"reader{n}@example.com") for n in range(count)]
        for email in emails:
            self.queue.add(email)
        assert await self.worker.drain_once() == count
        return [email.message_id for email in emails]


@pytest.mark.parametrize(
    ("concurrency", "batch", "lanes"),
    [(1, 3, 1), (8, 50, 8)],
    ids=["one lane", "a full batch opens up to the concurrency"],
)
async def test_batches_reuse_the_connections_kept_from_the_last_one(
    smtp: MakeTransport, start_server: StartServer, concurrency: int, batch: int, lanes: int
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    outbox = Outbox(smtp(server.port), concurrency=concurrency)

    sent = await outbox.send(batch)
    assert inbox.connections == lanes
    sent += await outbox.send(batch)

    assert sorted(inbox.message_ids()) == sorted(sent)
    assert inbox.connections == lanes  # the next batch opened none
    assert len(inbox.greetings) == lanes
    assert inbox.quits == 0


async def test_connections_idle_too_long_are_closed_with_quit(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    monotonic = Monotonic()
    transport = smtp(server.port, monotonic=monotonic)
    outbox = Outbox(transport)
    await outbox.send(3)

    monotonic.now += SMTP_IDLE_SECONDS - 1
    await transport.close_idle()
    assert inbox.quits == 0
    monotonic.now += 1
    await transport.close_idle()
    assert inbox.quits == 1

    await outbox.send(1)
    assert inbox.connections == 2


async def test_a_connection_idle_too_long_is_not_reused(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    monotonic = Monotonic()
    outbox = Outbox(smtp(server.port, monotonic=monotonic))
    await outbox.send(1)

    monotonic.now += SMTP_IDLE_SECONDS
    sent = await outbox.send(1)

    assert inbox.quits == 1
    assert inbox.connections == 2
    assert inbox.message_ids()[-1:] == sent


async def test_the_worker_closes_its_connections_when_it_stops(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    outbox = Outbox(smtp(server.port), concurrency=3)
    for n in range(10):
        outbox.queue.add(make_email(to=f"reader{n}@example.com"))
    stop = asyncio.Event()

    running = asyncio.create_task(outbox.worker.run(stop, idle_sleep=0.01))
    async with asyncio.timeout(10):
        await outbox.queue.all_sent.wait()
        assert inbox.quits == 0
        stop.set()
        await running

    assert inbox.connections == 3
    assert inbox.quits == 3


async def test_closing_the_worker_closes_its_connections(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    outbox = Outbox(smtp(server.port), concurrency=3)
    await outbox.send(9)

    await outbox.worker.close()

    assert inbox.connections == 3
    assert inbox.quits == 3


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    outbox = Outbox(smtp(server.port))
    sent = await outbox.send(3)

    await inbox.hang_up()
    sent += await outbox.send(3)

    assert sorted(inbox.message_ids()) == sorted(sent)  # each once
    assert inbox.connections == 2
    assert {item.status for item in outbox.queue.items.values()} == {OutboxStatus.SENT}


async def test_a_kept_connection_that_dies_at_the_next_mail_sends_the_message_once_anew(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = HangUpAtMail()
    server = start_server(inbox)
    transport = smtp(server.port)
    first, second = make_email(), make_email()
    renderer = EmailRenderer()
    await transport.send(renderer.render(first, SENDER))

    inbox.armed = True
    await transport.send(renderer.render(second, SENDER))

    assert inbox.message_ids() == [first.message_id, second.message_id]
    assert inbox.connections == 2


async def test_a_connection_closed_after_some_messages_is_replaced_within_a_batch(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    """As a server that takes so many messages per connection does."""
    inbox = HangUpAtMail()
    server = start_server(inbox)
    first, second = make_email(), make_email()
    renderer = EmailRenderer()

    async with smtp(server.port).connection() as connection:
        await connection.send(renderer.render(first, SENDER))
        inbox.armed = True
        await connection.send(renderer.render(second, SENDER))

    assert inbox.message_ids() == [first.message_id, second.message_id]
    assert inbox.connections == 2


class RefuseNobodyThenHangUp(HangUpAtMail):
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == "nobody@example.com":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_connection_closed_after_a_refused_message_is_replaced_too(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = RefuseNobodyThenHangUp()
    server = start_server(inbox)
    renderer = EmailRenderer()
    email = make_email()

    async with smtp(server.port).connection() as connection:
        with pytest.raises(PermanentMailError):
            await connection.send(renderer.render(make_email(to="nobody@example.com"), SENDER))
        inbox.armed = True
        await connection.send(renderer.render(email, SENDER))

    assert inbox.message_ids() == [email.message_id]
    assert inbox.connections == 2


async def test_a_connection_lost_after_the_data_is_not_resent_at_once(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = HangUpAfterData()
    server = start_server(inbox)
    transport = smtp(server.port)
    renderer = EmailRenderer()
    await transport.send(renderer.render(make_email(), SENDER))
    email = make_email()

    inbox.armed = True
    with pytest.raises(TemporaryMailError):
        await transport.send(renderer.render(email, SENDER))

    # The server may have taken it: the retry comes later, with the same Message-ID.
    assert inbox.message_ids()[1:] == [email.message_id]
    assert inbox.connections == 1


async def test_the_ehlo_name_is_looked_up_once(
    smtp: MakeTransport, start_server: StartServer
) -> None:
    inbox = Inbox()
    server = start_server(inbox)
    lookups: list[str] = []

    def local_hostname() -> str:
        lookups.append("worker.example.test")
        return "worker.example.test"

    transport = smtp(server.port, local_hostname=local_hostname)
    outbox = Outbox(transport, concurrency=5)
    await outbox.send(20)
    await transport.close()
    await outbox.send(20)

    assert inbox.connections == 10
    assert lookups == ["worker.example.test"]
    assert {name for name, _ in inbox.greetings} == {"worker.example.test"}
