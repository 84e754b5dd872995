"""Repositories of payment orders and refunds: domain objects in, domain objects out.

Reads run at once on a snapshot; writes are staged for the unit of work's commit, each guarded
(see :mod:`wechat_mock.adapters.staging`): an order or refund is updated only from the version that
was read, a new order or refund only if its number is free, and a new refund only while the order's
remaining amount still covers it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from wechat_mock.adapters.staging import (
    InsertNew,
    SqlRepository,
    guarded,
    versioned_params,
    versioned_update,
)
from wechat_mock.adapters.tables import (
    from_db,
    from_db_required,
    payment_orders,
    refunds,
    to_db,
)
from wechat_mock.domain.merchants import Merchant, MerchantMode
from wechat_mock.domain.payments import PaymentOrder, PrepayTerms, TradeState
from wechat_mock.domain.refunds import COMMITTING, Refund, RefundStatus, RefundTerms
from wechat_mock.service_layer.ports import REFUNDS, Conflict

_ORDER = select(payment_orders).where(payment_orders.c.out_trade_no == bindparam("out_trade_no"))
_INSERT_ORDER = InsertNew(payment_orders, payment_orders.c.out_trade_no)
_UPDATE_ORDER = versioned_update(payment_orders, payment_orders.c.out_trade_no)

_COMMITTING = sorted(s.value for s in COMMITTING)
_REFUND = select(refunds).where(refunds.c.out_refund_no == bindparam("out_refund_no"))
_UPDATE_REFUND = versioned_update(refunds, refunds.c.out_refund_no)
_COMMITTED_FEN = (
    select(func.coalesce(func.sum(refunds.c.refund_fen), 0))
    .where(refunds.c.out_trade_no == bindparam("out_trade_no"))
    .where(refunds.c.status.in_(_COMMITTING))
)
_PROCESSING = RefundStatus.PROCESSING.value


def _covered_refund_inserts() -> dict[str, Any]:
    """The new refund, inserted only while ``amount - committed >= refund_fen`` and its number is
    free. The order's row is locked first (PostgreSQL), so each statement sees the refunds that
    concurrent transactions committed meanwhile; SQLite's single writer serializes them anyway."""
    values = {c.name: bindparam(c.name, type_=c.type) for c in refunds.c}
    amount = (
        select(payment_orders.c.amount_total_fen)
        .where(payment_orders.c.out_trade_no == values["out_trade_no"])
        .scalar_subquery()
    )
    committed = (
        select(func.coalesce(func.sum(refunds.c.refund_fen), 0))
        .where(refunds.c.out_trade_no == values["out_trade_no"])
        .where(refunds.c.status.in_(_COMMITTING))
        .scalar_subquery()
    )
    rows = select(*values.values()).where(amount - committed >= values["refund_fen"])
    return {
        name: dialect.insert(refunds)
        .from_select(list(values), rows)
        .on_conflict_do_nothing(index_elements=[refunds.c.out_refund_no])
        for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
    }


_INSERT_COVERED_REFUND = _covered_refund_inserts()
_LOCK_ORDER = (
    select(payment_orders.c.version)
    .where(payment_orders.c.out_trade_no == bindparam("out_trade_no"))
    .with_for_update()  # left out on SQLite, whose writer is alone anyway
)


class SqlOrderRepository(SqlRepository):
    __slots__ = ()

    async def get(self, out_trade_no: str) -> PaymentOrder | None:
        def query(conn: Connection) -> PaymentOrder | None:
            row = conn.execute(_ORDER, {"out_trade_no": out_trade_no}).mappings().first()
            return None if row is None else _order(row)

        return await self._read(query)

    async def get_many(self, out_trade_nos: Iterable[str]) -> dict[str, PaymentOrder]:
        wanted = sorted(set(out_trade_nos))
        if not wanted:
            return {}

        def query(conn: Connection) -> dict[str, PaymentOrder]:
            rows = conn.execute(select(payment_orders).where(payment_orders.c.out_trade_no.in_(wanted)))
            return {row["out_trade_no"]: _order(row) for row in rows.mappings()}

        return await self._read(query)

    async def paid_between(
        self, start: datetime, end: datetime, merchant: Merchant | None = None
    ) -> list[PaymentOrder]:
        statement = (
            select(payment_orders)
            .where(payment_orders.c.success_time >= to_db(start))
            .where(payment_orders.c.success_time < to_db(end))
            .where(*_of_merchant(payment_orders, merchant))
            .order_by(payment_orders.c.success_time, payment_orders.c.out_trade_no)
        )

        def query(conn: Connection) -> list[PaymentOrder]:
            return [_order(row) for row in conn.execute(statement).mappings()]

        return await self._read(query)

    def add(self, order: PaymentOrder) -> None:
        """Stage the new order; ``Duplicate`` at commit when its out_trade_no is taken."""
        values = _order_values(order)
        self._stage(lambda conn: _INSERT_ORDER(conn, values))

    def update(self, order: PaymentOrder) -> None:
        """Stage the order's new state, written only over the version that was read."""
        params = versioned_params(_order_values(order), order.out_trade_no, order.version)
        order.version += 1
        what = f"order {order.out_trade_no}"
        self._stage(lambda conn: guarded(conn, _UPDATE_ORDER, params, what))


class SqlRefundRepository(SqlRepository):
    __slots__ = ()

    async def get(self, out_refund_no: str) -> Refund | None:
        def query(conn: Connection) -> Refund | None:
            row = conn.execute(_REFUND, {"out_refund_no": out_refund_no}).mappings().first()
            return None if row is None else _refund(row)

        return await self._read(query)

    async def get_with_committed_fen(
        self, out_refund_no: str, out_trade_no: str
    ) -> tuple[Refund | None, int]:
        """The refund with this number (if any) and what the order's refunds hold (PROCESSING,
        SUCCESS and ABNORMAL amounts). The sum is read first: a refund committed between the two
        statements (on PostgreSQL each sees its own snapshot) is then found by its number, as a
        replay, instead of being counted against the amount as a false NOT_ENOUGH."""

        def query(conn: Connection) -> tuple[Refund | None, int]:
            committed = int(conn.execute(_COMMITTED_FEN, {"out_trade_no": out_trade_no}).scalar() or 0)
            row = conn.execute(_REFUND, {"out_refund_no": out_refund_no}).mappings().first()
            return (None if row is None else _refund(row)), committed

        return await self._read(query)

    async def due(self, now: datetime, limit: int) -> list[Refund]:
        def query(conn: Connection) -> list[Refund]:
            rows = conn.execute(
                select(refunds)
                .where(refunds.c.status == _PROCESSING)
                .where(refunds.c.due_at <= to_db(now))
                .order_by(refunds.c.due_at, refunds.c.out_refund_no)
                .limit(limit)
            )
            return [_refund(row) for row in rows.mappings()]

        return await self._read(query)

    async def next_due(self) -> datetime | None:
        def query(conn: Connection) -> datetime | None:
            return from_db(
                conn.execute(
                    select(func.min(refunds.c.due_at)).where(refunds.c.status == _PROCESSING)
                ).scalar()
            )

        return await self._read(query)

    async def created_between(
        self, start: datetime, end: datetime, merchant: Merchant | None = None
    ) -> list[Refund]:
        statement = (
            select(refunds)
            .where(refunds.c.created_at >= to_db(start))
            .where(refunds.c.created_at < to_db(end))
            .where(*_of_merchant(refunds, merchant))
            .order_by(refunds.c.created_at, refunds.c.out_refund_no)
        )

        def query(conn: Connection) -> list[Refund]:
            return [_refund(row) for row in conn.execute(statement).mappings()]

        return await self._read(query)

    def add(self, refund: Refund) -> None:
        """Stage the new refund. At commit it is inserted only if its out_refund_no is free and the
        order's unrefunded amount still covers it; otherwise ``Conflict`` (re-read and decide)."""
        values = _refund_values(refund)
        lock = {"out_trade_no": refund.out_trade_no}
        what = f"refund {refund.out_refund_no} (number taken, or the order's remaining amount changed)"

        def write(conn: Connection) -> None:
            conn.execute(_LOCK_ORDER, lock)
            if conn.execute(_INSERT_COVERED_REFUND[conn.dialect.name], values).rowcount != 1:
                raise Conflict(what)

        self._stage(write, REFUNDS, [(refund.out_refund_no, refund.due_at)])

    def update(self, refund: Refund) -> None:
        """Stage the refund's new state, written only over the version that was read."""
        params = versioned_params(_refund_values(refund), refund.out_refund_no, refund.version)
        refund.version += 1
        what = f"refund {refund.out_refund_no}"
        self._stage(lambda conn: guarded(conn, _UPDATE_REFUND, params, what))


def _merchant_values(merchant: Merchant) -> dict[str, Any]:
    return {
        "merchant_mode": merchant.mode.value,
        "mchid": merchant.mchid,
        "sp_mchid": merchant.sp_mchid,
        "sub_mchid": merchant.sub_mchid,
    }


def _merchant(row: Any) -> Merchant:
    return Merchant(MerchantMode(row["merchant_mode"]), row["mchid"], row["sp_mchid"], row["sub_mchid"])


def _of_merchant(table: Table, merchant: Merchant | None) -> list[ColumnElement[bool]]:
    """The conditions selecting ``merchant``'s rows of ``table`` (none: every row)."""
    if merchant is None:
        return []
    return [table.c[name] == value for name, value in _merchant_values(merchant).items()]


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
        **_merchant_values(order.merchant),
        "appid": order.appid,
        "notify_url": order.notify_url,
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
        merchant=_merchant(row),
        appid=row["appid"],
        notify_url=row["notify_url"],
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
        **_merchant_values(refund.merchant),
        "notify_url": refund.notify_url,
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
        merchant=_merchant(row),
        notify_url=row["notify_url"],
    )
