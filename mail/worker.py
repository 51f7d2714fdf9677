"""The outbox worker: claims due emails, renders and sends them, records how it went.

Delivery is at-least-once, with a stable `Message-ID`. Claiming a row leases it (`sending`
until the lease ends); a crash after the server accepted a message but before `mark_all_sent`
leaves the row leased, and once the lease expires another claim sends it again. The resent
message carries the same `Message-ID` (and `Date`), so receiving servers and mail clients can
recognise and drop the duplicate. The other choice, marking before sending (at-most-once),
would silently lose emails on every crash; a rare duplicate is the cheaper failure.

A batch is sent in up to `concurrency` lanes, an email to each until there are more emails
than lanes, so that one slow email (its highlighting running to its deadline) holds up no other
of a small batch. Each lane has one SMTP connection that the transport keeps open for the next
batches; the sent ones are recorded together, in one statement, when the batch is done. So a crash
mid-batch sends that batch's delivered emails again once the lease ends (same `Message-ID`);
that is the price of not paying a transaction per email.

Consequences for operators: a lease must outlast a whole batch (`batch_size / concurrency`
rounds of the transport's timeout) or a slow batch may be sent
twice by two workers; rows that keep crashing the worker are parked after `max_attempts` claims
without another try.

What happens to one email:

- sent → `mark_all_sent` with the rest of the batch;
- `TemporaryMailError` (server down, 4xx) → `retry_later`, after an exponential backoff with
  jitter (5 s, 10 s, 20 s … capped at 10 min), or `mark_failed` once `max_attempts` is reached;
- `PermanentMailError` (5xx) or a row that cannot be rendered → `mark_failed` with the reason.

One email failing never stops the others nor the worker. Logs name the outbox id and the
reason, never the body, the recipient's codes or links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from core.entities import OutboxItem
from core.ports import Clock, OutboxQueue
from mail.render import EmailRenderer
from mail.transport import (
    SMTP_CONNECTIONS,
    MailConnection,
    MailTransport,
    PermanentMailError,
    TemporaryMailError,
)

logger = logging.getLogger(__name__)


OUTBOX_RETENTION = timedelta(days=7)
"""How long sent and failed emails stay in the outbox (without their content) before deletion."""
PURGE_EVERY_SECONDS = 3600.0


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float, draw: float) -> float:
    """Seconds before retry number `attempt` (1, 2, …): `base * 2**(attempt-1)`, capped, then
    shortened by up to `jitter` (a fraction) so that workers do not retry in lockstep."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return delay * (1 - jitter * draw)


class OutboxWorker:
    def __init__(
        self,
        queue: OutboxQueue,
        transport: MailTransport,
        renderer: EmailRenderer,
        sender: str,
        clock: Clock,
        *,
        batch_size: int = 50,
        lease_seconds: float = 300.0,
        max_attempts: int = 10,
        concurrency: int = SMTP_CONNECTIONS,
        base_delay: float = 5.0,
        max_delay: float = 600.0,
        jitter: float = 0.2,
        draw: Callable[[], float] = random.random,
        retention: timedelta = OUTBOX_RETENTION,
        purge_every: float = PURGE_EVERY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._transport = transport
        self._renderer = renderer
        self._sender = sender
        self._clock = clock
        self._batch_size = batch_size
        self._lease_seconds = lease_seconds
        self._max_attempts = max_attempts
        self._concurrency = concurrency
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._jitter = jitter
        self._draw = draw
        self._retention = retention
        self._purge_every = purge_every
        self._monotonic = monotonic

    async def drain_once(self) -> int:
        """Claims one batch and handles every email in it; returns how many were claimed."""
        items = await self._queue.claim(self._batch_size, self._lease_seconds)
        if not items:
            return 0
        waiting = deque(items)
        sent: list[UUID] = []
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, len(items))):
                group.create_task(self._send_share(waiting, sent))
        if sent:
            try:
                await self._queue.mark_all_sent(sent, self._clock())
            except Exception as error:
                # The leases will hand these rows out again (same Message-ID): resent, not lost.
                logger.warning(
                    "outbox: recording %d sent emails failed: %s", len(sent), _describe(error)
                )
        return len(items)

    async def _send_share(self, waiting: deque[OutboxItem], sent: list[UUID]) -> None:
        """Takes emails from the batch one at a time and sends them over one connection."""
        async with self._transport.connection() as connection:
            while waiting:
                item = waiting.popleft()
                try:
                    if await self._handle(item, connection):
                        sent.append(item.email.id)
                except Exception as error:
                    # Recording the outcome failed; the lease will hand the row out again.
                    logger.warning(
                        "outbox %s: recording the outcome failed: %s",
                        item.email.id,
                        _describe(error),
                    )

    async def purge_once(self) -> int:
        """Deletes sent and failed emails older than the retention; returns how many."""
        return await self._queue.purge_finished(self._clock() - self._retention)

    async def run(self, stop: asyncio.Event, idle_sleep: float = 1.0) -> None:
        """Drains the outbox until `stop` is set; the batch in flight is finished first.
        Finished emails older than the retention are purged at start and every so often.
        Connections left unused for a while are closed as it goes, and all on return."""
        try:
            await self._run(stop, idle_sleep)
        finally:
            await self._transport.close()

    async def _run(self, stop: asyncio.Event, idle_sleep: float) -> None:
        next_purge: float | None = None
        while not stop.is_set():
            now = self._monotonic()
            if next_purge is None or now >= next_purge:
                next_purge = now + self._purge_every
                try:
                    await self.purge_once()
                except Exception as error:  # the database may be down: try again later
                    logger.warning("outbox: purging old emails failed: %s", _describe(error))
            try:
                claimed = await self.drain_once()
            except Exception as error:  # the queue's database may be down: wait and retry
                logger.warning("outbox: claiming emails failed: %s", _describe(error))
                claimed = 0
            await self._transport.close_idle()
            if claimed < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_sleep)

    async def close(self) -> None:
        """Closes the connections the transport keeps and stops the renderer's highlighting
        process; call it once `run` has returned (or the last `drain_once`)."""
        await self._transport.close()
        await self._renderer.close()

    async def _handle(self, item: OutboxItem, connection: MailConnection) -> bool:
        """Sends one email; True once the server took it. Failures are recorded here."""
        if item.attempts > self._max_attempts:
            # Claimed this often without an outcome: it keeps killing workers, so stop trying.
            await self._fail(item, f"gave up after {item.attempts - 1} attempts")
            return False
        try:
            # In a child process with a deadline: other emails of the batch go on meanwhile.
            highlighted = await self._renderer.highlight(item.email)
            if self._renderer.is_slow(item.email):
                # Encoding a large snippet's parts takes a while: keep it off the event loop.
                message = await asyncio.to_thread(
                    self._renderer.render, item.email, self._sender, highlighted=highlighted
                )
            else:
                message = self._renderer.render(item.email, self._sender, highlighted=highlighted)
        except Exception as error:
            await self._fail(item, f"cannot render: {_describe(error)}")
            return False
        try:
            where = await connection.send(message)
        except PermanentMailError as error:
            await self._fail(item, error.reason)
        except TemporaryMailError as error:
            await self._retry_or_fail(item, error.reason)
        except Exception as error:  # a transport bug must not take the worker down
            await self._retry_or_fail(item, f"unexpected: {_describe(error)}")
        else:
            logger.info(
                "email %s %s (outbox %s) %s",
                item.email.kind,
                item.email.message_id,
                item.email.id,
                where or "sent",
            )
            return True
        return False

    async def _retry_or_fail(self, item: OutboxItem, reason: str) -> None:
        if item.attempts >= self._max_attempts:
            await self._fail(item, f"gave up after {item.attempts} attempts: {reason}")
            return
        delay = backoff_delay(
            item.attempts,
            base=self._base_delay,
            cap=self._max_delay,
            jitter=self._jitter,
            draw=self._draw(),
        )
        due = self._clock() + timedelta(seconds=delay)
        logger.warning(
            "outbox %s: attempt %d failed, retrying in %.0f s: %s",
            item.email.id,
            item.attempts,
            delay,
            reason,
        )
        await self._queue.retry_later(item.email.id, reason, due)

    async def _fail(self, item: OutboxItem, reason: str) -> None:
        logger.error("outbox %s: failed for good: %s", item.email.id, reason)
        await self._queue.mark_failed(item.email.id, reason)


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
