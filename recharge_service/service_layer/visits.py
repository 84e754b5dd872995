"""Sentinel visits on the timeline, and the release of their leases — a few per transaction.

A run of hundreds of visits would otherwise spend a write transaction per visit on this alone;
rows are written when ``every`` have gathered and at the end of the run (also when it is
cancelled). A crash loses at most the unwritten visit rows of one run (every state change and
remote attempt is on the timeline already); their leases expire.
"""

from __future__ import annotations

from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import SENTINEL_VISIT, TimelineEntry
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.deps import Deps


class VisitLog:
    def __init__(self, deps: Deps, owner: str, every: int = 1) -> None:
        self._deps = deps
        self._owner = owner
        self._every = every
        self._pending: list[TimelineEntry] = []

    async def record(
        self, before: RechargeOrder, after: RechargeOrder, outcome: str, detail: str, error: str = ""
    ) -> None:
        self._pending.append(
            TimelineEntry(
                before.order_no,
                self._deps.clock(),
                SENTINEL_VISIT,
                int(before.status),
                int(after.status),
                method="visit",
                outcome=outcome,
                error=error,
                actor=actor(),
                detail=f"{detail} (by {self._owner})",
            )
        )
        if len(self._pending) >= self._every:
            await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        async with self._deps.uow() as uow:
            for entry in batch:
                await uow.timeline.add(entry)
            await uow.leases.release_all([e.order_no for e in batch], self._owner, self._deps.clock())
            await uow.commit()
