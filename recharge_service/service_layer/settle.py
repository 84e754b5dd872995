"""Recording what the other systems decided, one short transaction each (shared by the notify
path, the sentinel and operator actions). Each is a no-op when the order is already there."""

from __future__ import annotations

from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.orders import change_order, change_order_in
from recharge_service.service_layer.ports import CREATE_REFUND
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork

S = OrderStatus


async def mark_credited(
    deps: Deps, order_no: str, detail: str, *, known: RechargeOrder | None = None
) -> RechargeOrder:
    """The card system said SUCCEEDED: CREDITED, with the success follow-ups."""

    def credited(order: RechargeOrder) -> bool:
        if order.status not in (S.PAID, S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW):
            return False
        order.failure_reason = ""  # a review's reason stays in the timeline, not on a credited order
        order.transition(S.CREDITED, deps.clock(), actor=actor(), detail=detail)
        return True

    return await change_order(deps, order_no, credited, known=known)


async def mark_credit_unknown(deps: Deps, order_no: str, error: str) -> RechargeOrder:
    """The credit's outcome is unknown: an exception record (attempts, last error). No refund."""

    def unknown(order: RechargeOrder) -> bool:
        if order.status is S.PAID:
            order.note_undecided(error)
            order.transition(S.CREDIT_UNKNOWN, deps.clock(), actor=actor(), detail=error)
            return True
        if order.status in (S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW):
            order.note_undecided(error)
            return True
        return False

    return await change_order(deps, order_no, unknown)


async def mark_refunding(deps: Deps, order_no: str, out_refund_no: str, reason: str) -> RechargeOrder:
    """The card system voided the pre-recharge (fenced): REFUNDING with the refund number, and
    the ``sent`` row of the CreateRefund the flow makes next."""

    def refunding(order: RechargeOrder, uow: AbstractUnitOfWork) -> bool:
        if order.status not in (S.PAID, S.CREDIT_UNKNOWN, S.MANUAL_REVIEW):
            return False
        now = deps.clock()
        order.out_refund_no = out_refund_no
        order.failure_reason = reason
        order.transition(S.REFUNDING, now, actor=actor(), detail=f"voided; refund {out_refund_no}")
        uow.announce(order_no, CREATE_REFUND, now, actor(), "attempt 1: sent, answer pending")
        return True

    return await change_order_in(deps, order_no, refunding)


async def mark_refunded(deps: Deps, order_no: str, detail: str) -> RechargeOrder:
    """WeChat returned the money: REFUNDED, with the failure follow-ups."""

    def refunded(order: RechargeOrder) -> bool:
        if order.status not in (S.REFUNDING, S.MANUAL_REVIEW) or not order.out_refund_no:
            return False
        order.transition(S.REFUNDED, deps.clock(), actor=actor(), detail=detail)
        return True

    return await change_order(deps, order_no, refunded)


async def send_to_manual_review(deps: Deps, order_no: str, reason: str) -> RechargeOrder:
    def review(order: RechargeOrder) -> bool:
        if order.is_final or order.status is S.MANUAL_REVIEW:
            return False
        order.failure_reason = reason
        order.transition(S.MANUAL_REVIEW, deps.clock(), actor=actor(), detail=reason)
        return True

    return await change_order(deps, order_no, review)


async def note_undecided(deps: Deps, order_no: str, error: str) -> RechargeOrder:
    def noted(order: RechargeOrder) -> bool:
        if order.is_final:
            return False
        order.note_undecided(error)
        return True

    return await change_order(deps, order_no, noted)


async def mark_closed(deps: Deps, order_no: str, detail: str) -> RechargeOrder:
    """Never paid: WeChat's order is closed (or never existed) and the pre-recharge is voided."""

    def closed(order: RechargeOrder) -> bool:
        if order.status not in (S.CREATED, S.AWAITING_PAYMENT, S.MANUAL_REVIEW) or order.transaction_id:
            return False
        order.transition(S.CLOSED, deps.clock(), actor=actor(), detail=detail)
        return True

    return await change_order(deps, order_no, closed)
