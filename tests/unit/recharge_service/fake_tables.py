"""The in-memory tables behind ``fake_uow.MemoryStore``: rows shaped like the SQL ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TimelineEntry

T = TypeVar("T")
TEXT_LIMIT = 2000  # error and detail columns are cut here, as in SQL


@dataclass
class OrderRow:
    order: RechargeOrder  # a stored copy: no pending changes or events; ``version`` as stored
    lease_owner: str | None = None
    lease_until: datetime | None = None
    lease_token: int = 0


@dataclass
class Tables:
    orders: dict[str, OrderRow] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by transaction id
    timeline: list[TimelineEntry] = field(default_factory=list)  # ``seq`` is the row id
    outbox: dict[int, dict[str, Any]] = field(default_factory=dict)  # by id, columns as in SQL
    last_timeline_id: int = 0
    last_outbox_id: int = 0
    #: The replica whose unit is being applied: stamped on its timeline rows, as SQL's
    #: ``insert_timeline`` does (``Store.write`` sets it for the unit).
    writing_node: str = ""

    def insert_timeline(self, entries: Sequence[TimelineEntry]) -> None:
        for entry in entries:
            for status in (entry.from_status, entry.to_status):
                if status:
                    OrderStatus(status)  # stored by name in SQL: an unknown number fails the unit
            self.last_timeline_id += 1
            self.timeline.append(
                replace(
                    entry,
                    error=entry.error[:TEXT_LIMIT],
                    detail=entry.detail[:TEXT_LIMIT],
                    seq=self.last_timeline_id,
                    node=self.writing_node,
                )
            )

    def insert_outbox_if_absent(self, row: dict[str, Any]) -> None:
        if any(existing["event_id"] == row["event_id"] for existing in self.outbox.values()):
            return  # ON CONFLICT (event_id) DO NOTHING
        self.last_outbox_id += 1
        self.outbox[self.last_outbox_id] = {"id": self.last_outbox_id, **row}


Op = Callable[[Tables], None]


class Store(Protocol):
    """How the repositories reach the tables: reads at once, writes as one atomic unit (by the
    replica ``node``)."""

    def read(self, query: Callable[[Tables], T]) -> T: ...
    async def write(self, unit: Callable[[Tables], T], *, node: str = "") -> T: ...


def copy_order(order: RechargeOrder) -> RechargeOrder:
    """A copy without pending changes or events (what a read returns, what a row stores)."""
    return replace(order, changes=[], events=[])


class Staged:
    """The writes of one unit of work, and what to do once they are committed."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.after: list[Callable[[], None]] = []

    def add(self, op: Op, after: Callable[[], None] | None = None) -> None:
        self.ops.append(op)
        if after is not None:
            self.after.append(after)

    def drain(self) -> tuple[list[Op], list[Callable[[], None]]]:
        ops, after = self.ops, self.after
        self.ops, self.after = [], []
        return ops, after
