"""Repositories over one SQLAlchemy session (the unit of work owns the transaction).

``OrdersRepository.save`` is the optimistic-concurrency write: ``UPDATE ... WHERE version = :v``;
when another writer got there first it raises ``StaleOrder`` and the caller re-reads. The same
write turns the order's pending changes into timeline rows and its events into outbox rows, so a
state change, its history and its follow-ups commit together or not at all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from recharge_service.adapters.orm import outbox, payments, recharge_orders, timeline_events
from recharge_service.domain.followups import followups_for
from recharge_service.domain.order import Channel, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import TRANSITION, TimelineEntry

_ORDER_FIELDS = (
    "order_no",
    "idempotency_key",
    "card_no",
    "pay_amount_fen",
    "bonus_fen",
    "credit_amount_fen",
    "rule_version",
    "prepay_id",
    "transaction_id",
    "out_refund_no",
    "failure_reason",
    "payer_openid",
    "created_at",
    "updated_at",
    "paid_at",
    "expires_at",
    "attempts",
    "last_error",
)


class StaleOrder(Exception):
    """Another writer changed the order since it was read; re-read and decide again."""


def _status_name(value: int) -> str:
    return OrderStatus(value).name if value else ""


def _status_value(name: str) -> int:
    return int(OrderStatus[name]) if name else 0


def order_from_row(row: RowMapping) -> RechargeOrder:
    values: dict[str, Any] = {name: row[name] for name in _ORDER_FIELDS}
    return RechargeOrder(
        channel=Channel[row["channel"]],
        status=OrderStatus[row["status"]],
        version=row["version"],
        **values,
    )


def _order_values(order: RechargeOrder) -> dict[str, Any]:
    values = {name: getattr(order, name) for name in _ORDER_FIELDS}
    values.update(channel=order.channel.name, status=order.status.name)
    return values


@dataclass(frozen=True)
class OrderPage:
    orders: list[RechargeOrder]
    next_page_token: str


def encode_page_token(after_order_no: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": after_order_no}).encode()).decode()


def decode_page_token(token: str) -> str:
    """The order number to continue below; raises ValueError on a token we did not make."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        value = data["before"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("not a page token of this service") from exc
    if not isinstance(value, str):
        raise ValueError("not a page token of this service")
    return value


class OrdersRepository:
    def __init__(
        self, session: AsyncSession, timeline: TimelineRepository, outbox_repo: OutboxRepository
    ) -> None:
        self._session = session
        self._timeline = timeline
        self._outbox = outbox_repo

    async def get(self, order_no: str) -> RechargeOrder | None:
        row = (
            (
                await self._session.execute(
                    select(recharge_orders).where(recharge_orders.c.order_no == order_no)
                )
            )
            .mappings()
            .first()
        )
        return order_from_row(row) if row else None

    async def get_by_idempotency_key(self, key: str) -> RechargeOrder | None:
        row = (
            (
                await self._session.execute(
                    select(recharge_orders).where(recharge_orders.c.idempotency_key == key)
                )
            )
            .mappings()
            .first()
        )
        return order_from_row(row) if row else None

    async def add(self, order: RechargeOrder, *, actor: str = "system", detail: str = "") -> None:
        """Insert a new order (raises IntegrityError when the idempotency key exists)."""
        await self._session.execute(insert(recharge_orders).values(**_order_values(order), version=0))
        await self._timeline.add(
            TimelineEntry(
                order.order_no,
                order.created_at,
                TRANSITION,
                0,
                int(order.status),
                actor=actor,
                detail=detail or "order created",
            )
        )
        order.version = 0

    async def save(self, order: RechargeOrder) -> None:
        """Write the order if nobody changed it since it was read; flush changes and events."""
        result = await self._session.execute(
            update(recharge_orders)
            .where(
                and_(recharge_orders.c.order_no == order.order_no, recharge_orders.c.version == order.version)
            )
            .values(**_order_values(order), version=order.version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
            raise StaleOrder(order.order_no)
        order.version += 1
        for change in order.changes:
            await self._timeline.add(
                TimelineEntry(
                    order.order_no,
                    order.updated_at,
                    TRANSITION,
                    int(change.from_status),
                    int(change.to_status),
                    actor=change.actor,
                    detail=change.detail,
                )
            )
        for event in order.events:
            for followup in followups_for(order, event):
                await self._outbox.add(
                    order.order_no, followup.topic, followup.event_id, followup.payload, order.updated_at
                )
        order.changes.clear()
        order.events.clear()

    async def list(
        self,
        *,
        card_no: str = "",
        statuses: Sequence[OrderStatus] = (),
        channel: Channel | None = None,
        page_size: int = 50,
        page_token: str = "",
    ) -> OrderPage:
        """Newest first (order numbers sort by creation time)."""
        query = select(recharge_orders)
        if card_no:
            query = query.where(recharge_orders.c.card_no == card_no)
        if statuses:
            query = query.where(recharge_orders.c.status.in_([s.name for s in statuses]))
        if channel is not None:
            query = query.where(recharge_orders.c.channel == channel.name)
        if page_token:
            query = query.where(recharge_orders.c.order_no < decode_page_token(page_token))
        query = query.order_by(recharge_orders.c.order_no.desc()).limit(page_size + 1)
        rows = (await self._session.execute(query)).mappings().all()
        orders = [order_from_row(row) for row in rows[:page_size]]
        token = encode_page_token(orders[-1].order_no) if len(rows) > page_size else ""
        return OrderPage(orders, token)


class PaymentsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_if_absent(
        self,
        transaction_id: str,
        order_no: str,
        amount_total_fen: int,
        success_time: str,
        recorded_at: datetime,
    ) -> bool:
        """Record a payment once per transaction id; False when it was already recorded."""
        exists = (
            await self._session.execute(
                select(payments.c.transaction_id).where(payments.c.transaction_id == transaction_id)
            )
        ).first()
        if exists:
            return False
        await self._session.execute(
            insert(payments).values(
                transaction_id=transaction_id,
                order_no=order_no,
                amount_total_fen=amount_total_fen,
                success_time=success_time,
                recorded_at=recorded_at,
            )
        )
        return True

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        rows = (
            await self._session.execute(select(payments).where(payments.c.order_no == order_no))
        ).mappings()
        return [dict(row) for row in rows]


class TimelineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, entry: TimelineEntry) -> None:
        await self._session.execute(
            insert(timeline_events).values(
                order_no=entry.order_no,
                at=entry.at,
                kind=entry.kind,
                from_status=_status_name(entry.from_status),
                to_status=_status_name(entry.to_status),
                method=entry.method,
                outcome=entry.outcome,
                latency_ms=entry.latency_ms,
                error=entry.error[:2000],
                actor=entry.actor,
                detail=entry.detail[:2000],
            )
        )

    async def for_order(self, order_no: str) -> list[TimelineEntry]:
        rows = (
            await self._session.execute(
                select(timeline_events)
                .where(timeline_events.c.order_no == order_no)
                .order_by(timeline_events.c.id)
            )
        ).mappings()
        return [
            TimelineEntry(
                row["order_no"],
                row["at"],
                row["kind"],
                _status_value(row["from_status"]),
                _status_value(row["to_status"]),
                row["method"],
                row["outcome"],
                row["latency_ms"],
                row["error"],
                row["actor"],
                row["detail"],
                seq=row["id"],
            )
            for row in rows
        ]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    order_no: str
    topic: str
    event_id: str
    payload: dict[str, Any]
    attempts: int


class OutboxRepository:
    """Follow-ups waiting for delivery. ``claim`` is the only place that decides who delivers a row
    (on PostgreSQL it can become ``FOR UPDATE SKIP LOCKED`` without touching its callers)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self, order_no: str, topic: str, event_id: str, payload: dict[str, Any], at: datetime
    ) -> None:
        exists = (
            await self._session.execute(select(outbox.c.id).where(outbox.c.event_id == event_id))
        ).first()
        if exists:
            return
        await self._session.execute(
            insert(outbox).values(
                order_no=order_no,
                topic=topic,
                event_id=event_id,
                payload=json.dumps(payload, ensure_ascii=False),
                status="pending",
                attempts=0,
                next_attempt_at=at,
                last_error="",
                created_at=at,
            )
        )

    async def claim(self, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[OutboxRow]:
        """Reserve up to ``limit`` due rows for ``owner`` until ``lease_until``."""
        free = or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)
        due = and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now, free)
        ids = (
            (
                await self._session.execute(
                    select(outbox.c.id)
                    .where(due)
                    .order_by(outbox.c.next_attempt_at, outbox.c.id)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        claimed: list[OutboxRow] = []
        for row_id in ids:
            result = await self._session.execute(
                update(outbox)
                .where(and_(outbox.c.id == row_id, due))
                .values(lease_owner=owner, lease_until=lease_until)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                row = (
                    (await self._session.execute(select(outbox).where(outbox.c.id == row_id)))
                    .mappings()
                    .one()
                )
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
        return claimed

    async def finish(
        self,
        row_id: int,
        owner: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime,
        last_error: str,
    ) -> bool:
        """Record a delivery attempt's result, only if ``owner`` still holds the lease."""
        result = await self._session.execute(
            update(outbox)
            .where(and_(outbox.c.id == row_id, outbox.c.lease_owner == owner))
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_error=last_error[:2000],
                lease_owner=None,
                lease_until=None,
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult has rowcount

    async def for_order(self, order_no: str) -> list[dict[str, Any]]:
        rows = (
            await self._session.execute(
                select(outbox).where(outbox.c.order_no == order_no).order_by(outbox.c.id)
            )
        ).mappings()
        return [dict(row) for row in rows]
