"""Domain <-> ``recharge.v1`` messages (used by the servicers and the business callback client)."""

from __future__ import annotations

from protos.recharge.v1 import recharge_pb2
from rc_common.timestamps import to_timestamp as timestamp
from recharge_service.domain.order import RechargeOrder
from recharge_service.domain.timeline import TimelineEntry


def order_to_proto(order: RechargeOrder) -> recharge_pb2.RechargeOrder:
    return recharge_pb2.RechargeOrder(
        order_no=order.order_no,
        card_no=order.card_no,
        channel=int(order.channel),  # type: ignore[arg-type]  # same numbers as recharge.v1.Channel
        status=int(order.status),  # type: ignore[arg-type]  # same numbers as recharge.v1.OrderStatus
        pay_amount_fen=order.pay_amount_fen,
        bonus_fen=order.bonus_fen,
        credit_amount_fen=order.credit_amount_fen,
        prepay_id=order.prepay_id,
        transaction_id=order.transaction_id,
        out_refund_no=order.out_refund_no,
        failure_reason=order.failure_reason,
        idempotency_key=order.idempotency_key,
        payer_openid=order.payer_openid,
        created_at=timestamp(order.created_at),
        updated_at=timestamp(order.updated_at),
        paid_at=timestamp(order.paid_at),
        expires_at=timestamp(order.expires_at),
        version=order.version,
        rule_version=order.rule_version,
        merchant_id=order.merchant_id,
        merchant_version=order.merchant_version,
    )


def timeline_to_proto(entry: TimelineEntry) -> recharge_pb2.TimelineEvent:
    return recharge_pb2.TimelineEvent(
        seq=entry.seq,
        at=timestamp(entry.at),
        kind=entry.kind,
        from_status=entry.from_status,  # type: ignore[arg-type]  # same numbers as OrderStatus
        to_status=entry.to_status,  # type: ignore[arg-type]  # same numbers as OrderStatus
        method=entry.method,
        outcome=entry.outcome,
        latency_ms=entry.latency_ms,
        error=entry.error,
        actor=entry.actor,
        detail=entry.detail,
        node=entry.node,
    )
