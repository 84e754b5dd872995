"""The recharge order and its state machine. Pure Python: no database, no gRPC.

States, in business words (the numbers mirror ``recharge.v1.OrderStatus``):

- CREATED: we accepted the top-up request; the card system's pre-recharge may or may not exist
  yet, and no payment has been asked for.
- AWAITING_PAYMENT: the pre-recharge is recorded (bonus fixed) and WeChat holds a prepay order;
  the customer may pay until the order expires.
- PAID: WeChat told us the customer paid and we stored the payment; the card is not credited yet.
- CREDIT_UNKNOWN: an exception record: we asked the card system to credit and never learned the
  answer. Internally we assume the credit landed: no refund until the card system says otherwise.
- CREDITED: the card system credited pay amount + bonus. Final.
- REFUNDING: the card system fenced the pre-recharge (voided: it can never be credited) and we
  asked WeChat to refund with ``{order_no}-R1``; waiting for WeChat to finish.
- REFUNDED: WeChat returned the money. Final.
- CLOSED: never paid; the WeChat order was closed and the pre-recharge voided. Final.
- REJECTED: the card system refused the pre-recharge (card frozen, limits, ...). Final.
- MANUAL_REVIEW: nobody could decide automatically; an operator resolves it, only through the same
  fenced operations as the automatic path (never a shortcut around void-before-refund).

Orders only move forward through ``TRANSITIONS``; ``version`` implements optimistic concurrency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from recharge_service.domain import events
from recharge_service.domain.events import Event


class OrderStatus(enum.IntEnum):
    CREATED = 1
    AWAITING_PAYMENT = 2
    PAID = 3
    CREDIT_UNKNOWN = 4
    CREDITED = 5
    REFUNDING = 6
    REFUNDED = 7
    CLOSED = 8
    REJECTED = 9
    MANUAL_REVIEW = 10


class Channel(enum.IntEnum):
    """Where the top-up was placed (mirrors ``recharge.v1.Channel``)."""

    OFFICIAL_ACCOUNT = 1
    POS = 2
    THIRD_PARTY = 3


S = OrderStatus

#: Every legal move. Anything else raises ``IllegalTransition``.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A payment can only arrive for an order WeChat knows about (AWAITING_PAYMENT), never CREATED.
    S.CREATED: frozenset({S.AWAITING_PAYMENT, S.REJECTED, S.CLOSED, S.MANUAL_REVIEW}),
    S.AWAITING_PAYMENT: frozenset({S.PAID, S.CLOSED, S.MANUAL_REVIEW}),
    S.PAID: frozenset({S.CREDITED, S.CREDIT_UNKNOWN, S.REFUNDING, S.MANUAL_REVIEW}),
    S.CREDIT_UNKNOWN: frozenset({S.CREDITED, S.REFUNDING, S.MANUAL_REVIEW}),
    # REFUNDING -> CREDITED only when a void answered SUCCEEDED (the credit won the race).
    S.REFUNDING: frozenset({S.REFUNDED, S.CREDITED, S.MANUAL_REVIEW}),
    # Out of manual review only through fenced operator actions (same calls as the sentinel).
    S.MANUAL_REVIEW: frozenset({S.CREDITED, S.REFUNDING, S.REFUNDED, S.CLOSED}),
    S.CREDITED: frozenset(),
    S.REFUNDED: frozenset(),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
}

#: States in which the order's story has ended.
FINAL = frozenset({S.CREDITED, S.REFUNDED, S.CLOSED, S.REJECTED})
#: States the sentinel moves forward (CREATED only once past its expiry). Not MANUAL_REVIEW: only
#: operators' fenced actions take an order out of review.
SENTINEL_STATES = frozenset({S.CREATED, S.AWAITING_PAYMENT, S.PAID, S.CREDIT_UNKNOWN, S.REFUNDING})
#: States in which nothing is decided yet (a visit that leaves an order here is an undecided one,
#: unless it is only waiting for the customer).
UNDECIDED = frozenset({S.CREATED, S.AWAITING_PAYMENT, S.PAID, S.CREDIT_UNKNOWN})
#: States a payment notification may find the order in without anything to do.
PAID_OR_LATER = frozenset({S.PAID, S.CREDIT_UNKNOWN, S.CREDITED, S.REFUNDING, S.REFUNDED})


class IllegalTransition(Exception):
    def __init__(self, order_no: str, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"order {order_no}: {current.name} -> {target.name} is not allowed")
        self.current = current
        self.target = target


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


@dataclass
class Change:
    """One state change not yet persisted (the repository writes it to the timeline)."""

    from_status: OrderStatus
    to_status: OrderStatus
    actor: str
    detail: str


@dataclass
class RechargeOrder:
    order_no: str
    idempotency_key: str
    card_no: str
    channel: Channel
    pay_amount_fen: int
    payer_openid: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    status: OrderStatus = S.CREATED
    bonus_fen: int = 0
    credit_amount_fen: int = 0
    rule_version: int = 0
    prepay_id: str = ""
    transaction_id: str = ""
    out_refund_no: str = ""
    failure_reason: str = ""
    paid_at: datetime | None = None
    version: int = 0
    attempts: int = 0
    last_error: str = ""
    changes: list[Change] = field(default_factory=list, repr=False, compare=False)
    events: list[Event] = field(default_factory=list, repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def pre_recharge_recorded(self) -> bool:
        """True once the card system's pre-recharge answer (bonus, credit amount) is stored."""
        return self.credit_amount_fen > 0

    def same_request(self, card_no: str, pay_amount_fen: int, channel: Channel, payer_openid: str) -> bool:
        return (self.card_no, self.pay_amount_fen, self.channel, self.payer_openid) == (
            card_no,
            pay_amount_fen,
            channel,
            payer_openid,
        )

    def transition(
        self, target: OrderStatus, at: datetime, *, actor: str = "system", detail: str = ""
    ) -> None:
        """Move to ``target`` or raise ``IllegalTransition``; records the change and its event."""
        if not can_transition(self.status, target):
            raise IllegalTransition(self.order_no, self.status, target)
        self.changes.append(Change(self.status, target, actor, detail))
        self.status = target
        self.updated_at = at
        self.events.append(events.for_status(self.order_no, target, detail))

    def record_pre_recharge(self, bonus_fen: int, credit_amount_fen: int, rule_version: int) -> None:
        self.bonus_fen = bonus_fen
        self.credit_amount_fen = credit_amount_fen
        self.rule_version = rule_version

    def note_undecided(self, error: str) -> None:
        """One more processing visit ended without a decision (the sentinel counts these)."""
        self.attempts += 1
        self.last_error = error
