"""Recording a payment (from a notification, or from a QueryOrder by the sentinel or an operator).

In ONE transaction: the payment row (once per transaction id), AWAITING_PAYMENT -> PAID, the
timeline and, when the caller credits right after (``then_confirm``), the ``sent`` row of that
ConfirmRecharge and the claim of the order's lease for that credit (``holding.py``; when another
replica holds the order, the credit is the holder's). Duplicates and late or reordered
notifications change nothing: an order already PAID or further along stays where it is.
"""

from __future__ import annotations

import time
from datetime import datetime

from rc_common.errors import NotFound
from rc_common.logs import get_logger
from rc_common.validation import check_moment
from recharge_service.domain.answers import TradeState
from recharge_service.domain.order import OrderStatus, PaymentEffect, RechargeOrder
from recharge_service.domain.timeline import NOTIFICATION, TimelineEntry
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.call_log import sent_entry
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.holding import OrderLease, lease_of
from recharge_service.service_layer.orders import Write, change_order_in
from recharge_service.service_layer.ports import CONFIRM_RECHARGE, PaymentTransaction
from recharge_service.service_layer.storage import StagedClaim
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork

log = get_logger("payment")
S = OrderStatus


class PaymentRejected(Exception):
    """The payment does not belong to one of our orders as it stands; nothing was recorded."""


async def record_payment(deps: Deps, payment: PaymentTransaction, *, source: str) -> RechargeOrder:
    """Record ``payment`` durably; returns the order afterwards. Raises PaymentRejected."""
    order, _announced, _lease = await record_payment_then_confirm(
        deps, payment, source=source, then_confirm=False
    )
    return order


async def record_payment_then_confirm(
    deps: Deps, payment: PaymentTransaction, *, source: str, then_confirm: bool = True
) -> tuple[RechargeOrder, bool, OrderLease | None]:
    """``record_payment`` for a caller that confirms the credit right after: when this payment
    makes the order PAID, the ConfirmRecharge ``sent`` row rides in the same transaction and the
    second value is True (the confirm's flow then skips writing it: ``call_log``) and the third is
    the order's lease for the credit, claimed in that transaction (None when another holds it)."""
    if payment.trade_state != TradeState.SUCCESS:
        raise PaymentRejected(f"trade_state {payment.trade_state!r} is not SUCCESS")
    if not payment.transaction_id:
        raise PaymentRejected("no transaction_id")
    announced = False
    claim: StagedClaim | None = None
    owner = f"{deps.node}/credit"
    started = time.monotonic()

    def decide(order: RechargeOrder, uow: AbstractUnitOfWork) -> Write:
        nonlocal announced, claim
        if payment.amount_total_fen != order.pay_amount_fen:
            raise PaymentRejected(
                f"amount {payment.amount_total_fen} does not match the pay amount {order.pay_amount_fen}"
            )
        now = deps.clock()
        who = "wechat" if source == "notification" else actor()
        was = order.status
        effect = order.accept_payment(
            payment.transaction_id, _parse_time(payment.success_time) or now, now, who
        )
        # The label follows what the payment did, decided under the order's version: of two copies
        # of one notification at once, exactly one is "accepted".
        outcome = "accepted" if effect.changed else "duplicate"
        if effect is PaymentEffect.ANOMALY:
            outcome = "anomaly"
            log.error("payment_for_finished_order", order_no=order.order_no, status=order.status.name)
        uow.payments.add_if_absent(
            payment.transaction_id, order.order_no, payment.amount_total_fen, payment.success_time, now
        )
        uow.timeline.stage(
            TimelineEntry(
                order.order_no,
                now,
                NOTIFICATION,
                method=source,
                outcome=outcome,
                actor=who,
                detail=f"TRANSACTION.SUCCESS {payment.transaction_id}; order was {was.name}",
            )
        )
        announced = then_confirm and effect is PaymentEffect.PAID
        if announced:
            pending = "attempt 1: sent, answer pending"
            uow.timeline.stage(sent_entry(order.order_no, CONFIRM_RECHARGE, now, "system", pending))
            claim = uow.leases.stage_claim(order.order_no, owner, now, now + deps.lease)
        return Write.SAVE if effect.changed else Write.STAGED

    try:
        order = await change_order_in(deps, payment.out_trade_no, decide)
    except NotFound:
        raise PaymentRejected(f"unknown order {payment.out_trade_no!r}") from None
    token = claim.token if claim is not None else None
    lease = None if token is None else lease_of(order.order_no, owner, token, deps.lease, started)
    return order, announced, lease


def _parse_time(text: str) -> datetime | None:
    try:
        moment = check_moment(datetime.fromisoformat(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else None
