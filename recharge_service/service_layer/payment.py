"""Recording a payment (from a notification, or from a QueryOrder by the sentinel or an operator).

In ONE transaction: the payment row (once per transaction id), AWAITING_PAYMENT -> PAID, the
timeline and, when the caller credits right after (``then_confirm``), the ``sent`` row of that
ConfirmRecharge. Duplicates and late or reordered notifications change nothing: an order already
PAID or further along stays where it is.
"""

from __future__ import annotations

from datetime import datetime

from rc_common.logs import get_logger
from recharge_service.adapters.repository import StaleOrder
from recharge_service.domain.order import PAID_OR_LATER, OrderStatus, RechargeOrder
from recharge_service.domain.timeline import NOTIFICATION, TimelineEntry
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.call_log import sent_entry
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.orders import MAX_RACES
from recharge_service.service_layer.ports import CONFIRM_RECHARGE, PaymentTransaction

log = get_logger("payment")
S = OrderStatus


class PaymentRejected(Exception):
    """The payment does not belong to one of our orders as it stands; nothing was recorded."""


async def record_payment(deps: Deps, payment: PaymentTransaction, *, source: str) -> RechargeOrder:
    """Record ``payment`` durably; returns the order afterwards. Raises PaymentRejected."""
    order, _announced = await record_payment_then_confirm(deps, payment, source=source, then_confirm=False)
    return order


async def record_payment_then_confirm(
    deps: Deps, payment: PaymentTransaction, *, source: str, then_confirm: bool = True
) -> tuple[RechargeOrder, bool]:
    """``record_payment`` for a caller that confirms the credit right after: when this payment
    makes the order PAID, the ConfirmRecharge ``sent`` row rides in the same transaction and the
    second value is True (the confirm's flow then skips writing it: ``call_log``)."""
    if payment.trade_state != "SUCCESS":
        raise PaymentRejected(f"trade_state {payment.trade_state!r} is not SUCCESS")
    if not payment.transaction_id:
        raise PaymentRejected("no transaction_id")
    for _ in range(MAX_RACES):
        async with deps.uow() as uow:
            order = await uow.orders.get(payment.out_trade_no)
            if order is None:
                raise PaymentRejected(f"unknown order {payment.out_trade_no!r}")
            if payment.amount_total_fen != order.pay_amount_fen:
                raise PaymentRejected(
                    f"amount {payment.amount_total_fen} does not match the pay amount {order.pay_amount_fen}"
                )
            now = deps.clock()
            first = not await uow.payments.exists(payment.transaction_id)
            await uow.payments.add_if_absent(
                payment.transaction_id, order.order_no, payment.amount_total_fen, payment.success_time, now
            )
            outcome = "duplicate" if not first else "accepted"
            noted = False
            if order.status is S.AWAITING_PAYMENT:
                order.transaction_id = payment.transaction_id
                order.paid_at = _parse_time(payment.success_time) or now
                order.transition(
                    S.PAID,
                    now,
                    actor="wechat" if source == "notification" else actor(),
                    detail=f"paid, transaction {payment.transaction_id}",
                )
            elif order.status is S.CREATED:
                order.transaction_id = payment.transaction_id
                order.paid_at = _parse_time(payment.success_time) or now
                order.failure_reason = "PAID_BEFORE_PREPAY_RECORDED"
                order.transition(
                    S.MANUAL_REVIEW, now, actor=actor(), detail="paid, but the prepay was never recorded"
                )
            elif order.status is S.MANUAL_REVIEW and not order.transaction_id:
                # An operator is deciding; the payment is now on record (CONFIRM_CREDIT or REFUND).
                order.transaction_id = payment.transaction_id
                order.paid_at = _parse_time(payment.success_time) or now
                noted = True
            elif order.status not in PAID_OR_LATER and order.status is not S.MANUAL_REVIEW:
                outcome = "anomaly"
                log.error("payment_for_finished_order", order_no=order.order_no, status=order.status.name)
            await uow.timeline.add(
                TimelineEntry(
                    order.order_no,
                    now,
                    NOTIFICATION,
                    method=source,
                    outcome=outcome,
                    actor="wechat" if source == "notification" else actor(),
                    detail=f"TRANSACTION.SUCCESS {payment.transaction_id}; order was "
                    f"{order.changes[0].from_status.name if order.changes else order.status.name}",
                )
            )
            if order.changes or noted:
                await uow.orders.save(order)
            announced = then_confirm and order.status is S.PAID and bool(order.changes)
            if announced:
                pending = "attempt 1: sent, answer pending"
                sent = sent_entry(order.order_no, CONFIRM_RECHARGE, now, "system", pending)
                await uow.timeline.add(sent)
            try:
                await uow.commit()
            except StaleOrder:
                continue
            return order, announced
    raise StaleOrder(payment.out_trade_no)


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
