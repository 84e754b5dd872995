"""The credit step: ``ConfirmRecharge`` for a paid order (after the notification; the sentinel
reuses it).

- SUCCEEDED -> CREDITED (+ success follow-ups).
- VOIDED, or refused because the card is frozen or closed, or the pre-recharge is unknown to the
  card system -> the refund path (which voids first: only a VOIDED answer allows a refund).
- Unknown after the bounded retries -> CREDIT_UNKNOWN (attempts, last error), and stop: no
  refund, no failure flow. Internally we assume the credit landed until the card system says.
"""

from __future__ import annotations

from rc_common.outcomes import Done, Rejected
from recharge_service.domain.answers import NOT_FOUND, CardState
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import settle
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import check as check_lease
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.refund import refund_path

#: Confirm refusals that are definitive for the credit.
DEFINITIVE_REFUSALS = frozenset({"CARD_FROZEN", "CARD_CLOSED"})


async def credit(deps: Deps, order_no: str, *, known: RechargeOrder | None = None) -> RechargeOrder:
    """``known``: the order as the caller just read it (saves a read; every write re-reads)."""
    order = known or await load_order(deps, order_no)
    if order.status not in (OrderStatus.PAID, OrderStatus.CREDIT_UNKNOWN):
        return order
    check_lease(order_no)  # changes something elsewhere: only while ours
    outcome = await deps.card.confirm_recharge(order_no, order.merchant_id)
    if isinstance(outcome, Done):
        if outcome.value.status == CardState.SUCCEEDED:
            return await settle.mark_credited(deps, order_no, "card system confirmed the credit", known=order)
        if outcome.value.status == CardState.VOIDED:
            return await refund_path(deps, order_no, "pre-recharge voided", known=order)
        return await settle.mark_credit_unknown(
            deps, order_no, f"ConfirmRecharge answered {outcome.value.status}"
        )
    if isinstance(outcome, Rejected):
        if outcome.reason in DEFINITIVE_REFUSALS:
            return await refund_path(deps, order_no, f"confirm refused: {outcome.reason}", known=order)
        if outcome.code == NOT_FOUND:
            return await refund_path(deps, order_no, "pre-recharge unknown to the card system", known=order)
        return await settle.mark_credit_unknown(
            deps, order_no, f"ConfirmRecharge refused: {outcome.reason} {outcome.detail}".strip()
        )
    return await settle.mark_credit_unknown(
        deps, order_no, f"ConfirmRecharge {outcome.code}: {outcome.detail}"
    )
