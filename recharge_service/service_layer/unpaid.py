"""The sentinel's steps for orders with no payment on record (shared with operators' RETRY_NOW).

- AWAITING_PAYMENT: ask WeChat (``QueryOrder``); the notification may be lost or late. Paid -> the
  same recording and credit step as a notification. Not paid and past the order's expiry -> close
  at WeChat first (so no payment can arrive later), then void the pre-recharge -> CLOSED. Close
  refused because the order was just paid -> ask again and take the paid path. Not paid and not
  expired -> leave it for a later visit.
- CREATED past its expiry (the pre-recharge's outcome may be unknown): when a prepay may have
  reached WeChat (the pre-recharge was recorded), close it there first; then void (which leaves a
  tombstone if the pre-recharge never arrived) -> CLOSED. CREATED and left by its request
  (unchanged for ``void_delay``, not expired): the same, always closing at WeChat first (a prepay
  sent whose answer was lost would be payable until its expiry); an undecided try is not counted
  as an attempt (it is tried again at each run until the order expires). A void answered
  SUCCEEDED would mean a credit without a payment -> MANUAL_REVIEW.

Each remote call is on the timeline before anything is recorded; a cancelled step resumes at the
next visit (WeChat says CLOSED -> void again; voids are idempotent).
"""

from __future__ import annotations

from rc_common.clock import duration
from rc_common.outcomes import Done, Rejected, Unknown
from recharge_service.domain.answers import NOT_FOUND, PAID_TRADE_STATES, CardState, TradeState
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer import confirm, settle
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import check as check_lease
from recharge_service.service_layer.merchants import wechat_account
from recharge_service.service_layer.payment import PaymentRejected, record_payment
from recharge_service.service_layer.ports import PaymentTransaction
from recharge_service.service_layer.steps import Step

S = OrderStatus
PAID_STATES = PAID_TRADE_STATES
ORDER_PAID = "ORDER_PAID"


def _said(outcome: Rejected | Unknown, method: str) -> str:
    if isinstance(outcome, Rejected):
        return f"{method} refused: {outcome.reason} {outcome.detail}".strip()
    return f"{method} {outcome.code}: {outcome.detail}"


async def awaiting_payment_step(deps: Deps, order: RechargeOrder) -> Step:
    outcome = await deps.payments.query_order(await wechat_account(deps.merchants, order), order.order_no)
    expired = deps.clock() >= order.expires_at
    if isinstance(outcome, Done):
        state = outcome.value.trade_state
        if state in PAID_STATES:
            return await paid_path(deps, outcome.value)
        if state == TradeState.CLOSED:
            return await void_and_close(deps, order, "WeChat order CLOSED")
        if not expired:
            left = duration(order.expires_at - deps.clock())
            return Step(order, f"WeChat: {state}; expires in {left}", waiting=True)
        return await close_then_void(deps, order)
    if isinstance(outcome, Rejected) and outcome.code == NOT_FOUND and expired:
        return await close_then_void(deps, order)  # WeChat never had it: nobody can pay it
    return Step(order, _said(outcome, "QueryOrder"))


async def created_step(deps: Deps, order: RechargeOrder) -> Step:
    now = deps.clock()
    if now < order.expires_at:
        if now - order.updated_at < deps.void_delay:
            return Step(order, "not expired yet", waiting=True)
        step = await close_then_void(deps, order)  # left by its request: no retry came
        # Undecided (WeChat or the card system did not answer): tried again at each run, not
        # counted, until it expires — then the expiry's visits count as usual.
        return step if step.order.status is not S.CREATED else Step(step.order, step.detail, waiting=True)
    # Expired: close at WeChat first, whatever the order knows. A create records the pre-recharge
    # together with the prepay's answer (one commit), so a creator that died with CreatePrepay out
    # leaves an order that knows no pre-recharge while WeChat may hold a payable prepay. WeChat
    # answering that it never had the order costs one call on this rare path.
    return await close_then_void(deps, order)


async def paid_path(deps: Deps, payment: PaymentTransaction) -> Step:
    """WeChat says paid: record it as a notification would, then the same credit step."""
    try:
        order = await record_payment(deps, payment, source="query")
    except PaymentRejected as exc:
        ended = await settle.send_to_manual_review(deps, payment.out_trade_no, f"WeChat says paid, but {exc}")
        return Step(ended, ended.failure_reason)
    if order.status is S.PAID:
        order = await confirm.credit(deps, order.order_no)
    return Step(order, f"WeChat: paid ({payment.transaction_id}) -> {order.status.name}")


async def close_then_void(deps: Deps, order: RechargeOrder) -> Step:
    account = await wechat_account(deps.merchants, order)
    check_lease(order.order_no)  # changes something elsewhere: only while ours
    closed = await deps.payments.close_order(account, order.order_no)
    if isinstance(closed, Rejected) and closed.reason == ORDER_PAID:
        again = await deps.payments.query_order(account, order.order_no)
        if isinstance(again, Done) and again.value.trade_state in PAID_STATES:
            return await paid_path(deps, again.value)
        if isinstance(again, Done):
            return Step(order, f"CloseOrder said paid, QueryOrder says {again.value.trade_state}")
        return Step(order, "CloseOrder said paid; " + _said(again, "QueryOrder"))
    if isinstance(closed, Done) or (isinstance(closed, Rejected) and closed.code == NOT_FOUND):
        why = "closed at WeChat" if isinstance(closed, Done) else "WeChat never had the order"
        return await void_and_close(deps, order, why)
    return Step(order, _said(closed, "CloseOrder"))


async def void_and_close(deps: Deps, order: RechargeOrder, why: str) -> Step:
    """Nobody can pay any more: void the pre-recharge (fenced), then CLOSED."""
    check_lease(order.order_no)  # changes something elsewhere: only while ours
    voided = await deps.card.void_recharge(order.order_no, f"order closed unpaid: {why}", order.merchant_id)
    if isinstance(voided, Done) and voided.value.status == CardState.VOIDED:
        ended = await settle.mark_closed(deps, order.order_no, f"{why}; pre-recharge voided", voided.value)
        return Step(ended, f"{why}; voided -> {ended.status.name}")
    if isinstance(voided, Done) and voided.value.status == CardState.SUCCEEDED:
        reason = "the void of an unpaid order answered SUCCEEDED: credited without a payment"
        ended = await settle.send_to_manual_review(deps, order.order_no, reason)
        return Step(ended, reason)
    if isinstance(voided, Done):
        return Step(order, f"{why}; VoidRecharge answered {voided.value.status}")
    return Step(order, f"{why}; " + _said(voided, "VoidRecharge"))
