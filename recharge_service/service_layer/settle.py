"""Recording what the other systems decided, one short transaction each (shared by the notify
path, the sentinel and operator actions). What each decision does in each state is the order's
own rule (``domain/order.py``); here it is only read, decided and written. Each is a no-op when
the order is already there."""

from __future__ import annotations

from recharge_service.domain.answers import VoidProof
from recharge_service.domain.order import OrderStatus, RechargeOrder
from recharge_service.service_layer.actor import actor
from recharge_service.service_layer.deps import Deps
from recharge_service.service_layer.orders import change_order, change_order_in
from recharge_service.service_layer.ports import CREATE_REFUND, CardRecharge
from recharge_service.service_layer.unit_of_work import AbstractUnitOfWork


async def mark_credited(
    deps: Deps, order_no: str, detail: str, *, known: RechargeOrder | None = None
) -> RechargeOrder:
    """The card system said SUCCEEDED: CREDITED, with the success follow-ups."""
    return await change_order(
        deps, order_no, lambda order: order.credit(deps.clock(), actor(), detail), known=known
    )


async def mark_credit_unknown(deps: Deps, order_no: str, error: str) -> RechargeOrder:
    """The credit's outcome is unknown: an exception record (attempts, last error). No refund."""
    return await change_order(
        deps, order_no, lambda order: order.credit_unknown(error, deps.clock(), actor())
    )


async def mark_refunding(
    deps: Deps, order_no: str, proof: VoidProof, out_refund_no: str, reason: str
) -> RechargeOrder:
    """The card system voided the pre-recharge (``proof``): REFUNDING with the refund number, and
    the ``sent`` row of the CreateRefund the flow makes next."""

    def refunding(order: RechargeOrder, uow: AbstractUnitOfWork) -> bool:
        now = deps.clock()
        if not order.start_refund(proof, out_refund_no, reason, now, actor()):
            return False
        uow.announce(order_no, CREATE_REFUND, now, actor(), "attempt 1: sent, answer pending")
        return True

    return await change_order_in(deps, order_no, refunding)


async def mark_refunded(deps: Deps, order_no: str, detail: str) -> RechargeOrder:
    """WeChat returned the money: REFUNDED, with the failure follow-ups."""
    return await change_order(deps, order_no, lambda order: order.refunded(deps.clock(), actor(), detail))


async def send_to_manual_review(deps: Deps, order_no: str, reason: str) -> RechargeOrder:
    return await change_order(
        deps, order_no, lambda order: order.send_to_review(reason, deps.clock(), actor())
    )


async def note_undecided(deps: Deps, order_no: str, error: str) -> RechargeOrder:
    def noted(order: RechargeOrder) -> bool:
        if order.is_final:
            return False
        order.note_undecided(error)
        return True

    return await change_order(deps, order_no, noted)


async def mark_closed(
    deps: Deps, order_no: str, detail: str, voided: CardRecharge | None = None
) -> RechargeOrder:
    """Never paid: WeChat's order is closed (or never existed) and the pre-recharge is voided.

    ``voided``: the card system's record as the void answered it. An order that never learned
    its pre-recharge (every answer was lost; a late one landed before the void) takes the bonus,
    credit amount and rule version from it, so the order and the card system tell the same story."""

    def close(order: RechargeOrder) -> bool:
        if voided is not None and order.status is OrderStatus.CREATED and not order.pre_recharge_recorded:
            order.record_pre_recharge(voided.bonus_fen, voided.credit_amount_fen, voided.rule_version)
        return order.close(deps.clock(), actor(), detail)

    return await change_order(deps, order_no, close)
