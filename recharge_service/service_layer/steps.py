"""The sentinel's steps for paid orders (shared with operators' RETRY_NOW).

- PAID or CREDIT_UNKNOWN: ask the card system (``GetRecharge``). SUCCEEDED -> CREDITED (+ success
  follow-ups). RECHARGING -> confirm again (``--on-pending credit``: the customer paid to top up)
  or the refund path (``--on-pending refund``). VOIDED, or no pre-recharge at all -> the refund
  path (which voids first). No answer -> undecided, nothing else is done.
- REFUNDING: ask WeChat how the refund stands (``QueryRefund``): SUCCESS -> REFUNDED (+ failure
  follow-ups); PROCESSING -> wait; never accepted -> ``CreateRefund`` again with the same number;
  ABNORMAL / CLOSED -> MANUAL_REVIEW.

Every step reuses the notify path's credit step and refund path; nothing here touches the card or
WeChat any other way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rc_common.outcomes import Done, Rejected
from recharge_service.domain.answers import NOT_FOUND, CardState
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import confirm, refund, settle
from recharge_service.service_layer.deps import Deps
from recharge_service.settings import OnPending

S = OrderStatus


@dataclass(frozen=True)
class Step:
    """What one step found and where it left the order.

    ``waiting``: the order waits for someone else (the customer, WeChat, this process's own credit
    task) — not an undecided attempt."""

    order: RechargeOrder
    detail: str
    waiting: bool = False


def credit_task_key(order_no: str) -> str:
    return f"credit:{order_no}"


async def credit_step(deps: Deps, order: RechargeOrder, on_pending: OnPending) -> Step:
    order_no = order.order_no
    if order.status is S.PAID and deps.background.running(credit_task_key(order_no)):
        return Step(order, "the credit step after the notification is still running here", waiting=True)
    outcome = await deps.card.get_recharge(order_no, order.merchant_id)
    if isinstance(outcome, Done):
        status = outcome.value.status
        if status == CardState.SUCCEEDED:
            ended = await settle.mark_credited(deps, order_no, "card system says SUCCEEDED", known=order)
            return Step(ended, "card: SUCCEEDED")
        if status == CardState.RECHARGING and on_pending is OnPending.REFUND:
            why = "pre-recharge still RECHARGING (--on-pending refund)"
            ended = await refund.refund_path(deps, order_no, why, known=order)
            return Step(ended, f"card: RECHARGING; refund path -> {ended.status.name}")
        if status == CardState.RECHARGING:
            ended = await confirm.credit(deps, order_no, known=order)
            return Step(ended, f"card: RECHARGING; confirmed again -> {ended.status.name}")
        if status == CardState.VOIDED:
            ended = await refund.refund_path(deps, order_no, "pre-recharge voided", known=order)
            return Step(ended, f"card: VOIDED; refund path -> {ended.status.name}")
        return Step(order, f"card: unexpected status {status}")
    if isinstance(outcome, Rejected) and outcome.code == NOT_FOUND:
        why = "pre-recharge unknown to the card system"
        ended = await refund.refund_path(deps, order_no, why, known=order)
        return Step(ended, f"card: no such pre-recharge; refund path -> {ended.status.name}")
    if isinstance(outcome, Rejected):
        return Step(order, f"GetRecharge refused: {outcome.reason} {outcome.detail}".strip())
    return Step(order, f"GetRecharge {outcome.code}: {outcome.detail}")


async def refund_step(deps: Deps, order: RechargeOrder) -> Step:
    ended = await refund.settle_refund(deps, order.order_no, known=order)
    if ended.status is S.REFUNDED:
        return Step(ended, f"refund {order.out_refund_no}: SUCCESS")
    if ended.status is S.MANUAL_REVIEW:
        return Step(ended, ended.failure_reason)
    if ended.attempts > order.attempts:
        return Step(ended, ended.last_error)
    return Step(ended, f"refund {order.out_refund_no}: PROCESSING at WeChat", waiting=True)
