"""Timeline writes outside a flow's own units of work (remote attempts, deliveries, refusals).

``record`` writes its entries in one short transaction of their own, so a remote call is never
inside a database transaction and an attempt stays on record even if the caller's later work
rolls back. (Inside a flow most attempts ride in the flow's commits instead: ``call_log``.)
"""

from __future__ import annotations

from sqlalchemy import Connection

from rc_common.db import Database
from rc_common.logs import get_logger
from recharge_service.adapters.repository import insert_timeline
from recharge_service.domain.timeline import TimelineEntry

log = get_logger("timeline")


class DbTimeline:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, *entries: TimelineEntry) -> None:
        def unit(conn: Connection) -> None:
            insert_timeline(conn, entries)

        try:
            await self._db.write(unit)
        except Exception:  # the history must not break the flow it describes; the log keeps it
            for entry in entries:
                log.exception(
                    "timeline_write_failed", order_no=entry.order_no, kind=entry.kind, method=entry.method
                )


class MemoryTimeline:
    """For tests of the adapters without a database."""

    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    async def record(self, *entries: TimelineEntry) -> None:
        self.entries.extend(entries)
