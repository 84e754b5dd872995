"""Repositories over the simulator's tables: domain objects in, domain objects out.

Writes check the row's ``version`` (optimistic concurrency); a lost race or a duplicate key is
raised as :class:`Conflict`, which the service layer answers by re-running the use case.
Reads meant for a later write take the row lock (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serializes writers). ``touched`` collects what changed, so the unit of
work can wake the background workers after commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wechat_mock.adapters.tables import (
    from_db,
    from_db_required,
    payment_orders,
    refunds,
    to_db,
)
from wechat_mock.domain.payments import PaymentOrder, PrepayTerms, TradeState
from wechat_mock.domain.refunds import COMMITTING, Refund, RefundStatus, RefundTerms

NOTIFICATIONS = "notifications"
REFUNDS = "refunds"


class Conflict(Exception):
    """A concurrent writer got there first (duplicate key or stale version); retry the use case."""


class Repository:
    def __init__(self, session: AsyncSession, touched: set[str]) -> None:
        self._session = session
        self._touched = touched

    async def _insert(self, statement: Any) -> None:
        try:
            await self._session.execute(statement)
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc

    async def _update(self, statement: Any, what: str) -> None:
        try:
            result = await self._session.execute(statement)
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        if getattr(result, "rowcount", 1) != 1:
            raise Conflict(f"{what} was changed concurrently")

    async def _one(self, query: Select[Any], for_update: bool) -> Any:
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).mappings().first()


class OrderRepository(Repository):
    async def get(self, out_trade_no: str, *, for_update: bool = False) -> PaymentOrder | None:
        row = await self._one(
            select(payment_orders).where(payment_orders.c.out_trade_no == out_trade_no), for_update
        )
        return None if row is None else _order(row)

    async def get_many(self, out_trade_nos: Iterable[str]) -> dict[str, PaymentOrder]:
        wanted = sorted(set(out_trade_nos))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(payment_orders).where(payment_orders.c.out_trade_no.in_(wanted))
        )
        return {row["out_trade_no"]: _order(row) for row in rows.mappings()}

    async def add(self, order: PaymentOrder) -> None:
        await self._insert(insert(payment_orders).values(**_order_values(order)))

    async def update(self, order: PaymentOrder) -> None:
        values = _order_values(order)
        values["version"] = order.version + 1
        await self._update(
            update(payment_orders)
            .where(payment_orders.c.out_trade_no == order.out_trade_no)
            .where(payment_orders.c.version == order.version)
            .values(**values),
            f"order {order.out_trade_no}",
        )
        order.version += 1

    async def paid_between(self, start: datetime, end: datetime) -> list[PaymentOrder]:
        rows = await self._session.execute(
            select(payment_orders)
            .where(payment_orders.c.success_time >= to_db(start))
            .where(payment_orders.c.success_time < to_db(end))
            .order_by(payment_orders.c.success_time, payment_orders.c.out_trade_no)
        )
        return [_order(row) for row in rows.mappings()]


class RefundRepository(Repository):
    async def get(self, out_refund_no: str, *, for_update: bool = False) -> Refund | None:
        row = await self._one(select(refunds).where(refunds.c.out_refund_no == out_refund_no), for_update)
        return None if row is None else _refund(row)

    async def add(self, refund: Refund) -> None:
        await self._insert(insert(refunds).values(**_refund_values(refund)))
        self._touched.add(REFUNDS)

    async def update(self, refund: Refund) -> None:
        values = _refund_values(refund)
        values["version"] = refund.version + 1
        await self._update(
            update(refunds)
            .where(refunds.c.out_refund_no == refund.out_refund_no)
            .where(refunds.c.version == refund.version)
            .values(**values),
            f"refund {refund.out_refund_no}",
        )
        refund.version += 1

    async def committed_fen(self, out_trade_no: str) -> int:
        """What the order's refunds hold: PROCESSING, SUCCESS and ABNORMAL amounts."""
        total = await self._session.scalar(
            select(func.coalesce(func.sum(refunds.c.refund_fen), 0))
            .where(refunds.c.out_trade_no == out_trade_no)
            .where(refunds.c.status.in_([s.value for s in COMMITTING]))
        )
        return int(total or 0)

    async def due(self, now: datetime, limit: int) -> list[Refund]:
        rows = await self._session.execute(
            select(refunds)
            .where(refunds.c.status == RefundStatus.PROCESSING.value)
            .where(refunds.c.due_at <= to_db(now))
            .order_by(refunds.c.due_at, refunds.c.out_refund_no)
            .limit(limit)
        )
        return [_refund(row) for row in rows.mappings()]

    async def next_due(self) -> datetime | None:
        value = await self._session.scalar(
            select(func.min(refunds.c.due_at)).where(refunds.c.status == RefundStatus.PROCESSING.value)
        )
        return from_db(value)

    async def created_between(self, start: datetime, end: datetime) -> list[Refund]:
        rows = await self._session.execute(
            select(refunds)
            .where(refunds.c.created_at >= to_db(start))
            .where(refunds.c.created_at < to_db(end))
            .order_by(refunds.c.created_at, refunds.c.out_refund_no)
        )
        return [_refund(row) for row in rows.mappings()]

    async def for_order(self, out_trade_no: str) -> list[Refund]:
        rows = await self._session.execute(
            select(refunds).where(refunds.c.out_trade_no == out_trade_no).order_by(refunds.c.created_at)
        )
        return [_refund(row) for row in rows.mappings()]


def _order_values(order: PaymentOrder) -> dict[str, Any]:
    terms = order.terms
    return {
        "out_trade_no": order.out_trade_no,
        "prepay_id": order.prepay_id,
        "description": terms.description,
        "amount_total_fen": terms.amount_total_fen,
        "payer_openid": terms.payer_openid,
        "time_expire": to_db(terms.time_expire),
        "attach": terms.attach,
        "created_at": to_db(order.created_at),
        "trade_state": order.trade_state.value,
        "transaction_id": order.transaction_id or None,
        "success_time": to_db(order.success_time),
        "paid_openid": order.paid_openid,
        "closed_at": to_db(order.closed_at),
        "refunded_fen": order.refunded_fen,
        "version": order.version,
    }


def _order(row: Any) -> PaymentOrder:
    return PaymentOrder(
        out_trade_no=row["out_trade_no"],
        prepay_id=row["prepay_id"],
        terms=PrepayTerms(
            description=row["description"],
            amount_total_fen=int(row["amount_total_fen"]),
            payer_openid=row["payer_openid"],
            time_expire=from_db(row["time_expire"]),
            attach=row["attach"],
        ),
        created_at=from_db_required(row["created_at"]),
        trade_state=TradeState(row["trade_state"]),
        transaction_id=row["transaction_id"] or "",
        success_time=from_db(row["success_time"]),
        paid_openid=row["paid_openid"],
        closed_at=from_db(row["closed_at"]),
        refunded_fen=int(row["refunded_fen"]),
        version=int(row["version"]),
    )


def _refund_values(refund: Refund) -> dict[str, Any]:
    return {
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "out_trade_no": refund.terms.out_trade_no,
        "transaction_id": refund.transaction_id,
        "refund_fen": refund.terms.refund_fen,
        "total_fen": refund.terms.total_fen,
        "reason": refund.reason,
        "created_at": to_db(refund.created_at),
        "due_at": to_db(refund.due_at),
        "outcome": refund.outcome.value,
        "status": refund.status.value,
        "success_time": to_db(refund.success_time),
        "settled_at": to_db(refund.settled_at),
        "version": refund.version,
    }


def _refund(row: Any) -> Refund:
    return Refund(
        out_refund_no=row["out_refund_no"],
        refund_id=row["refund_id"],
        terms=RefundTerms(row["out_trade_no"], int(row["refund_fen"]), int(row["total_fen"])),
        transaction_id=row["transaction_id"],
        reason=row["reason"],
        created_at=from_db_required(row["created_at"]),
        due_at=from_db_required(row["due_at"]),
        outcome=RefundStatus(row["outcome"]),
        status=RefundStatus(row["status"]),
        success_time=from_db(row["success_time"]),
        settled_at=from_db(row["settled_at"]),
        version=int(row["version"]),
    )


def exclude(column: Any, ids: Collection[str]) -> Any:
    """``column NOT IN ids`` (true when ids is empty)."""
    return column.notin_(sorted(ids)) if ids else column.isnot(None)
