"""A ``Timeline`` that keeps entries in memory: tests of the adapters without a database. (The
service's own is ``service_layer/timeline_notes.py``.)"""

from __future__ import annotations

from recharge_service.domain.timeline import TimelineEntry


class MemoryTimeline:
    def __init__(self) -> None:
        self.entries: list[TimelineEntry] = []

    async def record(self, *entries: TimelineEntry, required: bool = False) -> None:
        self.entries.extend(entries)
