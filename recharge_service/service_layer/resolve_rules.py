"""The rules of the operators' actions, without I/O: what RETRY_NOW, REFUND and CONFIRM_CREDIT do
with an order as it is on record, and with what the card system or WeChat says about it.

``resolve.py`` applies them as it acts (each refusal raised from here, with its reason code);
``inspection.py`` applies the very same functions to the views InspectOrder read, to preview each
action for the console. A rule answers a ``Check``:

- RUN: the action goes on (the next step: a remote call, a write);
- NOOP: nothing to do, the answer is ``says`` (e.g. "already CREDITED");
- REFUSED: a definitive no, with a reason code — ``enforce`` raises it as ``Refused``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rc_common.errors import Refused
from recharge_service.domain.answers import FAILED_REFUND_STATES, CardState, RefundState
from recharge_service.domain.numbers import money
from recharge_service.domain.order import SENTINEL_STATES, OrderStatus, RechargeOrder

S = OrderStatus
#: NOOP reasons (a preview's ``refused_reason`` when an action would change nothing).
NOT_AN_ANOMALY = "NOT_AN_ANOMALY"
REFUND_IN_PROGRESS = "REFUND_IN_PROGRESS"


class Kind(enum.Enum):
    RUN = "run"
    NOOP = "noop"
    REFUSED = "refused"


@dataclass(frozen=True)
class Check:
    kind: Kind
    #: What it does (RUN), what it answers (NOOP) or why not (REFUSED), in an operator's words.
    says: str
    #: The refusal's reason code (REFUSED), or why nothing changes (NOOP).
    reason: str = ""

    @property
    def runs(self) -> bool:
        return self.kind is Kind.RUN

    def enforce(self) -> None:
        """Raise the refusal (``Refused`` with the reason code); nothing for RUN or NOOP."""
        if self.kind is Kind.REFUSED:
            raise Refused(self.reason, self.says)


def run(says: str) -> Check:
    return Check(Kind.RUN, says)


def noop(says: str, reason: str = NOT_AN_ANOMALY) -> Check:
    return Check(Kind.NOOP, says, reason)


def refused(reason: str, says: str) -> Check:
    return Check(Kind.REFUSED, says, reason)


# -- RETRY_NOW ----------------------------------------------------------------------------------


def retry_now(order: RechargeOrder) -> Check:
    if order.status in SENTINEL_STATES:
        return run(f"the sentinel's step for {order.status.name} now, ignoring the hold")
    if order.status is S.MANUAL_REVIEW:
        return run(
            "look again and record only what the card system or WeChat has already decided "
            "(credited, refunded, closed unpaid); otherwise say what was found"
        )
    return noop(f"nothing to do: the order is {order.status.name}")


# -- REFUND -------------------------------------------------------------------------------------

CARD_CREDITED = "the card was credited for this order; it is never refunded"


def refund(order: RechargeOrder) -> Check:
    """What the order on record allows (checked before anything is asked of anyone)."""
    if order.status is S.CREDITED:
        return refused("CARD_CREDITED", CARD_CREDITED)
    if order.status is S.REFUNDED:
        return noop("already REFUNDED")
    if not order.transaction_id:
        return refused(
            "ORDER_NOT_PAID", "no payment is on record for this order (RETRY_NOW asks WeChat)"
        )
    if not order.may_refund:
        return noop(f"nothing to refund: the order is {order.status.name}")
    if order.status is S.REFUNDING:
        return run(f"ask WeChat again for refund {order.out_refund_no} (the same number and amount)")
    return run(
        f"void the pre-recharge first; only when the card system answers VOIDED, refund "
        f"{money(order.pay_amount_fen)} with {order.order_no}-R1"
    )


def asked_refund(order: RechargeOrder, state: str) -> Check | None:
    """An order in MANUAL_REVIEW whose refund was asked for already: what WeChat's word on that
    refund (``state``, from QueryRefund) means; None when WeChat never received it (the refund
    path sends it: the ``refund`` check stands)."""
    number = order.out_refund_no
    if state == RefundState.SUCCESS:
        return run(f"WeChat says refund {number} SUCCESS: record REFUNDED")
    if state in FAILED_REFUND_STATES:
        return refused(
            f"REFUND_{state}",
            f"WeChat says refund {number} ended {state}: handle it in the WeChat Pay merchant "
            "platform, then RETRY_NOW",
        )
    if state == "NOT_FOUND":
        return None
    return noop(f"refund {number}: {state} at WeChat", REFUND_IN_PROGRESS)


def refund_given_card(state: str) -> Check:
    """What the card system's word on the pre-recharge (``state``: its status, or NOT_FOUND)
    means for a refund: the void that comes first fences a RECHARGING one, leaves a tombstone for
    a missing one, finds a VOIDED one voided — and finds a SUCCEEDED one credited."""
    if state == CardState.SUCCEEDED:
        return refused(
            "CARD_CREDITED",
            "the card system says the credit landed (SUCCEEDED): the order becomes CREDITED and "
            "nothing is refunded",
        )
    return run(f"the card system says {state}: the void fences it, then the refund")


# -- CONFIRM_CREDIT -----------------------------------------------------------------------------


def confirm_credit(order: RechargeOrder) -> Check:
    if order.status is S.CREDITED:
        return noop("already CREDITED")
    if not order.transaction_id:
        return refused("ORDER_NOT_PAID", "no payment is on record for this order: it cannot be credited")
    if order.status is S.REFUNDED:
        return refused("CARD_NOT_CREDITED", "the order was refunded after the card system voided it")
    return run("CREDITED only when the card system says SUCCEEDED (confirmed again while RECHARGING)")


def card_credited(state: str, detail: str = "") -> Check:
    """The card system's last word (``state``: its status, or a refusal's reason): CREDITED only
    when it says SUCCEEDED."""
    if state == CardState.SUCCEEDED:
        return run("the card system says SUCCEEDED: record CREDITED")
    said = f"{state} {detail}".strip()
    return refused("CARD_NOT_CREDITED", f"the card system says {said}: not credited")


def confirm_given_card(state: str, detail: str = "") -> Check:
    """What the card system's word before anything is asked of it means for CONFIRM_CREDIT: a
    RECHARGING pre-recharge is confirmed again, anything else is its last word."""
    if state == CardState.RECHARGING:
        return run("the pre-recharge is RECHARGING: confirm it again; CREDITED when it answers SUCCEEDED")
    return card_credited(state, detail)
