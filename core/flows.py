"""Step-by-step commands (`/login` asking for the email, then the password, …).

The state lives in the database, not in process memory, so a restart or another bot process
continues the flow; a version check keeps two updates of one chat from both advancing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

from core.entities import ChatFlow
from core.errors import DomainError, FlowConflict
from core.ports import Clock, UnitOfWorkFactory

FLOW_TTL = timedelta(minutes=15)
WORKING = "working"
"""The step of a flow while one update is answering it (see `FlowService.claim`)."""


class FlowService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, ttl: timedelta = FLOW_TTL) -> None:
        self._uow = uow
        self._now = clock
        self._ttl = ttl

    async def current(self, chat_id: int) -> ChatFlow | None:
        """The chat's flow, if any; `FlowConflict` while another update answers its step."""
        async with self._uow() as uow:
            flow = await uow.flows.get(chat_id)
        if flow is not None and flow.step == WORKING:
            raise FlowConflict("That step is being answered already.")
        return flow

    async def start(self, chat_id: int, name: str, step: str, **data: str) -> ChatFlow:
        """Begins a flow, replacing whatever the chat was doing."""
        async with self._uow() as uow:
            await uow.flows.delete(chat_id)
            flow = await uow.flows.save(
                ChatFlow(chat_id, name, step, dict(data), 0, self._now() + self._ttl)
            )
            await uow.commit()
        return flow

    async def advance(self, flow: ChatFlow, step: str, **data: str) -> ChatFlow:
        """Moves to `step`; raises `FlowConflict` if another update moved the flow meanwhile."""
        moved = replace(
            flow, step=step, data={**flow.data, **data}, expires_at=self._now() + self._ttl
        )
        async with self._uow() as uow:
            saved = await uow.flows.save(moved)
            await uow.commit()
        return saved

    async def finish(self, chat_id: int) -> bool:
        """Ends the chat's flow; False when there was none."""
        async with self._uow() as uow:
            existed = await uow.flows.get(chat_id) is not None
            await uow.flows.delete(chat_id)
            await uow.commit()
        return existed

    @contextlib.asynccontextmanager
    async def claim(self, flow: ChatFlow) -> AsyncIterator[None]:
        """Takes the flow's current step for one update: a second update answering the same
        step gets `FlowConflict`. Success ends the flow; a failure reopens the step so the
        person can answer again."""
        if flow.step == WORKING:
            # Read while another update held it: that update answers this step.
            raise FlowConflict("That step is being answered already.")
        claimed = await self.advance(flow, WORKING)
        try:
            yield
        except BaseException:
            with contextlib.suppress(DomainError):
                await self.advance(claimed, flow.step)
            raise
        await self.finish(flow.chat_id)
