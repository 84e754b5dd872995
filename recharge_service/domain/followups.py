"""Which follow-ups an order's end causes. Pure Python.

- CREDITED: a customer notice ("credited pay + bonus") and a business callback.
- REFUNDED: a customer notice ("refunded") and a business callback.
- REJECTED, CLOSED: a business callback only (no money moved, the customer saw the refusal).

``event_id`` is stable per order, outcome and topic: the customer notice uses it as WeChat's
message idempotency key and the business system dedupes callbacks on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recharge_service.domain import events
from recharge_service.domain.order import RechargeOrder

CUSTOMER_NOTICE = "customer_notice"
BUSINESS_CALLBACK = "business_callback"

TEMPLATE_CREDITED = "TPL_RECHARGE_CREDITED"
TEMPLATE_REFUNDED = "TPL_RECHARGE_REFUNDED"


@dataclass(frozen=True)
class FollowUp:
    topic: str
    event_id: str
    payload: dict[str, Any] = field(default_factory=dict)


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def _notice(order: RechargeOrder, outcome: str, template_id: str, message: str) -> FollowUp:
    data = {
        "order_no": order.order_no,
        "card_no": order.card_no,
        "pay_amount": yuan(order.pay_amount_fen),
        "bonus": yuan(order.bonus_fen),
        "credit_amount": yuan(order.credit_amount_fen),
        "result": outcome,
        "message": message,
    }
    return FollowUp(
        CUSTOMER_NOTICE,
        f"{order.order_no}.{outcome}.notice",
        {"openid": order.payer_openid, "template_id": template_id, "data": data},
    )


def _callback(order: RechargeOrder, outcome: str) -> FollowUp:
    return FollowUp(
        BUSINESS_CALLBACK,
        f"{order.order_no}.{outcome}.callback",
        {
            "channel": order.channel.name,
            "status": order.status.name,
            # whose configuration names the target: the dispatcher skips without reading the order
            "merchant_id": order.merchant_id,
            "merchant_version": order.merchant_version,
        },
    )


def followups_for(order: RechargeOrder, event: events.Event) -> list[FollowUp]:
    if isinstance(event, events.OrderCredited):
        message = (
            f"充值成功：支付 {yuan(order.pay_amount_fen)}，赠送 {yuan(order.bonus_fen)}，"
            f"共 {yuan(order.credit_amount_fen)} 已到账 (credited pay + bonus)"
        )
        return [_notice(order, "credited", TEMPLATE_CREDITED, message), _callback(order, "credited")]
    if isinstance(event, events.OrderRefunded):
        message = f"充值未成功，{yuan(order.pay_amount_fen)} 已原路退回 (refunded)"
        return [_notice(order, "refunded", TEMPLATE_REFUNDED, message), _callback(order, "refunded")]
    if isinstance(event, events.OrderRejected):
        return [_callback(order, "rejected")]
    if isinstance(event, events.OrderClosed):
        return [_callback(order, "closed")]
    return []
