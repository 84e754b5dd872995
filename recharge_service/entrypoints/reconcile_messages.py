"""Reconciliation runs and items as ``recharge.v1`` messages."""

from __future__ import annotations

from protos.recharge.v1 import recharge_pb2
from rc_common.timestamps import to_timestamp
from recharge_service.service_layer.reconcile import RunRecord, StoredItem


def run_to_proto(run: RunRecord) -> recharge_pb2.ReconciliationRun:
    return recharge_pb2.ReconciliationRun(
        date=run.day,
        merchant_id=run.merchant_id,
        status=run.status,
        detail=run.detail,
        started_at=to_timestamp(run.started_at),
        finished_at=to_timestamp(run.finished_at),
        counts=run.counts,
        differences=run.differences,
        pending=run.pending,
        bill_rows=run.bill_rows,
        orders=run.orders,
        journal_entries=run.journal_entries,
        actor=run.actor,
    )


def item_to_proto(stored: StoredItem) -> recharge_pb2.ReconciliationItem:
    item = stored.item
    return recharge_pb2.ReconciliationItem(
        date=stored.day,
        merchant_id=stored.merchant_id,
        order_no=item.order_no,
        category=item.category.value,
        detail=item.detail,
        wechat=item.wechat,
        ours=item.ours,
        card=item.card,
        wechat_fen=item.wechat_fen,
        ours_fen=item.ours_fen,
        card_fen=item.card_fen,
    )
