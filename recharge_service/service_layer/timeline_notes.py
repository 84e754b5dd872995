"""Timeline rows written apart from the caller's unit of work: remote attempts outside a flow's
own commits, notifications that changed nothing, operators' requests and results.

``write_apart`` is the one way to do it; ``TimelineNotes`` is the ``Timeline`` port over it (what
the retry helper records through), which logs a failed write instead of raising: the history must
not break the flow it describes. ``Unrecorded`` is the port that keeps nothing: read-only queries
made for an operator's screen (InspectOrder) are not part of any order's story.
"""

from __future__ import annotations

from rc_common.logs import get_logger
from recharge_service.domain.timeline import TimelineEntry
from recharge_service.service_layer.unit_of_work import UowFactory

log = get_logger("timeline")


async def write_apart(uow: UowFactory, *entries: TimelineEntry) -> None:
    """Write ``entries`` in a unit of work of their own, now (raises what the write raised)."""
    async with uow() as apart:
        for entry in entries:
            apart.timeline.stage(entry)
        await apart.commit()


class TimelineNotes:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow

    async def record(self, *entries: TimelineEntry, required: bool = False) -> None:
        try:
            await write_apart(self._uow, *entries)
        except Exception:  # the log keeps what the timeline could not
            if required:
                raise
            for entry in entries:
                log.exception(
                    "timeline_write_failed", order_no=entry.order_no, kind=entry.kind, method=entry.method
                )


class Unrecorded:
    """A ``Timeline`` that writes nothing (InspectOrder's lookups: reads, never on the record)."""

    async def record(self, *entries: TimelineEntry, required: bool = False) -> None:
        return None
