"""Orders operators should look at, oldest change first, paged by (updated_at, order_no)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, select

from rc_common.db import Database
from recharge_service.adapters.orm import recharge_orders
from recharge_service.adapters.repository import order_from_row, read
from recharge_service.domain.order import OrderStatus
from recharge_service.service_layer.storage import AnomalyPage, anomaly_page_token, read_anomaly_page_token

orders = recharge_orders.c


class AnomaliesRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        """Orders in ``statuses``, plus those in ``old_statuses`` last changed before ``old_before``;
        only those last changed before ``changed_before`` (None = any); of ``merchant_id`` ("" = all)."""
        wanted: ColumnElement[bool] = orders.status.in_([s.name for s in statuses]) if statuses else false()
        if old_statuses and old_before is not None:
            wanted = or_(
                wanted,
                and_(orders.status.in_([s.name for s in old_statuses]), orders.updated_at < old_before),
            )
        query = select(recharge_orders).where(wanted)
        if changed_before is not None:
            query = query.where(orders.updated_at <= changed_before)
        if merchant_id:
            query = query.where(orders.merchant_id == merchant_id)
        if page_token:
            after_at, after_no = read_anomaly_page_token(page_token)
            query = query.where(
                or_(
                    orders.updated_at > after_at,
                    and_(orders.updated_at == after_at, orders.order_no > after_no),
                )
            )
        query = query.order_by(orders.updated_at, orders.order_no).limit(page_size + 1)
        rows = await read(self._db, lambda conn: conn.execute(query).mappings().all())
        found = [order_from_row(row) for row in rows[:page_size]]
        token = ""
        if len(rows) > page_size:
            token = anomaly_page_token(found[-1].updated_at, found[-1].order_no)
        return AnomalyPage(found, token)
