"""An in-memory unit of work for the recharge center: use-case tests without SQLite.

``MemoryStore`` holds the tables (orders with their version and lease, payments, timeline rows,
outbox rows). ``FakeUnitOfWork`` behaves like ``adapters/unit_of_work.py``: reads answer at once
with copies of what is committed; writes are staged, each with its own guard, and ``commit``
applies them all on a copy of the tables that replaces the committed one only when every op
succeeded (a failing commit writes nothing). Claims and lease renewals are their own writes, at
once, as in SQL. ``store.units`` counts the write transactions, so a test can say what a use
case costs.

Every write first yields to the event loop once (the hop to the database's writer), so tasks
gathered by a test interleave between their reads and their commits the way they do on SQLite.
``store.before_next_write(action)`` runs ``action`` in that gap, for a precise race.

The tables are in ``fake_tables.py``; the outbox, lease and anomaly queries in ``fake_claims.py``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from recharge_service.domain.followups import followups_for
from recharge_service.domain.order import OPEN_STATUSES, Channel, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TRANSITION, TimelineEntry
from recharge_service.service_layer import holding
from recharge_service.service_layer.limits import OpenOrders
from recharge_service.service_layer.storage import (
    DuplicateKey,
    OrderPage,
    StaleOrder,
    order_page_token,
    read_order_page_token,
)
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork, UowFactory
from tests.unit.recharge_service.fake_claims import FakeAnomalies, FakeLeases, FakeOutbox
from tests.unit.recharge_service.fake_tables import OrderRow, Staged, Tables, copy_order

T = TypeVar("T")


class MemoryStore:
    """The committed tables, shared by every unit of work made by ``uow_factory()``."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.units = 0  # write transactions committed (``DbStats.units``)
        self.failed_units = 0  # write transactions that raised and wrote nothing
        self.reads = 0
        self._before_write: list[Callable[[], Awaitable[None]]] = []

    def uow_factory(self, *, node: str = "") -> UowFactory:
        """Units of work of the replica ``node`` (stamped on the timeline rows they write)."""

        def make(*, readonly: bool = False) -> FakeUnitOfWork:
            return FakeUnitOfWork(self, node=node, readonly=readonly)

        return make

    def before_next_write(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` (say, another unit of work) after the next write's reads, before it
        applies: a concurrent writer that gets there first."""
        self._before_write.append(action)

    def read(self, query: Callable[[Tables], T]) -> T:
        self.reads += 1
        return query(self.tables)

    async def write(self, unit: Callable[[Tables], T], *, node: str = "") -> T:
        """Run ``unit`` (of the replica ``node``) on a copy of the tables; keep the copy only if it
        did not raise."""
        await asyncio.sleep(0)  # the hop to the writer: other tasks run meanwhile
        while self._before_write:
            await self._before_write.pop(0)()
        draft = copy.deepcopy(self.tables)
        draft.writing_node = node
        try:
            value = unit(draft)
        except BaseException:
            self.failed_units += 1
            raise
        draft.writing_node = ""
        self.tables = draft
        self.units += 1
        return value

    # -- for assertions ---------------------------------------------------------------------

    def order(self, order_no: str) -> RechargeOrder:
        return copy_order(self.tables.orders[order_no].order)

    def lease(self, order_no: str) -> tuple[str | None, datetime | None]:
        row = self.tables.orders[order_no]
        return row.lease_owner, row.lease_until


def _aware(order: RechargeOrder) -> None:
    """``UtcDateTime`` refuses naive datetimes; so does the fake."""
    for name in ("created_at", "updated_at", "expires_at", "paid_at"):
        value = getattr(order, name)
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime in {name} of {order.order_no}")


class FakeOrders:
    def __init__(self, store: MemoryStore, staged: Staged) -> None:
        self._store = store
        self._staged = staged

    async def get(self, order_no: str) -> RechargeOrder | None:
        row = self._store.read(lambda t: t.orders.get(order_no))
        return copy_order(row.order) if row else None

    async def count_open_for(self, merchant_id: str, card_no: str, payer_openid: str) -> OpenOrders:
        def counted(t: Any) -> OpenOrders:
            mine = [
                r.order
                for r in t.orders.values()
                if r.order.merchant_id == merchant_id and r.order.status in OPEN_STATUSES
            ]
            on_card = [o for o in mine if o.card_no == card_no]
            return OpenOrders(
                on_card=len(on_card),
                payer_on_card=sum(1 for o in on_card if o.payer_openid == payer_openid),
                of_payer=sum(1 for o in mine if o.payer_openid == payer_openid),
            )

        return self._store.read(counted)

    async def count_open(self, merchant_id: str) -> int:
        return self._store.read(
            lambda t: sum(
                1
                for r in t.orders.values()
                if r.order.merchant_id == merchant_id and r.order.status in OPEN_STATUSES
            )
        )

    async def get_by_idempotency_key(self, merchant_id: str, key: str) -> RechargeOrder | None:
        rows = self._store.read(
            lambda t: [
                r
                for r in t.orders.values()
                if (r.order.merchant_id, r.order.idempotency_key) == (merchant_id, key)
            ]
        )
        return copy_order(rows[0].order) if rows else None

    async def add(self, order: RechargeOrder, *, actor: str = "system", detail: str = "") -> None:
        _aware(order)
        stored = replace(order, changes=[], events=[], version=0)
        created = TimelineEntry(
            order.order_no,
            order.created_at,
            TRANSITION,
            0,
            int(order.status),
            actor=actor,
            detail=detail or "order created",
        )

        lease = holding.held(stored.order_no)

        def op(tables: Tables) -> None:
            key_taken = any(
                (r.order.merchant_id, r.order.idempotency_key) == (stored.merchant_id, stored.idempotency_key)
                for r in tables.orders.values()
            )
            if stored.order_no in tables.orders or key_taken:
                raise DuplicateKey("recharge_orders: the order number or idempotency key is taken")
            row = tables.orders[stored.order_no] = OrderRow(copy_order(stored))
            if lease is not None:
                row.lease_owner, row.lease_token = lease.owner, lease.token
                row.lease_until = stored.created_at + lease.length
            tables.insert_timeline([created])

        order.version = 0
        self._staged.add(op)

    async def save(self, order: RechargeOrder) -> None:
        _aware(order)
        read_version = order.version
        stored = replace(order, changes=[], events=[], version=read_version + 1)
        history = [
            TimelineEntry(
                order.order_no,
                order.updated_at,
                TRANSITION,
                int(change.from_status),
                int(change.to_status),
                actor=change.actor,
                detail=change.detail,
            )
            for change in order.changes
        ]
        followups = [
            {
                "order_no": order.order_no,
                "merchant_id": order.merchant_id,
                "topic": followup.topic,
                "event_id": followup.event_id,
                "payload": json.dumps(followup.payload, ensure_ascii=False),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": order.updated_at,
                "last_error": "",
                "lease_owner": None,
                "lease_until": None,
                "created_at": order.updated_at,
            }
            for event in order.events
            for followup in followups_for(order, event)
        ]

        lease = holding.held(order.order_no)

        def op(tables: Tables) -> None:
            row = tables.orders.get(order.order_no)
            if lease is not None and row is not None and (row.lease_owner, row.lease_token) != (
                lease.owner,
                lease.token,
            ):
                lease.lost = "another replica took the order over"
                raise holding.LeaseLost(order.order_no, lease.lost)
            if row is None or row.order.version != read_version:
                raise StaleOrder(order.order_no)
            row.order = copy_order(stored)  # the lease columns are not the order's to write …
            if lease is not None and stored.status in holding.RELEASED_AT:  # … but its holder's
                row.lease_owner, row.lease_until = None, None
            tables.insert_timeline(history)
            for followup in followups:
                tables.insert_outbox_if_absent(followup)

        def saved() -> None:
            order.version = read_version + 1
            order.changes.clear()
            order.events.clear()

        self._staged.add(op, saved)

    async def list(
        self,
        *,
        merchant_id: str,
        card_no: str = "",
        statuses: Sequence[OrderStatus] = (),
        channel: Channel | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> OrderPage:
        before = read_order_page_token(page_token) if page_token else None

        def wanted(order: RechargeOrder) -> bool:
            return (
                order.merchant_id == merchant_id
                and (not card_no or order.card_no == card_no)
                and (not statuses or order.status in statuses)
                and (channel is None or order.channel is channel)
                and (before is None or order.order_no < before)
            )

        found = self._store.read(lambda t: [r.order for r in t.orders.values() if wanted(r.order)])
        found.sort(key=lambda order: order.order_no, reverse=True)
        orders = [copy_order(order) for order in found[:page_size]]
        token = order_page_token(orders[-1].order_no) if len(found) > page_size else ""
        return OrderPage(orders, token)


class FakePaymentRows:
    def __init__(self, store: MemoryStore, staged: Staged) -> None:
        self._store = store
        self._staged = staged

    async def exists(self, transaction_id: str) -> bool:
        return self._store.read(lambda t: transaction_id in t.payments)

    def add_if_absent(
        self,
        transaction_id: str,
        order_no: str,
        amount_total_fen: int,
        success_time: str,
        recorded_at: datetime,
    ) -> None:
        row = {
            "transaction_id": transaction_id,
            "order_no": order_no,
            "amount_total_fen": amount_total_fen,
            "success_time": success_time,
            "recorded_at": recorded_at,
        }

        def op(tables: Tables) -> None:
            tables.payments.setdefault(transaction_id, row)  # ON CONFLICT DO NOTHING

        self._staged.add(op)

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        rows = self._store.read(lambda t: [r for r in t.payments.values() if r["order_no"] == order_no])
        return [dict(row) for row in rows]


class FakeTimeline:
    def __init__(self, store: MemoryStore, staged: Staged) -> None:
        self._store = store
        self._staged = staged

    def stage(self, entry: TimelineEntry, after: Callable[[], None] | None = None) -> None:
        self._staged.add(lambda tables: tables.insert_timeline([entry]), after)

    async def add(self, entry: TimelineEntry, *, after: Callable[[], None] | None = None) -> None:
        self.stage(entry, after)

    async def for_order(self, order_no: str) -> list[TimelineEntry]:
        rows = self._store.read(lambda t: [e for e in t.timeline if e.order_no == order_no])
        return sorted(rows, key=lambda entry: entry.seq)


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(self, store: MemoryStore, *, node: str = "", readonly: bool = False) -> None:
        super().__init__(readonly=readonly)
        self._store = store
        self._node = node
        self._staged = Staged()
        self.orders = FakeOrders(store, self._staged)
        self.payments = FakePaymentRows(store, self._staged)
        self.timeline = FakeTimeline(store, self._staged)
        self.outbox = FakeOutbox(store, node)
        self.leases = FakeLeases(store, self._staged)
        self.anomalies = FakeAnomalies(store)

    def _begin(self) -> None:
        self._staged.drain()

    def _discard(self) -> None:
        self._staged.drain()

    def _stage_entry(self, entry: TimelineEntry, after: Callable[[], None]) -> None:
        self._staged.add(lambda tables: tables.insert_timeline([entry]), after)

    async def _apply(self, pending: list[TimelineEntry]) -> list[Callable[[], None]]:
        ops, after = self._staged.drain()
        if not ops and not pending:
            return after

        def unit(tables: Tables) -> None:
            tables.insert_timeline(pending)
            for op in ops:
                op(tables)

        await self._store.write(unit, node=self._node)
        return after
