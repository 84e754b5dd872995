"""The refund path, shared by the notify path, the sentinel and operator actions.

Void first. Only a VOIDED answer proves the credit can never land (the card system fences confirm
and void under one lock), so only then: REFUNDING (committed first, with ``{order_no}-R1``), then
``CreateRefund`` with that same number and amounts on every retry. The order itself refuses
REFUNDING without the void's ``VoidProof`` (``domain/answers.py``).

- void SUCCEEDED: the credit won -> CREDITED; never refund.
- void unknown or refused: nothing is decided -> stay (PAID becomes CREDIT_UNKNOWN); never refund.
- refund SUCCESS -> REFUNDED (+ failure follow-ups); PROCESSING or unknown -> stay REFUNDING;
  ABNORMAL / CLOSED / refused -> MANUAL_REVIEW with the reason.
"""

from __future__ import annotations

from rc_common.logs import get_logger
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.answers import (
    FAILED_REFUND_STATES,
    NOT_FOUND,
    CardState,
    RefundState,
    VoidProof,
)
from recharge_service.domain.numbers import refund_no
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import settle
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import check as check_lease
from recharge_service.service_layer.merchants import wechat_account
from recharge_service.service_layer.orders import load_order
from recharge_service.service_layer.ports import CardRecharge, RefundResult

S = OrderStatus
log = get_logger("refund")


async def refund_path(
    deps: Deps, order_no: str, reason: str, *, known: RechargeOrder | None = None
) -> RechargeOrder:
    """Void, then refund. Returns the order as it ends up (never refunds without a VOIDED).
    ``known``: the order as the caller just read it (saves a read; every write re-reads)."""
    order, _void = await void_then_refund(deps, order_no, reason, known=known)
    return order


async def void_then_refund(
    deps: Deps, order_no: str, reason: str, *, known: RechargeOrder | None = None
) -> tuple[RechargeOrder, Done[CardRecharge] | Rejected | Unknown | None]:
    """``refund_path`` that also returns the void's answer (None when no void was asked for:
    already REFUNDING, or not refundable), for callers that must say why nothing was refunded."""
    order = known or await load_order(deps, order_no)
    if not order.may_refund:  # nothing paid, nothing to return, or past the point of refunding
        return order, None
    if order.status is S.REFUNDING:
        return await request_refund(deps, order), None
    check_lease(order_no)  # changes something elsewhere: only while ours
    outcome = await deps.card.void_recharge(order_no, reason, order.merchant_id)
    if isinstance(outcome, Done) and outcome.value.status == CardState.SUCCEEDED:
        return await settle.mark_credited(deps, order_no, "void answered SUCCEEDED: the credit won"), outcome
    if not (isinstance(outcome, Done) and outcome.value.status == CardState.VOIDED):
        if isinstance(outcome, Done):
            error = f"VoidRecharge answered {outcome.value.status}"
        elif isinstance(outcome, Rejected):
            error = f"VoidRecharge refused: {outcome.reason} {outcome.detail}".strip()
        else:
            error = f"VoidRecharge {outcome.code}: {outcome.detail}"
        return await settle.mark_credit_unknown(deps, order_no, error), outcome
    proof = VoidProof.from_answer(order_no, outcome.value.status)
    order = await settle.mark_refunding(deps, order_no, proof, refund_no(order_no), reason)
    if order.status is not S.REFUNDING:
        return order, outcome
    return await request_refund(deps, order), outcome


async def request_refund(deps: Deps, order: RechargeOrder) -> RechargeOrder:
    """``CreateRefund`` for a REFUNDING order, same number and amounts on every retry."""
    if order.status is not S.REFUNDING or not order.out_refund_no:
        return order
    check_lease(order.order_no)  # changes something elsewhere: only while ours
    outcome = await deps.payments.create_refund(
        await wechat_account(deps.merchants, order),
        order.order_no,
        order.out_refund_no,
        order.pay_amount_fen,
        order.pay_amount_fen,
        order.failure_reason or "recharge failed",
    )
    if isinstance(outcome, Done):
        return await _settle_refund(deps, order, outcome.value)
    if isinstance(outcome, Rejected):
        return await settle.send_to_manual_review(
            deps, order.order_no, f"CreateRefund refused: {outcome.reason} {outcome.detail}".strip()
        )
    return await settle.note_undecided(deps, order.order_no, f"CreateRefund {outcome.code}: {outcome.detail}")


async def settle_refund(deps: Deps, order_no: str, *, known: RechargeOrder | None = None) -> RechargeOrder:
    """Ask WeChat how a REFUNDING order's refund ended (the sentinel's step)."""
    order = known or await load_order(deps, order_no)
    if order.status is not S.REFUNDING or not order.out_refund_no:
        return order
    outcome = await deps.payments.query_refund(
        await wechat_account(deps.merchants, order), order_no, order.out_refund_no
    )
    if isinstance(outcome, Done):
        return await _settle_refund(deps, order, outcome.value)
    if isinstance(outcome, Rejected) and outcome.code == NOT_FOUND:
        return await request_refund(deps, order)  # the refund request never arrived: same number again
    error = outcome.reason if isinstance(outcome, Rejected) else outcome.code
    return await settle.note_undecided(deps, order_no, f"QueryRefund {error}: {outcome.detail}")


async def _settle_refund(deps: Deps, order: RechargeOrder, refund: RefundResult) -> RechargeOrder:
    if refund.status == RefundState.SUCCESS:
        return await settle.mark_refunded(deps, order.order_no, f"refund {refund.refund_id} SUCCESS")
    if refund.status in FAILED_REFUND_STATES:
        return await settle.send_to_manual_review(
            deps, order.order_no, f"refund {order.out_refund_no} ended {refund.status}"
        )
    log.info("refund_processing", order_no=order.order_no, out_refund_no=order.out_refund_no)
    return order
