"""Timeline writes outside the caller's transaction (remote attempts, deliveries, refusals).

Each entry is its own short transaction, so a remote call is never inside a database transaction
and an attempt stays on record even if the caller's later work rolls back.
"""

from __future__ import annotations

from rc_common.db import Database
from rc_common.logs import get_logger
from recharge_service.adapters.repository import TimelineRepository
from recharge_service.domain.timeline import TimelineEntry

log = get_logger("timeline")


class DbTimeline:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: TimelineEntry) -> None:
        try:
            async with self._db.session() as session:
                await TimelineRepository(session).add(entry)
                await session.commit()
        except Exception:  # the history must not break the flow it describes; the log keeps it
            log.exception(
                "timeline_write_failed", order_no=entry.order_no, kind=entry.kind, method=entry.method
            )


class MemoryTimeline:
    """For tests of the adapters without a database."""

    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    async def record(self, entry: TimelineEntry) -> None:
        self.entries.append(entry)
