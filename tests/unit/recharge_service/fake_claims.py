"""Claims, leases and anomaly pages over the in-memory tables: Python filters and sorts that
mirror the statements of ``adapters/outbox.py``, ``adapters/leases.py`` and
``adapters/anomalies.py``. Claims and renewals are writes of their own, at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.storage import (
    AnomalyPage,
    Claimed,
    OutboxRow,
    Settled,
    StagedClaim,
    anomaly_page_token,
    read_anomaly_page_token,
)
from tests.unit.recharge_service.fake_tables import TEXT_LIMIT, OrderRow, Staged, Store, Tables, copy_order

NEVER = datetime(2000, 1, 1, tzinfo=UTC)  # adapters/leases.py: never visited sorts first
R = TypeVar("R")


def taking_turns(rows: list[R], merchant: Callable[[R], str], key: Callable[[R], Any]) -> list[R]:
    """``rows`` as the SQL claims order them: each merchant's first (by ``key``), then each
    one's second, … (``ROW_NUMBER() OVER (PARTITION BY merchant_id ORDER BY key)``, then key)."""
    turns: dict[str, int] = {}
    ranked = []
    for row in sorted(rows, key=key):
        turn = turns[merchant(row)] = turns.get(merchant(row), 0) + 1
        ranked.append((turn, key(row), row))
    return [row for *_, row in sorted(ranked, key=lambda item: item[:2])]


class FakeOutbox:
    def __init__(self, store: Store, node: str = "") -> None:
        self._store = store
        self._node = node  # the replica writing the delivery rows on the timeline

    async def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[OutboxRow]:
        def unit(tables: Tables) -> list[OutboxRow]:
            due = [
                row
                for row in tables.outbox.values()
                if row["status"] == "pending"
                and row["next_attempt_at"] <= now
                and (row["lease_until"] is None or row["lease_until"] < now)
            ]
            due = taking_turns(
                due, lambda row: row["merchant_id"], lambda row: (row["next_attempt_at"], row["id"])
            )
            claimed = []
            for row in due[:limit]:
                row.update(lease_owner=owner, lease_until=lease_until)
                claimed.append(
                    OutboxRow(
                        row["id"],
                        row["order_no"],
                        row["topic"],
                        row["event_id"],
                        json.loads(row["payload"]),
                        row["attempts"],
                    )
                )
            return sorted(claimed, key=lambda row: row.id)

        return await self._store.write(unit)

    async def finish(self, owner: str, settled: Sequence[Settled]) -> list[int]:
        def unit(tables: Tables) -> list[int]:
            mine = [
                item
                for item in settled
                if item.row_id in tables.outbox and tables.outbox[item.row_id]["lease_owner"] == owner
            ]
            for item in mine:
                tables.outbox[item.row_id].update(
                    status=item.status,
                    attempts=item.attempts,
                    next_attempt_at=item.next_attempt_at,
                    last_error=item.last_error[:TEXT_LIMIT],
                    lease_owner=None,
                    lease_until=None,
                )
            tables.insert_timeline([item.entry for item in mine])
            return [item.row_id for item in mine]

        return await self._store.write(unit, node=self._node) if settled else []

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        rows = self._store.read(lambda t: [r for r in t.outbox.values() if r["order_no"] == order_no])
        return [dict(row) for row in sorted(rows, key=lambda row: row["id"])]


def _free(row: OrderRow, now: datetime) -> bool:
    return row.lease_owner is None or row.lease_until is None or row.lease_until < now


class FakeLeases:
    def __init__(self, store: Store, staged: Staged) -> None:
        self._store = store
        self._staged = staged

    async def claim_batch(
        self,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        statuses: Sequence[OrderStatus],
        only_expired: Sequence[OrderStatus] = (),
        changed_before: datetime | None = None,
        visited_before: datetime | None = None,
        limit: int = 500,
        at_once: Sequence[OrderStatus] = (),
        left: Sequence[OrderStatus] = (),
        left_before: datetime | None = None,
    ) -> list[Claimed]:
        def due(row: OrderRow) -> bool:
            order = row.order
            wanted = order.status in statuses and (
                order.status not in only_expired or order.expires_at <= now
            )
            if changed_before is not None:
                wanted = wanted and order.updated_at < changed_before
            wanted = wanted or (
                order.status in at_once and order.updated_at <= order.expires_at <= now
            )
            if left_before is not None:
                wanted = wanted or (order.status in left and order.updated_at < left_before)
            if visited_before is not None:
                wanted = wanted and (row.lease_until is None or row.lease_until < visited_before)
            return wanted and _free(row, now)

        def unit(tables: Tables) -> list[Claimed]:
            picked = [row for row in tables.orders.values() if due(row)]
            picked = taking_turns(
                picked,
                lambda r: r.order.merchant_id,
                lambda r: (r.lease_until or NEVER, r.order.updated_at, r.order.order_no),
            )
            for row in picked[:limit]:
                row.lease_owner, row.lease_until, row.lease_token = owner, until, row.lease_token + 1
            return [Claimed(row.order.order_no, row.lease_token) for row in picked[:limit]]

        return await self._store.write(unit)

    async def claim_one(self, order_no: str, owner: str, now: datetime, until: datetime) -> int | None:
        def unit(tables: Tables) -> int | None:
            row = tables.orders.get(order_no)
            if row is None or not _free(row, now):
                return None
            row.lease_owner, row.lease_until, row.lease_token = owner, until, row.lease_token + 1
            return row.lease_token

        return await self._store.write(unit)

    def stage_claim(self, order_no: str, owner: str, now: datetime, until: datetime) -> StagedClaim:
        claim, got = StagedClaim(), []

        def op(tables: Tables) -> None:
            row = tables.orders.get(order_no)
            if row is None or not _free(row, now):
                got.append(None)
                return
            row.lease_owner, row.lease_until, row.lease_token = owner, until, row.lease_token + 1
            got.append(row.lease_token)

        def taken() -> None:
            claim.token = got[-1] if got else None

        self._staged.add(op, taken)
        return claim

    async def now(self, fallback: datetime) -> datetime:
        return fallback  # the in-memory store keeps leases on the caller's clock

    async def renew(
        self, order_no: str, owner: str, now: datetime, until: datetime, token: int | None = None
    ) -> bool:
        def unit(tables: Tables) -> bool:
            row = tables.orders.get(order_no)
            if row is None or row.lease_owner != owner or token not in (None, row.lease_token):
                return False
            row.lease_until = until
            return True

        return await self._store.write(unit)

    async def release(self, order_no: str, owner: str, now: datetime) -> None:
        await self.release_all([order_no], owner, now)

    async def release_all(self, order_nos: Sequence[str], owner: str, now: datetime) -> None:
        if not order_nos:
            return
        wanted = list(order_nos)

        def op(tables: Tables) -> None:
            for order_no in wanted:
                row = tables.orders.get(order_no)
                if row is not None and row.lease_owner == owner:
                    row.lease_owner, row.lease_until = None, now

        self._staged.add(op)

    async def holder(self, order_no: str) -> str | None:
        row = self._store.read(lambda t: t.orders.get(order_no))
        return row.lease_owner if row else None


class FakeAnomalies:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def page(
        self,
        *,
        statuses: Sequence[OrderStatus],
        old_statuses: Sequence[OrderStatus] = (),
        old_before: datetime | None = None,
        changed_before: datetime | None = None,
        merchant_id: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> AnomalyPage:
        after = read_anomaly_page_token(page_token) if page_token else None

        def wanted(order: RechargeOrder) -> bool:
            listed = order.status in statuses or (
                bool(old_statuses)
                and old_before is not None
                and order.status in old_statuses
                and order.updated_at < old_before
            )
            return (
                listed
                and (changed_before is None or order.updated_at <= changed_before)
                and (not merchant_id or order.merchant_id == merchant_id)
                and (after is None or (order.updated_at, order.order_no) > after)
            )

        found = self._store.read(lambda t: [r.order for r in t.orders.values() if wanted(r.order)])
        found.sort(key=lambda order: (order.updated_at, order.order_no))
        orders = [copy_order(order) for order in found[:page_size]]
        token = ""
        if len(found) > page_size:
            token = anomaly_page_token(orders[-1].updated_at, orders[-1].order_no)
        return AnomalyPage(orders, token)
