"""The reconciliation's store: our orders as it sees them, and its runs and items (SQL Core)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, RowMapping

from rc_common.db import Database
from recharge_service.adapters.orm import recharge_orders, reconciliation_items, reconciliation_runs
from recharge_service.domain.reconciliation import Category, Item, OrderView
from recharge_service.service_layer.reconcile import RunRecord, StoredItem

_O = recharge_orders.c
_ORDER_COLUMNS = (_O.order_no, _O.status, _O.pay_amount_fen, _O.bonus_fen, _O.paid_at, _O.updated_at)
_RUNS = reconciliation_runs.c
_ITEMS = reconciliation_items.c
#: Order numbers looked up per statement (well under every database's bound-parameter limit).
_CHUNK = 500


def _order(row: RowMapping) -> OrderView:
    return OrderView(
        row["order_no"],
        row["status"],
        row["pay_amount_fen"],
        row["bonus_fen"],
        row["paid_at"],
        row["updated_at"],
    )


def _run(row: RowMapping) -> RunRecord:
    return RunRecord(
        row["business_date"], row["merchant_id"], row["status"], row["detail"], row["started_at"],
        row["finished_at"], json.loads(row["counts"]), row["bill_rows"], row["orders"],
        row["journal_entries"], row["actor"],
    )  # fmt: skip


def _item(row: RowMapping) -> StoredItem:
    item = Item(
        row["order_no"], Category(row["category"]), row["detail"], row["wechat"], row["ours"], row["card"],
        row["wechat_fen"], row["ours_fen"], row["card_fen"],
    )  # fmt: skip
    return StoredItem(row["id"], row["business_date"], row["merchant_id"], item)


class SqlReconciliationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def orders_paid_between(self, merchant_id: str, start: datetime, end: datetime) -> list[OrderView]:
        query = sa.select(*_ORDER_COLUMNS).where(
            _O.merchant_id == merchant_id, _O.paid_at >= start, _O.paid_at < end
        )
        return await self._db.read(lambda conn: [_order(r) for r in conn.execute(query).mappings()])

    async def orders(self, merchant_id: str, order_nos: Sequence[str]) -> list[OrderView]:
        def read(conn: Connection) -> list[OrderView]:
            found: list[OrderView] = []
            for i in range(0, len(order_nos), _CHUNK):
                chunk = list(order_nos[i : i + _CHUNK])
                query = sa.select(*_ORDER_COLUMNS).where(
                    _O.merchant_id == merchant_id, _O.order_no.in_(chunk)
                )
                found += [_order(r) for r in conn.execute(query).mappings()]
            return found

        return await self._db.read(read) if order_nos else []

    async def replace_run(self, run: RunRecord, items: Sequence[Item]) -> None:
        key = (_RUNS.business_date == run.day) & (_RUNS.merchant_id == run.merchant_id)
        item_key = (_ITEMS.business_date == run.day) & (_ITEMS.merchant_id == run.merchant_id)
        row: dict[str, Any] = {
            "business_date": run.day, "merchant_id": run.merchant_id, "status": run.status,
            "detail": run.detail, "started_at": run.started_at, "finished_at": run.finished_at,
            "counts": json.dumps(run.counts, sort_keys=True), "differences": run.differences,
            "pending": run.pending, "bill_rows": run.bill_rows, "orders": run.orders,
            "journal_entries": run.journal_entries, "actor": run.actor,
        }  # fmt: skip
        item_rows = [
            {
                "business_date": run.day,
                "merchant_id": run.merchant_id,
                "order_no": i.order_no,
                "category": i.category.value,
                "detail": i.detail,
                "wechat": i.wechat,
                "ours": i.ours,
                "card": i.card,
                "wechat_fen": i.wechat_fen,
                "ours_fen": i.ours_fen,
                "card_fen": i.card_fen,
            }
            for i in items
        ]

        def write(conn: Connection) -> None:
            conn.execute(sa.delete(reconciliation_items).where(item_key))
            conn.execute(sa.delete(reconciliation_runs).where(key))
            conn.execute(sa.insert(reconciliation_runs), [row])
            if item_rows:
                conn.execute(sa.insert(reconciliation_items), item_rows)

        await self._db.write(write, label="reconciliation")

    async def runs(self, day: str, merchant_id: str) -> list[RunRecord]:
        query = sa.select(reconciliation_runs).where(_RUNS.business_date == day)
        if merchant_id:
            query = query.where(_RUNS.merchant_id == merchant_id)
        query = query.order_by(_RUNS.merchant_id)
        return await self._db.read(lambda conn: [_run(r) for r in conn.execute(query).mappings()])

    async def items(
        self, day: str, merchant_id: str, categories: Sequence[str], after_id: int, limit: int
    ) -> list[StoredItem]:
        query = sa.select(reconciliation_items).where(_ITEMS.business_date == day, _ITEMS.id > after_id)
        if merchant_id:
            query = query.where(_ITEMS.merchant_id == merchant_id)
        if categories:
            query = query.where(_ITEMS.category.in_(list(categories)))
        query = query.order_by(_ITEMS.id).limit(limit)
        return await self._db.read(lambda conn: [_item(r) for r in conn.execute(query).mappings()])
