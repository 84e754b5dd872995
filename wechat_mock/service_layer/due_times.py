"""When each piece of work this process knows of is due, kept in memory so that a worker's wake-up
costs no query.

The database stays the truth (a worker still asks it at start, after anything it cannot account
for, and every ``idle_s``); this is what the process itself committed since: rows it added, and
next attempts it scheduled. A key set again moves; a key discarded is forgotten. Earliest first,
over a heap whose outdated entries are dropped lazily.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime


class DueTimes:
    __slots__ = ("_due", "_heap")

    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def set(self, key: str, due: datetime) -> None:
        if self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))

    def discard(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._due.pop(key, None)

    def first(self) -> datetime | None:
        """The earliest due time, or None when nothing is known to be due."""
        heap, due = self._heap, self._due
        while heap:
            when, key = heap[0]
            if due.get(key) == when:
                return when
            heapq.heappop(heap)
        return None

    def take_due(self, now: datetime) -> list[tuple[datetime, str]]:
        """Forget and return what is due at ``now``, earliest first."""
        heap, due = self._heap, self._due
        taken: list[tuple[datetime, str]] = []
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if due.get(key) == when:
                del due[key]
                taken.append((when, key))
        return taken
